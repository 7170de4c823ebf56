//! Crash safety with the real binary: vmjail SIGKILLed at each step of
//! `create` and `start` (its documented `VMJAIL_TEST_CRASH_AT` hook sends it
//! SIGKILL there), or from outside while `run` streams, leaves state from
//! which `gc` or `delete --force` removes everything. Two concurrent
//! `create` of one id: one wins, the other fails clearly, nothing leaks.

mod lifecycle_support;

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use lifecycle_support::*;

/// Steps of `create`, in order.
const CREATE_STEPS: &[&str] = &[
    "create-claimed",
    "create-recorded",
    "create-netns",
    "create-ids",
    "create-console-pump",
    "create-vmm-record-1",
    "create-vmm-record-2",
    "create-vmm-record-10",
    "create-vmm-record-12",
    "create-vmm-pid-recorded",
    "create-vmm-created",
];

/// `vmjail create` killed at `step`: asserts it really died there.
fn crash_create(w: &World, id: &str, step: &str) -> Option<serde_json::Value> {
    let out = w
        .command(&["create", "--id", id])
        .env("VMJAIL_TEST_CRASH_AT", step)
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(9),
        "create did not die at {step}: {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    w.stored(id)
}

#[test]
fn gc_cleans_up_after_a_create_killed_at_each_step() {
    if !require_root() {
        return;
    }
    let w = World::new("crashgc");
    for (n, step) in CREATE_STEPS.iter().enumerate() {
        let id = unique_id(&format!("cg{n}"));
        let recorded = crash_create(&w, &id, step);
        let state = w.state(&id);
        assert_eq!(state["status"], "creating", "{step}: {state:#}");
        let removed = w.ok(&["gc"]);
        assert!(
            removed.lines().any(|l| l == format!("removed {id}")),
            "{step}: gc did not remove {id}: {removed}"
        );
        w.assert_no_leaks(&id, recorded.as_ref());
        // The id is usable again.
        w.ok(&["create", "--id", &id]);
        w.ok(&["delete", "--force", &id]);
        w.assert_no_leaks(&id, None);
    }
}

#[test]
fn delete_force_cleans_up_after_a_create_killed_at_each_step() {
    if !require_root() {
        return;
    }
    let w = World::new("crashdel");
    for (n, step) in CREATE_STEPS.iter().enumerate() {
        let id = unique_id(&format!("cd{n}"));
        let recorded = crash_create(&w, &id, step);
        // Not a valid transition for a half-made sandbox...
        assert_eq!(w.vmjail(&["start", &id]).status.code(), Some(4), "{step}");
        assert_eq!(w.vmjail(&["delete", &id]).status.code(), Some(4), "{step}");
        // ...but --force cleans it.
        w.ok(&["delete", "--force", &id]);
        w.assert_no_leaks(&id, recorded.as_ref());
    }
}

#[test]
fn a_start_killed_at_each_step_is_cleaned_by_delete_force() {
    if !require_root() {
        return;
    }
    let w = World::new("crashstart");
    for (n, step) in ["start-locked", "start-vmm-started"].iter().enumerate() {
        let id = unique_id(&format!("cs{n}"));
        w.ok(&["create", "--id", &id]);
        let out = w
            .command(&["start", &id])
            .env("VMJAIL_TEST_CRASH_AT", step)
            .output()
            .unwrap();
        assert_eq!(out.status.signal(), Some(9), "start did not die at {step}");
        // The record still says created; the VMM still runs.
        assert_eq!(w.state(&id)["status"], "created", "{step}");
        let recorded = w.stored(&id);
        w.ok(&["delete", "--force", &id]);
        w.assert_no_leaks(&id, recorded.as_ref());
    }
}

#[test]
fn a_run_killed_from_outside_is_cleaned_by_delete_force() {
    if !require_root() {
        return;
    }
    let w = World::new("crashrun");
    let id = unique_id("crashrun");
    let child = w.spawn(&["run", "--id", &id, "--timeout", "240"]);
    w.wait_status(&id, "running", Duration::from_secs(120));
    signal(child.id(), "KILL");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.signal(), Some(9));
    let recorded = w.stored(&id);
    assert!(recorded.is_some(), "state vanished with its process");
    w.ok(&["delete", "--force", &id]);
    w.assert_no_leaks(&id, recorded.as_ref());
}

#[test]
fn concurrent_creates_of_one_id_have_one_winner_and_leak_nothing() {
    if !require_root() {
        return;
    }
    let w = World::new("race");
    let id = unique_id("race");
    let children: Vec<_> = (0..4).map(|_| w.spawn(&["create", "--id", &id])).collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let winners = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(winners, 1, "{outs:?}");
    for out in outs.iter().filter(|o| !o.status.success()) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{stderr}");
        assert!(stderr.contains("already exists"), "{stderr}");
    }
    assert_eq!(w.state(&id)["status"], "created");
    let recorded = w.stored(&id);
    w.ok(&["delete", "--force", &id]);
    w.assert_no_leaks(&id, recorded.as_ref());
}
