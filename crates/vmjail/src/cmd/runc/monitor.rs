//! The host process that stands for one process of a container in the
//! guest (`vmjail container-monitor`, hidden): its pid is what `create`
//! and `exec --detach` write to `--pid-file`, so the caller's subreaper
//! (containerd's shim, conmon) waits for it as for runc's process. It
//! holds the stdio the caller gave (pipes, or the slave of a pty whose
//! master went to `--console-socket`), pumps it to and from the guest
//! process, passes SIGINT/SIGTERM/SIGHUP on, and exits with the process's
//! status (128+N for signal N) once it ends.
//!
//! It lives in the sandbox's network namespace (where the VMM runs), so
//! `/proc/<its pid>/ns/net` is the container's network namespace as
//! runc's container process's is: Docker's libnetwork-setkey prestart
//! hook reads the pid from the state and configures that namespace.
//!
//! It is exec'd fresh (never a fork of the multi-threaded CLI), recorded
//! in the sandbox's state before it is spawned (see
//! `Sandboxes::record_monitor`) and killed by the sandbox's teardown.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use vmjail_sandbox::agent::{ProcessHandle, SessionIo, SessionOptions};
use vmjail_sandbox::process::ProcessId;
use vmjail_sandbox::{interrupt, SandboxId, Sandboxes, SelectFactory};

use super::{Globals, AGENT_TIMEOUT};
use crate::cli::MonitorArgs;
use crate::cmd::lifecycle::Failure;

/// Exit code when the monitor lost the process (agent or VM gone).
const LOST: u8 = 255;

/// What a monitor is spawned with.
pub struct Spawn<'a> {
    pub sandbox: &'a SandboxId,
    pub container: &'a str,
    pub name: &'a str,
    pub process_id: u64,
    pub tty: bool,
    pub stdin: bool,
    /// Its stdio: a pty slave for 0, 1 and 2; `None`: this process's own.
    pub stdio: Option<OwnedFd>,
}

/// Records, spawns and waits for monitor `spawn` to reach the agent;
/// returns its process. A monitor that fails to come up is killed and
/// the error returned.
pub fn spawn(
    sandboxes: &Sandboxes<SelectFactory>,
    globals: &Globals,
    spawn: Spawn<'_>,
) -> Result<ProcessId, Failure> {
    let other = |what: &str, e: &dyn std::fmt::Display| Failure::Other(format!("{what}: {e}"));
    sandboxes.record_monitor(spawn.sandbox, spawn.container, spawn.name)?;
    vmjail_sandbox::crash::point("create-monitor-recorded");
    let (ready_read, ready_write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| other("creating a pipe", &e))?;
    // Inherited by the monitor only (nothing else is spawned meanwhile).
    fcntl(ready_write.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::empty()))
        .map_err(|e| other("creating a pipe", &e))?;
    let exe = std::env::current_exe().map_err(|e| other("locating the vmjail binary", &e))?;
    let mut command = Command::new(exe);
    command.args(globals.args());
    command
        .arg("container-monitor")
        .arg(spawn.sandbox.as_str())
        .arg(spawn.container)
        .arg(spawn.name)
        .arg("--process-id")
        .arg(spawn.process_id.to_string())
        .arg("--ready-fd")
        .arg(ready_write.as_raw_fd().to_string());
    if spawn.tty {
        command.arg("--tty");
    }
    if spawn.stdin {
        command.arg("--stdin");
    }
    if let Some(netns) = sandboxes.state(spawn.sandbox)?.netns {
        command.arg("--netns").arg(netns);
    }
    // Nothing of the caller's working directory is pinned.
    command.current_dir("/");
    if let Some(slave) = &spawn.stdio {
        let dup = || {
            slave
                .try_clone()
                .map(Stdio::from)
                .map_err(|e| other("duplicating the pty", &e))
        };
        command.stdin(dup()?).stdout(dup()?).stderr(dup()?);
    }
    let child = command
        .spawn()
        .map_err(|e| other("starting the container's host process", &e))?;
    drop(ready_write);
    drop(spawn.stdio);
    let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
    let process =
        vmjail_sandbox::process::start_time(pid).map(|start_time| ProcessId { pid, start_time });
    if let Some(process) = process {
        sandboxes.set_monitor_process(spawn.sandbox, spawn.container, spawn.name, process)?;
        vmjail_sandbox::crash::point("create-monitor-spawned");
    }
    let report = read_report(ready_read, AGENT_TIMEOUT + Duration::from_secs(5));
    match (report.as_deref(), process) {
        (Ok("ok"), Some(process)) => Ok(process),
        (outcome, _) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            let why = match outcome {
                Ok("ok") => "it ended at once".to_string(),
                Ok("") => "it ended without a word (see --log)".to_string(),
                Ok(text) => text.to_string(),
                Err(e) => e.to_string(),
            };
            Err(Failure::Other(format!(
                "the container's host process did not come up: {why}"
            )))
        }
    }
}

