//! What a jailed VMM must not share with the host or another jail — the
//! security review's findings 4 (terminal and session) and 8 (IPC and UTS
//! namespaces, keyrings, user namespaces). Built-in jailer only: these are
//! vmjail's guarantees beyond Firecracker's jailer.

mod common;

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::*;
use serde_json::Value;
use vmjail_jail::LaunchStdio;

fn ns_inode(path: &str) -> u64 {
    std::fs::metadata(path).unwrap().ino()
}

/// Review finding 8: its own IPC and UTS namespaces, a session keyring of
/// its own (not the caller's, not another jail's), no user namespaces.
#[test]
fn no_ipc_uts_keyring_or_user_namespace_shared() {
    if !root_or_skip("isolation_namespaces") {
        return;
    }
    for new_pid_ns in [false, true] {
        let first = launch(&Kind::BuiltIn, |s| s.new_pid_ns = new_pid_ns).unwrap();
        let second = launch(&Kind::BuiltIn, |s| s.new_pid_ns = new_pid_ns).unwrap();
        let (a, b) = (first.report(), second.report());
        for ns in ["ipc", "uts"] {
            let mine = ns_inode(&format!("/proc/self/ns/{ns}"));
            let theirs = ns_inode(&format!("/proc/{}/ns/{ns}", first.pid));
            let other = ns_inode(&format!("/proc/{}/ns/{ns}", second.pid));
            assert_ne!(mine, theirs, "{ns} namespace shared with the host");
            assert_ne!(theirs, other, "{ns} namespace shared between jails");
        }
        let keyring = |r: &Value| {
            r["session_keyring"]
                .as_i64()
                .unwrap_or_else(|| panic!("{}", r["session_keyring"]))
        };
        assert_ne!(keyring(&a), keyring(&b), "session keyring shared");
        assert_eq!(a["user_namespace"], "EPERM", "{}", a["user_namespace"]);
        assert_eq!(a["clone3"], "ENOSYS", "{}", a["clone3"]);
        // The filter stays after exec: the probe is the exec'd program.
        assert_eq!(status_field(first.pid, "Seccomp"), "2");
    }
}

/// Review finding 4: started with the caller's terminal as stdio, the VMM
/// keeps none of it and leads a session of its own (no controlling tty:
/// no TIOCSTI into the caller's shell, no SIGHUP when it closes).
#[test]
fn a_terminal_never_reaches_the_vmm() {
    if !root_or_skip("isolation_terminal") {
        return;
    }
    for new_pid_ns in [false, true] {
        let pty = nix::pty::openpty(None, None).unwrap();
        let tty = || vmjail_jail::ChildIo::Fd(pty.slave.as_fd().try_clone_to_owned().unwrap());
        let stdio = LaunchStdio {
            stdin: tty(),
            stdout: tty(),
            stderr: tty(),
        };
        let running =
            launch_jail(&Kind::BuiltIn, |s| s.new_pid_ns = new_pid_ns, |_| {}, stdio).unwrap();
        let pid = running.pid;
        let r = running.report();
        let tty_major = nix::sys::stat::major(
            std::fs::metadata(nix::unistd::ttyname(&pty.slave).unwrap())
                .unwrap()
                .rdev(),
        );
        for fd in r["stdio"].as_array().unwrap() {
            assert_ne!(
                fd["major"].as_u64(),
                Some(tty_major),
                "a tty as stdio: {fd}"
            );
        }
        // Its own session: sid == pid (1 in its own pid namespace).
        assert_eq!(r["sid"], r["pid"], "{r}");
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let tty_nr: i64 = stat[stat.rfind(')').unwrap() + 2..]
            .split(' ')
            .nth(4)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(tty_nr, 0, "the VMM has a controlling terminal");
        assert!(Path::new(&format!("/proc/{pid}")).exists());
    }
}

/// Review finding 1: the VMM is non-dumpable (its binary is exec-only to
/// its user), whether bound from the shared exec-only copy or copied in —
/// no other process of its uid may trace it or read its memory maps.
#[test]
fn the_vmm_is_not_dumpable() {
    if !root_or_skip("isolation_dumpable") {
        return;
    }
    for copy in [false, true] {
        let running = launch_jail(
            &Kind::BuiltIn,
            |_| {},
            |jail| jail.set_copy_exec_file(copy),
            LaunchStdio::default(),
        )
        .unwrap();
        let pid = running.pid;
        let r = running.report();
        assert_eq!(r["dumpable"], 0, "copy={copy}: {}", r["dumpable"]);
        // The host sees that too: /proc/<pid> files are root's.
        let status = std::fs::metadata(format!("/proc/{pid}/status")).unwrap();
        assert_eq!(status.uid(), 0, "copy={copy}");
    }
}
