//! One idempotent teardown, driven only by the record: it works after any
//! partial setup, from any process, any number of times.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

use crate::error::JailError;
use crate::mounts;
use crate::process;
use crate::spec::JailRecord;
use crate::sys;

/// Kill the VMM by recorded pid (only if its start time matches; SIGTERM,
/// bounded wait, SIGKILL; pidfd where possible), unmount every recorded mount
/// (reverse order, MNT_DETACH fallback), remove recorded cgroups, remove the
/// jail dir.
pub fn teardown(record: &JailRecord, kill_timeout: Duration) -> Result<(), JailError> {
    if let (Some(pid), Some(start)) = (record.vmm_pid, record.vmm_start_time) {
        kill_vmm(pid, start, kill_timeout)?;
    }
    for mount in record.mounts.iter().rev() {
        mounts::unmount(mount).map_err(|e| JailError::Teardown {
            what: "mount",
            path: mount.clone(),
            source: e.into(),
        })?;
    }
    for cgroup in record.cgroups.iter().rev() {
        remove_cgroup(cgroup)?;
    }
    if !record.jail_dir.as_os_str().is_empty() {
        remove_jail_dir(&record.jail_dir)?;
    }
    Ok(())
}

fn kill_vmm(pid: i32, start: u64, timeout: Duration) -> Result<(), JailError> {
    // A pidfd pins the process: after the start-time check no reuse can
    // redirect the signals.
    let pidfd = match sys::pidfd_open(pid) {
        Ok(fd) => Some(fd),
        Err(nix::Error::ESRCH) => {
            reap(pid);
            return Ok(());
        }
        Err(_) => None,
    };
    if process::start_time(pid) != Some(start) {
        return Ok(()); // gone, and the pid now names another process
    }
    let send = |signal: Signal| match &pidfd {
        Some(fd) => sys::pidfd_send_signal(fd, signal),
        None => kill(Pid::from_raw(pid), signal),
    };
    let _ = send(Signal::SIGTERM);
    if wait_gone(pid, start, timeout) {
        return Ok(());
    }
    let _ = send(Signal::SIGKILL);
    if wait_gone(pid, start, Duration::from_secs(5)) {
        return Ok(());
    }
    Err(JailError::KillTimeout { pid })
}

/// Reap `pid` if it is our child (else it is reaped by its own parent).
fn reap(pid: i32) {
    let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
}

fn wait_gone(pid: i32, start: u64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        reap(pid);
        let alive = process::start_time(pid) == Some(start) && process::is_running(pid);
        if !alive {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Remove one cgroup directory. A parent still holding another jail's
/// cgroup is left alone; a leaf still emptying out is retried briefly.
fn remove_cgroup(path: &Path) -> Result<(), JailError> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e)
                if e.raw_os_error() == Some(libc::EBUSY)
                    || e.raw_os_error() == Some(libc::ENOTEMPTY) =>
            {
                if has_subdirectory(path) {
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    return Err(JailError::Teardown {
                        what: "cgroup",
                        path: path.to_path_buf(),
                        source: e,
                    });
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(source) => {
                return Err(JailError::Teardown {
                    what: "cgroup",
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
}

fn has_subdirectory(path: &Path) -> bool {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .any(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        })
        .unwrap_or(false)
}

/// Remove the jail dir — only once nothing is mounted below it (removing
/// through a read-write bind mount would delete the host's asset).
fn remove_jail_dir(jail_dir: &Path) -> Result<(), JailError> {
    for mount in mounts::mounts_under(jail_dir) {
        mounts::unmount(&mount).map_err(|e| JailError::Teardown {
            what: "mount",
            path: mount.clone(),
            source: e.into(),
        })?;
    }
    if let Some(left) = mounts::mounts_under(jail_dir).first() {
        return Err(JailError::Teardown {
            what: "mount",
            path: left.clone(),
            source: std::io::Error::from_raw_os_error(libc::EBUSY),
        });
    }
    match std::fs::remove_dir_all(jail_dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(JailError::Teardown {
            what: "jail dir",
            path: jail_dir.to_path_buf(),
            source,
        }),
    }
}
