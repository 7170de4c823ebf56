//! The guest console log with the real binary and QEMU: kept in the state
//! dir after `stop` (while `state` stops naming the jail it no longer has)
//! until `delete`, printed by `logs`, followed by `logs --follow` until the
//! sandbox stops.

mod lifecycle_support;

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use lifecycle_support::*;

const MARKER: &str = "VMJAIL-GUEST-READY";
const HOLDING: &str = "vmjail.hold: running until power-off";
const BOOT: Duration = Duration::from_secs(120);

#[test]
fn logs_outlive_stop_until_delete_and_state_names_only_what_exists() {
    if !require_root() {
        return;
    }
    let w = World::new("logs");
    let id = unique_id("logs");
    w.ok(&["create", "--id", &id]);
    let created = w.state(&id);
    let log = w.state_dir.join(&id).join("console.log");
    assert_eq!(created["console_log"], log.to_str().unwrap());
    let jail_root = created["jail_root"].as_str().unwrap().to_owned();
    assert!(Path::new(&jail_root).is_dir());
    // The pump reads the hostile guest's bytes for as long as the VM
    // lives: chrooted to the sandbox's state dir, with no capability.
    let pump = w.stored(&id).unwrap()["console"]["pump"]["pid"]
        .as_i64()
        .unwrap();
    let pump_root = std::fs::metadata(format!("/proc/{pump}/root")).unwrap();
    let dir = std::fs::metadata(w.state_dir.join(&id)).unwrap();
    assert_eq!(
        (pump_root.dev(), pump_root.ino()),
        (dir.dev(), dir.ino()),
        "the pump is not chrooted to the sandbox's dir"
    );
    let status = std::fs::read_to_string(format!("/proc/{pump}/status")).unwrap();
    for (field, want) in [
        ("CapEff:", "0000000000000000"),
        ("CapBnd:", "0000000000000000"),
        ("NoNewPrivs:", "1"),
    ] {
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        assert!(line.ends_with(want), "{line}");
    }
    w.ok(&["start", &id]);
    // The guest powers off by itself after its marker.
    w.wait_status(&id, "stopped", BOOT);
    w.ok(&["stop", &id]);

    let state = w.state(&id);
    assert!(state["jail_root"].is_null(), "{state:#}");
    assert!(!Path::new(&jail_root).exists());
    assert_eq!(state["console_log"], log.to_str().unwrap());
    let printed = w.ok(&["logs", &id]);
    assert!(printed.contains(MARKER), "{printed}");
    assert_eq!(printed.as_bytes(), std::fs::read(&log).unwrap());
    // A path in `state` always exists.
    for key in ["jail_root", "console_log", "netns"] {
        if let Some(path) = state[key].as_str() {
            assert!(Path::new(path).exists(), "{key} = {path} does not exist");
        }
    }

    let recorded = w.stored(&id);
    w.ok(&["delete", &id]);
    assert!(!log.exists());
    assert_eq!(w.vmjail(&["logs", &id]).status.code(), Some(3));
    w.assert_no_leaks(&id, recorded.as_ref());
}

#[test]
fn logs_follow_streams_until_the_sandbox_stops() {
    if !require_root() {
        return;
    }
    let w = World::new("logsf");
    w.hold_guest();
    let id = unique_id("logsf");
    w.ok(&["create", "--id", &id]);
    let mut follower = w.spawn(&["logs", "--follow", &id]);
    w.ok(&["start", &id]);
    w.wait_console(&id, HOLDING, BOOT);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        follower.try_wait().unwrap().is_none(),
        "logs --follow ended while the guest runs"
    );
    // `stop` presses the power button: the guest's last words follow.
    w.ok(&["stop", &id, "--timeout", "30"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = follower.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "logs --follow did not end");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stdout = String::new();
    follower
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let mut stderr = String::new();
    follower
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert!(stdout.contains(MARKER), "{stdout}");
    assert!(stdout.contains("power button pressed"), "{stdout}");
    // Everything the log holds, once, in order.
    let log = std::fs::read_to_string(w.state_dir.join(&id).join("console.log")).unwrap();
    assert_eq!(stdout, log);

    let recorded = w.stored(&id);
    w.ok(&["delete", &id]);
    w.assert_no_leaks(&id, recorded.as_ref());
}

/// A guest that floods its console cannot fill the host: the real console
/// pump keeps two 1 MiB segments, the newest output.
#[test]
fn the_console_pump_keeps_only_the_newest_output() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("console.log"), "").unwrap();
    let mut pump = Command::new(env!("CARGO_BIN_EXE_vmjail"))
        .arg("console-pump")
        .arg(dir.path())
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    // 5 MiB and a bit, each byte telling its position.
    let flood: Vec<u8> = (0..(5 << 20) + 12345u32).map(|i| (i % 251) as u8).collect();
    pump.stdin.take().unwrap().write_all(&flood).unwrap();
    assert!(pump.wait().unwrap().success());
    let older = std::fs::read(dir.path().join("console.log.1")).unwrap();
    let newer = std::fs::read(dir.path().join("console.log")).unwrap();
    assert_eq!(older.len(), 1 << 20);
    assert_eq!(newer.len(), 12345);
    let kept = [older, newer].concat();
    assert_eq!(kept, flood[flood.len() - kept.len()..]);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}
