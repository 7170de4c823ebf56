//! `--debug` shows every lifecycle step of the real QEMU backend, each with
//! how long it took (the span's closing line with `time.busy`).

mod lifecycle_support;

use std::time::Duration;

use lifecycle_support::*;

/// Run `vmjail --debug ARGS`, require success, return stderr.
fn debug(w: &World, args: &[&str]) -> String {
    let mut full = vec!["--debug"];
    full.extend_from_slice(args);
    let out = w.vmjail(&full);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    stderr
}

/// Each step's span closes with its duration: `<parents>:<step>: ... close time.busy=<d>`.
fn assert_steps(stderr: &str, command: &str, steps: &[&str]) {
    for step in steps {
        let line = stderr
            .lines()
            .find(|l| l.contains(&format!(":{step}: ")) && l.contains(" close time.busy="))
            .unwrap_or_else(|| panic!("{command}: no timed {step} step in:\n{stderr}"));
        assert!(line.contains(&format!("{command}{{id=")), "{line}");
        assert!(line.contains(" DEBUG "), "{line}");
    }
}

#[test]
fn debug_logs_every_qemu_step_with_its_duration() {
    if !require_root() {
        return;
    }
    let w = World::new("debug");
    w.hold_guest();
    let id = unique_id("debug");
    let stderr = debug(&w, &["create", "--id", &id]);
    assert_steps(
        &stderr,
        "create",
        &[
            "pin_netns",
            "qemu_create",
            "prepare_jail",
            "place_assets",
            "launch",
            "qmp_ready",
        ],
    );
    assert_steps(&debug(&w, &["start", &id]), "start", &["qemu_start"]);
    assert_steps(&debug(&w, &["pause", &id]), "pause", &["qemu_pause"]);
    assert_steps(&debug(&w, &["resume", &id]), "resume", &["qemu_resume"]);
    // The power button only reaches a guest that finished booting.
    w.wait_console(
        &id,
        "vmjail.hold: running until power-off",
        Duration::from_secs(120),
    );
    let recorded = w.stored(&id);
    assert_steps(
        &debug(&w, &["stop", &id, "--timeout", "30"]),
        "stop",
        &["qemu_stop", "powerdown", "teardown"],
    );
    assert_steps(&debug(&w, &["delete", &id]), "delete", &["remove_netns"]);
    w.assert_no_leaks(&id, recorded.as_ref());

    // Without --debug: nothing on stderr.
    let quiet = w.vmjail(&["list"]);
    assert!(quiet.stderr.is_empty(), "{quiet:?}");
}
