//! Network namespaces of sandboxes, pinned at `/run/netns/vmjail-<id>` (the
//! place `ip netns` uses): one vmjail creates ([`create`]), or one it was
//! given and pins so that no later command depends on the path it was given
//! by ([`pin`]); and taps left in namespaces vmjail does not own.

mod rundir;

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use crate::SandboxId;

/// Where `ip netns` keeps named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("creating {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("locking {path} (flock, as iproute2 does): {source}")]
    LockDir { path: PathBuf, source: Errno },
    #[error("making {path} a shared mount point (as `ip netns add` does): {source}")]
    MakeShared { path: PathBuf, source: Errno },
    #[error("network namespace file {path} already exists (left by another sandbox of the same id?); remove it with `ip netns delete` or pick another id")]
    Exists { path: PathBuf },
    #[error("creating the mount point {path}: {source}")]
    CreateFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("unshare(CLONE_NEWNET) for {path}: {source} (needs CAP_SYS_ADMIN)")]
    Unshare { path: PathBuf, source: Errno },
    #[error("opening network namespace {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bind-mounting the network namespace onto {path}: {source}")]
    Bind { path: PathBuf, source: Errno },
    #[error("unmounting network namespace {path}: {source}")]
    Unmount { path: PathBuf, source: Errno },
    #[error("removing {path}: {source}")]
    RemoveFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is still mounted under a later mount of /run/netns and cannot be reached: {reason}"
    )]
    Shadowed { path: PathBuf, reason: String },
    #[error("moving the mount {from} to {to}: {source}")]
    MoveCover {
        from: PathBuf,
        to: PathBuf,
        source: Errno,
    },
    #[error("the netns helper thread for {path} panicked")]
    Thread { path: PathBuf },
}

/// The namespace path vmjail uses for sandbox `id` in `dir` (`/run/netns`
/// but in the lifecycle's unit tests).
pub fn path_for(dir: &Path, id: &SandboxId) -> PathBuf {
    dir.join(format!("vmjail-{id}"))
}

/// Create a new, empty network namespace pinned at `path` by a bind mount.
///
/// `unshare` runs in a short-lived thread: only that thread moves to the new
/// namespace, the rest of vmjail stays where it was, and the namespace
/// outlives the thread through the mount.
pub fn create(path: &Path) -> Result<(), NetnsError> {
    let target = path.to_owned();
    pin_with(path, move || {
        unshare(CloneFlags::CLONE_NEWNET).map_err(|source| NetnsError::Unshare {
            path: target.clone(),
            source,
        })?;
        bind(Path::new("/proc/thread-self/ns/net"), &target)
    })
}

/// Pin the network namespace `ns` (held open, already checked to be one)
/// at `path`, so that the sandbox keeps it whatever happens to the path it
/// was named by (a `/proc/<pid>/ns/net` whose pid exits and is reused).
pub fn pin(ns: &File, path: &Path) -> Result<(), NetnsError> {
    let source = PathBuf::from(format!("/proc/self/fd/{}", ns.as_raw_fd()));
    let target = path.to_owned();
    pin_with(path, move || bind(&source, &target))
}

/// Create the mount point `path` and bind a namespace onto it with `mount`
/// (run on a thread of its own), under iproute2's lock on a shared
/// `/run/netns`. On failure only the empty mount point existed: it goes.
fn pin_with(
    path: &Path,
    mount: impl FnOnce() -> Result<(), NetnsError> + Send + 'static,
) -> Result<(), NetnsError> {
    // iproute2's convention holds for its own directory; a private test
    // directory is nobody else's.
    let _lock = match path.parent() == Some(Path::new(NETNS_DIR)) {
        true => {
            let lock = rundir::lock()?;
            rundir::ensure_shared(&lock)?;
            Some(lock)
        }
        false => None,
    };
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            return Err(NetnsError::Exists {
                path: path.to_owned(),
            })
        }
        Err(source) => {
            return Err(NetnsError::CreateFile {
                path: path.to_owned(),
                source,
            })
        }
    }
    let pinned = std::thread::spawn(mount).join().unwrap_or_else(|_| {
        Err(NetnsError::Thread {
            path: path.to_owned(),
        })
    });
    if pinned.is_err() {
        let _ = std::fs::remove_file(path);
    }
    pinned
}

fn bind(source: &Path, target: &Path) -> Result<(), NetnsError> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|source| NetnsError::Bind {
        path: target.to_owned(),
        source,
    })
}

/// Unmount and remove a namespace pinned by [`create`] or [`pin`].
/// Idempotent: a missing or never-mounted path is fine. A pin shadowed by a
/// later mount of `/run/netns` (see `rundir`) is reached and removed too.
pub fn remove(path: &Path) -> Result<(), NetnsError> {
    match unmount_and_unlink(path) {
        Err(NetnsError::RemoveFile { source, .. })
            if source.raw_os_error() == Some(nix::libc::EBUSY)
                && path.parent() == Some(Path::new(NETNS_DIR)) =>
        {
            let lock = rundir::lock()?;
            rundir::unshadow(&lock, path).map_err(|e| NetnsError::Shadowed {
                path: path.to_owned(),
                reason: e.to_string(),
            })
        }
        other => other,
    }
}

fn unmount_and_unlink(path: &Path) -> Result<(), NetnsError> {
    // Every mount on the path, in case it was pinned more than once.
    for _ in rundir::mounts_at(path) {
        match umount2(path, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW) {
            Ok(()) => {}
            Err(Errno::EINVAL) | Err(Errno::ENOENT) => break,
            Err(source) => {
                return Err(NetnsError::Unmount {
                    path: path.to_owned(),
                    source,
                })
            }
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(source) => Err(NetnsError::RemoveFile {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Delete tap devices a backend left in a namespace vmjail does not own
/// (in an owned one they go with the namespace). Best effort: a tap (or a
/// namespace) that no longer exists is fine; failures are returned as
/// messages.
pub fn delete_taps(netns: &Path, taps: &[String]) -> Vec<String> {
    taps.iter()
        .filter_map(|tap| {
            vmjail_vmm::net::remove_tap(netns, tap)
                .err()
                .map(|e| format!("{tap}: {e}"))
        })
        .collect()
}

// NS_GET_NSTYPE from <linux/nsfs.h>: _IO(0xb7, 0x3).
nix::ioctl_none!(ns_get_nstype, 0xb7, 3);

/// Whether the open namespace file `ns` is a *network* namespace.
pub fn is_net_namespace(ns: &File) -> std::io::Result<bool> {
    // SAFETY: a plain ioctl with no argument on a descriptor we own.
    let kind = unsafe { ns_get_nstype(ns.as_raw_fd()) }.map_err(std::io::Error::from)?;
    Ok(kind == CloneFlags::CLONE_NEWNET.bits())
}

/// Whether the open namespace file `ns` is the host's network namespace:
/// the one vmjail itself runs in, or init's (where init lets us see it: a
/// non-dumpable init hides its namespaces even from root).
pub fn is_host_namespace(ns: &File) -> std::io::Result<bool> {
    let given = ns.metadata()?;
    let same = |host: &std::fs::Metadata| host.dev() == given.dev() && host.ino() == given.ino();
    let own = std::fs::metadata("/proc/thread-self/ns/net")?;
    let init = std::fs::metadata("/proc/1/ns/net").ok();
    Ok(same(&own) || init.as_ref().is_some_and(same))
}
