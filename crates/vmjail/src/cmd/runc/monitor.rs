//! The host process that stands for one process of a container in the
//! guest (`vmjail container-monitor`, hidden): its pid is what `create`
//! and `exec --detach` write to `--pid-file`, so the caller's subreaper
//! (containerd's shim, conmon) waits for it as for runc's process. It
//! holds the stdio the caller gave (pipes, or the slave of a pty whose
//! master went to `--console-socket`), pumps it to and from the guest
//! process, passes SIGINT/SIGTERM/SIGHUP on, and exits with the process's
//! status (128+N for signal N) once it ends.
//!
//! It lives in the sandbox's network namespace (where the VMM runs; it is
//! spawned into it), so `/proc/<its pid>/ns/net` is the container's
//! network namespace as runc's container process's is: Docker's
//! libnetwork-setkey prestart hook reads the pid from the state and moves
//! the container's interfaces into that namespace. `create` therefore
//! spawns it before the VM exists (see [`spawn_waiting`]): the hooks run
//! before the VM is made, so the VM gets those interfaces.
//!
//! It is exec'd fresh (never a fork of the multi-threaded CLI), recorded
//! in the sandbox's state before it is spawned (see
//! `Sandboxes::record_monitor`) and killed by the sandbox's teardown.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use vmjail_sandbox::agent::{ProcessHandle, SessionIo, SessionOptions};
use vmjail_sandbox::process::ProcessId;
use vmjail_sandbox::{interrupt, BeforeVm, SandboxId, Sandboxes, SelectFactory};

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
    pub tty: bool,
    pub stdin: bool,
    /// Its stdio: a pty slave for 0, 1 and 2; `None`: this process's own.
    pub stdio: Option<OwnedFd>,
}

/// Where a monitor is recorded: the sandbox's state, under its lock.
trait Records {
    fn record(&mut self, container: &str, name: &str) -> Result<(), Failure>;
    fn set_process(&mut self, container: &str, name: &str, p: ProcessId) -> Result<(), Failure>;
}

/// A created sandbox's record (each change takes its lock).
struct Locked<'a>(&'a Sandboxes<SelectFactory>, &'a SandboxId);

impl Records for Locked<'_> {
    fn record(&mut self, container: &str, name: &str) -> Result<(), Failure> {
        Ok(self.0.record_monitor(self.1, container, name)?)
    }
    fn set_process(&mut self, container: &str, name: &str, p: ProcessId) -> Result<(), Failure> {
        Ok(self.0.set_monitor_process(self.1, container, name, p)?)
    }
}

/// A sandbox being created (its creator holds the lock).
impl Records for BeforeVm<'_> {
    fn record(&mut self, container: &str, name: &str) -> Result<(), Failure> {
        Ok(self.record_monitor(container, name)?)
    }
    fn set_process(&mut self, container: &str, name: &str, p: ProcessId) -> Result<(), Failure> {
        Ok(self.set_monitor_process(container, name, p)?)
    }
}

/// Records, spawns and waits for monitor `spawn` of guest process
/// `process_id` to reach the agent; returns its process. A monitor that
/// fails to come up is killed and the error returned.
pub fn spawn(
    sandboxes: &Sandboxes<SelectFactory>,
    globals: &Globals,
    spawn: Spawn<'_>,
    process_id: u64,
) -> Result<ProcessId, Failure> {
    let netns = sandboxes.state(spawn.sandbox)?.netns;
    let launched = launch(
        &mut Locked(sandboxes, spawn.sandbox),
        globals,
        spawn,
        netns.as_deref(),
        Start::Now(process_id),
    )?;
    launched.wait_ready()
}

/// A monitor spawned before its guest process exists (`create`: the
/// hooks need its pid, and its netns, before the VM is made). It waits
/// in the sandbox's netns until [`Waiting::proceed`] names the process;
/// dropped instead, it ends (its go pipe closes), as it does when its
/// creator dies.
pub struct Waiting {
    launched: Launched,
    go: File,
}

