//! Bad input gets a clear error, a documented exit code, and changes
//! nothing: unknown ids, invalid ids, wrong transitions, a missing kernel.

mod lifecycle_support;

use std::path::Path;

use lifecycle_support::*;

fn stderr_of(w: &World, args: &[&str], code: i32) -> String {
    let out = w.vmjail(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "vmjail {args:?}: {stderr}");
    assert!(stderr.starts_with("vmjail: error: "), "{stderr}");
    assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
    stderr
}

#[test]
fn unknown_and_invalid_ids() {
    if !require_root() {
        return;
    }
    let w = World::new("unknown");
    for args in [
        &["state", "nosuch"][..],
        &["start", "nosuch"],
        &["pause", "nosuch"],
        &["resume", "nosuch"],
        &["stop", "nosuch"],
        &["delete", "nosuch"],
        &["delete", "--force", "nosuch"],
    ] {
        let err = stderr_of(&w, args, 3);
        assert!(err.contains("no sandbox \"nosuch\""), "{err}");
    }
    for bad in [
        "../x",
        "a_b",
        "",
        &"x".repeat(65),
        "-",
        "--",
        "--uid",
        "--allow-root",
    ] {
        let err = stderr_of(&w, &["create", &format!("--id={bad}")], 2);
        assert!(err.contains("[A-Za-z0-9][A-Za-z0-9-]{0,63}"), "{err}");
        stderr_of(&w, &["state", "--", bad], 2);
    }
    assert_eq!(w.ok(&["list", "--json"]).trim(), "[]");
    let left: Vec<_> = std::fs::read_dir(&w.state_dir)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn wrong_transitions_fail_and_change_nothing() {
    if !require_root() {
        return;
    }
    let w = World::new("wrong");
    // Held: a guest that powers off by itself could be "stopped" before the
    // checks of a running sandbox below.
    w.hold_guest();
    let id = unique_id("wrong");
    w.ok(&["create", "--id", &id]);
    let created = w.state(&id);
    let err = stderr_of(&w, &["pause", &id], 4);
    assert!(err.contains("it is created"), "{err}");
    stderr_of(&w, &["resume", &id], 4);
    stderr_of(&w, &["delete", &id], 4);
    let err = stderr_of(&w, &["create", "--id", &id], 5);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(w.state(&id), created);

    w.ok(&["start", &id]);
    let running = w.state(&id);
    let err = stderr_of(&w, &["start", &id], 4);
    assert!(err.contains("it is running"), "{err}");
    let err = stderr_of(&w, &["delete", &id], 4);
    assert!(err.contains("--force"), "{err}");
    stderr_of(&w, &["resume", &id], 4);
    assert_eq!(w.state(&id), running);
    let pid = running["vmm_pid"].as_i64().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());

    let recorded = w.stored(&id);
    // A guest still booting ignores the power button: do not wait long.
    w.ok(&["stop", "--timeout", "2", &id]);
    stderr_of(&w, &["start", &id], 4);
    w.ok(&["delete", &id]);
    w.assert_no_leaks(&id, recorded.as_ref());
}

/// A cgroup value the kernel refuses is reported once (not again as the
/// VMM's output), and creates nothing.
#[test]
fn a_refused_cgroup_value_is_reported_once() {
    if !require_root() {
        return;
    }
    let w = World::with_jail_lines(
        "cgbad",
        "cgroup_version = \"1\"\ncgroups = [\"memory.limit_in_bytes=abc\"]",
    );
    let id = unique_id("cgbad");
    let err = stderr_of(&w, &["create", "--id", &id], 1);
    let cause = "memory.limit_in_bytes: Invalid argument";
    assert_eq!(err.matches(cause).count(), 1, "{err}");
    assert!(!err.contains("output:"), "{err}");
    w.assert_no_leaks(&id, None);
}

/// QEMU killed by the OOM killer of a too-small memory cgroup says nothing
/// itself: the error names the likely cause, the cgroup and its limit.
#[test]
fn qemu_killed_by_its_memory_cgroup_is_explained() {
    if !require_root() {
        return;
    }
    let w = World::with_jail_lines(
        "cgoom",
        "cgroup_version = \"1\"\ncgroups = [\"memory.limit_in_bytes=8M\"]",
    );
    let id = unique_id("cgoom");
    let err = stderr_of(&w, &["create", "--id", &id], 1);
    let cgroup = format!("/sys/fs/cgroup/memory/{}/{id}", w.parent_cgroup);
    // Killed by the OOM killer (QEMU, or its jailer once in the cgroup), or
    // (on a loaded host) still reclaiming its own pages at the limit when
    // the handshake timed out: named either way.
    assert!(
        err.contains(&format!(
            ", likely out of memory in its cgroup {cgroup}, limit 8 MiB"
        )),
        "{err}"
    );
    assert!(
        err.contains("raise the memory limit in [jail] cgroups"),
        "{err}"
    );
    w.assert_no_leaks(&id, None);
}

#[test]
fn a_config_whose_kernel_is_missing_creates_nothing() {
    if !require_root() {
        return;
    }
    let missing = Path::new("/nonexistent/vmjail-lt/vmlinux");
    let w = World::with_kernel("nokernel", missing);
    let id = unique_id("nokernel");
    for args in [&["create", "--id", &id][..], &["run", "--id", &id]] {
        let err = stderr_of(&w, args, 1);
        assert!(err.contains(missing.to_str().unwrap()), "{err}");
    }
    assert!(!w.state_dir.join(&id).exists());
    w.assert_no_leaks(&id, None);
    // Commands on existing sandboxes need only `[jail]`: a config whose
    // assets are gone still lists, and a delete says "no such sandbox"
    // rather than failing on the kernel.
    w.ok(&["list"]);
    let err = stderr_of(&w, &["delete", "--force", &id], 3);
    assert!(err.contains("no sandbox"), "{err}");
}

#[test]
fn worlds_alive_at_once_never_share_a_jail_uid() {
    // The same tag in the same process seeds the same first slot.
    let a = World::new("uidblock");
    let b = World::new("uidblock");
    let (a, b) = (a.jail_uid, b.jail_uid);
    assert!(
        a.abs_diff(b) >= lifecycle_support::ID_RANGE,
        "blocks {a} and {b} overlap"
    );
}
