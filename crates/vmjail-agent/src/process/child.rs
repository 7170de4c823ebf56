//! The code that runs in the child between `fork` and `execve`. The agent
//! is multi-threaded, so only async-signal-safe calls are allowed here: no
//! allocation, no locks. Everything is prepared by the parent in a
//! [`ChildPlan`]; this file calls libc directly because the safe wrappers
//! may allocate (nix's `execve` builds its pointer arrays on the heap).

use std::ffi::{c_char, c_int};
use std::os::fd::RawFd;

use nix::libc;

/// The steps, as reported to the parent through the error pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Step {
    Signals = 1,
    Setsid = 2,
    ControllingTty = 3,
    Stdio = 4,
    CloseFds = 10,
    Setgroups = 5,
    Setgid = 6,
    Setuid = 7,
    Chdir = 8,
    Execve = 9,
}

impl Step {
    pub fn from_u32(n: u32) -> Option<Step> {
        [
            Step::Signals,
            Step::Setsid,
            Step::ControllingTty,
            Step::Stdio,
            Step::CloseFds,
            Step::Setgroups,
            Step::Setgid,
            Step::Setuid,
            Step::Chdir,
            Step::Execve,
        ]
        .into_iter()
        .find(|s| *s as u32 == n)
    }

    pub fn name(self) -> &'static str {
        match self {
            Step::Signals => "resetting signals",
            Step::Setsid => "setsid",
            Step::ControllingTty => "making the pty the controlling terminal",
            Step::Stdio => "setting up stdin/stdout/stderr",
            Step::CloseFds => "setting up inherited descriptors",
            Step::Setgroups => "setgroups",
            Step::Setgid => "setgid",
            Step::Setuid => "setuid",
            Step::Chdir => "chdir",
            Step::Execve => "execve",
        }
    }
}

/// Everything the child needs, as raw pointers into buffers the parent
/// keeps alive until `fork` returns.
pub struct ChildPlan {
    pub program: *const c_char,
    /// NULL-terminated.
    pub argv: *const *const c_char,
    /// NULL-terminated.
    pub envp: *const *const c_char,
    pub cwd: *const c_char,
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    pub groups: *const libc::gid_t,
    pub groups_len: usize,
    /// Descriptors for 0, 1 and 2.
    pub stdio: [RawFd; 3],
    /// Set: `stdio[0]` is a pty slave to make the controlling terminal.
    pub tty: bool,
    /// Write end of the error pipe (close-on-exec).
    pub error_pipe: RawFd,
    /// Descriptors to pass as 3, 4, …; all numbered 10 or more, so no
    /// dup2 overwrites one not yet copied.
    pub extra: *const RawFd,
    pub extra_len: usize,
}

/// Runs in the child; never returns.
///
/// # Safety
/// Only between `fork` and `execve`, with every pointer of `plan` valid.
pub unsafe fn run(plan: &ChildPlan) -> ! {
    let failed = |step: Step| -> ! {
        let errno = *libc::__errno_location();
        let mut report = [0u8; 8];
        report[..4].copy_from_slice(&(step as u32).to_ne_bytes());
        report[4..].copy_from_slice(&errno.to_ne_bytes());
        libc::write(plan.error_pipe, report.as_ptr().cast(), report.len());
        libc::_exit(127)
    };

    // The agent's own mask and ignored SIGPIPE (Rust's runtime sets it)
    // would otherwise be inherited across exec.
    let mut empty: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut empty);
    if libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) != 0 {
        failed(Step::Signals);
    }
    for signal in [libc::SIGPIPE, libc::SIGCHLD] {
        if libc::signal(signal, libc::SIG_DFL) == libc::SIG_ERR {
            failed(Step::Signals);
        }
    }
    // Its own session: a tty becomes its controlling terminal, and the
    // host's signals to it never reach the agent.
    if libc::setsid() < 0 {
        failed(Step::Setsid);
    }
    if plan.tty && libc::ioctl(plan.stdio[0], libc::TIOCSCTTY, 0 as c_int) != 0 {
        failed(Step::ControllingTty);
    }
    for (target, &fd) in plan.stdio.iter().enumerate() {
        // dup2 clears close-on-exec on the copy.
        if libc::dup2(fd, target as c_int) < 0 {
            failed(Step::Stdio);
        }
    }
    // Whatever the agent inherited or holds beyond 0-2 (its connections,
    // other processes' pipes, descriptors its own parent leaked) ends at
    // exec; close-on-exec rather than close keeps the error pipe working.
    if libc::syscall(
        libc::SYS_close_range,
        3 as libc::c_uint,
        libc::c_uint::MAX,
        libc::CLOSE_RANGE_CLOEXEC,
    ) != 0
    {
        failed(Step::CloseFds);
    }
    for i in 0..plan.extra_len {
        // dup2 clears close-on-exec on the copy.
        if libc::dup2(*plan.extra.add(i), 3 + i as c_int) < 0 {
            failed(Step::CloseFds);
        }
    }
    if libc::setgroups(plan.groups_len, plan.groups) != 0 {
        failed(Step::Setgroups);
    }
    if libc::setgid(plan.gid) != 0 {
        failed(Step::Setgid);
    }
    if libc::setuid(plan.uid) != 0 {
        failed(Step::Setuid);
    }
    // After setuid, as runc does: the directory must be the user's to enter.
    if libc::chdir(plan.cwd) != 0 {
        failed(Step::Chdir);
    }
    libc::execve(plan.program, plan.argv, plan.envp);
    failed(Step::Execve)
}
