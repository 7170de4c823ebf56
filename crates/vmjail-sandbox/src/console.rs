//! A sandbox's guest console log: `<state_dir>/<id>/console.log`.
//!
//! The VMM writes the serial console to a pipe (its stdout) and never to a
//! path, so it cannot use the log to reach a host file; the log lives in
//! vmjail's root-only state directory and outlives `stop` until `delete`.
//! The console pump (`vmjail console-pump DIR`, a small process of its own
//! because `create` returns while the VM runs) copies the pipe into the log
//! until every writer — the VMM — is gone.
//!
//! The guest is hostile, so the log is bounded: when `console.log` holds
//! [`SEGMENT`] bytes it becomes `console.log.1` (replacing the older one)
//! and a new `console.log` starts. At most 2 × [`SEGMENT`] bytes, the
//! newest output, are kept. [`ConsoleTail`] reads both, in order, and
//! follows the log across these rotations.

use std::fs::File;
use std::io::{ErrorKind, Read, Seek, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, openat, renameat, OFlag};
use nix::sys::stat::Mode;

/// The log, in the sandbox's state directory.
pub const LOG: &str = "console.log";
/// The previous [`SEGMENT`] of the log.
pub const ROTATED: &str = "console.log.1";
/// Bytes per log file before it is rotated.
pub const SEGMENT: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("opening the console log directory {path}: {source}")]
    OpenDir { path: PathBuf, source: nix::Error },
    #[error("creating console log {path}: {source}")]
    Create { path: PathBuf, source: nix::Error },
    #[error("rotating console log {path} to {}: {source}", ROTATED)]
    Rotate { path: PathBuf, source: nix::Error },
    #[error("appending to console log {path}: {source}")]
    Append {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading the guest console from the VMM: {0}")]
    Input(#[source] std::io::Error),
    #[error("opening console log {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("console log {path} is not a regular file; refusing to read it")]
    NotRegular { path: PathBuf },
    #[error("reading console log {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing the console to the output: {0}")]
    Write(#[source] std::io::Error),
}

/// Create the empty log `path` (it must not exist): done by `create`
/// before the pump starts, so a sandbox's log exists from the first moment.
pub fn create_log(path: &Path) -> Result<(), ConsoleError> {
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path);
    created.map(drop).map_err(|e| ConsoleError::Create {
        path: path.to_owned(),
        source: errno(&e),
    })
}

/// The console pump's work: copy `input` into `<dir>/console.log` until
/// EOF, rotating every [`SEGMENT`] bytes (`segment` in tests).
pub fn pump(input: &mut dyn Read, dir: &Path, segment: u64) -> Result<(), ConsoleError> {
    let dir_fd = open(
        dir,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(owned)
    .map_err(|source| ConsoleError::OpenDir {
        path: dir.to_owned(),
        source,
    })?;
    let path = dir.join(LOG);
    let mut log = open_for_append(&dir_fd, &path, OFlag::empty())?;
    let mut size = log
        .metadata()
        .map_err(|source| ConsoleError::Append {
            path: path.clone(),
            source,
        })?
        .len();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(ConsoleError::Input(e)),
        };
        let mut chunk = &buf[..n];
        while !chunk.is_empty() {
            if size >= segment {
                renameat(
                    Some(dir_fd.as_raw_fd()),
                    LOG,
                    Some(dir_fd.as_raw_fd()),
                    ROTATED,
                )
                .map_err(|source| ConsoleError::Rotate {
                    path: path.clone(),
                    source,
                })?;
                log = open_for_append(&dir_fd, &path, OFlag::O_EXCL)?;
                size = 0;
            }
            // Never more than `segment` bytes in one file.
            let room = usize::try_from(segment - size).unwrap_or(usize::MAX);
            let (now, rest) = chunk.split_at(chunk.len().min(room));
            log.write_all(now).map_err(|source| ConsoleError::Append {
                path: path.clone(),
                source,
            })?;
            size += now.len() as u64;
            chunk = rest;
        }
        // A serial console arrives a byte per write: reading each at once
        // wakes the pump for every byte, and on a small host those context
        // switches slowed a TCG guest's boot by a quarter. A short pause
        // lets the pipe gather the next lines instead.
        if n < buf.len() {
            std::thread::sleep(COALESCE);
        }
    }
}

