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
use std::sync::atomic::{AtomicBool, Ordering};
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
    #[error("the VMM exited before {path} in the jail answered")]
    Exited { path: PathBuf },
    #[error("the connecting thread died")]
    Thread,
}

/// Connect to `path_in_jail` under `root`, retrying while the socket does
/// not exist yet or refuses, for up to `timeout` and while `alive` (the
/// VMM that is to open it) says it still runs.
pub fn connect_in_jail(
    root: &Path,
    path_in_jail: &Path,
    timeout: Duration,
    alive: &dyn Fn() -> bool,
) -> Result<UnixStream, ConnectError> {
    let gone = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let connecting = scope.spawn(|| connect_chrooted(root, path_in_jail, timeout, &gone));
        // `alive` reads the host's /proc: it runs here, outside the chroot.
        while !connecting.is_finished() {
            if !gone.load(Ordering::Relaxed) && !alive() {
                gone.store(true, Ordering::Relaxed);
            }
            std::thread::sleep(POLL);
        }
        connecting.join().map_err(|_| ConnectError::Thread)?
    })
}

/// How often the socket is tried and the VMM looked at.
const POLL: Duration = Duration::from_millis(5);

/// The connecting thread: its own filesystem context, chrooted to `root`;
/// it gives up once `gone` is set.
fn connect_chrooted(
    root: &Path,
    path: &Path,
    timeout: Duration,
    gone: &AtomicBool,
) -> Result<UnixStream, ConnectError> {
    let path = path.to_path_buf();
    unshare(CloneFlags::CLONE_FS).map_err(|source| ConnectError::EnterRoot {
        root: root.to_path_buf(),
        source,
    })?;
    nix::unistd::chroot(root)
        .and_then(|()| nix::unistd::chdir("/"))
        .map_err(|source| ConnectError::EnterRoot {
            root: root.to_path_buf(),
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
                if gone.load(Ordering::Relaxed) {
                    return Err(ConnectError::Exited { path });
                }
                if Instant::now() >= deadline {
                    return Err(ConnectError::Timeout {
                        path,
                        timeout,
                        last: e,
                    });
                }
                std::thread::sleep(POLL);
            }
            Err(source) => return Err(ConnectError::Connect { path, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VMM that died before opening its socket ends the wait at once,
    /// not at the timeout. (chroot needs root; CI runs as root.)
    #[test]
    fn a_dead_vmm_ends_the_wait_before_the_timeout() {
        if !nix::unistd::geteuid().is_root() {
            assert!(std::env::var_os("CI").is_none(), "CI runs as root");
            eprintln!("skipped: chroot needs root");
            return;
        }
        let root = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let err = connect_in_jail(
            root.path(),
            Path::new("/run/qmp.sock"),
            Duration::from_secs(30),
            &|| false,
        )
        .unwrap_err();
        assert!(matches!(err, ConnectError::Exited { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5), "{err}");
        let err = connect_in_jail(
            root.path(),
            Path::new("/run/qmp.sock"),
            Duration::from_millis(50),
            &|| true,
        )
        .unwrap_err();
        assert!(matches!(err, ConnectError::Timeout { .. }), "{err}");
    }
}
