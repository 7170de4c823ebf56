//! Host-side access to files the VMM can touch (its API socket, console
//! log): the jailed user owns the directories, so it may swap any entry for
//! a symlink to a host path (`/run/containerd/containerd.sock`,
//! `/etc/shadow`). Every component is opened with `O_NOFOLLOW` relative to
//! its parent, starting from the jail root.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

use nix::fcntl::{openat, OFlag};
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr};
use nix::sys::stat::{Mode, SFlag};

use crate::error::JailError;
use crate::fsat;
use crate::spec::host_path;
use crate::validate;

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

/// Connect to the Unix socket at `path_in_jail`, retrying for up to
/// `timeout` while it does not exist yet, refuses, or its backlog is full —
/// and while `alive` (the VMM that is to open it) says it still runs: a
/// VMM that died ends the wait at once.
///
/// The socket inode is held by an `O_PATH | O_NOFOLLOW` handle, checked to
/// be a socket, and connected to through `/proc/self/fd/N`: a symlink
/// planted there is never followed, and the path is short however deep the
/// jail is. The connect itself is non-blocking: a VMM that stops accepting
/// (a full backlog) makes a blocking connect hang forever; here it costs at
/// most `timeout` and then an error. A zero `timeout` is one attempt.
pub fn connect_in_jail(
    root: &Path,
    path_in_jail: &Path,
    timeout: Duration,
    alive: &dyn Fn() -> bool,
) -> Result<UnixStream, JailError> {
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(1);
    loop {
        match connect_once(root, path_in_jail) {
            Ok(stream) => return Ok(stream),
            Err(Attempt::Retry(_)) if !alive() => {
                return Err(JailError::VmmExited {
                    path: host_path(root, path_in_jail),
                })
            }
            Err(Attempt::Retry(_)) if Instant::now() < deadline => {
                let left = deadline.saturating_duration_since(Instant::now());
                std::thread::sleep(delay.min(left));
                // Short: a VMM's socket appears within tens of ms, and
                // each overslept ms is start-up latency.
                delay = (delay * 2).min(Duration::from_millis(2));
            }
            Err(Attempt::Retry(error) | Attempt::Fail(error)) => return Err(error),
        }
    }
}

/// One connection attempt: worth retrying, or not.
enum Attempt {
    Retry(JailError),
    Fail(JailError),
}

fn connect_once(root: &Path, path_in_jail: &Path) -> Result<UnixStream, Attempt> {
    let (dir, name, shown) = parent_in_jail(root, path_in_jail).map_err(|e| match e {
        JailError::Fs {
            source: nix::Error::ENOENT,
            ..
        } => Attempt::Retry(e),
        e => Attempt::Fail(e),
    })?;
    let socket = fsat::open_path_nofollow(&dir, name.as_os_str(), &shown).map_err(|e| match e {
        JailError::Fs {
            source: nix::Error::ENOENT,
            ..
        } => Attempt::Retry(e),
        e => Attempt::Fail(e),
    })?;
    let st = fsat::stat_fd(&socket, &shown).map_err(Attempt::Fail)?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFSOCK {
        return Err(Attempt::Fail(JailError::UnexpectedFileType {
            path: shown,
            expected: "socket",
        }));
    }
    let connect_error = |source: nix::Error| JailError::Connect {
        path: shown.clone(),
        source: source.into(),
    };
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| Attempt::Fail(connect_error(e)))?;
    let address =
        UnixAddr::new(&fsat::proc_fd_path(&socket)).map_err(|e| Attempt::Fail(connect_error(e)))?;
    match socket::connect(fd.as_raw_fd(), &address) {
        Ok(()) => {}
        // Not listening yet, or its backlog is full.
        Err(e @ (nix::Error::ECONNREFUSED | nix::Error::EAGAIN | nix::Error::ENOENT)) => {
            return Err(Attempt::Retry(connect_error(e)))
        }
        Err(e) => return Err(Attempt::Fail(connect_error(e))),
    }
    let stream = UnixStream::from(fd);
    stream.set_nonblocking(false).map_err(|source| {
        Attempt::Fail(JailError::Connect {
            path: shown,
            source,
        })
    })?;
    Ok(stream)
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
    use std::time::{Duration, Instant};

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

        let no_wait = std::time::Duration::ZERO;
        connect_in_jail(root.path(), Path::new("/run/api.sock"), no_wait, &|| true).unwrap();
        for bad in ["/run/s", "/up/host.sock", "/run/log"] {
            assert!(
                connect_in_jail(root.path(), Path::new(bad), no_wait, &|| true).is_err(),
                "{bad}"
            );
        }
        // However deep the jail, the path connected to is /proc/self/fd/N.
        let deep = root.path().join("d".repeat(100));
        std::fs::create_dir(&deep).unwrap();
        // Bound by a relative name from a thread of its own cwd: the host
        // path is too long for any socket address.
        let _deep_listener = std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS).unwrap();
            std::env::set_current_dir(&deep).unwrap();
            UnixListener::bind("api.sock").unwrap()
        })
        .join()
        .unwrap();
        let in_jail = format!("/{}/api.sock", "d".repeat(100));
        connect_in_jail(root.path(), Path::new(&in_jail), no_wait, &|| true).unwrap();
    }

    /// A listener that never accepts: once its backlog is full a blocking
    /// connect would hang forever; this one gives up at its deadline.
    #[test]
    fn a_full_backlog_costs_the_timeout_not_forever() {
        let root = tempfile::tempdir().unwrap();
        let listener = UnixListener::bind(root.path().join("api.sock")).unwrap();
        let mut held = Vec::new();
        let err = loop {
            match connect_in_jail(root.path(), Path::new("/api.sock"), Duration::ZERO, &|| {
                true
            }) {
                Ok(stream) => held.push(stream),
                Err(e) => break e,
            }
            assert!(held.len() < 10_000, "the backlog never filled");
        };
        assert!(matches!(err, JailError::Connect { .. }), "{err}");
        let started = Instant::now();
        let err = connect_in_jail(
            root.path(),
            Path::new("/api.sock"),
            Duration::from_millis(300),
            &|| true,
        )
        .unwrap_err();
        let waited = started.elapsed();
        assert!(matches!(err, JailError::Connect { .. }), "{err}");
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_secs(3),
            "{waited:?}"
        );
        drop(listener);
    }

    /// A socket that appears later is waited for.
    #[test]
    fn waits_for_a_socket_that_appears() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("late.sock");
        let binder = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            UnixListener::bind(path).unwrap()
        });
        connect_in_jail(
            root.path(),
            Path::new("/late.sock"),
            Duration::from_secs(5),
            &|| true,
        )
        .unwrap();
        drop(binder.join().unwrap());
    }

    /// A VMM that died before opening its socket ends the wait at once,
    /// not at the timeout.
    #[test]
    fn a_dead_vmm_ends_the_wait_before_the_timeout() {
        let root = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let err = connect_in_jail(
            root.path(),
            Path::new("/run/qmp.sock"),
            Duration::from_secs(30),
            &|| false,
        )
        .unwrap_err();
        assert!(matches!(err, JailError::VmmExited { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
