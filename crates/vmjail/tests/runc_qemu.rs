//! vmjail's runc-compatible commands through the real binary, a real QEMU
//! guest and its agent, with a hand-made busybox bundle: the OCI state
//! transitions (creating → created → running → stopped), runc's errors
//! for `kill` of a stopped and `delete` of a running container, the host
//! process behind `--pid-file` (its exit status is the container's, its
//! stdio the caller's), `exec --detach` with its own host process, a pty
//! through `--console-socket`, `--log-format json`; the spec's OCI hooks
//! (state on stdin, argv/env, order, a failing and a hung hook, the ones
//! refused); nothing left after.

mod lifecycle_support;

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use lifecycle_support::*;

fn bundle(dir: &Path, script: &str, terminal: bool) -> PathBuf {
    let bundle = dir.join(format!("bundle-{}", unique_id("r")));
    let bin = bundle.join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    let out = std::process::Command::new("chroot")
        .arg(bundle.join("rootfs"))
        .args(["/bin/busybox", "--install", "-s", "/bin"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for d in ["proc", "dev", "tmp"] {
        std::fs::create_dir_all(bundle.join("rootfs").join(d)).unwrap();
    }
    let mut mounts = vec![
        serde_json::json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        serde_json::json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs"}),
        serde_json::json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup"}),
    ];
    if terminal {
        // The container's own devpts (what Docker and Podman give): its
        // terminal comes from there.
        mounts.push(
            serde_json::json!({"destination": "/dev/pts", "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
        );
    }
    let config = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {"terminal": terminal, "user": {"uid": 0, "gid": 0},
                    "args": ["/bin/sh", "-c", script], "env": ["PATH=/bin"], "cwd": "/"},
        "root": {"path": "rootfs"},
        "hostname": "runcbox",
        "annotations": {"org.example/key": "value"},
        "mounts": mounts,
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}]}
    });
    std::fs::write(bundle.join("config.json"), config.to_string()).unwrap();
    bundle
}

fn world(tag: &str) -> World {
    let w = World::new(tag);
    w.use_vsock();
    w
}

fn oci_state(w: &World, id: &str) -> serde_json::Value {
    serde_json::from_str(&w.ok(&["state", id])).unwrap()
}

