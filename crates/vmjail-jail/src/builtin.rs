//! The built-in jailer as a program: `vmjail-jailer` (or `vmjail jailer`)
//! `<Firecracker jailer args> [vmjail additions] -- <vmm args>`. A fresh
//! single-threaded process that runs the jail's steps (`entry/`) in
//! order, then execs the VMM. vmjail itself enters most jails without it
//! (`in_process.rs`); it starts this program for a new pid namespace, and
//! it serves whoever calls it like Firecracker's jailer.

use std::convert::Infallible;
use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::signal::{signal, SigHandler, Signal};
use nix::sys::stat::Mode;
use nix::unistd::{dup2, fork, setsid, ForkResult};

use crate::args::JailerArgs;
use crate::entry::{Entry, Failed};
use crate::error::JailError;
use crate::sys;

/// For the `vmjail jailer` subcommand: parse Firecracker's jailer CLI (+
/// vmjail additions), run the jail, exec the VMM. Never returns on success;
/// on failure prints the error, writes it to `--status-fd`, returns 1.
/// `--help` prints the usage and returns 0.
pub fn builtin_jailer_main(args: Vec<OsString>) -> i32 {
    if crate::args::wants_help(&args) {
        print!("{}", crate::args::USAGE);
        return 0;
    }
    let parsed = JailerArgs::parse(&args);
    let status_fd = parsed.as_ref().ok().and_then(|a| a.status_fd);
    let error = match parsed.and_then(run) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let message = format!("vmjail jailer: {error}");
    // With a status fd the caller reports the error; on stderr too (the
    // VMM's output file) it would be reported twice.
    if status_fd.is_none() {
        let _ = writeln!(std::io::stderr(), "{message}");
    }
    if let Some(fd) = status_fd {
        // SAFETY: the status fd was handed to us for exactly this; we are
        // about to exit and nothing else owns it.
        let mut status = unsafe { File::from_raw_fd(fd) };
        let _ = status.write_all(message.as_bytes());
    }
    1
}

/// For a jailer binary started without the Rust runtime (`no_main`): what
/// of the runtime's start-up the jailer relies on. Descriptors 0–2 open
/// (any closed one on /dev/null, so that no file we open lands there and
/// is later handed to the VMM as its stdio or closed by a redirection),
/// and SIGPIPE ignored (a write to a caller that went away is an error
/// we report, not our death; the VMM gets it back at its default).
pub fn prepare_jailer_process() -> Result<(), JailError> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    // SAFETY: only polled, never closed or read through these handles.
    let stdio = [0, 1, 2].map(|fd| unsafe { BorrowedFd::borrow_raw(fd) });
    let mut fds = stdio.map(|fd| PollFd::new(fd, PollFlags::empty()));
    loop {
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(_) => break,
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(JailError::sys("checking stdio", e)),
        }
    }
    let closed: Vec<RawFd> = fds
        .iter()
        .zip(0..)
        .filter(|(fd, _)| {
            fd.revents()
                .is_some_and(|r| r.contains(PollFlags::POLLNVAL))
        })
        .map(|(_, n)| n)
        .collect();
    for fd in closed {
        // Not close-on-exec: it is stdio for the VMM too. Opens take the
        // lowest free number, which (going up from 0) is this one.
        let null = nix::fcntl::open("/dev/null", OFlag::O_RDWR, Mode::empty())
            .map_err(|e| JailError::fs("opening", "/dev/null", e))?;
        if null != fd {
            dup2(null, fd).map_err(|e| JailError::sys("reopening stdio", e))?;
            let _ = nix::unistd::close(null);
        }
    }
    // SAFETY: ignoring a signal, no handler code runs.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) }
        .map_err(|e| JailError::sys("ignoring SIGPIPE", e))?;
    Ok(())
}

fn run(args: JailerArgs) -> Result<Infallible, JailError> {
    // 1. Nothing inherited but stdio (and the status fd), no environment.
    close_inherited_fds(args.status_fd)?;
    for (key, _) in std::env::vars_os() {
        std::env::remove_var(key);
    }

    // 2. Validation and the host side: layout, exec file, cgroups (see entry/).
    let entry = Entry::build(&args)?;
    let step = |result: Result<(), Failed>| result.map_err(|failed| entry.error(failed));

    // 3. The jail's view, then stdio, pid namespace, session and pid file.
    //    setsid comes after the fork so that in a new pid namespace the VMM
    //    itself leads its session.
    step(entry.enter())?;
    step(entry.detach_stdio())?;
    let mut go = None;
    if args.new_pid_ns {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWPID)
            .map_err(|e| JailError::sys("unshare(CLONE_NEWPID)", e))?;
        // The child waits for one byte on `go` before it execs the VMM: if
        // this parent fails or dies before handing the pid over, the child
        // sees EOF and exits instead of running a VMM nobody recorded. Its
        // own remaining steps (session, limits, privileges, seccomp) run
        // meanwhile, beside the hand-over's round trip to the caller.
        let (go_read, go_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
            .map_err(|e| JailError::sys("creating the go pipe", e))?;
        // SAFETY: this process is single-threaded; the child continues with
        // the same sequential code and ends in exec.
        match unsafe { fork() }.map_err(|e| JailError::sys("fork into the new pid namespace", e))? {
            ForkResult::Parent { child } => {
                drop(go_read);
                let handed_over = step(entry.write_pid_file(child.as_raw()))
                    .and_then(|()| report(args.status_fd, &format!("pid {child}")))
                    .and_then(|()| wait_for_pid_recorded(args.status_fd))
                    .and_then(|()| {
                        nix::unistd::write(&go_write, b"g")
                            .map(drop)
                            .map_err(|e| JailError::sys("releasing the VMM process", e))
                    });
                if let Err(e) = handed_over {
                    let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
                    // Reap it here: an orphaned zombie would wait on init.
                    let _ = nix::sys::wait::waitpid(child, None);
                    return Err(e);
                }
                std::process::exit(0);
            }
            ForkResult::Child => {
                drop(go_write);
                go = Some(go_read);
            }
        }
        own_session(&entry)?;
    } else {
        own_session(&entry)?;
        step(entry.write_pid_file(std::process::id() as i32))?;
    }

    // 4. Limits, privileges, keyring, seccomp, signals, exec.
    step(entry.confine())?;
    if let Some(go) = go {
        wait_for_go(go)?;
    }
    // `exec` goes on the status pipe just before: EOF without it means this
    // process died on the way.
    report(args.status_fd, "exec")?;
    Err(entry.error(entry.exec()))
}

