//! vmjail's runc-compatible commands through the real binary, a real QEMU
//! guest and its agent, with a hand-made busybox bundle: the OCI state
//! transitions (creating → created → running → stopped), runc's errors
//! for `kill` of a stopped and `delete` of a running container, the host
//! process behind `--pid-file` (its exit status is the container's, its
//! stdio the caller's), `exec --detach` with its own host process, a pty
//! through `--console-socket`, `--log-format json`; nothing left after.

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
    let config = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {"terminal": terminal, "user": {"uid": 0, "gid": 0},
                    "args": ["/bin/sh", "-c", script], "env": ["PATH=/bin"], "cwd": "/"},
        "root": {"path": "rootfs"},
        "hostname": "runcbox",
        "annotations": {"org.example/key": "value"},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"}
        ],
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
        "stty size; test -t 0 && echo on-a-tty; read x; echo read $x",
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
    assert!(text.contains("24 80\non-a-tty\n"), "{text}");
    assert!(text.contains("read typed"), "{text}");
    let recorded = w.stored(&id);
    w.ok(&["delete", "--force", &id]);
    w.assert_no_leaks(&id, recorded.as_ref());
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