/// Records and spawns monitor `spawn` into the netns of the sandbox being
/// created, waiting for its process.
pub fn spawn_waiting(
    before: &mut BeforeVm<'_>,
    globals: &Globals,
    spawn: Spawn<'_>,
) -> Result<Waiting, Failure> {
    let other = |e: nix::errno::Errno| Failure::Other(format!("creating a pipe: {e}"));
    let (go_read, go_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(other)?;
    let netns = before.netns().to_path_buf();
    let launched = launch(before, globals, spawn, Some(&netns), Start::Later(go_read))?;
    Ok(Waiting {
        launched,
        go: File::from(go_write),
    })
}

impl Waiting {
    /// Lets it stand for guest process `process_id`; returns once it
    /// reached the agent (killed and the error returned otherwise).
    pub fn proceed(mut self, process_id: u64) -> Result<ProcessId, Failure> {
        let sent = self.go.write_all(process_id.to_string().as_bytes());
        drop(self.go);
        if let Err(e) = sent {
            self.launched.kill();
            return Err(Failure::Other(format!(
                "the container's host process did not come up: {e}"
            )));
        }
        self.launched.wait_ready()
    }
}

/// When a monitor learns its guest process.
enum Start {
    Now(u64),
    /// Read from this pipe (its read end, given to the monitor).
    Later(OwnedFd),
}

/// A spawned monitor, its ready pipe not read yet.
struct Launched {
    process: ProcessId,
    ready: OwnedFd,
}

/// Records monitor `spawn` and spawns it, in `netns` when given.
fn launch(
    records: &mut dyn Records,
    globals: &Globals,
    spawn: Spawn<'_>,
    netns: Option<&Path>,
    start: Start,
) -> Result<Launched, Failure> {
    let other = |what: &str, e: &dyn std::fmt::Display| Failure::Other(format!("{what}: {e}"));
    records.record(spawn.container, spawn.name)?;
    vmjail_sandbox::crash::point("create-monitor-recorded");
    let (ready_read, ready_write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| other("creating a pipe", &e))?;
    // Inherited by the monitor only (nothing else is spawned meanwhile).
    let inherit = |fd: &OwnedFd| {
        fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::empty()))
            .map_err(|e| other("creating a pipe", &e))
    };
    inherit(&ready_write)?;
    let exe = std::env::current_exe().map_err(|e| other("locating the vmjail binary", &e))?;
    let mut command = Command::new(exe);
    command.args(globals.args());
    command
        .arg("container-monitor")
        .arg(spawn.sandbox.as_str())
        .arg(spawn.container)
        .arg(spawn.name)
        .arg("--ready-fd")
        .arg(ready_write.as_raw_fd().to_string());
    let go_read = match start {
        Start::Now(process_id) => {
            command.arg("--process-id").arg(process_id.to_string());
            None
        }
        Start::Later(go_read) => {
            inherit(&go_read)?;
            command.arg("--go-fd").arg(go_read.as_raw_fd().to_string());
            Some(go_read)
        }
    };
    if spawn.tty {
        command.arg("--tty");
    }
    if spawn.stdin {
        command.arg("--stdin");
    }
    // It is in the sandbox's netns from its first instruction: the
    // hooks find that netns through its pid right after the spawn.
    let netns = netns
        .map(|path| {
            File::open(path)
                .map_err(|e| other(&format!("opening the netns {}", path.display()), &e))
        })
        .transpose()?;
    if let Some(netns) = &netns {
        let fd = netns.as_raw_fd();
        // SAFETY: between fork and exec only setns(2), async-signal-safe,
        // on a descriptor this process keeps open until after the spawn.
        unsafe {
            command.pre_exec(move || {
                nix::sched::setns(
                    BorrowedFd::borrow_raw(fd),
                    nix::sched::CloneFlags::CLONE_NEWNET,
                )
                .map_err(std::io::Error::from)
            });
        }
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
    drop((ready_write, go_read, netns, spawn.stdio));
    let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
    let kill = || {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    };
    let Some(process) =
        vmjail_sandbox::process::start_time(pid).map(|start_time| ProcessId { pid, start_time })
    else {
        kill();
        return Err(Failure::Other(
            "the container's host process did not come up: it ended at once".into(),
        ));
    };
    if let Err(e) = records.set_process(spawn.container, spawn.name, process) {
        kill();
        return Err(e);
    }
    vmjail_sandbox::crash::point("create-monitor-spawned");
    Ok(Launched {
        process,
        ready: ready_read,
    })
}

impl Launched {
    fn kill(&self) {
        let _ = self.process.kill();
    }

    /// Waits for its report: `ok` once it reached the agent.
    fn wait_ready(self) -> Result<ProcessId, Failure> {
        let report = read_report(self.ready, AGENT_TIMEOUT + Duration::from_secs(5));
        if let Ok("ok") = report.as_deref() {
            return Ok(self.process);
        }
        let _ = self.process.kill();
        let why = match report.as_deref() {
            Ok("") => "it ended without a word (see --log)".to_string(),
            Ok(text) => text.to_string(),
            Err(e) => e.to_string(),
        };
        Err(Failure::Other(format!(
            "the container's host process did not come up: {why}"
        )))
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

/// Most bytes of a process id on the go pipe.
const MAX_GO: u64 = 32;

/// The guest process this monitor stands for: `--process-id`, or what
/// its creator writes on `--go-fd` once the container exists in the
/// guest (EOF without one: the create failed or its creator died).
fn process_id(args: &MonitorArgs) -> Result<u64, String> {
    if let Some(id) = args.process_id {
        return Ok(id);
    }
    let Some(fd) = args.go_fd else {
        return Err("neither --process-id nor --go-fd given".into());
    };
    // SAFETY: the spawner passes this descriptor, open, to this process only.
    let go = unsafe { File::from_raw_fd(fd) };
    let _ = fcntl(go.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
    let mut text = String::new();
    go.take(MAX_GO)
        .read_to_string(&mut text)
        .map_err(|e| format!("waiting for the container's process: {e}"))?;
    text.trim()
        .parse()
        .map_err(|_| "its creator gave no process (the create failed or was killed)".into())
}

fn prepare(
    sandboxes: &Sandboxes<SelectFactory>,
    args: &MonitorArgs,
) -> Result<(ProcessHandle, SessionIo), String> {
    let id = SandboxId::parse(&args.sandbox).map_err(|e| e.to_string())?;
    let process_id = process_id(args)?;
    interrupt::catch_termination().map_err(|e| format!("installing signal handlers: {e}"))?;
    let stdin = std::io::stdin();
    if args.tty {
        take_terminal(stdin.as_fd())?;
    }
    let client = sandboxes
        .agent_client(&id, AGENT_TIMEOUT)
        .map_err(|e| e.to_string())?;
    let process = ProcessHandle::from_id(client, process_id);
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
