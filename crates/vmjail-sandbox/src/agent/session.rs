//! [`run_session`]: a whole exec session — start the process, stream local
//! stdio to and from it, follow the terminal's size with `-t`, wait for its
//! end, forget it in the agent — as the CLI and other front-ends need it.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::{isatty, pipe2};

use super::client::AgentClient;
use super::error::AgentError;
use super::process::{ProcessHandle, Stream};
use super::terminal::{window_size, RawMode, WinchWatcher};
use super::types::{ExitStatus, ProcessSpec};

/// The local side of a session.
pub struct SessionIo {
    /// Copied to the process's stdin until it ends (when `spec.stdin`).
    pub stdin: Option<File>,
    pub stdout: Box<dyn Write + Send>,
    /// Unused with a tty: the pty carries both streams to `stdout`.
    pub stderr: Box<dyn Write + Send>,
    /// With `spec.tty`: the local terminal, put in raw mode for the
    /// session, whose size the guest's pty takes and follows.
    pub terminal: Option<OwnedFd>,
}

impl SessionIo {
    /// This process's own stdin, stdout and stderr; stdin is the terminal
    /// when it is one.
    pub fn from_std() -> Result<SessionIo, AgentError> {
        let dup = |fd: BorrowedFd<'_>| {
            fd.try_clone_to_owned()
                .map_err(|source| AgentError::LocalIo {
                    what: "duplicating a standard descriptor",
                    source,
                })
        };
        let stdin = dup(std::io::stdin().as_fd())?;
        let terminal = if isatty(stdin.as_raw_fd()).unwrap_or(false) {
            Some(dup(stdin.as_fd())?)
        } else {
            None
        };
        Ok(SessionIo {
            stdin: Some(File::from(stdin)),
            stdout: Box::new(File::from(dup(std::io::stdout().as_fd())?)),
            stderr: Box::new(File::from(dup(std::io::stderr().as_fd())?)),
            terminal,
        })
    }
}

/// Runs `spec` in the guest with `io` as its stdio and returns how it
/// ended ([`ExitStatus::code`] gives the shell's number: 128+N for a
/// signal). The process is deleted from the agent afterwards.
pub fn run_session(
    client: Arc<AgentClient>,
    spec: &ProcessSpec,
    io: SessionIo,
) -> Result<ExitStatus, AgentError> {
    let options = SessionOptions {
        tty: spec.tty,
        stdin: spec.stdin,
        forward_signals: false,
    };
    run_process_session(
        options,
        io,
        |tty| {
            let mut spec = spec.clone();
            spec.tty = tty;
            ProcessHandle::start(client, &spec)
        },
        |_| Ok(()),
    )
}

/// How [`run_process_session`] treats its process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionOptions {
    /// A pty of this size (the local terminal's, when there is one).
    pub tty: Option<(u16, u16)>,
    /// Copy the local stdin to the process (else its stdin is closed).
    pub stdin: bool,
    /// Forward SIGINT/SIGTERM/SIGHUP caught by [`crate::interrupt`] to the
    /// process, then SIGKILL after [`SIGNAL_GRACE`] if it still runs.
    pub forward_signals: bool,
}

