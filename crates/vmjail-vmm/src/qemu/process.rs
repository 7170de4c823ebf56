//! The QEMU process seen from the host: alive, signal, wait. A pid is only
//! trusted together with its start time, so a recycled pid is never
//! signalled. (The Firecracker backend keeps an identical private helper;
//! the two could share one `crate::process` module.)

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

/// `/proc/<pid>/stat`: (state, start time in clock ticks).
fn stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after
    // the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 22 overall is the 20th after the name (state is field 3).
    let start_time = fields.nth(18)?.parse().ok()?;
    Some((state, start_time))
}

/// Whether `pid` is a live process started at `started` (when known). A
/// zombie counts as gone (and is reaped when it is our child).
pub fn is_alive(pid: i32, started: Option<u64>) -> bool {
    match stat(pid) {
        None => false,
        Some((_, start)) if started.is_some_and(|s| s != start) => false,
        Some(('Z' | 'X', _)) => {
            // Succeeds only for our own child; another's zombie is its
            // parent's to reap.
            let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
            false
        }
        Some(_) => true,
    }
}

/// Send `signal` to `pid` if it is still the process started at `started`.
pub fn signal(pid: i32, started: Option<u64>, signal: Signal) -> nix::Result<()> {
    if !is_alive(pid, started) {
        return Ok(());
    }
    match kill(Pid::from_raw(pid), signal) {
        Err(nix::errno::Errno::ESRCH) => Ok(()),
        other => other,
    }
}

/// Poll until `pid` is gone or `timeout` passes; true when it is gone.
pub fn wait_gone(pid: i32, started: Option<u64>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !is_alive(pid, started) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_is_alive_until_it_exits_and_a_wrong_start_time_is_not_it() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let started = stat(pid).map(|(_, s)| s);
        assert!(is_alive(pid, started));
        assert!(!is_alive(pid, started.map(|s| s + 1)));
        signal(pid, started, Signal::SIGKILL).unwrap();
        assert!(wait_gone(pid, started, Duration::from_secs(5)));
        let _ = child.wait();
    }
}