/// How long the pump lets console output gather between reads (the delay
/// it adds before a line shows in the log).
const COALESCE: std::time::Duration = std::time::Duration::from_millis(10);

/// `vmjail console-pump DIR`: [`pump`] from stdin; the exit code. The
/// pump lives as long as the VM, so before it reads a byte of the guest's
/// it is confined to `DIR` (chrooted there, no capability left).
pub fn pump_main(dir: &Path) -> i32 {
    let pumped = vmjail_jail::confine_to_dir(dir)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            pump(&mut std::io::stdin().lock(), Path::new("/"), SEGMENT).map_err(|e| e.to_string())
        });
    match pumped {
        Ok(()) => 0,
        Err(e) => {
            // Never a panic over a closed stderr.
            let _ = writeln!(std::io::stderr(), "vmjail console-pump: {e}");
            1
        }
    }
}

fn open_for_append(dir: &OwnedFd, path: &Path, extra: OFlag) -> Result<File, ConsoleError> {
    openat(
        Some(dir.as_raw_fd()),
        LOG,
        OFlag::O_WRONLY
            | OFlag::O_APPEND
            | OFlag::O_CREAT
            | OFlag::O_NOFOLLOW
            | OFlag::O_CLOEXEC
            | extra,
        Mode::from_bits_truncate(0o600),
    )
    .map(|fd| File::from(owned(fd)))
    .map_err(|source| ConsoleError::Create {
        path: path.to_owned(),
        source,
    })
}

fn owned(fd: std::os::fd::RawFd) -> OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: freshly opened by us, owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn errno(e: &std::io::Error) -> nix::Error {
    e.raw_os_error()
        .map_or(nix::Error::EIO, nix::Error::from_raw)
}

/// Follows one sandbox's console log as it grows: the rotated segment
/// first, then `console.log`, across rotations.
#[derive(Debug)]
pub struct ConsoleTail {
    path: PathBuf,
    /// The open `console.log` and its inode (a new inode: rotated).
    current: Option<(File, u64)>,
    /// Whether the log was opened once (the rotated segment is read then).
    started: bool,
}

