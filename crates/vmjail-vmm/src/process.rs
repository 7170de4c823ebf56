//! The VMM process seen from the host, for every backend: is it alive,
//! signal it, wait for it — always through the jail's record. A pid is only
//! trusted together with its recorded start time (so a recycled pid is
//! never signalled), and a signal goes only to a process the kernel shows
//! to be the jail's (its root is the jail root, or it is in the jail's
//! cgroup): a record read from disk may name any process.

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use vmjail_jail::JailRecord;

/// Whether the record's VMM (pid and start time both recorded) is alive. It
/// counts as gone only once its whole thread group has exited (a zombie
/// leader whose threads still hold the VMM's fds is alive); a gone child of
/// ours is reaped.
pub fn is_alive(record: &JailRecord) -> bool {
    let Some((pid, started)) = record.vmm_process() else {
        return false;
    };
    let alive = vmjail_jail::process::is_alive(pid, Some(started));
    if !alive {
        vmjail_jail::process::reap(pid, Some(started));
    }
    alive
}

/// Send `signal` to the record's VMM if it is alive and the jail's.
pub fn signal(record: &JailRecord, signal: Signal) -> Result<(), TerminateError> {
    let Some((pid, start)) = record.vmm_process() else {
        return Ok(());
    };
    match vmjail_jail::process::vmm(pid, start, record) {
        vmjail_jail::process::Vmm::Jailed => {}
        vmjail_jail::process::Vmm::Gone => {
            vmjail_jail::process::reap(pid, Some(start));
            return Ok(());
        }
        vmjail_jail::process::Vmm::Stranger => return Err(TerminateError::NotTheJails { pid }),
    }
    match kill(Pid::from_raw(pid), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(source) => Err(TerminateError::Signal {
            pid,
            signal: signal.as_str(),
            source,
        }),
    }
}

/// Poll until the record's VMM is gone with its whole thread group, or
/// `timeout` passes; true when it is gone (or none is recorded).
pub fn wait_gone(record: &JailRecord, timeout: Duration) -> bool {
    match record.vmm_process() {
        Some((pid, started)) => vmjail_jail::process::wait_gone(pid, Some(started), timeout),
        None => true,
    }
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
    #[error("process {pid}, recorded as the VMM, is neither in the jail's root nor in its cgroup: not signalling it")]
    NotTheJails { pid: i32 },
}

/// The forced end of a VMM, after its graceful shutdown: SIGTERM, a wait
/// bounded by `timeout`, then SIGKILL and the same wait.
pub fn terminate(record: &JailRecord, timeout: Duration) -> Result<(), TerminateError> {
    for sig in [Signal::SIGTERM, Signal::SIGKILL] {
        signal(record, sig)?;
        if wait_gone(record, timeout) {
            return Ok(());
        }
    }
    Err(TerminateError::StillRunning {
        pid: record.vmm_pid.unwrap_or_default(),
        waited: timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record_of(pid: i32, started: Option<u64>) -> JailRecord {
        JailRecord {
            id: "t".into(),
            vmm_pid: Some(pid),
            vmm_start_time: started,
            ..JailRecord::default()
        }
    }

    #[test]
    fn alive_only_with_its_recorded_start_time() {
        let me = std::process::id() as i32;
        let started = vmjail_jail::process::start_time(me);
        assert!(is_alive(&record_of(me, started)));
        assert!(!is_alive(&record_of(me, started.map(|s| s + 1))));
        // Review finding 3: a pid without a start time names no VMM.
        assert!(!is_alive(&record_of(me, None)));
    }

    /// Review finding 3: a live process the record names, but which is not
    /// in the jail (an unrelated `sleep`), is never signalled.
    #[test]
    fn a_process_outside_the_jail_is_not_signalled() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let mut record = record_of(pid, vmjail_jail::process::start_time(pid));
        record.jail_dir = "/nonexistent/base/exec/t".into();
        let err = terminate(&record, Duration::from_millis(100)).unwrap_err();
        assert!(matches!(err, TerminateError::NotTheJails { .. }), "{err}");
        assert!(is_alive(&record), "the unrelated process was killed");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