/// Waits until `pid` is gone (it was reparented to init, which reaps it).
fn wait_gone(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
    {
        assert!(Instant::now() < deadline, "pid {pid} still runs");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_oci_lifecycle_as_runc_has_it() {
    if !require_root() {
        return;
    }
    let w = world("runclife");
    let b = bundle(
        w.dir.path(),
        "echo out; echo err >&2; read line; echo got $line; \
         trap 'echo usr1' USR1; while [ ! -e /tmp/stop ]; do sleep 0.1; done; exit 9",
        false,
    );
    let id = unique_id("runc");
    let pid_file = w.dir.path().join("pid");
    let log = w.dir.path().join("log.json");
    let out_path = w.dir.path().join("stdout");
    // The caller's stdio: a pipe for stdin, files for stdout and stderr.
    let (stdin_read, stdin_write) = nix_pipe();
    let out = std::fs::File::create(&out_path).unwrap();
    let err = std::fs::File::create(w.dir.path().join("stderr")).unwrap();
    let created = w
        .command(&[
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "create",
            "--bundle",
            b.to_str().unwrap(),
            "--pid-file",
            pid_file.to_str().unwrap(),
            &id,
        ])
        .stdin(Stdio::from(stdin_read))
        .stdout(out)
        .stderr(err)
        .status()
        .unwrap();
    assert!(
        created.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let state = oci_state(&w, &id);
    assert_eq!(state["status"], "created");
    assert_eq!(state["pid"], pid);
    assert_eq!(state["ociVersion"], "1.0.2");
    assert_eq!(state["annotations"]["org.example/key"], "value");
    assert_eq!(state["bundle"], b.canonicalize().unwrap().to_str().unwrap());
    // The host process is small and records nothing of the guest yet.
    assert!(std::fs::read_to_string(&out_path).unwrap().is_empty());
    w.ok(&["start", &id]);
    assert_eq!(oci_state(&w, &id)["status"], "running");
    let mut stdin = std::fs::File::from(stdin_write);
    stdin.write_all(b"hello\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&out_path)
        .unwrap()
        .contains("got hello")
    {
        assert!(Instant::now() < deadline, "no echo of stdin");
        std::thread::sleep(Duration::from_millis(50));
    }
    w.ok(&["kill", &id, "usr1"]);
    // A process in the container, detached, with a host process of its own.
    let exec_pid_file = w.dir.path().join("exec.pid");
    let exec_out = w.dir.path().join("exec.out");
    let status = w
        .command(&[
            "exec",
            "--detach",
            "--pid-file",
            exec_pid_file.to_str().unwrap(),
            &id,
            "sh",
            "-c",
            "echo exec $(hostname); touch /tmp/stop",
        ])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&exec_out).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    let exec_pid: i32 = std::fs::read_to_string(&exec_pid_file)
        .unwrap()
        .parse()
        .unwrap();
    wait_gone(exec_pid);
    assert_eq!(
        std::fs::read_to_string(&exec_out).unwrap(),
        "exec runcbox\n"
    );
    // The container's process ends (exit 9): its host process with it.
    wait_gone(pid);
    let text = std::fs::read_to_string(&out_path).unwrap();
    assert_eq!(text, "out\ngot hello\nusr1\n");
    assert_eq!(
        std::fs::read_to_string(w.dir.path().join("stderr")).unwrap(),
        "err\n"
    );
    let state = oci_state(&w, &id);
    assert_eq!(state["status"], "stopped");
    assert_eq!(state["pid"], 0);
    // runc's errors: kill of a stopped container; its log in JSON.
    let out = w.vmjail(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "kill",
        &id,
        "KILL",
    ]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("container not running"));
    let last = std::fs::read_to_string(&log).unwrap();
    let line: serde_json::Value = serde_json::from_str(last.lines().last().unwrap()).unwrap();
    assert_eq!(line["level"], "error");
    assert!(line["msg"]
        .as_str()
        .unwrap()
        .contains("container not running"));
    assert!(line["time"].as_str().unwrap().ends_with('Z'));
    let recorded = w.stored(&id);
    w.ok(&["delete", &id]);
    let out = w.vmjail(&["delete", &id]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    w.assert_no_leaks(&id, recorded.as_ref());
}

#[test]
fn running_containers_need_force_and_their_host_process_goes() {
    if !require_root() {
        return;
    }
    let w = world("runcforce");
    let b = bundle(w.dir.path(), "sleep 600", false);
    let id = unique_id("runcf");
    let pid_file = w.dir.path().join("pid");
    let status = w
        .command(&[
            "create",
            "--bundle",
            b.to_str().unwrap(),
            "--pid-file",
            pid_file.to_str().unwrap(),
            &id,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    w.ok(&["start", &id]);
    let out = w.vmjail(&["delete", &id]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not stopped"));
    assert_eq!(oci_state(&w, &id)["status"], "running");
    // update: flags and a LinuxResources JSON on stdin, seen in the guest
    // cgroup; what does not map is refused when nothing else is there.
    w.ok(&["update", "--memory", "67108864", &id]);
    let mut child = w
        .command(&["update", "--resources", "-", &id])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"pids":{"limit":33},"cpu":{"quota":20000,"period":100000}}"#)
        .unwrap();
    assert!(child.wait().unwrap().success());
    let limits = w.ok(&[
        "exec",
        &id,
        "cat",
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/pids.max",
        "/sys/fs/cgroup/cpu.max",
    ]);
    assert_eq!(limits, "67108864\n33\n20000 100000\n");
    let out = w.vmjail(&["update", "--resources", "/dev/null", &id]);
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    w.ok(&["pause", &id]);
    assert_eq!(oci_state(&w, &id)["status"], "paused");
    w.ok(&["resume", &id]);
    let pids: Vec<u32> = serde_json::from_str(&w.ok(&["ps", "--format", "json", &id])).unwrap();
    assert!(!pids.is_empty());
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let recorded = w.stored(&id);
    w.ok(&["delete", "--force", &id]);
    wait_gone(pid);
    w.assert_no_leaks(&id, recorded.as_ref());
    // Not a signal, not a container.
    assert_eq!(w.vmjail(&["kill", &id, "NOPE"]).status.code(), Some(2));
    assert_eq!(w.vmjail(&["kill", &id]).status.code(), Some(3));
    let out = w.vmjail(&[
        "create",
        "--bundle",
        b.to_str().unwrap(),
        "--frobnicate",
        &id,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--frobnicate"));
}

#[test]
fn a_terminal_through_the_console_socket() {
    if !require_root() {
        return;
    }
    let w = world("runctty");
    let b = bundle(
        w.dir.path(),
        "tty; stty size; test -t 0 && echo on-a-tty; read x; echo read $x",
        true,
    );
    let id = unique_id("runct");
    let socket = w.dir.path().join("console.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let out = w.vmjail(&["create", "--bundle", b.to_str().unwrap(), &id]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a terminal needs --console-socket"
    );
    let receiver = std::thread::spawn(move || receive_fd(&listener));
    let status = w
        .command(&[
            "create",
            "--bundle",
            b.to_str().unwrap(),
            "--console-socket",
            socket.to_str().unwrap(),
            &id,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let mut master = std::fs::File::from(receiver.join().unwrap());
    w.ok(&["start", &id]);
    master.write_all(b"typed\n").unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !String::from_utf8_lossy(&seen).contains("read typed") {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            String::from_utf8_lossy(&seen)
        );
        let mut buf = [0u8; 256];
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&seen).replace('\r', "");
    // The container's own /dev/pts/0 (its devpts), not a guest pty.
    assert!(text.contains("/dev/pts/0\n24 80\non-a-tty\n"), "{text}");
    assert!(text.contains("read typed"), "{text}");
    let recorded = w.stored(&id);
    w.ok(&["delete", "--force", &id]);
    w.assert_no_leaks(&id, recorded.as_ref());
}

#[test]
fn a_create_killed_around_its_host_process_is_cleaned() {
    if !require_root() {
        return;
    }
    let w = world("runckill9");
    let b = bundle(w.dir.path(), "sleep 600", false);
    let steps = [
        "create-monitor-recorded",
        "create-monitor-spawned",
        // Its hooks run, the VM not made yet.
        "create-before-vm-done",
    ];
    for (n, step) in steps.iter().enumerate() {
        for how in ["delete", "gc"] {
            let id = unique_id(&format!("rk{n}{how}"));
            // Not piped: a host process left running would hold the pipes.
            let status = w
                .command(&["create", "--bundle", b.to_str().unwrap(), &id])
                .env("VMJAIL_TEST_CRASH_AT", step)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(9), "not killed at {step}");
            let recorded = w.stored(&id).expect("recorded");
            let monitor = &recorded["containers"][0]["monitors"][0];
            assert_eq!(monitor["name"], "init", "{step}: {recorded}");
            let pid = monitor["process"]["pid"].as_i64();
            assert_eq!(pid.is_some(), *step != "create-monitor-recorded", "{step}");
            // The host process is spawned (waiting) before the VM is made:
            // the sandbox is half-created and its creator dead, so gc takes
            // it as delete --force does, with the host process.
            assert_eq!(recorded["phase"], "creating", "{step}: {recorded}");
            match how {
                "gc" => assert!(w.ok(&["gc"]).contains(&id), "{step}: gc left it"),
                _ => {
                    w.ok(&["delete", "--force", &id]);
                }
            }
            if let Some(pid) = pid {
                wait_gone(pid as i32);
            }
            w.assert_no_leaks(&id, Some(&recorded));
            let pointer = Path::new("/run/vmjail-runc").join(format!("{id}.json"));
            assert!(
                !pointer.exists(),
                "{step} {how}: {} left",
                pointer.display()
            );
        }
    }
}

/// Sets `config.json`'s `hooks` in `bundle`.
fn set_hooks(bundle: &Path, hooks: serde_json::Value) {
    let path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["hooks"] = hooks;
    std::fs::write(&path, config.to_string()).unwrap();
}

/// A hook writing the state it got to `dir/<name>.json`, its `$HOOKV`
/// to `dir/<name>.env` and its name to `dir/order`.
fn recording_hook(dir: &Path, name: &str) -> serde_json::Value {
    serde_json::json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", "cat > \"$1/$0.json\"; echo \"$HOOKV\" > \"$1/$0.env\"; echo $0 >> \"$1/order\"",
                 name, dir.to_str().unwrap()],
        "env": [format!("HOOKV=env-of-{name}")],
    })
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text}", path.display()))
}

#[test]
fn hooks_run_on_the_host_with_the_state() {
    if !require_root() {
        return;
    }
    let w = world("runchooks");
    let features: serde_json::Value = serde_json::from_str(&w.ok(&["features"])).unwrap();
    assert_eq!(
        features["hooks"],
        serde_json::json!(["prestart", "createRuntime", "poststart", "poststop"])
    );
    let b = bundle(w.dir.path(), "sleep 600", false);
    let out = w.dir.path().join("hooks");
    std::fs::create_dir(&out).unwrap();
    set_hooks(
        &b,
        serde_json::json!({
            "prestart": [recording_hook(&out, "prestart")],
            "createRuntime": [recording_hook(&out, "createRuntime")],
            "poststart": [recording_hook(&out, "poststart"),
                          {"path": "/bin/false"},
                          recording_hook(&out, "poststart2")],
            "poststop": [recording_hook(&out, "poststop")],
        }),
    );
    let id = unique_id("runch");
    let pid_file = w.dir.path().join("pid");
    let status = w
        .command(&[
            "create",
            "--bundle",
            b.to_str().unwrap(),
            "--pid-file",
            pid_file.to_str().unwrap(),
            &id,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let pid: i64 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    // prestart, then createRuntime (runc's order), both seeing `creating`
    // with the host process's pid, the bundle and the annotations.
    assert_eq!(
        std::fs::read_to_string(out.join("order")).unwrap(),
        "prestart\ncreateRuntime\n"
    );
    for name in ["prestart", "createRuntime"] {
        let state = read_json(&out.join(format!("{name}.json")));
        assert_eq!(state["status"], "creating", "{name}: {state}");
        assert_eq!(state["id"], id.as_str());
        assert_eq!(state["pid"], pid, "{name}: {state}");
        assert_eq!(state["bundle"], b.canonicalize().unwrap().to_str().unwrap());
        assert_eq!(state["annotations"]["org.example/key"], "value");
        assert_eq!(
            std::fs::read_to_string(out.join(format!("{name}.env"))).unwrap(),
            format!("env-of-{name}\n")
        );
    }
    assert!(
        !out.join("poststart.json").exists(),
        "poststart before start"
    );
    // The host process lives in the sandbox's network namespace, so the
    // state's pid leads a hook (Docker's libnetwork-setkey) there.
    assert_eq!(
        ns_inode(Path::new(&format!("/proc/{pid}/ns/net"))),
        ns_inode(&Path::new("/run/netns").join(format!("vmjail-{id}")))
    );
    assert_ne!(
        ns_inode(Path::new(&format!("/proc/{pid}/ns/net"))),
        ns_inode(Path::new("/proc/self/ns/net"))
    );
    // start: poststart sees `running`; a failing one in the middle is only
    // logged and the ones after it run.
    w.ok(&["start", &id]);
    let state = read_json(&out.join("poststart.json"));
    assert_eq!(state["status"], "running", "{state}");
    assert_eq!(state["pid"], pid);
    assert!(out.join("poststart2.json").exists());
    assert!(
        !out.join("poststop.json").exists(),
        "poststop before delete"
    );
    let recorded = w.stored(&id);
    w.ok(&["delete", "--force", &id]);
    let state = read_json(&out.join("poststop.json"));
    assert_eq!(state["status"], "stopped", "{state}");
    assert_eq!(state["id"], id.as_str());
    assert_eq!(
        std::fs::read_to_string(out.join("order")).unwrap(),
        "prestart\ncreateRuntime\npoststart\npoststart2\npoststop\n"
    );
    w.assert_no_leaks(&id, recorded.as_ref());
}

#[test]
fn a_failing_or_hung_hook_fails_the_create_and_cleans_up() {
    if !require_root() {
        return;
    }
    let w = world("runchookfail");
    let out = w.dir.path().join("hooks");
    std::fs::create_dir(&out).unwrap();
    let marker = unique_id("hung-hook");
    for (case, prestart, needle) in [
        (
            "fails",
            serde_json::json!({"path": "/bin/sh",
                               "args": ["sh", "-c", "echo hook-said-no >&2; exit 3"]}),
            "prestart hook 0 (/bin/sh) failed: exit status 3; stderr: hook-said-no",
        ),
        (
            "hangs",
            serde_json::json!({"path": "/bin/sh",
                               "args": ["sh", "-c", format!("sleep 300; : {marker}")],
                               "timeout": 2}),
            "prestart hook 0 (/bin/sh) timed out after 2s (killed)",
        ),
    ] {
        let b = bundle(w.dir.path(), "echo never-started", false);
        set_hooks(
            &b,
            serde_json::json!({
                "prestart": [prestart],
                "createRuntime": [recording_hook(&out, &format!("{case}-createRuntime"))],
                "poststop": [recording_hook(&out, &format!("{case}-poststop"))],
            }),
        );
        let id = unique_id(&format!("runchf{}", &case[..1]));
        let out_file = w.dir.path().join(format!("{case}.out"));
        let started = Instant::now();
        let result = w
            .command(&["create", "--bundle", b.to_str().unwrap(), &id])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_file).unwrap())
            .output()
            .unwrap();
        assert_eq!(result.status.code(), Some(1), "{case}: {result:?}");
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(stderr.contains(needle), "{case}: {stderr}");
        assert!(started.elapsed() < Duration::from_secs(120));
        // Nothing after the failing hook ran; the container is gone, then
        // poststop ran; the container's process never started.
        assert!(
            !out.join(format!("{case}-createRuntime.json")).exists(),
            "{case}"
        );
        let state = read_json(&out.join(format!("{case}-poststop.json")));
        assert_eq!(state["status"], "stopped", "{case}: {state}");
        assert_eq!(std::fs::read_to_string(&out_file).unwrap(), "", "{case}");
        assert_eq!(w.vmjail(&["state", &id]).status.code(), Some(3), "{case}");
        w.assert_no_leaks(&id, None);
    }
    assert!(
        processes_mentioning(&[&marker]).is_empty(),
        "the hung hook was left running"
    );
    // Hooks that would run in the container's namespaces (in the VM) and
    // a relative path are refused before anything is made.
    let b = bundle(w.dir.path(), "true", false);
    for (hooks, needle) in [
        (
            serde_json::json!({"createContainer": [{"path": "/bin/true"}]}),
            "hooks.createContainer: these hooks run in the container's namespaces",
        ),
        (
            serde_json::json!({"startContainer": [{"path": "/bin/true"}]}),
            "hooks.startContainer",
        ),
        (
            serde_json::json!({"prestart": [{"path": "true"}]}),
            "hooks.prestart[0]: path \"true\" is not absolute",
        ),
    ] {
        set_hooks(&b, hooks);
        let id = unique_id("runchr");
        let result = w.vmjail(&["create", "--bundle", b.to_str().unwrap(), &id]);
        assert_eq!(result.status.code(), Some(2), "{result:?}");
        assert!(
            String::from_utf8_lossy(&result.stderr).contains(needle),
            "{result:?}"
        );
        assert!(w.stored(&id).is_none());
        w.assert_no_leaks(&id, None);
    }
}

/// The descriptor sent over the first connection to `listener`.
fn receive_fd(listener: &UnixListener) -> OwnedFd {
    use std::os::fd::AsRawFd;
    let (conn, _) = listener.accept().unwrap();
    let mut data = [0u8; 256];
    let mut control = [0u8; 64];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: a zeroed msghdr pointing at live buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = control.len();
    // SAFETY: recvmsg into the buffers above.
    let n = unsafe { libc::recvmsg(conn.as_raw_fd(), &mut msg, 0) };
    assert!(n > 0, "recvmsg");
    // SAFETY: the control buffer holds one SCM_RIGHTS message.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        assert!(!cmsg.is_null());
        assert_eq!((*cmsg).cmsg_type, libc::SCM_RIGHTS);
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const RawFd);
        OwnedFd::from_raw_fd(fd)
    }
}

fn nix_pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills both descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: just created, owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}
