//! `/run/netns` itself, kept the way iproute2 keeps it.
//!
//! `ip netns add` makes `/run/netns` a mount point (bound on itself,
//! recursively) and a *shared* mount, once, under an `flock` on the
//! directory. A namespace pinned under a plain `/run/netns` is shadowed by
//! the next tool that does so: its path then names a copy, and after
//! unmounting the copy the original still sits under the new mount,
//! unreachable by path — the file cannot be removed (EBUSY) and the
//! namespace leaks. So vmjail follows the same convention, under the same
//! lock, before it pins anything; and [`unshadow`] recovers pins shadowed
//! before (by an older vmjail, or by anyone who re-covered the directory).

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::{NetnsError, NETNS_DIR};

/// Where [`unshadow`] parks the covering mount for a moment; one per process,
/// so that a crash in between is found and undone by [`ensure_shared`].
const ASIDE_PREFIX: &str = "/run/vmjail-netns-aside.";

/// The lock iproute2 takes for the same setup: `flock` on the directory.
pub(super) struct RunDirLock {
    _dir: Flock<File>,
}

pub(super) fn lock() -> Result<RunDirLock, NetnsError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(NETNS_DIR)
        .map_err(|source| NetnsError::CreateDir {
            path: NETNS_DIR.into(),
            source,
        })?;
    let dir = File::open(NETNS_DIR).map_err(|source| NetnsError::CreateDir {
        path: NETNS_DIR.into(),
        source,
    })?;
    let dir =
        Flock::lock(dir, FlockArg::LockExclusive).map_err(|(_, source)| NetnsError::LockDir {
            path: NETNS_DIR.into(),
            source,
        })?;
    Ok(RunDirLock { _dir: dir })
}

/// Make `/run/netns` a shared mount point of itself (bind it on itself
/// first if it is a plain directory), as `ip netns add` does. Idempotent;
/// call with [`lock`] held. A cover parked aside by a crashed [`unshadow`]
/// is put back first.
pub(super) fn ensure_shared(_lock: &RunDirLock) -> Result<(), NetnsError> {
    restore_parked_covers();
    let shared = || {
        mount(
            None::<&str>,
            NETNS_DIR,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match shared() {
        Ok(()) => return Ok(()),
        // Not a mount point yet.
        Err(Errno::EINVAL) => {}
        Err(source) => {
            return Err(NetnsError::MakeShared {
                path: NETNS_DIR.into(),
                source,
            })
        }
    }
    mount(
        Some(NETNS_DIR),
        NETNS_DIR,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|source| NetnsError::MakeShared {
        path: NETNS_DIR.into(),
        source,
    })?;
    shared().map_err(|source| NetnsError::MakeShared {
        path: NETNS_DIR.into(),
        source,
    })
}

/// The mount ids of every mount whose mount point is `path`, innermost
/// last (from `/proc/self/mountinfo`; vmjail's paths need no unescaping).
pub(super) fn mounts_at(path: &Path) -> Vec<u64> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let wanted = path.to_string_lossy();
    info.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let id = fields.next()?.parse().ok()?;
            let point = fields.nth(3)?;
            (point == wanted).then_some(id)
        })
        .collect()
}

/// Remove the pin at `path` that a mount on `/run/netns` shadows: move the
/// covering mount aside for a moment (a move keeps every mount on it, so
/// other tools' namespaces stay pinned), unmount and remove the original,
/// move the cover back. Only possible where `/run/netns`'s parent mount is
/// not shared (where it is, unmounting the copy already took the original
/// with it by propagation). Call with [`lock`] held.
pub(super) fn unshadow(_lock: &RunDirLock, path: &Path) -> Result<(), NetnsError> {
    let aside = PathBuf::from(format!("{ASIDE_PREFIX}{}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&aside)
        .or_else(|e| match e.kind() {
            ErrorKind::AlreadyExists => Ok(()),
            _ => Err(e),
        })
        .map_err(|source| NetnsError::CreateDir {
            path: aside.clone(),
            source,
        })?;
    move_mount(Path::new(NETNS_DIR), &aside)?;
    let removed = super::unmount_and_unlink(path);
    let restored = move_mount(&aside, Path::new(NETNS_DIR));
    if restored.is_ok() {
        let _ = std::fs::remove_dir(&aside);
    }
    restored.and(removed)
}

fn move_mount(from: &Path, to: &Path) -> Result<(), NetnsError> {
    mount(Some(from), to, None::<&str>, MsFlags::MS_MOVE, None::<&str>).map_err(|source| {
        NetnsError::MoveCover {
            from: from.to_owned(),
            to: to.to_owned(),
            source,
        }
    })
}

/// Covers a crashed [`unshadow`] left parked: move each back onto
/// `/run/netns` (or, when something already covers it again, detach the
/// parked one, whose own pins then go with it).
fn restore_parked_covers() {
    let Ok(entries) = std::fs::read_dir("/run") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(pid) = name.strip_prefix(&ASIDE_PREFIX["/run/".len()..]) else {
            continue;
        };
        // A live process of that pid may be in the middle of its unshadow.
        if pid
            .parse::<i32>()
            .is_ok_and(|p| crate::process::is_alive(p, None))
        {
            continue;
        }
        let parked = entry.path();
        if !mounts_at(&parked).is_empty() {
            if mounts_at(Path::new(NETNS_DIR)).is_empty() {
                let _ = move_mount(&parked, Path::new(NETNS_DIR));
            } else {
                let _ = umount2(&parked, MntFlags::MNT_DETACH);
            }
        }
        let _ = std::fs::remove_dir(&parked);
    }
}
