//! Starts a [`Launch`]: its stdio (pipes, or a new pty), `fork`, and the
//! child's report of a failed step before `execve`.
//!
//! The caller holds the process table's lock across [`spawn`], so the
//! reaper cannot see the child's exit before the table knows the pid, and
//! no other spawn forks while descriptors without close-on-exec exist.

use std::ffi::c_char;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::libc;
use nix::pty::{openpty, Winsize};
use nix::unistd::{fork, pipe2, ForkResult, Pid};

use super::child::{self, ChildPlan, Step};
use super::request::Launch;

/// The agent's ends of a started process's stdio.
pub struct Spawned {
    pub pid: Pid,
    /// Pipe write end, or a copy of the pty master; `None`: /dev/null.
    pub stdin: Option<OwnedFd>,
    /// Pipe read end, or the pty master.
    pub stdout: OwnedFd,
    /// `None` with a tty (stdout carries it).
    pub stderr: Option<OwnedFd>,
    /// The pty master, for resizing.
    pub pty: Option<OwnedFd>,
}

pub fn spawn(launch: &Launch) -> Result<Spawned, String> {
    let io = Stdio::new(launch).map_err(|e| format!("setting up stdio: {e}"))?;
    let (error_read, error_write) =
        pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("creating a pipe: {e}"))?;

    // Numbered 10 or more: see ChildPlan::extra.
    let extra = launch
        .extra_fds
        .iter()
        .map(|fd| fcntl(fd.as_raw_fd(), FcntlArg::F_DUPFD_CLOEXEC(10)))
        .collect::<nix::Result<Vec<_>>>()
        .map_err(|e| format!("duplicating descriptors: {e}"))?;
    // SAFETY: fcntl just returned these, open and owned by nobody else.
    let extra: Vec<OwnedFd> = extra
        .into_iter()
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect();
    let extra_raw: Vec<i32> = extra.iter().map(|fd| fd.as_raw_fd()).collect();
    let argv = null_terminated(launch.argv.iter().map(|a| a.as_ptr()));
    let envp = null_terminated(launch.env.iter().map(|e| e.as_ptr()));
    let plan = ChildPlan {
        program: launch.program.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        cwd: launch.cwd.as_ptr(),
        uid: launch.uid,
        gid: launch.gid,
        groups: launch.groups.as_ptr(),
        groups_len: launch.groups.len(),
        stdio: io.child_fds(),
        tty: launch.tty.is_some(),
        error_pipe: error_write.as_raw_fd(),
        extra: extra_raw.as_ptr(),
        extra_len: extra_raw.len(),
    };
    // SAFETY: the child only runs `child::run`, which is async-signal-safe
    // and uses `plan`, whose buffers live until after the fork.
    let pid = match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => unsafe { child::run(&plan) },
        ForkResult::Parent { child } => child,
    };
    drop(error_write);
    let spawned = io.into_parent(pid);
    match read_report(error_read) {
        None => Ok(spawned),
        // The child has exited with 127; the reaper collects it.
        Some((step, errno)) => Err(format!(
            "{} {:?}: {}",
            step.name(),
            step_subject(step, launch),
            nix::errno::Errno::from_raw(errno).desc()
        )),
    }
}

fn step_subject(step: Step, launch: &Launch) -> String {
    match step {
        Step::Chdir => launch.cwd.to_string_lossy().into_owned(),
        Step::Execve => launch.program.to_string_lossy().into_owned(),
        Step::Setuid => launch.uid.to_string(),
        Step::Setgid => launch.gid.to_string(),
        Step::Setgroups => format!("{:?}", launch.groups),
        _ => String::new(),
    }
}

/// `None` when the pipe closed empty: `execve` succeeded.
fn read_report(pipe: OwnedFd) -> Option<(Step, i32)> {
    let mut report = [0u8; 8];
    let mut file = File::from(pipe);
    let mut got = 0;
    while got < report.len() {
        match file.read(&mut report[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if got < report.len() {
        return None;
    }
    let step = u32::from_ne_bytes([report[0], report[1], report[2], report[3]]);
    let errno = i32::from_ne_bytes([report[4], report[5], report[6], report[7]]);
    Some((Step::from_u32(step)?, errno))
}

fn null_terminated(items: impl Iterator<Item = *const c_char>) -> Vec<*const c_char> {
    items.chain(std::iter::once(std::ptr::null())).collect()
}

/// Both ends of a process's stdio until the fork.
enum Stdio {
    Pipes {
        stdin: (OwnedFd, Option<OwnedFd>),
        stdout: (OwnedFd, OwnedFd),
        stderr: (OwnedFd, OwnedFd),
    },
    Pty {
        master: OwnedFd,
        /// Copies of the master for stdin and resizing, made before the
        /// fork so nothing can fail once the child runs.
        master_stdin: OwnedFd,
        master_resize: OwnedFd,
        slave: OwnedFd,
    },
}

impl Stdio {
    fn new(launch: &Launch) -> nix::Result<Stdio> {
        if let Some((rows, cols)) = launch.tty {
            let size = Winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            let pty = openpty(Some(&size), None)?;
            // openpty has no close-on-exec flag; no other fork can happen
            // before this (the table lock is held).
            for fd in [&pty.master, &pty.slave] {
                fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
            }
            let dup = |fd: &OwnedFd| {
                fd.try_clone()
                    .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
            };
            return Ok(Stdio::Pty {
                master_stdin: dup(&pty.master)?,
                master_resize: dup(&pty.master)?,
                master: pty.master,
                slave: pty.slave,
            });
        }
        let stdin = if launch.stdin {
            let (read, write) = pipe2(OFlag::O_CLOEXEC)?;
            (read, Some(write))
        } else {
            let null = File::open("/dev/null")
                .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
            (OwnedFd::from(null), None)
        };
        let stdout = pipe2(OFlag::O_CLOEXEC)?;
        let stderr = pipe2(OFlag::O_CLOEXEC)?;
        Ok(Stdio::Pipes {
            stdin,
            stdout,
            stderr,
        })
    }

    fn child_fds(&self) -> [i32; 3] {
        match self {
            Stdio::Pipes {
                stdin,
                stdout,
                stderr,
            } => [
                stdin.0.as_raw_fd(),
                stdout.1.as_raw_fd(),
                stderr.1.as_raw_fd(),
            ],
            Stdio::Pty { slave, .. } => [slave.as_raw_fd(); 3],
        }
    }

    /// Closes the child's ends (so the agent sees end-of-file when the
    /// process is done) and keeps the agent's.
    fn into_parent(self, pid: Pid) -> Spawned {
        match self {
            Stdio::Pipes {
                stdin,
                stdout,
                stderr,
            } => Spawned {
                pid,
                stdin: stdin.1,
                stdout: stdout.0,
                stderr: Some(stderr.0),
                pty: None,
            },
            Stdio::Pty {
                master,
                master_stdin,
                master_resize,
                slave,
            } => {
                drop(slave);
                Spawned {
                    pid,
                    stdin: Some(master_stdin),
                    stdout: master,
                    stderr: None,
                    pty: Some(master_resize),
                }
            }
        }
    }
}