/// What the monitor wrote on its ready pipe, waiting at most `timeout`.
fn read_report(pipe: OwnedFd, timeout: Duration) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    let mut file = File::from(pipe);
    let mut report = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) => return Err(format!("no answer within {}s", timeout.as_secs())),
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.to_string()),
        }
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) if report.len() < 4096 => report.extend_from_slice(&buf[..n]),
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(String::from_utf8_lossy(&report).into_owned())
}

/// `vmjail container-monitor`: the host process itself.
pub fn run(sandboxes: &Sandboxes<SelectFactory>, args: &MonitorArgs) -> u8 {
    // SAFETY: the spawner passes this descriptor, open, to this process only.
    let mut ready = unsafe { File::from_raw_fd(args.ready_fd) };
    let _ = fcntl(ready.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
    match prepare(sandboxes, args) {
        Ok((process, io)) => {
            let _ = ready.write_all(b"ok");
            drop(ready);
            pump(args, process, io)
        }
        Err(e) => {
            tracing::error!("container {}: host process: {e}", args.container);
            let _ = ready.write_all(e.as_bytes());
            LOST
        }
    }
}

fn prepare(
    sandboxes: &Sandboxes<SelectFactory>,
    args: &MonitorArgs,
) -> Result<(ProcessHandle, SessionIo), String> {
    let id = SandboxId::parse(&args.sandbox).map_err(|e| e.to_string())?;
    if let Some(netns) = &args.netns {
        join_netns(netns)?;
    }
    interrupt::catch_termination().map_err(|e| format!("installing signal handlers: {e}"))?;
    let stdin = std::io::stdin();
    if args.tty {
        take_terminal(stdin.as_fd())?;
    }
    let client = sandboxes
        .agent_client(&id, AGENT_TIMEOUT)
        .map_err(|e| e.to_string())?;
    let process = ProcessHandle::from_id(client, args.process_id);
    let dup = |fd: BorrowedFd<'_>| {
        fd.try_clone_to_owned()
            .map(File::from)
            .map_err(|e| format!("duplicating a standard descriptor: {e}"))
    };
    let io = SessionIo {
        stdin: args.stdin.then(|| dup(stdin.as_fd())).transpose()?,
        stdout: Box::new(dup(std::io::stdout().as_fd())?),
        stderr: Box::new(dup(std::io::stderr().as_fd())?),
        terminal: args
            .tty
            .then(|| dup(stdin.as_fd()).map(OwnedFd::from))
            .transpose()?,
    };
    Ok((process, io))
}

/// Moves this (still single-threaded) process into the network namespace
/// at `path`.
fn join_netns(path: &std::path::Path) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| {
        format!(
            "joining the sandbox's network namespace {}: {e}",
            path.display()
        )
    };
    let file = File::open(path).map_err(|e| fail(&e))?;
    nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| fail(&e))
}

/// Makes the pty slave on fd 0 this process's controlling terminal, so a
/// resize of the master (by the caller holding it) raises SIGWINCH here.
fn take_terminal(fd: BorrowedFd<'_>) -> Result<(), String> {
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    // SAFETY: TIOCSCTTY on an open descriptor, argument 0 (do not steal).
    let rc = unsafe { nix::libc::ioctl(fd.as_raw_fd(), nix::libc::TIOCSCTTY, 0) };
    if rc != 0 {
        return Err(format!(
            "making the pty the controlling terminal: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Streams until the process ends; its status is the exit code.
fn pump(args: &MonitorArgs, process: ProcessHandle, io: SessionIo) -> u8 {
    let options = SessionOptions {
        tty: args.tty.then_some(vmjail_sandbox::agent::DEFAULT_TTY_SIZE),
        stdin: args.stdin,
        forward_signals: true,
    };
    let ended = vmjail_sandbox::agent::run_process_session(
        options,
        io,
        |tty| {
            // The guest's pty starts at the host pty's size.
            if let Some((rows, cols)) = tty.filter(|_| args.tty) {
                let _ = process.resize(rows, cols);
            }
            Ok::<_, vmjail_sandbox::agent::AgentError>(process.clone())
        },
        |_| Ok(()),
    );
    match ended {
        Ok(status) => u8::try_from(status.code()).unwrap_or(LOST),
        Err(e) => {
            tracing::error!("container {}: host process: {e}", args.container);
            LOST
        }
    }
}
