//! Bounded reads and writes on a process's stdio, each waiting at most a
//! given time, so one call never holds an agent thread for long.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

pub enum Read {
    Data(Vec<u8>),
    Eof,
}

/// Up to `max` bytes from `fd`, waiting at most `wait` for the first.
pub fn read_chunk(fd: &OwnedFd, max: usize, wait: Duration) -> nix::Result<Read> {
    if !ready(fd, PollFlags::POLLIN, wait)? {
        return Ok(Read::Data(Vec::new()));
    }
    let mut buf = vec![0u8; max];
    loop {
        return match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
            Ok(0) => Ok(Read::Eof),
            Ok(n) => {
                buf.truncate(n);
                Ok(Read::Data(buf))
            }
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => Ok(Read::Data(Vec::new())),
            // A pty master reads EIO once every slave is closed.
            Err(Errno::EIO) => Ok(Read::Eof),
            Err(e) => Err(e),
        };
    }
}

/// Writes as much of `data` as the reader takes within `wait`; `fd` is
/// non-blocking. EPIPE when the process closed its end.
pub fn write_some(fd: &OwnedFd, data: &[u8], wait: Duration) -> nix::Result<usize> {
    let deadline = Instant::now() + wait;
    let mut written = 0;
    while written < data.len() {
        match nix::unistd::write(fd, &data[written..]) {
            Ok(n) => written += n,
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || !ready(fd, PollFlags::POLLOUT, left)? {
                    break;
                }
            }
            Err(e) if written > 0 => {
                tracing::debug!("stdin write stopped after {written} bytes: {e}");
                break;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}

fn ready(fd: &OwnedFd, events: PollFlags, wait: Duration) -> nix::Result<bool> {
    let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX);
    let mut fds = [PollFd::new(fd.as_fd(), events)];
    loop {
        match poll(&mut fds, timeout) {
            Ok(n) => return Ok(n > 0),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
}