/// Lead a new session, without a controlling terminal. `setsid` fails only
/// for a process-group leader, which a jailer is when a shell started it by
/// hand (vmjail never does): then a child goes on and this process waits
/// for it and passes its exit status on, holding nothing of the jail.
fn own_session(entry: &Entry) -> Result<(), JailError> {
    match Entry::own_session() {
        Ok(()) => return Ok(()),
        Err(Failed {
            errno: nix::Error::EPERM,
            ..
        }) => {}
        Err(failed) => return Err(entry.error(failed)),
    }
    // SAFETY: this process is single-threaded; the child continues with the
    // same sequential code and ends in exec.
    match unsafe { fork() }.map_err(|e| JailError::sys("fork to leave the process group", e))? {
        ForkResult::Child => setsid().map(drop).map_err(|e| JailError::sys("setsid", e)),
        ForkResult::Parent { child } => {
            let _ = sys::close_range(3, u32::MAX);
            for fd in 0..=2 {
                let _ = dup2(entry.dev_null(), fd);
            }
            let code = match nix::sys::wait::waitpid(child, None) {
                Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => code,
                Ok(nix::sys::wait::WaitStatus::Signaled(_, signal, _)) => 128 + signal as i32,
                _ => 1,
            };
            std::process::exit(code)
        }
    }
}

/// One line on the status pipe (when there is one).
fn report(status_fd: Option<RawFd>, line: &str) -> Result<(), JailError> {
    let Some(fd) = status_fd else {
        return Ok(());
    };
    // SAFETY: the status fd stays open in this process until exec or exit.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let mut bytes = line.as_bytes().to_vec();
    bytes.push(b'\n');
    let mut done = 0;
    while done < bytes.len() {
        match nix::unistd::write(fd, &bytes[done..]) {
            Ok(n) => done += n,
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(JailError::sys("writing to --status-fd", e)),
        }
    }
    Ok(())
}

/// With a status channel, wait (bounded) for the caller's word that the
/// VMM's pid is recorded; its death or silence keeps the VMM from running.
fn wait_for_pid_recorded(status_fd: Option<RawFd>) -> Result<(), JailError> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let Some(fd) = status_fd else {
        return Ok(());
    };
    // SAFETY: the status fd stays open in this process until exec or exit.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let deadline = std::time::Instant::now() + crate::status::LAUNCH_TIMEOUT;
    let not_recorded = |why: String| JailError::JailerFailed {
        message: format!("the caller did not record the VMM's pid ({why}); not starting it"),
    };
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let timeout =
            PollTimeout::try_from(left.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::MAX);
        match poll(&mut [PollFd::new(fd, PollFlags::POLLIN)], timeout) {
            Ok(0) => return Err(not_recorded("timed out".into())),
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(JailError::sys("waiting for the pid acknowledgement", e)),
        }
        let mut byte = [0u8; 1];
        match nix::unistd::read(fd.as_raw_fd(), &mut byte) {
            Ok(1) if byte[0] == crate::status::PID_RECORDED => return Ok(()),
            Ok(0) => return Err(not_recorded("it went away".into())),
            Ok(_) => return Err(not_recorded(format!("it answered {:?}", byte[0]))),
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(JailError::sys("reading the pid acknowledgement", e)),
        }
    }
}

/// Block until the parent jailer has handed our pid over.
fn wait_for_go(go: OwnedFd) -> Result<(), JailError> {
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(go.as_raw_fd(), &mut byte) {
            Ok(1) => return Ok(()),
            Ok(_) => {
                return Err(JailError::JailerFailed {
                    message: "the parent jailer ended before handing over the VMM's pid".into(),
                })
            }
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(JailError::sys("waiting for the parent jailer", e)),
        }
    }
}

fn close_inherited_fds(keep: Option<RawFd>) -> Result<(), JailError> {
    let close = |first: u32, last: u32| {
        sys::close_range(first, last).map_err(|e| JailError::sys("close_range", e))
    };
    match keep.and_then(|fd| u32::try_from(fd).ok()) {
        Some(fd) => {
            // Keep the status fd until exec (or until we exit on error).
            fcntl(fd as RawFd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
                .map_err(|e| JailError::sys("marking --status-fd close-on-exec", e))?;
            if fd > 3 {
                close(3, fd - 1)?;
            }
            close(fd + 1, u32::MAX)
        }
        None => close(3, u32::MAX),
    }
}
