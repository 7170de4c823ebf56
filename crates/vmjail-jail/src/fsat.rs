//! Race-free file-system steps inside a jail: every path component below the
//! jail root is opened relative to its parent with `O_NOFOLLOW`, so a symlink
//! planted inside the jail (by the jailed VMM, which owns the directories) is
//! never followed to a host path.

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{fchown, Gid, Uid};

use crate::error::JailError;

/// Owner and mode for directories created on the way.
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

impl Owner {
    pub fn chown(&self, fd: RawFd, path: &Path) -> Result<(), JailError> {
        fchown(
            fd,
            Some(Uid::from_raw(self.uid)),
            Some(Gid::from_raw(self.gid)),
        )
        .map_err(|e| JailError::fs("chown", path, e))
    }
}

pub fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Open a trusted host directory (the jail root, a canonical base dir).
pub fn open_dir(path: &Path) -> Result<OwnedFd, JailError> {
    let fd = nix::fcntl::open(
        path,
        OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
        Mode::empty(),
    )
    .map_err(|e| JailError::fs("opening directory", path, e))?;
    Ok(own(fd))
}

/// Open one existing directory entry `name` below `dir` without following a symlink.
pub fn open_subdir(dir: &OwnedFd, name: &OsStr, shown: &Path) -> Result<OwnedFd, JailError> {
    let fd = openat(
        Some(dir.as_raw_fd()),
        name,
        OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
        Mode::empty(),
    )
    .map_err(|e| match e {
        nix::Error::ELOOP | nix::Error::ENOTDIR => JailError::UnexpectedFileType {
            path: shown.to_path_buf(),
            expected: "directory",
        },
        e => JailError::fs("opening directory", shown, e),
    })?;
    Ok(own(fd))
}

/// Create (if missing) and open directory `name` below `dir`. A directory we
/// create gets `mode` and `owner`; an existing one is opened as is. Opened
/// first: on the launch path the directories mostly exist, and a failed
/// `mkdirat` would be one syscall more each.
pub fn ensure_subdir(
    dir: &OwnedFd,
    name: &OsStr,
    shown: &Path,
    mode: u32,
    owner: Option<Owner>,
) -> Result<OwnedFd, JailError> {
    match open_subdir(dir, name, shown) {
        Err(JailError::Fs {
            source: nix::Error::ENOENT,
            ..
        }) => {}
        opened => return opened,
    }
    match mkdirat(Some(dir.as_raw_fd()), name, Mode::from_bits_truncate(mode)) {
        Ok(()) => {
            let fd = open_subdir(dir, name, shown)?;
            // mkdir's mode is masked by the umask: set it exactly.
            nix::sys::stat::fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(mode))
                .map_err(|e| JailError::fs("chmod", shown, e))?;
            if let Some(owner) = owner {
                owner.chown(fd.as_raw_fd(), shown)?;
            }
            Ok(fd)
        }
        Err(nix::Error::EEXIST) => open_subdir(dir, name, shown),
        Err(e) => Err(JailError::fs("creating directory", shown, e)),
    }
}

/// Split an in-jail path (validated absolute, normal components) into its
/// parent components and final name.
pub fn split(path_in_jail: &Path) -> (Vec<&OsStr>, &OsStr) {
    let mut parts: Vec<&OsStr> = path_in_jail
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let last = parts.pop().unwrap_or_default();
    (parts, last)
}

/// Walk `parents` below `root`, creating missing directories (0700, owned by
/// `owner`). Returns the fd of the last directory and its host path.
pub fn walk_create(
    root: &OwnedFd,
    root_path: &Path,
    parents: &[&OsStr],
    owner: Option<Owner>,
) -> Result<(OwnedFd, PathBuf), JailError> {
    let mut shown = root_path.to_path_buf();
    let mut dir = open_subdir_dup(root, root_path)?;
    for name in parents {
        shown.push(name);
        dir = ensure_subdir(&dir, name, &shown, 0o700, owner)?;
    }
    Ok((dir, shown))
}

/// Walk existing `parents` below `root`; `None` when one is missing.
pub fn walk_existing(
    root: &OwnedFd,
    root_path: &Path,
    parents: &[&OsStr],
) -> Result<Option<(OwnedFd, PathBuf)>, JailError> {
    let mut shown = root_path.to_path_buf();
    let mut dir = open_subdir_dup(root, root_path)?;
    for name in parents {
        shown.push(name);
        dir = match open_subdir(&dir, name, &shown) {
            Ok(fd) => fd,
            Err(JailError::Fs {
                source: nix::Error::ENOENT,
                ..
            }) => return Ok(None),
            Err(e) => return Err(e),
        };
    }
    Ok(Some((dir, shown)))
}

fn open_subdir_dup(dir: &OwnedFd, shown: &Path) -> Result<OwnedFd, JailError> {
    dir.try_clone()
        .map_err(|e| JailError::fs("duplicating fd of", shown, errno_of(&e)))
}

/// Create a new empty regular file `name` below `dir` (never through a
/// symlink, never an existing file).
pub fn create_file(
    dir: &OwnedFd,
    name: &OsStr,
    shown: &Path,
    mode: u32,
) -> Result<OwnedFd, JailError> {
    let fd = openat(
        Some(dir.as_raw_fd()),
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_WRONLY,
        Mode::from_bits_truncate(mode),
    )
    .map_err(|e| match e {
        nix::Error::EEXIST => JailError::AlreadyPlaced {
            path: shown.to_path_buf(),
        },
        e => JailError::fs("creating file", shown, e),
    })?;
    Ok(own(fd))
}

/// Open `name` below `dir` as an `O_PATH` handle without following a symlink
/// (the handle to mount onto via `/proc/self/fd/N`).
pub fn open_path_nofollow(dir: &OwnedFd, name: &OsStr, shown: &Path) -> Result<OwnedFd, JailError> {
    let fd = openat(
        Some(dir.as_raw_fd()),
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| JailError::fs("opening", shown, e))?;
    let fd = own(fd);
    let st = stat_fd(&fd, shown)?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK {
        return Err(JailError::UnexpectedFileType {
            path: shown.to_path_buf(),
            expected: "file or directory",
        });
    }
    Ok(fd)
}

pub fn stat_fd(fd: &OwnedFd, shown: &Path) -> Result<FileStat, JailError> {
    fstat(fd.as_raw_fd()).map_err(|e| JailError::fs("stat", shown, e))
}

/// `/proc/self/fd/N`: mounting onto this path mounts onto exactly the inode
/// held open, whatever happens to the path meanwhile.
pub fn proc_fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

pub fn errno_of(e: &std::io::Error) -> nix::Error {
    e.raw_os_error()
        .map(nix::Error::from_raw)
        .unwrap_or(nix::Error::EIO)
}

/// The `<base>/<exec_name>` directory is shared by all jails of one VMM: if
/// anyone but root could write it, they could swap a jail dir under us.
pub fn check_root_only(dir: &OwnedFd, shown: &Path) -> Result<(), JailError> {
    let st = stat_fd(dir, shown)?;
    let mode = st.st_mode & 0o7777;
    if st.st_uid != 0 || mode & 0o022 != 0 {
        return Err(JailError::UnsafeExecDir {
            path: shown.to_path_buf(),
            uid: st.st_uid,
            mode,
        });
    }
    Ok(())
}
