//! Run a closure with a thread inside another network namespace.

use std::os::fd::AsFd;
use std::path::Path;

use nix::sched::{setns, CloneFlags};

use super::Error;

/// Run `work` on a fresh thread that first joins the netns at `path`.
/// `setns(CLONE_NEWNET)` only moves the calling thread, so the rest of the
/// process keeps its namespace; the thread ends with `work`. A scoped thread,
/// so `work` may borrow from the caller.
pub(super) fn run_in<T: Send>(path: &Path, work: impl FnOnce() -> T + Send) -> Result<T, Error> {
    let fd = std::fs::File::open(path).map_err(|source| Error::OpenNetns {
        path: path.to_path_buf(),
        source,
    })?;
    std::thread::scope(|scope| {
        let handle = scope.spawn(|| -> Result<T, Error> {
            setns(fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|source| Error::JoinNetns {
                path: path.to_path_buf(),
                source,
            })?;
            Ok(work())
        });
        handle.join().map_err(|_| Error::NetnsThread {
            path: path.to_path_buf(),
        })?
    })
}