/// How long a process has to end after a forwarded signal.
pub const SIGNAL_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// A session over a process `create` makes (given the pty size) and
/// `start` lets run once the pumps are up (an OCI container's process
/// waits for its start; a plain process needs nothing). Returns how the
/// process ended; the process is deleted from the agent afterwards.
pub fn run_process_session<E: From<AgentError>>(
    options: SessionOptions,
    io: SessionIo,
    create: impl FnOnce(Option<(u16, u16)>) -> Result<ProcessHandle, E>,
    start: impl FnOnce(&ProcessHandle) -> Result<(), E>,
) -> Result<ExitStatus, E> {
    let local = |what: &'static str| {
        move |e: Errno| AgentError::LocalIo {
            what,
            source: std::io::Error::from(e),
        }
    };
    let mut tty = options.tty;
    let terminal = io.terminal.filter(|_| tty.is_some());
    if let Some(size) = terminal.as_ref().and_then(|t| window_size(t.as_fd())) {
        tty = Some(size);
    }
    let _raw = terminal
        .as_ref()
        .map(|t| RawMode::enter(t.as_fd()))
        .transpose()
        .map_err(local("putting the terminal in raw mode"))?;
    let winch = match terminal.is_some() {
        true => WinchWatcher::install().map_err(local("watching SIGWINCH"))?,
        false => None,
    };
    // Closed when the process has ended: wakes the stdin, resize and
    // signal pumps.
    let (stop_read, stop_write) = pipe2(OFlag::O_CLOEXEC).map_err(local("creating a pipe"))?;

    let process = create(tty)?;
    let (mut stdout, mut stderr) = (io.stdout, io.stderr);
    let result = std::thread::scope(|s| {
        let out = s.spawn(|| process.pump_output(Stream::Stdout, &mut stdout));
        let err =
            (tty.is_none()).then(|| s.spawn(|| process.pump_output(Stream::Stderr, &mut stderr)));
        if options.stdin {
            let stop = stop_read.as_fd();
            let input = io.stdin;
            let process = &process;
            s.spawn(move || {
                let outcome = match input {
                    Some(file) => process.pump_stdin(&mut StoppableReader { file, stop }),
                    None => process.close_stdin().map(|()| 0),
                };
                // Once the process has ended, its stdin is gone: not an error.
                if let Err(e) = outcome {
                    tracing::debug!("stdin pump: {e}");
                }
            });
        }
        if let (Some(watcher), Some(terminal)) = (winch.as_ref(), terminal.as_ref()) {
            let stop = stop_read.as_fd();
            let process = &process;
            s.spawn(move || follow_window_size(process, watcher, terminal.as_fd(), stop));
        }
        if options.forward_signals {
            let stop = stop_read.as_fd();
            let process = &process;
            s.spawn(move || forward_signals(process, stop));
        }
        let started = start(&process);
        if started.is_err() {
            let _ = process.signal(nix::libc::SIGKILL);
        }
        let status = process.wait();
        let out = out.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        let err = err.map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        drop(stop_write);
        started?;
        let status = status?;
        out?;
        err.transpose()?;
        Ok(status)
    });
    let _ = process.delete();
    result
}

/// Sends the first termination signal this process catches to `process`,
/// then SIGKILL after [`SIGNAL_GRACE`], until `stop` closes.
fn forward_signals(process: &ProcessHandle, stop: BorrowedFd<'_>) {
    let mut sent: Option<std::time::Instant> = None;
    loop {
        let mut fds = [PollFd::new(stop, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(50u8)) {
            Err(Errno::EINTR) | Ok(0) => {}
            Err(_) | Ok(_) => return,
        }
        match sent {
            None => {
                if let Some(signal) = crate::interrupt::received() {
                    tracing::debug!("forwarding {signal} to the process");
                    if let Err(e) = process.signal(signal as i32) {
                        tracing::debug!("forwarding {signal}: {e}");
                    }
                    sent = Some(std::time::Instant::now());
                }
            }
            Some(at) if at.elapsed() >= SIGNAL_GRACE => {
                tracing::debug!("the process outlived its grace: SIGKILL");
                let _ = process.signal(nix::libc::SIGKILL);
                sent = Some(std::time::Instant::now());
            }
            Some(_) => {}
        }
    }
}

/// Sends the terminal's size to the process on every SIGWINCH until
/// `stop` closes.
fn follow_window_size(
    process: &ProcessHandle,
    watcher: &WinchWatcher,
    terminal: BorrowedFd<'_>,
    stop: BorrowedFd<'_>,
) {
    loop {
        let mut fds = [
            PollFd::new(watcher.fd(), PollFlags::POLLIN),
            PollFd::new(stop, PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            Err(_) => return,
            Ok(_) => {}
        }
        if fds[1].any().unwrap_or(true) {
            return;
        }
        watcher.drain();
        if let Some((rows, cols)) = window_size(terminal) {
            if let Err(e) = process.resize(rows, cols) {
                tracing::debug!("resize: {e}");
            }
        }
    }
}

/// Reads `file`, giving up (as an error) once `stop` closes, so a stdin
/// pump blocked on a quiet terminal ends with the session.
struct StoppableReader<'a> {
    file: File,
    stop: BorrowedFd<'a>,
}

impl Read for StoppableReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let mut fds = [
                PollFd::new(self.file.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.stop, PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
            if fds[1].any().unwrap_or(true) {
                return Err(std::io::Error::other("the session ended"));
            }
            return self.file.read(buf);
        }
    }
}
