//! One idempotent teardown, driven only by the record: it works after any
//! partial setup, from any process, any number of times.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cgroup;
use crate::error::JailError;
use crate::mounts;
use crate::ownership;
use crate::pid_file;
use crate::process;
use crate::spec::JailRecord;
use crate::sys;
use crate::validate;

/// Kill the VMM by recorded pid (only if its start time matches; SIGTERM,
/// bounded wait, SIGKILL; pidfd where possible), or with no pid recorded
/// the one the jail's pid file names if the kernel places it in the jail;
/// kill whatever is left in the jail's leaf cgroups, unmount every recorded
/// mount (reverse order, through an fd walk that never follows a symlink),
/// give chowned host assets back, remove recorded cgroups and empty shared
/// parents, remove the jail dir.
/// A record that names anything outside its jail is refused whole.
pub fn teardown(record: &JailRecord, kill_timeout: Duration) -> Result<(), JailError> {
    check_record(record)?;
    if let Some((pid, start)) = record.vmm_process().or_else(|| unrecorded_vmm(record)) {
        // A live process the record names must be the jail's by the
        // kernel's account before it is killed.
        match process::vmm(pid, start, record) {
            process::Vmm::Jailed => kill_vmm(pid, start, kill_timeout)?,
            process::Vmm::Gone => process::reap(pid, Some(start)),
            process::Vmm::Stranger => {
                return Err(JailError::UnsafeRecord {
                    path: PathBuf::from(format!("/proc/{pid}")),
                    reason: "the recorded VMM is neither in the jail's root nor in its cgroup",
                })
            }
        }
    }
    for cgroup in record.cgroups.iter().filter(|c| is_leaf(record, c)) {
        cgroup::kill_all(cgroup);
    }
    for mount in record.mounts.iter().rev() {
        mounts::unmount_in(&record.jail_dir, mount)?;
    }
    for asset in &record.chowned {
        ownership::restore(asset)?;
    }
    for cgroup in record.cgroups.iter().rev() {
        remove_cgroup(cgroup)?;
    }
    let mut parents: Vec<&PathBuf> = record.cgroup_parents.iter().collect();
    parents.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for parent in parents {
        // Shared with other jails: removed only once empty (EBUSY/ENOTEMPTY
        // otherwise, which is fine).
        let _ = std::fs::remove_dir(parent);
    }
    if !record.jail_dir.as_os_str().is_empty() && !record.jail_dir_pending {
        remove_jail_dir(&record.jail_dir)?;
    }
    Ok(())
}

/// A VMM whose pid never reached the record: its launcher died between the
/// VMM's start and the record's save. Found through the pid file the jail
/// wrote before the exec, and only when the kernel places that process in
/// this jail (the file is in the VMM user's root, so it is not trusted).
fn unrecorded_vmm(record: &JailRecord) -> Option<(i32, u64)> {
    let exec_name = record.jail_dir.parent()?.file_name()?.to_str()?;
    let pid = pid_file::read(&pid_file::path(&record.root(), exec_name)).ok()??;
    let start = process::start_time(pid)?;
    process::in_jail(pid, record).then_some((pid, start))
}

fn is_leaf(record: &JailRecord, cgroup: &Path) -> bool {
    cgroup.file_name() == Some(OsStr::new(&record.id))
}

/// The root of every cgroup hierarchy vmjail uses.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The record is read from disk and may be stale or forged: everything it
/// names must belong to this jail before anything is killed or removed.
fn check_record(record: &JailRecord) -> Result<(), JailError> {
    let refuse = |path: &Path, reason| {
        Err(JailError::UnsafeRecord {
            path: path.to_path_buf(),
            reason,
        })
    };
    if !record.names_anything() {
        return Ok(());
    }
    validate::validate_id(&record.id)?;
    let jail_dir = &record.jail_dir;
    if !record.mounts.is_empty() || !jail_dir.as_os_str().is_empty() {
        if !is_plain_absolute(jail_dir) {
            return refuse(
                jail_dir,
                "the jail dir must be an absolute path without '.' or '..'",
            );
        }
        if jail_dir.file_name() != Some(OsStr::new(&record.id)) {
            return refuse(jail_dir, "the jail dir must be named after the sandbox id");
        }
        // <base>/<exec_name>/<id>: never a top-level directory.
        if jail_dir.components().count() < 4 {
            return refuse(jail_dir, "the jail dir must be <base>/<exec_name>/<id>");
        }
    }
    for mount in &record.mounts {
        if !is_plain_absolute(mount) || !mount.starts_with(jail_dir) || mount == jail_dir {
            return refuse(mount, "a recorded mount must lie below the jail dir");
        }
    }
    for cgroup in &record.cgroups {
        let under_root = is_plain_absolute(cgroup)
            && cgroup.starts_with(CGROUP_ROOT)
            && cgroup.components().count() > 4;
        let ours = is_leaf(record, cgroup)
            || record
                .cgroups
                .iter()
                .any(|leaf| is_leaf(record, leaf) && leaf != cgroup && leaf.starts_with(cgroup));
        if !under_root || !ours {
            return refuse(
                cgroup,
                "a recorded cgroup must be the jail's cgroup below /sys/fs/cgroup or its ancestor",
            );
        }
    }
    for parent in &record.cgroup_parents {
        let ok = is_plain_absolute(parent)
            && parent.starts_with(CGROUP_ROOT)
            && parent.components().count() > 4
            && record
                .cgroups
                .iter()
                .any(|leaf| is_leaf(record, leaf) && leaf != parent && leaf.starts_with(parent));
        if !ok {
            return refuse(
                parent,
                "a recorded cgroup parent must be an ancestor of the jail's cgroup",
            );
        }
    }
    Ok(())
}

fn is_plain_absolute(path: &Path) -> bool {
    path.is_absolute()
        && !path
            .as_os_str()
            .as_bytes()
            .split(|&b| b == b'/')
            .any(|seg| seg == b"." || seg == b"..")
}

fn kill_vmm(pid: i32, start: u64, timeout: Duration) -> Result<(), JailError> {
    // A pidfd pins the process: after the start-time check no reuse can
    // redirect the signals.
    let pidfd = match sys::pidfd_open(pid) {
        Ok(fd) => Some(fd),
        Err(nix::Error::ESRCH) => {
            process::reap(pid, Some(start));
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
    // Gone means the whole thread group: until then the VMM's threads
    // still hold its fds (taps, drives bind-mounted below the jail).
    let _ = send(Signal::SIGTERM);
    if process::wait_gone(pid, Some(start), timeout) {
        return Ok(());
    }
    let _ = send(Signal::SIGKILL);
    if process::wait_gone(pid, Some(start), Duration::from_secs(5)) {
        return Ok(());
    }
    Err(JailError::KillTimeout { pid })
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
        if mount == jail_dir {
            continue;
        }
        mounts::unmount_in(jail_dir, &mount)?;
    }
    if let Some(left) = mounts::mounts_under(jail_dir).first() {
        return Err(JailError::Teardown {
            what: "mount",
            path: left.clone(),
            source: std::io::Error::from_raw_os_error(libc::EBUSY),
        });
    }
    crate::rmtree::remove_tree(jail_dir)
}
