//! The built-in jailer's status channel (a Unix socket pair), read by the
//! caller: `pid <n>` (the VMM's host pid, from the parent jailer in a new
//! pid namespace), `exec` (written just before execve), any other line is an
//! error message. EOF comes when every jailer process has exec'd or died —
//! and a death is told apart from an exec by the missing `exec` marker.
//!
//! A `pid <n>` line is answered with one byte once the caller has recorded
//! the pid: until then the forked VMM is held back, so a caller that dies
//! before recording never leaves a VMM that nothing knows about.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::error::JailError;

/// The caller's answer to `pid <n>`: recorded, the VMM may run.
pub const PID_RECORDED: u8 = b'r';

/// How long a jailer may take to exec the VMM.
pub const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);

/// The jailer process as seen after the status pipe's EOF.
#[derive(Debug)]
pub enum JailerState {
    /// Still alive: without a new pid namespace, it is the VMM now.
    Running,
    Exited {
        success: bool,
        description: String,
    },
}

/// What the built-in jailer said over the status pipe.
#[derive(Debug, Default)]
pub struct Status {
    pub pid: Option<i32>,
    pub exec: bool,
    pub error: String,
}

impl Status {
    pub fn take(&mut self, line: &str) {
        if line == "exec" {
            self.exec = true;
        } else if let Some(pid) = line
            .strip_prefix("pid ")
            .and_then(|p| p.parse::<i32>().ok())
            .filter(|&p| p > 1 && self.pid.is_none())
        {
            self.pid = Some(pid);
        } else {
            if !self.error.is_empty() {
                self.error.push('\n');
            }
            self.error.push_str(line);
        }
    }

    /// The VMM's host pid, or why the launch failed. EOF without the `exec`
    /// marker means a jailer died on the way (a signal, a panic).
    pub fn outcome(
        &self,
        new_pid_ns: bool,
        jailer_pid: i32,
        jailer: &JailerState,
    ) -> Result<i32, String> {
        if !self.error.is_empty() {
            return Err(self.error.clone());
        }
        if let JailerState::Exited {
            success: false,
            description,
        } = jailer
        {
            return Err(format!("the jailer {description}"));
        }
        if !self.exec {
            return Err(match jailer {
                JailerState::Exited { description, .. } if !new_pid_ns => {
                    format!("the jailer {description} before starting the VMM")
                }
                _ => "a jailer process died before starting the VMM".to_owned(),
            });
        }
        if !new_pid_ns {
            return Ok(jailer_pid);
        }
        self.pid
            .ok_or_else(|| "the jailer did not report the VMM's pid".to_owned())
    }
}

/// Lines from the status pipe, each read bounded by [`LAUNCH_TIMEOUT`].
pub struct StatusReader {
    file: std::fs::File,
    pending: Vec<u8>,
    eof: bool,
    deadline: Instant,
}

impl StatusReader {
    pub fn new(read: OwnedFd) -> StatusReader {
        StatusReader {
            file: std::fs::File::from(read),
            pending: Vec::new(),
            eof: false,
            deadline: Instant::now() + LAUNCH_TIMEOUT,
        }
    }

    /// The next line; at EOF what is left (an unterminated error), then `None`.
    pub fn next_line(&mut self) -> Result<Option<String>, JailError> {
        loop {
            if let Some(at) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=at).collect();
                return Ok(Some(String::from_utf8_lossy(&line[..at]).into_owned()));
            }
            if self.eof {
                if self.pending.is_empty() {
                    return Ok(None);
                }
                let rest = std::mem::take(&mut self.pending);
                return Ok(Some(String::from_utf8_lossy(&rest).into_owned()));
            }
            self.fill()?;
        }
    }

    /// Tell the jailer its `pid <n>` is recorded.
    pub fn acknowledge_pid(&mut self) -> Result<(), JailError> {
        use std::io::Write;
        self.file
            .write_all(&[PID_RECORDED])
            .map_err(|e| JailError::sys("acknowledging the VMM pid", crate::fsat::errno_of(&e)))
    }

    fn fill(&mut self) -> Result<(), JailError> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let left = self.deadline.saturating_duration_since(Instant::now());
        let timeout =
            PollTimeout::try_from(left.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(self.file.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) => {
                return Err(JailError::JailerTimeout {
                    seconds: LAUNCH_TIMEOUT.as_secs(),
                })
            }
            Ok(_) => {}
            Err(nix::Error::EINTR) => return Ok(()),
            Err(e) => return Err(JailError::sys("waiting on the status pipe", e)),
        }
        let mut chunk = [0u8; 4096];
        match self.file.read(&mut chunk) {
            Ok(0) => self.eof = true,
            // Bounded: a jailer has a few lines to say.
            Ok(n) if self.pending.len() < 1 << 20 => self.pending.extend_from_slice(&chunk[..n]),
            Ok(_) => self.eof = true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(JailError::sys(
                    "reading the status pipe",
                    crate::fsat::errno_of(&e),
                ))
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(lines: &[&str]) -> Status {
        let mut status = Status::default();
        for line in lines {
            status.take(line);
        }
        status
    }

    fn exited(success: bool) -> JailerState {
        JailerState::Exited {
            success,
            description: if success { "exited 0" } else { "was killed" }.into(),
        }
    }

    #[test]
    fn eof_without_the_exec_marker_is_a_failure() {
        // A jailer killed (SIGXFSZ, a panic) before exec closes the pipe too.
        assert!(status(&[]).outcome(false, 10, &exited(false)).is_err());
        assert!(status(&[])
            .outcome(false, 10, &JailerState::Running)
            .is_err());
        // The parent handed the pid over, its child died before exec.
        assert!(status(&["pid 11"])
            .outcome(true, 10, &exited(true))
            .is_err());
    }

    #[test]
    fn the_exec_marker_and_the_pid_make_a_launch() {
        assert_eq!(
            status(&["exec"]).outcome(false, 10, &JailerState::Running),
            Ok(10)
        );
        assert_eq!(
            status(&["pid 11", "exec"]).outcome(true, 10, &exited(true)),
            Ok(11)
        );
        assert!(status(&["exec"]).outcome(true, 10, &exited(true)).is_err());
        assert!(status(&["pid 11", "exec"])
            .outcome(true, 10, &exited(false))
            .is_err());
    }

    #[test]
    fn any_other_line_is_the_error() {
        let s = status(&["pid 11", "exec", "vmjail jailer: exec /x: ENOENT"]);
        let err = s.outcome(true, 10, &exited(true)).unwrap_err();
        assert!(err.contains("ENOENT"), "{err}");
        // pid 1 (ours inside the namespace) or a second pid is not accepted.
        assert!(status(&["pid 1"]).pid.is_none());
    }
}
