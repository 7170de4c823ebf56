//! `state` / `list` output: stable JSON, or a table for people.

use std::io::Write;

use serde::Serialize;
use vmjail_sandbox::SandboxView;

use super::Failure;

pub fn print_json<T: Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::Other(format!("encoding JSON: {e}")))?;
    write_stdout(&format!("{text}\n"))
}

pub fn print_table(sandboxes: &[SandboxView]) -> Result<(), Failure> {
    write_stdout(&table(sandboxes))
}

fn table(sandboxes: &[SandboxView]) -> String {
    let rows: Vec<[String; 5]> = sandboxes
        .iter()
        .map(|v| {
            [
                v.id.clone(),
                v.status.to_string(),
                v.hypervisor
                    .map(|k| format!("{k:?}").to_lowercase())
                    .unwrap_or_else(|| "-".into()),
                v.vmm_pid
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "-".into()),
                v.created.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let header = ["ID", "STATUS", "HYPERVISOR", "PID", "CREATED"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn write_stdout(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::Other(format!("writing to stdout: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmjail_sandbox::Status;

    #[test]
    fn table_aligns_columns_and_marks_missing_values() {
        let mut a = SandboxView::unrecorded("half");
        a.status = Status::Creating;
        let b = SandboxView {
            id: "web-1".into(),
            status: Status::Running,
            hypervisor: Some(vmjail_config::HypervisorKind::Qemu),
            vmm_pid: Some(4242),
            jail_root: None,
            console_log: None,
            netns: None,
            created: Some("2026-11-27T16:00:00Z".into()),
            interfaces: Vec::new(),
        };
        assert_eq!(
            table(&[a, b]),
            "ID     STATUS    HYPERVISOR  PID   CREATED\n\
             half   creating  -           -     -\n\
             web-1  running   qemu        4242  2026-11-27T16:00:00Z\n"
        );
    }
}
