//! `vmjail run --bundle` with the real binary, a real QEMU guest and its
//! real agent: a busybox-static bundle made here runs as a container from
//! its ext4 disk — pid 1, its hostname, a read-only or writable root, its
//! exit code and stderr, a kill by signal, SIGTERM to `vmjail run`
//! reaching it; after each run nothing is left. And `create` SIGKILLed at
//! each new record point is cleaned by `delete --force` and `gc`.

mod bundle_support;
mod lifecycle_support;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bundle_support::bundle;
use lifecycle_support::*;

fn world(tag: &str) -> World {
    let w = World::new(tag);
    w.use_vsock();
    w
}

#[test]
fn a_bundle_runs_as_a_container_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    let w = world("bundle");
    let script = "echo pid=$$ host=$(hostname); \
                  if touch /probe 2>/dev/null; then echo root=rw; else echo root=ro; fi; \
                  echo oops >&2; exit 3";
    for (readonly, root) in [(true, "root=ro"), (false, "root=rw")] {
        let b = bundle(w.dir.path(), script, readonly);
        let id = unique_id("bun");
        let out = w.vmjail(&["run", "--bundle", b.to_str().unwrap(), "--id", &id]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
        assert!(stdout.contains("pid=1 host=boxy"), "{stdout}");
        assert!(stdout.lines().any(|l| l == root), "{root}: {stdout}");
        assert_eq!(stderr, "oops\n", "stderr apart, nothing else on it");
        w.assert_no_leaks(&id, None);
        // The host's bundle is never written: writes stay in the image.
        assert!(!b.join("rootfs/probe").exists());
    }
}

/// `vmjail run --bundle` of `script`, SIGTERMed once the container
/// printed `ready`: the rest of its stdout, its exit status, and how long
/// it took after the signal.
fn run_and_term(w: &World, script: &str) -> (String, std::process::ExitStatus, Duration, String) {
    let b = bundle(w.dir.path(), script, false);
    let id = unique_id("bunt");
    let mut child = w
        .command(&["run", "--bundle", b.to_str().unwrap(), "--id", &id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let sent = Instant::now();
    signal(child.id(), "TERM");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = child.wait().unwrap();
    (rest, status, sent.elapsed(), id)
}

#[test]
fn sigterm_to_run_reaches_the_container() {
    if !require_root() {
        return;
    }
    let w = world("bunterm");
    let script = "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.1; done";
    let (rest, status, _, id) = run_and_term(&w, script);
    assert_eq!(rest, "got-term\n");
    assert_eq!(status.code(), Some(7), "the container's own status");
    w.assert_no_leaks(&id, None);
}

#[test]
fn a_container_ignoring_sigterm_is_killed_after_the_grace() {
    if !require_root() {
        return;
    }
    let w = world("bunkill");
    let script = "trap '' TERM; echo ready; while :; do sleep 0.1; done";
    let (rest, status, took, id) = run_and_term(&w, script);
    assert_eq!(rest, "");
    assert_eq!(status.code(), Some(137), "SIGKILL: 128 + 9");
    assert!(
        took >= vmjail_grace(),
        "killed only after the grace: {took:?}"
    );
    w.assert_no_leaks(&id, None);
}

/// `vmjail_sandbox::agent::SIGNAL_GRACE`, as documented.
fn vmjail_grace() -> Duration {
    Duration::from_secs(10)
}

#[test]
fn a_container_sees_its_cgroup_limits() {
    if !require_root() {
        return;
    }
    let w = world("buncg");
    let b = bundle(
        w.dir.path(),
        "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max; \
         grep -c . /sys/fs/cgroup/cgroup.procs",
        true,
    );
    let path = b.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["linux"]["resources"] = serde_json::json!({
        "memory": {"limit": 67108864},
        "pids": {"limit": 50},
        "cpu": {"quota": 50000, "period": 100000}
    });
    config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"type": "cgroup"}));
    config["mounts"].as_array_mut().unwrap().push(serde_json::json!(
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro"]}
    ));
    std::fs::write(&path, config.to_string()).unwrap();
    let id = unique_id("buncg");
    let out = w.vmjail(&["run", "--bundle", b.to_str().unwrap(), "--id", &id]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    // The cgroup namespace's root is the container's own cgroup: its
    // limits, and only its processes (sh and cat... here: sh and grep).
    assert_eq!(stdout, "67108864\n50\n50000 100000\n2\n", "{out:?}");
    w.assert_no_leaks(&id, None);
}

#[test]
fn bad_bundles_are_refused_before_anything_is_made() {
    if !require_root() {
        return;
    }
    let w = world("bunbad");
    let b = bundle(w.dir.path(), "true", false);
    std::fs::write(b.join("config.json"), "{\"ociVersion\": 1").unwrap();
    let id = unique_id("bunbad");
    let out = w.vmjail(&["run", "--bundle", b.to_str().unwrap(), "--id", &id]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("config.json"));
    let out = w.vmjail(&["run", "--bundle", "/nonexistent/bundle", "--id", &id]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    w.assert_no_leaks(&id, None);
    // Without the agent's vsock, containers are refused by name.
    let plain = World::new("bunnovsock");
    let out = plain.vmjail(&["run", "--bundle", b.to_str().unwrap(), "--id", &id]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("use_vsock"));
}

#[test]
fn a_run_bundle_killed_at_each_new_record_is_cleaned() {
    if !require_root() {
        return;
    }
    let w = world("bunkill9");
    let b = bundle(w.dir.path(), "true", false);
    for (n, step) in [
        "create-container-recorded-0",
        "create-container-staged",
        "create-container-image-0",
        "create-vmm-created",
        "create-container-images-made",
    ]
    .iter()
    .enumerate()
    {
        for (how, cmd) in [("gc", "gc"), ("delete", "delete")] {
            let id = unique_id(&format!("bk{n}{how}"));
            let out = w
                .command(&["run", "--bundle", b.to_str().unwrap(), "--id", &id])
                .env("VMJAIL_TEST_CRASH_AT", step)
                .output()
                .unwrap();
            assert_eq!(
                out.status.signal(),
                Some(9),
                "not killed at {step}: {out:?}"
            );
            let recorded = w.stored(&id);
            let state = recorded.as_ref().expect("recorded");
            assert_eq!(state["containers"][0]["id"], id.as_str(), "{step}");
            if step.starts_with("create-container-image") || step.starts_with("create-vmm") {
                let image = state["containers"][0]["image"].as_str().unwrap();
                assert!(
                    Path::new(image).is_file(),
                    "{step}: image recorded and made"
                );
            }
            match cmd {
                "gc" => {
                    let removed = w.ok(&["gc"]);
                    assert!(removed.contains(&id), "{step}: {removed}");
                }
                _ => {
                    w.ok(&["delete", "--force", &id]);
                }
            }
            w.assert_no_leaks(&id, recorded.as_ref());
        }
    }
}

#[test]
fn a_bundle_runs_on_q35_through_virtio_blk_pci() {
    if !require_root() {
        return;
    }
    let w = world("bunq35");
    let text = std::fs::read_to_string(&w.config).unwrap();
    let q35 = text.replacen("machine_type = \"microvm\"", "machine_type = \"q35\"", 1);
    assert_ne!(q35, text);
    std::fs::write(&w.config, q35).unwrap();
    let b = bundle(w.dir.path(), "echo pid=$$ host=$(hostname)", true);
    let id = unique_id("bunq");
    let out = w.vmjail(&["run", "--bundle", b.to_str().unwrap(), "--id", &id]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"pid=1 host=boxy\n");
    w.assert_no_leaks(&id, None);
}
