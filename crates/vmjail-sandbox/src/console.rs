//! Following a guest console log as it grows (`vmjail run`).
//!
//! The log lives in the jail, a directory the VMM's unprivileged uid can
//! write, so vmjail (root) must not be tricked into streaming another file:
//! the log is opened with `O_NOFOLLOW` and must be a regular file.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("opening console log {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("console log {path} is not a regular file; refusing to stream it")]
    NotRegular { path: PathBuf },
    #[error("reading console log {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing the console to the output: {0}")]
    Write(#[source] std::io::Error),
}

/// Follows one console log file; opens it once it exists.
#[derive(Debug)]
pub struct ConsoleTail {
    path: PathBuf,
    file: Option<File>,
}

impl ConsoleTail {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            file: None,
        }
    }

    /// Copy everything appended since the last call to `out`; returns the
    /// byte count (0 while the log does not exist yet).
    pub fn pump(&mut self, out: &mut dyn Write) -> Result<usize, ConsoleError> {
        if self.file.is_none() {
            self.file = self.open()?;
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(0);
        };
        let mut buf = [0u8; 16 * 1024];
        let mut total = 0;
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    out.write_all(&buf[..n]).map_err(ConsoleError::Write)?;
                    total += n;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(ConsoleError::Read {
                        path: self.path.clone(),
                        source,
                    })
                }
            }
        }
        if total > 0 {
            out.flush().map_err(ConsoleError::Write)?;
        }
        Ok(total)
    }

    fn open(&self) -> Result<Option<File>, ConsoleError> {
        let file = match std::fs::OpenOptions::new()
            .read(true)
            // Never block on a FIFO planted in place of the log.
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
            .open(&self.path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(ConsoleError::Open {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let meta = file.metadata().map_err(|source| ConsoleError::Open {
            path: self.path.clone(),
            source,
        })?;
        if !meta.is_file() {
            return Err(ConsoleError::NotRegular {
                path: self.path.clone(),
            });
        }
        Ok(Some(file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_what_is_appended_once_the_file_appears() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.log");
        let mut tail = ConsoleTail::new(&path);
        let mut out = Vec::new();
        assert_eq!(tail.pump(&mut out).unwrap(), 0);
        let mut log = File::create(&path).unwrap();
        log.write_all(b"hello ").unwrap();
        assert_eq!(tail.pump(&mut out).unwrap(), 6);
        assert_eq!(tail.pump(&mut out).unwrap(), 0);
        log.write_all(b"VMJAIL-GUEST-READY\n").unwrap();
        tail.pump(&mut out).unwrap();
        assert_eq!(out, b"hello VMJAIL-GUEST-READY\n");
    }

    #[test]
    fn refuses_a_symlink_or_a_fifo_in_place_of_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "do not print").unwrap();
        let link = dir.path().join("link.log");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let mut out = Vec::new();
        let err = ConsoleTail::new(&link).pump(&mut out).unwrap_err();
        assert!(matches!(err, ConsoleError::Open { .. }), "{err}");
        let fifo = dir.path().join("fifo.log");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = ConsoleTail::new(&fifo).pump(&mut out).unwrap_err();
        assert!(matches!(err, ConsoleError::NotRegular { .. }), "{err}");
        assert!(out.is_empty());
    }
}
