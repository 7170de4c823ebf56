//! One lock per sandbox: `flock` on `<state_dir>/<id>.lock`.
//!
//! The lock file is removed when the sandbox is deleted. A process that
//! opened the old file before the unlink could then lock an inode nobody
//! else sees, so after locking we check that the path still names the inode
//! we hold, and retry if not.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::SandboxError;

/// An exclusive lock on one sandbox id, released on drop.
#[derive(Debug)]
pub struct SandboxLock {
    /// Held only for its lock, released when dropped.
    _file: Flock<File>,
    path: PathBuf,
}

impl SandboxLock {
    /// Wait for the lock.
    pub fn acquire(path: &Path) -> Result<Self, SandboxError> {
        // A blocking flock never reports EWOULDBLOCK; map it to an error anyway.
        Self::lock(path, FlockArg::LockExclusive)?.ok_or_else(|| SandboxError::Lock {
            path: path.to_owned(),
            source: nix::errno::Errno::EWOULDBLOCK.into(),
        })
    }

    /// Take the lock if nobody holds it; `None` when another process does.
    pub fn try_acquire(path: &Path) -> Result<Option<Self>, SandboxError> {
        Self::lock(path, FlockArg::LockExclusiveNonblock)
    }

    fn lock(path: &Path, arg: FlockArg) -> Result<Option<Self>, SandboxError> {
        let err = |source| SandboxError::Lock {
            path: path.to_owned(),
            source,
        };
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .mode(0o600)
                .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
                .open(path)
                .map_err(err)?;
            let file = match Flock::lock(file, arg) {
                Ok(file) => file,
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => return Ok(None),
                Err((_, errno)) => return Err(err(errno.into())),
            };
            let held = nix::sys::stat::fstat(file.as_raw_fd()).map_err(|e| err(e.into()))?;
            match nix::sys::stat::lstat(path) {
                Ok(now) if now.st_dev == held.st_dev && now.st_ino == held.st_ino => {
                    return Ok(Some(Self {
                        _file: file,
                        path: path.to_owned(),
                    }));
                }
                // Deleted (or replaced) while we waited: lock the new file.
                Ok(_) | Err(nix::errno::Errno::ENOENT) => continue,
                Err(errno) => return Err(err(errno.into())),
            }
        }
    }

    /// Remove the lock file while still holding it (the sandbox is gone),
    /// then release it.
    pub fn remove(self) -> Result<(), SandboxError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(SandboxError::RemoveLock {
                path: self.path.clone(),
                source,
            }),
        }
        // `self._file` drops here, after the unlink: the lock is released last.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn second_holder_waits_and_try_acquire_reports_busy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.lock");
        let held = SandboxLock::acquire(&path).unwrap();
        assert!(SandboxLock::try_acquire(&path).unwrap().is_none());
        let inside = Arc::new(AtomicUsize::new(0));
        let (p, i) = (path.clone(), inside.clone());
        let waiter = std::thread::spawn(move || {
            let _lock = SandboxLock::acquire(&p).unwrap();
            i.fetch_add(1, Ordering::SeqCst);
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(inside.load(Ordering::SeqCst), 0, "waiter got a held lock");
        drop(held);
        waiter.join().unwrap();
        assert_eq!(inside.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_waiter_on_a_removed_lock_file_relocks_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.lock");
        let held = SandboxLock::acquire(&path).unwrap();
        let p = path.clone();
        let waiter = std::thread::spawn(move || {
            let lock = SandboxLock::acquire(&p).unwrap();
            let fd = nix::sys::stat::fstat(lock._file.as_raw_fd()).unwrap();
            let now = nix::sys::stat::lstat(&p).unwrap();
            (fd.st_ino, now.st_ino)
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        held.remove().unwrap();
        let (held_ino, path_ino) = waiter.join().unwrap();
        assert_eq!(held_ino, path_ino, "waiter holds an unlinked inode");
    }

    #[test]
    fn refuses_a_symlinked_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.lock");
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &path).unwrap();
        let err = SandboxLock::acquire(&path).unwrap_err();
        assert!(matches!(err, SandboxError::Lock { .. }), "{err}");
        assert!(!dir.path().join("elsewhere").exists());
    }
}
