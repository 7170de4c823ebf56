//! The full cycle create → start → state → pause → resume → stop → delete
//! with the real `vmjail` binary and QEMU, checking `state` at each step and
//! that the VMM is jailed: jail uid, sandbox netns, only the chroot visible.

mod lifecycle_support;

use std::path::Path;

use lifecycle_support::*;
use serde_json::Value;

fn assert_status(w: &World, id: &str, status: &str) -> Value {
    let state = w.state(id);
    assert_eq!(state["status"], status, "{state:#}");
    state
}

#[test]
fn full_cycle_with_state_at_each_step_and_a_jailed_vmm() {
    if !require_root() {
        return;
    }
    let w = World::new("cycle");
    let id = unique_id("cycle");
    assert_eq!(w.ok(&["create", "--id", &id]), "");
    let state = assert_status(&w, &id, "created");
    assert_eq!(state["id"], id.as_str());
    assert_eq!(state["hypervisor"], "qemu");
    let created = state["created"].as_str().unwrap();
    assert!(created.len() == 20 && created.ends_with('Z'), "{created}");
    let pid = state["vmm_pid"].as_i64().expect("a VMM pid");
    let jail_root = Path::new(state["jail_root"].as_str().unwrap()).to_owned();
    assert!(
        jail_root.starts_with(&w.chroot_base),
        "{}",
        jail_root.display()
    );
    assert!(state["console_log"].as_str().is_some(), "{state:#}");
    let netns = Path::new("/run/netns").join(format!("vmjail-{id}"));
    assert_eq!(state["netns"], netns.to_str().unwrap());

    // The VMM: jail uid, the sandbox's own netns, only the chroot visible.
    // A uid/gid pair of its own from the configured range, recorded.
    let uid = uid_of(pid);
    assert!((w.jail_uid..w.jail_uid + ID_RANGE).contains(&uid), "{uid}");
    let stored = w.stored(&id).unwrap();
    assert_eq!(stored["jail_ids"]["uid"], uid);
    assert_eq!(stored["config"]["jail"]["uid"], uid);
    let vmm_ns = ns_inode(Path::new(&format!("/proc/{pid}/ns/net")));
    assert_eq!(vmm_ns, ns_inode(&netns), "VMM not in the sandbox netns");
    assert_ne!(vmm_ns, ns_inode(Path::new("/proc/self/ns/net")));
    let root = Path::new("/proc").join(pid.to_string()).join("root");
    for host_only in [
        "etc/shadow",
        "root",
        "home",
        &w.dir.path().display().to_string()[1..],
    ] {
        assert!(
            !root.join(host_only).exists(),
            "the VMM sees host path /{host_only}"
        );
    }
    let visible: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let host: Vec<_> = std::fs::read_dir(&jail_root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let (mut visible, mut host) = (visible, host);
    visible.sort();
    host.sort();
    assert_eq!(visible, host, "the VMM's / is not the jail root");

    w.ok(&["start", &id]);
    assert_status(&w, &id, "running");
    w.ok(&["pause", &id]);
    assert_status(&w, &id, "paused");
    w.ok(&["resume", &id]);
    assert_status(&w, &id, "running");
    let list: Value = serde_json::from_str(&w.ok(&["list", "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], id.as_str());
    let table = w.ok(&["list"]);
    assert!(table.starts_with("ID "), "{table}");
    assert!(table.contains(&id) && table.contains("running"), "{table}");
    let recorded = w.stored(&id);

    w.ok(&["stop", &id, "--timeout", "20"]);
    let state = assert_status(&w, &id, "stopped");
    assert!(state["vmm_pid"].is_null());
    w.ok(&["delete", &id]);
    let out = w.vmjail(&["state", &id]);
    assert_eq!(out.status.code(), Some(3));
    w.assert_no_leaks(&id, recorded.as_ref());
}

#[test]
fn a_given_netns_is_used_and_left_in_place() {
    if !require_root() {
        return;
    }
    let w = World::new("ownns");
    let id = unique_id("ownns");
    let name = format!("vmjail-lt-given-{}", std::process::id());
    let ns = Path::new("/run/netns").join(&name);
    let ok = std::process::Command::new("ip")
        .args(["netns", "add", &name])
        .status()
        .unwrap();
    assert!(ok.success());
    w.ok(&["create", "--id", &id, "--netns", ns.to_str().unwrap()]);
    let state = w.state(&id);
    // Pinned at create: later commands do not depend on the given path.
    let pin = Path::new("/run/netns").join(format!("vmjail-{id}"));
    assert_eq!(state["netns"], pin.to_str().unwrap());
    assert_eq!(ns_inode(&pin), ns_inode(&ns));
    let pid = state["vmm_pid"].as_i64().unwrap();
    assert_eq!(
        ns_inode(Path::new(&format!("/proc/{pid}/ns/net"))),
        ns_inode(&ns)
    );
    let recorded = w.stored(&id);
    w.ok(&["delete", "--force", &id]);
    w.assert_no_leaks(&id, recorded.as_ref());
    assert!(ns.exists(), "vmjail removed a netns it did not create");
    std::process::Command::new("ip")
        .args(["netns", "delete", &name])
        .status()
        .unwrap();
}

/// Review finding 1: every sandbox's VMM runs as a uid/gid pair of its own,
/// claimed host-wide until delete.
#[test]
fn sandboxes_get_distinct_uids_released_on_delete() {
    if !require_root() {
        return;
    }
    let w = World::new("uids");
    let ids = [unique_id("uids-a"), unique_id("uids-b")];
    let mut seen = Vec::new();
    for id in &ids {
        w.ok(&["create", "--id", id]);
        let pid = w.state(id)["vmm_pid"].as_i64().unwrap();
        let claim = format!("/run/vmjail-ids/{}", uid_of(pid));
        assert!(
            std::fs::read_to_string(&claim)
                .unwrap()
                .contains(id.as_str()),
            "{claim}"
        );
        seen.push((uid_of(pid), claim));
    }
    assert_ne!(seen[0].0, seen[1].0, "two sandboxes share a uid");
    let recorded: Vec<_> = ids.iter().map(|id| w.stored(id)).collect();
    for (id, (_, claim)) in ids.iter().zip(&seen) {
        w.ok(&["delete", "--force", id]);
        assert!(!Path::new(claim).exists(), "{claim} not released");
    }
    for (id, recorded) in ids.iter().zip(&recorded) {
        w.assert_no_leaks(id, recorded.as_ref());
    }
}

/// `env` shows exactly the kernel command line the jailed QEMU gets.
#[test]
fn env_shows_the_kernel_command_line_qemu_runs_with() {
    if !require_root() {
        return;
    }
    let w = World::new("envcmd");
    let id = unique_id("envcmd");
    w.ok(&["create", "--id", &id]);
    let pid = w.state(&id)["vmm_pid"].as_i64().unwrap();
    let argv: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap()
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let recorded = w.stored(&id);
    w.ok(&["delete", "--force", &id]);
    let append = argv
        .iter()
        .position(|a| a == "-append")
        .map(|i| argv[i + 1].clone())
        .unwrap_or_else(|| panic!("no -append in {argv:?}"));
    let env: Value = serde_json::from_str(&w.ok(&["env", "--json"])).unwrap();
    assert_eq!(env["Kernel"]["Parameters"], append.as_str());
    assert!(append.starts_with("console=ttyS0 "), "{append}");
    w.assert_no_leaks(&id, recorded.as_ref());
}

/// `stop` on a stopped sandbox exits 0 and changes nothing, however it
/// stopped: by `stop`, or by its guest powering off by itself (whose jail
/// that first `stop` tears down).
#[test]
fn stop_on_a_stopped_sandbox_succeeds_however_it_stopped() {
    if !require_root() {
        return;
    }
    let w = World::new("stopstop");

    let by_stop = unique_id("bystop");
    w.ok(&["create", "--id", &by_stop]);
    w.ok(&["stop", &by_stop]);
    let stopped = w.stored(&by_stop);
    let out = w.vmjail(&["stop", &by_stop]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    assert_eq!(
        w.stored(&by_stop),
        stopped,
        "a second stop changed the state"
    );
    w.ok(&["delete", &by_stop]);
    w.assert_no_leaks(&by_stop, stopped.as_ref());

    // The real guest's init powers off right after its marker.
    let by_guest = unique_id("byguest");
    w.ok(&["create", "--id", &by_guest]);
    w.ok(&["start", &by_guest]);
    w.wait_status(&by_guest, "stopped", std::time::Duration::from_secs(120));
    let recorded = w.stored(&by_guest);
    assert_eq!(recorded.as_ref().unwrap()["phase"], "running");
    for _ in 0..2 {
        let out = w.vmjail(&["stop", &by_guest]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert_eq!(w.stored(&by_guest).unwrap()["phase"], "stopped");
    }
    assert_status(&w, &by_guest, "stopped");
    w.ok(&["delete", &by_guest]);
    w.assert_no_leaks(&by_guest, recorded.as_ref());
}
