//! Podman (Debian's 4.3, private --root/--runroot, conmon) with vmjail as
//! its OCI runtime: each container in its own real QEMU guest; nothing of
//! vmjail's left afterwards — also where Podman runs `delete --force`
//! without the `--runtime-flag` that names vmjail's configuration.

mod clients_support;
mod lifecycle_support;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use clients_support::{use_virtio_fs, volume_dir, Podman, IMAGE};
use lifecycle_support::require_root;

/// Podman's default rlimits exceed this host's hard limits, which runc
/// refuses; inside the VM the spec's rlimits apply to the guest (whose
/// agent runs as root), so vmjail needs no --ulimit.
fn run_args<'a>(flags: &[&'a str], cmd: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend(flags);
    args.push(IMAGE);
    args.extend(cmd);
    args
}

#[test]
fn podman_runs_containers_in_vms() {
    if !require_root() {
        return;
    }
    let p = Podman::start("podrun");
    assert_eq!(p.ok(&run_args(&[], &["echo", "hi"])), "hi\n");
    let out = p.podman(&run_args(&[], &["sh", "-c", "echo err >&2; exit 7"]));
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("err\n"),
        "{out:?}"
    );
    let mut child = p
        .command(&run_args(&["-i"], &["sh", "-c", "tr a-z A-Z"]))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"piped\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.stdout, b"PIPED\n", "{out:?}");
    let out = p.ok(&run_args(
        &["--read-only", "--memory", "128m"],
        &[
            "sh",
            "-c",
            "touch /x 2>/dev/null || cat /sys/fs/cgroup/memory.max",
        ],
    ));
    assert_eq!(out, "134217728\n");
    let out = p.podman(&run_args(
        &["-t"],
        &["sh", "-c", "tty; test -t 0 && echo tty"],
    ));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).replace('\r', ""),
        "/dev/pts/0\ntty\n",
        "{out:?}"
    );

    // Detached: exec, logs, a signal, pause, stop.
    let script = "echo started; trap 'echo got-usr1' USR1; trap 'exit 0' TERM; \
                  while :; do sleep 0.1; done";
    let id = p
        .ok(&["run", "-d", "--network", "none", IMAGE, "sh", "-c", script])
        .trim()
        .to_string();
    let logs_have = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let logs = p.ok(&["logs", &id]);
            if logs.contains(needle) {
                return;
            }
            assert!(Instant::now() < deadline, "no {needle:?} in {logs:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    logs_have("started");
    let out = p.podman(&["exec", &id, "sh", "-c", "echo in-exec; exit 4"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert_eq!(out.stdout, b"in-exec\n");
    p.ok(&["update", "--memory", "96m", &id]);
    assert_eq!(
        p.ok(&["exec", &id, "cat", "/sys/fs/cgroup/memory.max"]),
        "100663296\n"
    );
    p.ok(&["kill", "-s", "USR1", &id]);
    logs_have("got-usr1");
    p.ok(&["pause", &id]);
    p.ok(&["unpause", &id]);
    assert_eq!(p.ok(&["exec", &id, "echo", "thawed"]), "thawed\n");
    let started = Instant::now();
    p.ok(&["stop", "-t", "20", &id]);
    assert!(started.elapsed() < Duration::from_secs(15));
    p.ok(&["rm", &id]);
    p.finish(&[id]);
}

#[test]
fn podman_volumes_reach_the_host_with_virtio_fs() {
    if !require_root() {
        return;
    }
    let p = Podman::start("podvol");
    let host = volume_dir(&p.w);
    let volume = format!("{}:/data", host.display());
    let script = "cat /data/in; echo from-container > /data/out";
    // The default image path: a copy; the container's writes stay in the VM.
    assert_eq!(
        p.ok(&run_args(&["-v", &volume], &["sh", "-c", script])),
        "from-host\n"
    );
    assert!(!host.join("out").exists(), "a write reached the host");
    use_virtio_fs(&p.w);
    assert_eq!(
        p.ok(&run_args(&["-v", &volume], &["sh", "-c", script])),
        "from-host\n"
    );
    assert_eq!(
        std::fs::read_to_string(host.join("out")).unwrap(),
        "from-container\n"
    );
    p.finish(&[]);
}

#[test]
fn podman_hooks_from_a_hooks_dir_run_on_the_host() {
    if !require_root() {
        return;
    }
    let p = Podman::start("podhooks");
    let hooks_dir = p.w.dir.path().join("hooks.d");
    let out = p.w.dir.path().join("hook-out");
    std::fs::create_dir_all(&hooks_dir).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    // Podman's hook configuration (oci-hooks(5)): it puts the hook in the
    // spec it gives vmjail, which runs it on the host.
    for stage in ["prestart", "createRuntime", "poststart"] {
        let hook = serde_json::json!({
            "version": "1.0.0",
            "hook": {"path": "/bin/sh",
                     "args": ["sh", "-c", "cat > \"$1/$0.json\"", stage, out.to_str().unwrap()]},
            "when": {"always": true},
            "stages": [stage],
        });
        std::fs::write(hooks_dir.join(format!("{stage}.json")), hook.to_string()).unwrap();
    }
    let mut args = vec!["--hooks-dir", hooks_dir.to_str().unwrap()];
    args.extend(run_args(&[], &["echo", "hooked"]));
    assert_eq!(p.ok(&args), "hooked\n");
    for (stage, status) in [
        ("prestart", "creating"),
        ("createRuntime", "creating"),
        ("poststart", "running"),
    ] {
        let path = out.join(format!("{stage}.json"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{stage}: {}: {e}", path.display()));
        let state: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(state["status"], status, "{stage}: {state}");
        assert_eq!(state["id"].as_str().unwrap().len(), 64, "{stage}: {state}");
    }
    p.finish(&[]);
}
