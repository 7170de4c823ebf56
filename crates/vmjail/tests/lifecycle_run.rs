//! `vmjail run` boots the real guest (QEMU in the built-in jail) and always
//! cleans up: on guest exit, at `--timeout`, and on SIGTERM.

mod lifecycle_support;

use std::time::Duration;

use lifecycle_support::*;

const MARKER: &str = "VMJAIL-GUEST-READY";

#[test]
fn run_boots_the_real_guest_and_streams_its_marker() {
    if !require_root() {
        return;
    }
    let w = World::new("run");
    let id = unique_id("run");
    let stdout = w.ok(&["run", "--id", &id, "--timeout", "240"]);
    assert!(stdout.contains(MARKER), "no guest marker in:\n{stdout}");
    w.assert_no_leaks(&id, None);
}

#[test]
fn run_without_an_id_generates_one_and_leaves_an_empty_state_dir() {
    if !require_root() {
        return;
    }
    let w = World::new("runnoid");
    let out = w.vmjail(&["run", "--timeout", "240"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert!(stdout.contains(MARKER), "no guest marker in:\n{stdout}");
    // The generated id is announced on stderr (stdout is the console).
    let id = stderr
        .lines()
        .find_map(|l| l.strip_prefix("vmjail: run: sandbox id "))
        .unwrap_or_else(|| panic!("no generated id on stderr:\n{stderr}"));
    assert!(id.starts_with("run-"), "{id}");
    assert!(!stdout.contains(id), "the id went to stdout");
    let left: Vec<_> = std::fs::read_dir(&w.state_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "state dir not empty: {left:?}");
    assert!(mounts_under(w.dir.path()).is_empty());
    assert!(processes_mentioning(&[w.dir.path().to_str().unwrap()]).is_empty());
}

#[test]
fn run_stops_and_deletes_at_its_timeout() {
    if !require_root() {
        return;
    }
    let w = World::new("runtmo");
    let id = unique_id("runtmo");
    let out = w.vmjail(&["run", "--id", &id, "--timeout", "0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(124), "stderr: {stderr}");
    assert!(stderr.contains("still runs after 0s"), "{stderr}");
    w.assert_no_leaks(&id, None);
}

#[test]
fn sigterm_stops_and_deletes_a_running_sandbox() {
    if !require_root() {
        return;
    }
    let w = World::new("runterm");
    let id = unique_id("runterm");
    let child = w.spawn(&["run", "--id", &id, "--timeout", "240"]);
    w.wait_status(&id, "running", Duration::from_secs(120));
    let recorded = w.stored(&id);
    signal(child.id(), "TERM");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "stderr: {stderr}");
    assert!(stderr.contains("SIGTERM received"), "{stderr}");
    w.assert_no_leaks(&id, recorded.as_ref());
}

/// `run` is its VMM's reaper: the VMM, orphaned when the jailer leaves it
/// in its new pid namespace, has `run` as its parent (not pid 1), and no
/// zombie of it is left once `run` returns.
#[test]
fn run_adopts_and_reaps_its_vmm() {
    if !require_root() {
        return;
    }
    let w = World::new("reap");
    w.hold_guest();
    let id = unique_id("reap");
    let child = w.spawn(&["run", "--id", &id, "--timeout", "240"]);
    w.wait_console(
        &id,
        "vmjail.hold: running until power-off",
        Duration::from_secs(120),
    );
    let vmm = w.state(&id)["vmm_pid"].as_i64().unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{vmm}/stat")).unwrap();
    let ppid: u32 = stat
        .rsplit(')')
        .next()
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .unwrap();
    assert_eq!(ppid, child.id(), "the VMM's parent is not `run`: {stat}");
    let recorded = w.stored(&id);
    signal(child.id(), "TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(143),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Reaped: not even a zombie is left (its pid is not reused this soon).
    assert!(
        !std::path::Path::new(&format!("/proc/{vmm}")).exists(),
        "VMM {vmm} left: {}",
        std::fs::read_to_string(format!("/proc/{vmm}/stat")).unwrap_or_default()
    );
    w.assert_no_leaks(&id, recorded.as_ref());
}

/// Review finding 11: `vmjail run … 2>&1 | head -c 100` closes stdout and
/// stderr under `run`; it used to panic (exit 101) and leave the sandbox
/// running. Writes to a closed pipe are dropped; the guest still runs to
/// its end and everything is cleaned up.
#[test]
fn closed_stdout_and_stderr_do_not_stop_cleanup() {
    if !require_root() {
        return;
    }
    let w = World::new("runpipe");
    let id = unique_id("runpipe");
    let mut child = w.spawn(&["run", "--id", &id, "--timeout", "240"]);
    // Close both read ends at once: every write of `run` meets EPIPE.
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    w.assert_no_leaks(&id, None);
}
