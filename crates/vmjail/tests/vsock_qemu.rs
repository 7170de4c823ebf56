//! QEMU's vsock with the real binary and a real guest: the hybrid vsock is
//! served by vhost-device-vsock, jailed like the VMM (the sandbox's uid,
//! its own chroot, the sandbox's netns and cgroup, no capability,
//! no_new_privs), recorded before it is created and gone after stop,
//! delete, gc — also after a vmjail killed at each step that launches it.
//! The host reaches a guest port through the hybrid socket.

mod lifecycle_support;

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lifecycle_support::*;
use vmjail_sandbox::agent::AgentClient;
use vmjail_sandbox::state::SandboxState;
use vmjail_sandbox::vsock::{self, VsockError};
use vmjail_sandbox::{SandboxId, Sandboxes, SelectFactory};

const BOOT: Duration = Duration::from_secs(120);
const MARKER: &str = "VMJAIL-GUEST-READY";

/// A world whose sandboxes get a vsock, and a cgroup (so the helper's can
/// be checked).
fn vsock_world(tag: &str) -> World {
    let w = World::with_jail_lines(tag, "cgroups = [\"pids.max=512\"]");
    w.use_vsock();
    w
}

/// The sandbox's state as stored, typed.
fn sandbox_state(w: &World, id: &str) -> SandboxState {
    let text = std::fs::read_to_string(w.state_dir.join(id).join("state.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn status_field(pid: i64, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line[field.len()..].trim().to_owned()
}

fn ns_inode(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().ino()
}

/// The cgroup paths (one per hierarchy line) of `pid`.
fn cgroup_lines(pid: i64) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .map(|l| l.splitn(3, ':').nth(2).unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn the_vsock_helper_is_jailed_and_the_host_reaches_the_guest() {
    if !require_root() {
        return;
    }
    let w = vsock_world("vsock");
    let id = unique_id("vsock");
    w.ok(&["create", "--id", &id]);
    let state = sandbox_state(&w, &id);
    let vmm = state.vmm.as_ref().unwrap();
    let vsock_record = vmm.vsock.as_ref().expect("a vsock record");
    assert_eq!(vsock_record.guest_cid, 3);
    assert_eq!(vmm.helpers.len(), 1, "{:?}", vmm.helpers);
    let helper = &vmm.helpers[0];
    assert_eq!(helper.name, "vhost-device-vsock");
    let (pid, _) = helper.jail.vmm_process().expect("the helper's pid");
    let pid = i64::from(pid);
    let qemu = i64::from(vmm.jail.vmm_pid.unwrap());

    // Jailed like the VMM: the sandbox's uid/gid...
    let ids = state.jail_ids.unwrap();
    assert_eq!(uid_of(pid), ids.uid);
    assert_eq!(uid_of(qemu), ids.uid);
    let gid: u32 = status_field(pid, "Gid:")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(gid, ids.gid);
    // ...a root of its own under the chroot base...
    let helper_root = helper.jail.root();
    assert!(helper_root.starts_with(&w.chroot_base), "{helper_root:?}");
    assert_ne!(helper.jail.jail_dir, vmm.jail.jail_dir);
    let seen = std::fs::metadata(format!("/proc/{pid}/root")).unwrap();
    let root = std::fs::metadata(&helper_root).unwrap();
    assert_eq!((seen.dev(), seen.ino()), (root.dev(), root.ino()));
    let in_root = PathBuf::from(format!("/proc/{pid}/root"));
    for host_only in ["etc/shadow", "root", "home", "vmjail/vmlinux"] {
        assert!(!in_root.join(host_only).exists(), "{host_only} is visible");
    }
    // ...the sandbox's netns...
    let netns = Path::new("/run/netns").join(format!("vmjail-{id}"));
    assert_eq!(
        ns_inode(Path::new(&format!("/proc/{pid}/ns/net"))),
        ns_inode(&netns)
    );
    // ...the VMM's cgroup (it counts against the sandbox's limits)...
    let leaf = format!("/{}/{id}", w.parent_cgroup);
    let helper_cgroups = cgroup_lines(pid);
    assert!(
        helper_cgroups.iter().any(|c| c == &leaf),
        "{helper_cgroups:?}"
    );
    let qemu_cgroups = cgroup_lines(qemu);
    assert_eq!(helper_cgroups, qemu_cgroups);
    // ...no capability, no_new_privs.
    for (field, want) in [
        ("CapEff:", "0000000000000000"),
        ("CapPrm:", "0000000000000000"),
        ("CapBnd:", "0000000000000000"),
        ("CapAmb:", "0000000000000000"),
        ("NoNewPrivs:", "1"),
    ] {
        assert_eq!(status_field(pid, field), want, "{field}");
    }

    // No guest runs yet (created, not started): the connect ends with a
    // clear error within its bound, whatever the helper does meanwhile.
    let bound = Duration::from_secs(1);
    let started = Instant::now();
    let err = vsock::connect(&state, vsock::AGENT_PORT, bound).unwrap_err();
    assert!(
        matches!(err, VsockError::Timeout { .. } | VsockError::Refused { .. }),
        "{err}"
    );
    assert!(started.elapsed() < bound + Duration::from_secs(2), "{err}");

    w.ok(&["start", &id]);
    w.wait_console(&id, MARKER, BOOT);
    let state = sandbox_state(&w, &id);
    // Nothing listens on this port: the guest refuses, at once.
    let started = Instant::now();
    let err = vsock::connect(&state, 4242, Duration::from_secs(5)).unwrap_err();
    assert!(matches!(err, VsockError::Refused { port: 4242 }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3), "{err}");
    // The real agent answers on its port (its Version call is checked as
    // the client connects), also through the lifecycle's own entry point.
    let agent = AgentClient::new(connect_agent(&state)).unwrap();
    let info = agent.guest_info().unwrap();
    assert!(info.kernel_release.starts_with("6."), "{info:?}");
    assert_eq!(info.cpus, 1, "{info:?}");
    drop(agent);
    let sandboxes = Sandboxes::new(
        &state.config.jail,
        SelectFactory {
            vmjail_exe: PathBuf::from(env!("CARGO_BIN_EXE_vmjail")),
        },
    );
    let sid = SandboxId::parse(&id).unwrap();
    let stream = sandboxes
        .connect_vsock(&sid, vsock::AGENT_PORT, vsock::CONNECT_TIMEOUT)
        .unwrap();
    AgentClient::new(stream).unwrap();

    let recorded = w.stored(&id);
    w.ok(&["stop", &id]);
    assert!(!helper_root.exists(), "the helper's jail outlived stop");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "the helper outlived stop: {stat}"
    );
    w.ok(&["delete", &id]);
    w.assert_no_leaks(&id, recorded.as_ref());
}

/// Connect to the agent's port, retrying a refusal briefly: the guest's
/// init starts the agent in the background.
fn connect_agent(state: &SandboxState) -> std::os::unix::net::UnixStream {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match vsock::connect(state, vsock::AGENT_PORT, vsock::CONNECT_TIMEOUT) {
            Ok(stream) => return stream,
            Err(VsockError::Refused { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => panic!("connecting to the agent: {e}"),
        }
    }
}

/// `vmjail create` killed at the n-th record of its VMM: each record from
/// the one that first names the helper up to QEMU's launch is a new step;
/// whatever it left, `gc` (even n) or `delete --force` (odd n) removes.
#[test]
fn a_create_killed_at_each_vsock_helper_step_is_cleaned() {
    if !require_root() {
        return;
    }
    let w = vsock_world("vsockcrash");
    let mut helper_steps = 0;
    for n in 1.. {
        let id = unique_id(&format!("vc{n}"));
        let step = format!("create-vmm-record-{n}");
        let out = w
            .command(&["create", "--id", &id])
            .env("VMJAIL_TEST_CRASH_AT", &step)
            .output()
            .unwrap();
        if out.status.success() {
            // Past the last record: create ran to the end.
            w.ok(&["delete", "--force", &id]);
            break;
        }
        assert_eq!(
            out.status.signal(),
            Some(9),
            "create did not die at {step}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let recorded = w.stored(&id).unwrap();
        let vmm = &recorded["vmm"];
        let names_helper = vmm["helpers"].as_array().is_some_and(|h| !h.is_empty());
        let qemu_launched = vmm["jail"]["vmm_pid"].as_i64().is_some();
        if names_helper {
            helper_steps += 1;
        }
        if n % 2 == 0 {
            let removed = w.ok(&["gc"]);
            assert!(
                removed.lines().any(|l| l == format!("removed {id}")),
                "{step}: gc did not remove {id}: {removed}"
            );
        } else {
            w.ok(&["delete", "--force", &id]);
        }
        w.assert_no_leaks(&id, Some(&recorded));
        if qemu_launched {
            break;
        }
    }
    // The helper's own steps: recorded, jail dir, root mount, libraries,
    // cgroups, pid, the bind into QEMU's jail.
    assert!(helper_steps >= 5, "only {helper_steps} helper steps seen");
}
