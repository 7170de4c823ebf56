//! Host facts about a process, by pid: the one reader of
//! `/proc/<pid>/stat` for every crate, and the one definition of "gone". A
//! pid is only trusted together with its start time, which names one
//! process even after the pid is reused.
//!
//! A VMM is multi-threaded (vCPU, device and API threads share one fd
//! table). When it ends, its thread-group leader can be a zombie while the
//! other threads are still exiting — and still hold its fds: its taps, its
//! KVM VM, its bind-mounted drives. So a process counts as gone only once
//! its whole thread group has exited, not when the leader shows `Z`.

use std::time::{Duration, Instant};

use nix::sys::wait::{waitpid, WaitPidFlag};

use crate::spec::JailRecord;
use nix::unistd::Pid;

/// (state, start time in clock ticks since boot) of `pid`, if it exists.
pub fn stat(pid: i32) -> Option<(char, u64)> {
    if pid <= 0 {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// The command name (field 2) may contain spaces and ')': fields are
/// counted after the last ')'. Field 3 is the state, field 22 the start time.
fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Field 22 of `/proc/<pid>/stat`.
pub fn start_time(pid: i32) -> Option<u64> {
    stat(pid).map(|(_, start)| start)
}

/// `Threads:` of `/proc/<pid>/status`: the threads of `pid`'s group not yet
/// released by the kernel, the (zombie) leader included. A thread is
/// released only after it has dropped its fd table.
pub fn threads(pid: i32) -> Option<u32> {
    if pid <= 0 {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_threads(&text)
}

fn parse_threads(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

fn is_zombie(state: char) -> bool {
    matches!(state, 'Z' | 'X' | 'x')
}

/// Whether `pid` is alive and, with its whole thread group, not exited.
pub fn is_running(pid: i32) -> bool {
    is_alive(pid, None)
}

/// Whether `pid` is alive and, when `start_time` is given, still the process
/// that started then. A zombie leader whose other threads are still exiting
/// is alive: they still hold the process's fds.
pub fn is_alive(pid: i32, start_time: Option<u64>) -> bool {
    match stat(pid) {
        None => false,
        Some((_, started)) if start_time.is_some_and(|t| t != started) => false,
        // A zombie leader with other threads unreleased: not yet gone. No
        // status (reaped meanwhile) means gone.
        Some((state, _)) if is_zombie(state) => threads(pid).is_some_and(|n| n > 1),
        Some(_) => true,
    }
}

/// Reap `pid` if it is our child, has exited with its whole thread group and
/// is still the process started at `start_time` (a recycled pid may be
/// another child of ours). Anyone else's zombie is reaped by its parent.
pub fn reap(pid: i32, start_time: Option<u64>) {
    let ours = stat(pid).is_some_and(|(state, started)| {
        is_zombie(state) && start_time.is_none_or(|t| t == started)
    });
    if ours {
        // WNOHANG: a leader whose group is still exiting is not reapable yet.
        let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
    }
}

/// Poll until `pid` (started at `start_time`) is gone with its whole thread
/// group, reaping it when it is our child; false when `timeout` passes first.
pub fn wait_gone(pid: i32, start_time: Option<u64>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !is_alive(pid, start_time) {
            reap(pid, start_time);
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// What the kernel says of the process a record names as its VMM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vmm {
    /// Alive and the jail's: it may be signalled.
    Jailed,
    /// Gone (or gone within a moment: a process on its way out has already
    /// dropped its root and cgroups, and cannot be proven anything).
    Gone,
    /// Alive and not the jail's: never signalled.
    Stranger,
}

/// How long an exiting process may take to become a zombie.
const EXIT_GRACE: Duration = Duration::from_millis(200);

/// Classify the process the record names (`pid` started at `start`).
pub fn vmm(pid: i32, start: u64, record: &JailRecord) -> Vmm {
    if !is_alive(pid, Some(start)) {
        return Vmm::Gone;
    }
    if in_jail(pid, record) {
        return Vmm::Jailed;
    }
    if wait_gone(pid, Some(start), EXIT_GRACE) {
        Vmm::Gone
    } else if in_jail(pid, record) {
        Vmm::Jailed
    } else {
        Vmm::Stranger
    }
}

/// Whether live process `pid` is the jail's, by what the kernel says, not
/// the record: its root is the jail root (the same mount's root inode), or
/// it is in one of the jail's own (leaf) cgroups. A record read from disk
/// may name any pid; a process that is neither is never signalled.
pub fn in_jail(pid: i32, record: &JailRecord) -> bool {
    use std::os::unix::fs::MetadataExt;
    if record.jail_dir.as_os_str().is_empty() {
        return false;
    }
    let same_root = match (
        std::fs::metadata(format!("/proc/{pid}/root")),
        std::fs::metadata(record.root()),
    ) {
        (Ok(theirs), Ok(jail)) => theirs.dev() == jail.dev() && theirs.ino() == jail.ino(),
        _ => false,
    };
    same_root || in_leaf_cgroup(pid, record)
}

/// Whether `/proc/<pid>/cgroup` places `pid` in a cgroup the record names
/// as the jail's leaf (`.../<id>`).
fn in_leaf_cgroup(pid: i32, record: &JailRecord) -> bool {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return false;
    };
    let leaves: Vec<&std::path::Path> = record
        .cgroups
        .iter()
        .filter(|c| c.file_name() == Some(std::ffi::OsStr::new(&record.id)))
        .map(|c| c.as_path())
        .collect();
    text.lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .filter(|path| path.len() > 1)
        .any(|path| {
            leaves
                .iter()
                .any(|leaf| leaf.ends_with(path.trim_start_matches('/')))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time_is_stable() {
        let me = std::process::id() as i32;
        let a = start_time(me).unwrap();
        assert_eq!(Some(a), start_time(me));
        assert!(is_running(me));
        assert_eq!(start_time(i32::MAX), None);
    }

    #[test]
    fn parses_names_with_spaces_and_parens() {
        let stat = "42 (a) b (c) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1 2 3";
        assert_eq!(parse_stat(stat), Some(('S', 987654)));
        assert_eq!(parse_stat("42 (x) S 1"), None);
    }

    #[test]
    fn parses_the_thread_count() {
        let status = "Name:\tfirecracker\nState:\tZ (zombie)\nTgid:\t7\nThreads:\t3\nSigQ:\t0/1\n";
        assert_eq!(parse_threads(status), Some(3));
        assert_eq!(parse_threads("Name:\tx\n"), None);
        // This test runs on a thread of its own besides the harness's main.
        assert!(threads(std::process::id() as i32).is_some_and(|n| n >= 2));
    }

    #[test]
    fn a_wrong_start_time_or_a_bad_pid_is_not_alive() {
        let me = std::process::id() as i32;
        let started = start_time(me);
        assert!(is_alive(me, started));
        assert!(!is_alive(me, started.map(|s| s + 1)));
        assert!(!is_alive(0, None));
        assert!(!is_alive(-1, None));
    }

    #[test]
    fn an_exited_child_is_gone_and_reaped() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let started = start_time(pid);
        assert!(wait_gone(pid, started, Duration::from_secs(10)));
        // Reaped by wait_gone: nothing left to wait for.
        assert!(stat(pid).is_none() || start_time(pid) != started);
        assert!(child.try_wait().is_err() || child.wait().is_err());
    }
}
