//! Network namespaces vmjail creates for sandboxes (`/run/netns/vmjail-<id>`,
//! the place `ip netns` uses), and taps left in namespaces it does not own.

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
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
    #[error("network namespace file {path} already exists (left by another sandbox of the same id?); remove it with `ip netns delete` or pick another id")]
    Exists { path: PathBuf },
    #[error("creating the mount point {path}: {source}")]
    CreateFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("unshare(CLONE_NEWNET) for {path}: {source} (needs CAP_SYS_ADMIN)")]
    Unshare { path: PathBuf, source: Errno },
    #[error("bind-mounting the new network namespace onto {path}: {source}")]
    Bind { path: PathBuf, source: Errno },
    #[error("unmounting network namespace {path}: {source}")]
    Unmount { path: PathBuf, source: Errno },
    #[error("removing {path}: {source}")]
    RemoveFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the netns helper thread for {path} panicked")]
    Thread { path: PathBuf },
}

/// The namespace path vmjail uses for sandbox `id`.
pub fn path_for(id: &SandboxId) -> PathBuf {
    Path::new(NETNS_DIR).join(format!("vmjail-{id}"))
}

/// Create a new, empty network namespace pinned at `path` by a bind mount.
///
/// `unshare` runs in a short-lived thread: only that thread moves to the new
/// namespace, the rest of vmjail stays where it was, and the namespace
/// outlives the thread through the mount.
pub fn create(path: &Path) -> Result<(), NetnsError> {
    if let Some(parent) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(|source| NetnsError::CreateDir {
                path: parent.to_owned(),
                source,
            })?;
    }
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
    let target = path.to_owned();
    let pinned = std::thread::spawn(move || -> Result<(), NetnsError> {
        unshare(CloneFlags::CLONE_NEWNET).map_err(|source| NetnsError::Unshare {
            path: target.clone(),
            source,
        })?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|source| NetnsError::Bind {
            path: target.clone(),
            source,
        })
    })
    .join()
    .unwrap_or_else(|_| {
        Err(NetnsError::Thread {
            path: path.to_owned(),
        })
    });
    if pinned.is_err() {
        // Only the empty mount point exists: undo it so a retry can succeed.
        let _ = std::fs::remove_file(path);
    }
    pinned
}

/// Unmount and remove a namespace created by [`create`]. Idempotent: a
/// missing or never-mounted path is fine.
pub fn remove(path: &Path) -> Result<(), NetnsError> {
    match umount2(path, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
        Err(source) => {
            return Err(NetnsError::Unmount {
                path: path.to_owned(),
                source,
            })
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

/// Whether `path` is a namespace file of a *network* namespace.
pub fn is_net_namespace(path: &Path) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path)?;
    // SAFETY: a plain ioctl with no argument on a descriptor we own.
    let kind = unsafe { ns_get_nstype(file.as_raw_fd()) }.map_err(std::io::Error::from)?;
    Ok(kind == CloneFlags::CLONE_NEWNET.bits())
}
