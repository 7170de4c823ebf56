//! `vmjail exec` with the real binary, a real QEMU guest and its real
//! agent, reached over the VM's vsock: exit codes and signals, stdout and
//! stderr apart, 10 MiB through stdin and back, env/cwd/user, 10 execs at
//! once, and the VM killed under a running exec (a clear error, nothing
//! leaked).

mod lifecycle_support;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use lifecycle_support::*;

const BOOT: Duration = Duration::from_secs(120);
const MARKER: &str = "VMJAIL-GUEST-READY";

/// A running sandbox with a vsock and its agent.
fn running(w: &World, tag: &str) -> String {
    w.use_vsock();
    let id = unique_id(tag);
    w.ok(&["create", "--id", &id]);
    w.ok(&["start", &id]);
    w.wait_console(&id, MARKER, BOOT);
    id
}

/// `vmjail exec ID ARGS...` to completion.
fn exec(w: &World, id: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["exec", id];
    all.extend_from_slice(args);
    w.vmjail(&all)
}

fn hash(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

#[test]
fn exec_runs_processes_in_the_guest() {
    if !require_root() {
        return;
    }
    let w = World::new("exec");
    w.use_vsock();
    let id = unique_id("exec");
    w.ok(&["create", "--id", &id]);
    w.ok(&["start", &id]);
    // Right after start the guest is still booting: exec waits for its
    // agent, as a user typing the two commands expects.
    let out = exec(&w, &id, &["--", "true"]);
    assert!(out.status.success(), "{out:?}");
    for (args, code) in [
        (&["busybox", "false"][..], 1),
        (&["sh", "-c", "exit 255"][..], 255),
        (&["sh", "-c", "busybox kill -9 $$"][..], 128 + 9),
        (&["sh", "-c", "busybox kill -15 $$"][..], 128 + 15),
    ] {
        let mut all = vec!["--"];
        all.extend_from_slice(args);
        let out = exec(&w, &id, &all);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {out:?}");
    }

    let out = exec(&w, &id, &["--", "sh", "-c", "echo out; echo err >&2"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");

    let out = exec(
        &w,
        &id,
        &[
            "-e",
            "GREETING=hello there",
            "--cwd",
            "/proc",
            "--user",
            "1000:1001",
            "--",
            "sh",
            "-c",
            "echo \"$GREETING\" $(busybox pwd) $(busybox id -u):$(busybox id -g)",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello there /proc 1000:1001\n"
    );
    // -t: the process runs on a pty (stderr joins stdout there).
    let out = exec(
        &w,
        &id,
        &["-t", "--", "sh", "-c", "busybox tty; echo e >&2"],
    );
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("/dev/pts/"), "{text:?}");
    assert!(text.contains('e'), "{text:?}");
    // A bad argument is a usage error, before anything reaches the guest.
    assert_eq!(
        exec(&w, &id, &["--user", "root", "--", "true"])
            .status
            .code(),
        Some(2)
    );

    // 10 MiB through stdin and back.
    let data: Vec<u8> = (0..10u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut child = w
        .command(&["exec", &id, "-i", "--", "busybox", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = {
        let data = data.clone();
        std::thread::spawn(move || stdin.write_all(&data))
    };
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), data.len());
    assert_eq!(hash(&out.stdout), hash(&data));

    // 10 at once, each with its own output.
    let children: Vec<_> = (0..10)
        .map(|n| {
            w.spawn(&[
                "exec",
                &id,
                "--",
                "sh",
                "-c",
                &format!("busybox sleep 0.2; echo {n}"),
            ])
        })
        .collect();
    for (n, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "exec {n}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{n}\n"));
    }

    stop_through_agent_and_delete(&w, &id);
}

/// Stops `id` and checks it was stopped through its agent (which syncs
/// and powers the VM off), not only the ACPI button, which the guest may
/// not listen to yet; then deletes it and checks nothing is left.
fn stop_through_agent_and_delete(w: &World, id: &str) {
    let recorded = w.stored(id);
    w.ok(&["stop", id]);
    w.wait_console(
        id,
        "shutdown requested: syncing and powering off",
        Duration::from_secs(5),
    );
    w.ok(&["delete", id]);
    w.assert_no_leaks(id, recorded.as_ref());
}

#[test]
fn a_vm_killed_under_a_running_exec_is_a_clear_error() {
    if !require_root() {
        return;
    }
    let w = World::new("execkill");
    let id = running(&w, "execkill");
    let out = exec(&w, &id, &["--", "true"]);
    assert!(out.status.success(), "{out:?}");
    let child = w.spawn(&["exec", &id, "--", "busybox", "sleep", "600"]);
    std::thread::sleep(Duration::from_secs(1));
    let qemu = w.state(&id)["vmm_pid"].as_i64().unwrap();
    let killed = Instant::now();
    signal(qemu as u32, "KILL");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("its VM stopped under the command"),
        "{stderr}"
    );
    assert!(
        killed.elapsed() < Duration::from_secs(60),
        "took {:?}: {stderr}",
        killed.elapsed()
    );
    // The sandbox is stopped now; an exec says so at once.
    w.wait_status(&id, "stopped", Duration::from_secs(10));
    assert_eq!(
        exec(&w, &id, &["--", "busybox", "true"]).status.code(),
        Some(4)
    );
    let recorded = w.stored(&id);
    w.ok(&["delete", "--force", &id]);
    w.assert_no_leaks(&id, recorded.as_ref());
}

#[test]
fn the_agent_is_the_guests_init_directly_or_through_init() {
    if !require_root() {
        return;
    }
    // vmjail's own rdinit, or the configuration's (`/init`, which hands
    // PID 1 over): either way the agent is PID 1, on the console, with
    // /proc and /sys mounted, and the guest stops through it.
    for (tag, params, runs) in [
        ("initagent", None, "Run /sbin/vmjail-init as init process"),
        (
            "initscript",
            Some("kernel_params = \"rdinit=/init\"\n"),
            "Run /init as init process",
        ),
    ] {
        let w = World::new(tag);
        if let Some(params) = params {
            let text = std::fs::read_to_string(&w.config).unwrap();
            let with = text.replacen(
                "use_vsock = false\n",
                &format!("use_vsock = false\n{params}"),
                1,
            );
            std::fs::write(&w.config, with).unwrap();
        }
        let id = running(&w, tag);
        w.wait_console(&id, runs, Duration::from_secs(1));
        let out = exec(
            &w,
            &id,
            &[
                "--",
                "sh",
                "-c",
                "cat /proc/1/cmdline; echo; readlink /proc/1/fd/1; ls /sys/kernel",
            ],
        );
        assert!(out.status.success(), "{tag}: {out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut lines = stdout.lines();
        let init = lines.next().map(|l| l.trim_end_matches('\0'));
        assert_eq!(init, Some("/sbin/vmjail-init"), "{tag}: {stdout}");
        assert_eq!(lines.next(), Some("/dev/console"), "{tag}: {stdout}");
        assert!(lines.any(|l| l.contains("mm")), "{tag}: no /sys: {stdout}");
        stop_through_agent_and_delete(&w, &id);
    }
}
