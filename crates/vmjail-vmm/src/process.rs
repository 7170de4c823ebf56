//! The VMM process seen from the host, for every backend: is it alive,
//! signal it, wait for it. A pid is only trusted together with its start
//! time, so a recycled pid is never signalled.

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Whether `pid` is a live process started at `started` (when known). It
/// counts as gone only once its whole thread group has exited (a zombie
/// leader whose threads still hold the VMM's fds is alive); a gone child of
/// ours is reaped.
pub fn is_alive(pid: i32, started: Option<u64>) -> bool {
    let alive = vmjail_jail::process::is_alive(pid, started);
    if !alive {
        vmjail_jail::process::reap(pid, started);
    }
    alive
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

/// Poll until `pid` is gone with its whole thread group, or `timeout`
/// passes; true when it is gone.
pub fn wait_gone(pid: i32, started: Option<u64>, timeout: Duration) -> bool {
    vmjail_jail::process::wait_gone(pid, started, timeout)
}

/// Why [`terminate`] could not end a VMM.
#[derive(Debug, thiserror::Error)]
pub enum TerminateError {
    #[error("sending {signal} to the VMM (pid {pid}): {source}")]
    Signal {
        pid: i32,
        signal: &'static str,
        source: nix::Error,
    },
    #[error("the VMM (pid {pid}) still runs {waited:?} after SIGKILL")]
    StillRunning { pid: i32, waited: Duration },
}

/// The forced end of a VMM, after its graceful shutdown: SIGTERM, a wait
/// bounded by `timeout`, then SIGKILL and the same wait.
pub fn terminate(pid: i32, started: Option<u64>, timeout: Duration) -> Result<(), TerminateError> {
    for (sig, name) in [(Signal::SIGTERM, "SIGTERM"), (Signal::SIGKILL, "SIGKILL")] {
        signal(pid, started, sig).map_err(|source| TerminateError::Signal {
            pid,
            signal: name,
            source,
        })?;
        if wait_gone(pid, started, timeout) {
            return Ok(());
        }
    }
    Err(TerminateError::StillRunning {
        pid,
        waited: timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start_time(pid: i32) -> Option<u64> {
        vmjail_jail::process::start_time(pid)
    }

    #[test]
    fn own_process_is_alive_with_its_start_time_and_not_with_another() {
        let me = std::process::id() as i32;
        let started = start_time(me);
        assert!(started.is_some());
        assert!(is_alive(me, started));
        assert!(!is_alive(me, started.map(|s| s + 1)));
    }

    #[test]
    fn a_killed_child_is_seen_gone_and_reaped() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let started = start_time(pid);
        assert!(is_alive(pid, started));
        signal(pid, started, Signal::SIGKILL).unwrap();
        assert!(wait_gone(pid, started, Duration::from_secs(5)));
        // Already reaped by is_alive, or reaped here.
        let _ = child.wait();
    }
}
