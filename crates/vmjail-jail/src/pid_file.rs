//! The VMM's pid file, `<root>/<exec_name>.pid`, as vmjail reads it:
//! where Firecracker's jailer leaves the VMM's pid, and where teardown
//! finds a VMM whose pid never reached the record.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::JailError;

/// `<root>/<exec_name>.pid`: on the host below the jail root, or `/` inside
/// the jail.
pub fn path(root: &Path, exec_name: &str) -> PathBuf {
    root.join(format!("{exec_name}.pid"))
}

/// Most bytes a pid file may hold.
const MAX_PID_FILE: u64 = 32;

/// `<root>/<exec_name>.pid`: `None` while absent or empty. The jail root
/// belongs to the VMM's user, who may have planted a symlink, a FIFO or a
/// huge file there: open without following or blocking, require a small
/// regular file.
pub fn read(path: &Path) -> Result<Option<i32>, JailError> {
    let error = |reason: String| JailError::PidFile {
        path: path.to_path_buf(),
        reason,
    };
    let file = match std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(error(e.to_string())),
    };
    let meta = file.metadata().map_err(|e| error(e.to_string()))?;
    if !meta.is_file() {
        return Err(error("not a regular file".to_owned()));
    }
    let mut text = String::new();
    file.take(MAX_PID_FILE)
        .read_to_string(&mut text)
        .map_err(|e| error(e.to_string()))?;
    if text.is_empty() {
        return Ok(None);
    }
    let pid: i32 = text
        .trim()
        .parse()
        .map_err(|_| error(format!("{text:?} is not a pid")))?;
    if pid <= 1 {
        return Err(error(format!("{pid} is not a VMM pid")));
    }
    Ok(Some(pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planted_fifo_or_symlink_pid_file_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.pid");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(read(&fifo).is_err());
        let target = dir.path().join("real.pid");
        std::fs::write(&target, "1234").unwrap();
        assert_eq!(read(&target).unwrap(), Some(1234));
        let link = dir.path().join("link.pid");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(read(&link).is_err());
        std::fs::write(&target, "9".repeat(100)).unwrap();
        assert!(read(&target).is_err());
    }

    #[test]
    fn an_absent_or_empty_pid_file_is_not_there_yet() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vmm.pid");
        assert_eq!(read(&path).unwrap(), None);
        std::fs::write(&path, "").unwrap();
        assert_eq!(read(&path).unwrap(), None);
        std::fs::write(&path, "1").unwrap();
        assert!(read(&path).is_err(), "pid 1 is never a VMM");
    }
}
