//! Following a guest console log as it grows (`vmjail run`).
//!
//! The log may live in the jail, whose directories the VMM's unprivileged
//! uid owns, so vmjail (root) must not be tricked into streaming another
//! file: below the jail root it is opened by a walk that follows no symlink
//! in any component (`vmjail_jail::open_in_jail`), elsewhere with
//! `O_NOFOLLOW`; either way it must be a regular file.

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
    /// The jail root, when the log may be below it.
    jail_root: Option<PathBuf>,
    file: Option<File>,
}

impl ConsoleTail {
    pub fn new(path: &Path, jail_root: Option<&Path>) -> Self {
        Self {
            path: path.to_owned(),
            jail_root: jail_root.map(Path::to_owned),
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
        let in_jail = self
            .jail_root
            .as_deref()
            .and_then(|root| Some((root, self.path.strip_prefix(root).ok()?)));
        let opened = match in_jail {
            Some((root, rel)) => {
                let flags = nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK;
                vmjail_jail::open_in_jail(root, &Path::new("/").join(rel), flags)
                    .map(File::from)
                    .map_err(|e| match e {
                        vmjail_jail::JailError::Fs { source, .. } => {
                            std::io::Error::from_raw_os_error(source as i32)
                        }
                        other => std::io::Error::other(other),
                    })
            }
            None => self.open_outside_jail(),
        };
        let file = match opened {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(ConsoleError::Open {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        self.regular(file).map(Some)
    }

    fn open_outside_jail(&self) -> std::io::Result<File> {
        std::fs::OpenOptions::new()
            .read(true)
            // Never block on a FIFO planted in place of the log.
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
            .open(&self.path)
    }

    fn regular(&self, file: File) -> Result<File, ConsoleError> {
        let meta = file.metadata().map_err(|source| ConsoleError::Open {
            path: self.path.clone(),
            source,
        })?;
        if !meta.is_file() {
            return Err(ConsoleError::NotRegular {
                path: self.path.clone(),
            });
        }
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_what_is_appended_once_the_file_appears() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.log");
        let mut tail = ConsoleTail::new(&path, None);
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
        let err = ConsoleTail::new(&link, None).pump(&mut out).unwrap_err();
        assert!(matches!(err, ConsoleError::Open { .. }), "{err}");
        let fifo = dir.path().join("fifo.log");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = ConsoleTail::new(&fifo, None).pump(&mut out).unwrap_err();
        assert!(matches!(err, ConsoleError::NotRegular { .. }), "{err}");
        assert!(out.is_empty());
    }

    /// A VMM owning `/run` in its jail swaps the directory for a symlink to
    /// a host directory: the log below the jail root is still never read
    /// through it.
    #[test]
    fn refuses_a_symlinked_directory_on_the_way_to_a_log_in_the_jail() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("host");
        std::fs::create_dir(&host).unwrap();
        std::fs::write(host.join("console.log"), "host secret").unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::os::unix::fs::symlink(&host, root.join("run")).unwrap();
        let mut out = Vec::new();
        let mut tail = ConsoleTail::new(&root.join("run/console.log"), Some(&root));
        assert!(tail.pump(&mut out).is_err());
        assert!(out.is_empty());

        // A real directory there: the log streams.
        std::fs::remove_file(root.join("run")).unwrap();
        std::fs::create_dir(root.join("run")).unwrap();
        std::fs::write(root.join("run/console.log"), "guest").unwrap();
        tail.pump(&mut out).unwrap();
        assert_eq!(out, b"guest");
    }
}
