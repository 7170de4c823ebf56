//! Connecting to the QMP socket QEMU created inside its jail.
//!
//! The socket's directory belongs to the jailed (hostile) uid, which could
//! swap the socket for a symlink to any host socket. So the connection is
//! made from a short-lived thread that has its own filesystem context
//! (`unshare(CLONE_FS)`) chrooted into the jail root: whatever the path
//! resolves to, it resolves inside the jail. The in-jail path is also short,
//! so the 107-byte `sun_path` limit never bites however deep the jail is.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sched::{unshare, CloneFlags};

/// Why no connection was made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("entering jail root {root} (unshare CLONE_FS + chroot): {source}")]
    EnterRoot { root: PathBuf, source: nix::Error },
    #[error("connecting to {path} in the jail: {source}")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no socket at {path} in the jail within {timeout:?} (last error: {last})")]
    Timeout {
        path: PathBuf,
        timeout: Duration,
        last: std::io::Error,
    },
    #[error("the connecting thread died")]
    Thread,
}

/// Connect to `path_in_jail` under `root`, retrying while the socket does
/// not exist yet or refuses, for up to `timeout`.
pub fn connect_in_jail(
    root: &Path,
    path_in_jail: &Path,
    timeout: Duration,
) -> Result<UnixStream, ConnectError> {
    let root = root.to_path_buf();
    let path = path_in_jail.to_path_buf();
    std::thread::spawn(move || {
        unshare(CloneFlags::CLONE_FS).map_err(|source| ConnectError::EnterRoot {
            root: root.clone(),
            source,
        })?;
        nix::unistd::chroot(&root)
            .and_then(|()| nix::unistd::chdir("/"))
            .map_err(|source| ConnectError::EnterRoot {
                root: root.clone(),
                source,
            })?;
        let deadline = Instant::now() + timeout;
        loop {
            match UnixStream::connect(&path) {
                Ok(stream) => return Ok(stream),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                    ) =>
                {
                    if Instant::now() >= deadline {
                        return Err(ConnectError::Timeout {
                            path,
                            timeout,
                            last: e,
                        });
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(source) => return Err(ConnectError::Connect { path, source }),
            }
        }
    })
    .join()
    .map_err(|_| ConnectError::Thread)?
}