impl ConsoleTail {
    /// `path` is the sandbox's `console.log`.
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            current: None,
            started: false,
        }
    }

    /// Copy everything written since the last call to `out`; returns the
    /// byte count (0 while the log does not exist).
    pub fn pump(&mut self, out: &mut dyn Write) -> Result<usize, ConsoleError> {
        let mut total = 0;
        loop {
            if self.current.is_none() {
                let Some(file) = self.open(&self.path)? else {
                    break;
                };
                let ino = self.inode(&file)?;
                if !self.started {
                    self.started = true;
                    let older = self.path.with_file_name(ROTATED);
                    if let Some(mut old) = self.open(&older)? {
                        // Rotated since `file` was opened: `file` is that one.
                        if self.inode(&old)? != ino {
                            total += copy(&mut old, &older, out)?;
                        }
                    }
                }
                self.current = Some((file, ino));
            }
            let Some((file, ino)) = self.current.as_mut() else {
                break;
            };
            total += copy(file, &self.path, out)?;
            // Rotated: the path names a new file. What was appended to the
            // old one before the rename is read above; go on with the new.
            match std::fs::symlink_metadata(&self.path) {
                Ok(meta) if meta.ino() == *ino => break,
                Ok(_) => {
                    total += copy(file, &self.path, out)?;
                    self.current = None;
                }
                Err(_) => break,
            }
        }
        if total > 0 {
            out.flush().map_err(ConsoleError::Write)?;
        }
        Ok(total)
    }

    /// Open a log file for reading: never through a symlink, never
    /// blocking on a FIFO, only a regular file. `None` when absent.
    fn open(&self, path: &Path) -> Result<Option<File>, ConsoleError> {
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
            .open(path);
        let file = match opened {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(ConsoleError::Open {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        let meta = file.metadata().map_err(|source| ConsoleError::Open {
            path: path.to_owned(),
            source,
        })?;
        if !meta.is_file() {
            return Err(ConsoleError::NotRegular {
                path: path.to_owned(),
            });
        }
        Ok(Some(file))
    }

    fn inode(&self, file: &File) -> Result<u64, ConsoleError> {
        file.metadata()
            .map(|m| m.ino())
            .map_err(|source| ConsoleError::Open {
                path: self.path.clone(),
                source,
            })
    }
}

/// Copy what `file` holds beyond its offset to `out`; a file truncated
/// below that offset (not vmjail's pump, which rotates by rename) is read
/// again from its start.
fn copy(file: &mut File, path: &Path, out: &mut dyn Write) -> Result<usize, ConsoleError> {
    let read_err = |source| ConsoleError::Read {
        path: path.to_owned(),
        source,
    };
    let offset = file.stream_position().map_err(read_err)?;
    if file.metadata().map_err(read_err)?.len() < offset {
        file.rewind().map_err(read_err)?;
    }
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0;
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                out.write_all(&buf[..n]).map_err(ConsoleError::Write)?;
                total += n;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(ConsoleError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> Vec<u8> {
        std::fs::read(path).unwrap_or_default()
    }

    #[test]
    fn the_pump_keeps_at_most_two_segments_of_the_newest_output() {
        let dir = tempfile::tempdir().unwrap();
        create_log(&dir.path().join(LOG)).unwrap();
        // 25 bytes through 10-byte segments, in reads that straddle them.
        let input: Vec<u8> = (b'a'..=b'y').collect();
        pump(&mut &input[..], dir.path(), 10).unwrap();
        assert_eq!(read(&dir.path().join(ROTATED)), b"klmnopqrst");
        assert_eq!(read(&dir.path().join(LOG)), b"uvwxy");
        // A second pump (never two at once) appends and rotates on.
        pump(&mut &b"0123456"[..], dir.path(), 10).unwrap();
        assert_eq!(read(&dir.path().join(ROTATED)), b"uvwxy01234");
        assert_eq!(read(&dir.path().join(LOG)), b"56");
    }

    #[test]
    fn a_log_that_exists_is_not_created_again() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join(LOG);
        create_log(&log).unwrap();
        assert!(matches!(create_log(&log), Err(ConsoleError::Create { .. })));
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("link")).unwrap();
        assert!(create_log(&dir.path().join("link")).is_err());
    }

    #[test]
    fn the_tail_reads_the_rotated_segment_first_and_follows_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join(LOG);
        let mut tail = ConsoleTail::new(&log);
        let mut out = Vec::new();
        assert_eq!(tail.pump(&mut out).unwrap(), 0, "no log yet");
        std::fs::write(dir.path().join(ROTATED), "old ").unwrap();
        std::fs::write(&log, "new ").unwrap();
        tail.pump(&mut out).unwrap();
        assert_eq!(out, b"old new ");
        // Appended, then rotated, then the new segment written.
        let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        file.write_all(b"last-words ").unwrap();
        std::fs::rename(&log, dir.path().join(ROTATED)).unwrap();
        std::fs::write(&log, "next").unwrap();
        tail.pump(&mut out).unwrap();
        assert_eq!(out, b"old new last-words next");
        assert_eq!(tail.pump(&mut out).unwrap(), 0);
    }

    #[test]
    fn the_tail_refuses_a_symlink_or_a_fifo_in_place_of_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "do not print").unwrap();
        let link = dir.path().join("link.log");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let mut out = Vec::new();
        let err = ConsoleTail::new(&link).pump(&mut out).unwrap_err();
        assert!(matches!(err, ConsoleError::Open { .. }), "{err}");
        let fifo = dir.path().join("fifo.log");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        let err = ConsoleTail::new(&fifo).pump(&mut out).unwrap_err();
        assert!(matches!(err, ConsoleError::NotRegular { .. }), "{err}");
        assert!(out.is_empty());
    }
}
