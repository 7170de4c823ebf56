//! Host-side access to files the VMM can touch (its API socket, console
//! log): the jailed user owns the directories, so it may swap any entry for
//! a symlink to a host path (`/run/containerd/containerd.sock`,
//! `/etc/shadow`). Every component is opened with `O_NOFOLLOW` relative to
//! its parent, starting from the jail root.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{Mode, SFlag};

use crate::error::JailError;
use crate::fsat;
use crate::spec::host_path;
use crate::validate::{self, MAX_SOCKET_PATH};

/// Open `path_in_jail` (absolute, inside the jail whose host root is
/// `root`) with `flags`, never following a symlink on the way or at the end
/// (`O_NOFOLLOW | O_CLOEXEC` are added). With `O_CREAT` the mode is 0600.
pub fn open_in_jail(root: &Path, path_in_jail: &Path, flags: OFlag) -> Result<OwnedFd, JailError> {
    let (dir, name, shown) = parent_in_jail(root, path_in_jail)?;
    let fd = openat(
        Some(dir.as_raw_fd()),
        name.as_path(),
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| match e {
        nix::Error::ELOOP => JailError::UnexpectedFileType {
            path: shown.clone(),
            expected: "file (not a symlink)",
        },
        e => JailError::fs("opening", &shown, e),
    })?;
    Ok(fsat::own(fd))
}

/// Connect to the Unix socket at `path_in_jail`. The socket inode is held
/// by an `O_PATH | O_NOFOLLOW` handle, checked to be a socket, and connected
/// to through `/proc/self/fd/N`: a symlink planted there is never followed.
pub fn connect_in_jail(root: &Path, path_in_jail: &Path) -> Result<UnixStream, JailError> {
    let host = host_path(root, path_in_jail);
    let len = host.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(JailError::SocketAddressTooLong { path: host, len });
    }
    let (dir, name, shown) = parent_in_jail(root, path_in_jail)?;
    let socket = fsat::open_path_nofollow(&dir, name.as_os_str(), &shown)?;
    let st = fsat::stat_fd(&socket, &shown)?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFSOCK {
        return Err(JailError::UnexpectedFileType {
            path: shown,
            expected: "socket",
        });
    }
    UnixStream::connect(fsat::proc_fd_path(&socket)).map_err(|source| JailError::Connect {
        path: shown,
        source,
    })
}

/// The open parent directory of `path_in_jail`, its last name, its host path.
fn parent_in_jail(
    root: &Path,
    path_in_jail: &Path,
) -> Result<(OwnedFd, PathBuf, PathBuf), JailError> {
    validate::validate_path_in_jail(path_in_jail)?;
    let shown = host_path(root, path_in_jail);
    let root_fd = fsat::open_dir(root)?;
    let (parents, name) = fsat::split(path_in_jail);
    let name = PathBuf::from(name);
    match fsat::walk_existing(&root_fd, root, &parents)? {
        Some((dir, _)) => Ok((dir, name, shown)),
        None => Err(JailError::fs("opening", &shown, nix::Error::ENOENT)),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::net::UnixListener;
    use std::path::Path;

    use nix::fcntl::OFlag;

    use super::*;

    #[test]
    fn symlinks_in_the_jail_are_not_followed() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"host").unwrap();
        let _listener = UnixListener::bind(outside.path().join("host.sock")).unwrap();
        std::fs::create_dir(root.path().join("run")).unwrap();
        std::fs::write(root.path().join("run/log"), b"jail").unwrap();
        let _jail_listener = UnixListener::bind(root.path().join("run/api.sock")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.path().join("run/evil"))
            .unwrap();
        std::os::unix::fs::symlink(outside.path().join("host.sock"), root.path().join("run/s"))
            .unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("up")).unwrap();

        let fd = open_in_jail(root.path(), Path::new("/run/log"), OFlag::O_RDONLY).unwrap();
        let mut text = String::new();
        std::fs::File::from(fd).read_to_string(&mut text).unwrap();
        assert_eq!(text, "jail");
        for bad in ["/run/evil", "/up/secret", "/run/../up/secret"] {
            assert!(
                open_in_jail(root.path(), Path::new(bad), OFlag::O_RDONLY).is_err(),
                "{bad}"
            );
        }

        connect_in_jail(root.path(), Path::new("/run/api.sock")).unwrap();
        for bad in ["/run/s", "/up/host.sock", "/run/log"] {
            assert!(
                connect_in_jail(root.path(), Path::new(bad)).is_err(),
                "{bad}"
            );
        }
        let long = format!("/{}", "s".repeat(120));
        let err = connect_in_jail(root.path(), Path::new(&long)).unwrap_err();
        assert!(
            matches!(err, JailError::SocketAddressTooLong { .. }),
            "{err}"
        );
    }
}
