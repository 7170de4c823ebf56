//! Each configured binary: present, executable, and what `--version` says.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a `--version` may take.
pub const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Run `path --version` and return the first non-empty output line.
pub fn version(path: &Path, timeout: Duration) -> Result<String, String> {
    let mut child = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < timeout => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Ok(None) => {
                // Best effort: the child may exit between the check and the kill.
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} --version did not finish in {}s",
                    path.display(),
                    timeout.as_secs()
                ));
            }
            Err(e) => return Err(format!("waiting for {} --version: {e}", path.display())),
        }
    };
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        // A failed read leaves `out` empty; the stderr fallback covers it.
        let _ = stdout.read_to_string(&mut out);
    }
    if out.trim().is_empty() {
        if let Some(mut stderr) = child.stderr.take() {
            let _ = stderr.read_to_string(&mut out);
        }
    }
    let first = out
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string();
    if !status.success() {
        return Err(format!(
            "{} --version failed ({status}): {first}",
            path.display()
        ));
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn version_table() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ok = script(d, "ok", "echo; echo 'Tool v1.2'; echo more");
        let err_only = script(d, "stderr", "echo 'Other 3' >&2");
        let fails = script(d, "fails", "echo nope; exit 3");
        let slow = script(d, "slow", "sleep 5");
        assert_eq!(version(&ok, VERSION_TIMEOUT), Ok("Tool v1.2".to_string()));
        assert_eq!(
            version(&err_only, VERSION_TIMEOUT),
            Ok("Other 3".to_string())
        );
        assert!(version(&fails, VERSION_TIMEOUT)
            .unwrap_err()
            .contains("failed"));
        assert!(version(&slow, Duration::from_millis(100))
            .unwrap_err()
            .contains("did not finish"));
        assert!(version(&d.join("missing"), VERSION_TIMEOUT)
            .unwrap_err()
            .contains("cannot run"));
    }
}
