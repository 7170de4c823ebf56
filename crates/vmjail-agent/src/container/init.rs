//! `vmjail-agent container-init BUNDLE ID`: the container's init, a
//! single-threaded process of its own (the agent is multi-threaded, so
//! this work cannot happen between its fork and exec). The agent starts it
//! like any process, with two more descriptors:
//! - 3: write "ok" once set up (or the error), then close;
//! - 4: one byte (StartContainer) lets it exec the command; end-of-file
//!   (the container deleted before start) makes it exit.
//!
//! With a new PID namespace it forks: the child is the container's pid 1;
//! this process stays as the agent's handle on it, passes on signals and
//! ends as the child ended.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::ExitCode;

use std::os::fd::AsFd;

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{unshare, CloneFlags};
use nix::sys::prctl;
use nix::sys::resource::setrlimit;
use nix::sys::signal::{kill, sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::pipe2;
use nix::unistd::{
    execvpe, fork, setgid, setgroups, sethostname, setuid, ForkResult, Gid, Pid, Uid,
};

use super::spec::{self, Plan};
use super::{caps, console};

/// Descriptor the init reports setup on.
pub const READY_FD: i32 = 3;
/// Descriptor the init waits on for StartContainer.
pub const START_FD: i32 = 4;

pub fn main(bundle: &Path, id: &str) -> ExitCode {
    // SAFETY: the agent hands these numbers over, open, to this process only.
    let mut ready = unsafe { File::from_raw_fd(READY_FD) };
    let start = unsafe { File::from_raw_fd(START_FD) };
    match prepare(bundle, id) {
        Err(e) => {
            let _ = ready.write_all(format!("error: {e}").as_bytes());
            ExitCode::FAILURE
        }
        Ok((mut plan, None)) => {
            let console = plan.console.take();
            run(&plan, console, ready, start)
        }
        Ok((_, Some((child, console)))) => {
            drop((ready, start));
            relay(child, console)
        }
    }
}

/// Loads the spec and enters the namespaces; `Some(child)` in the process
/// that stays outside a new PID namespace (with its end of the console
/// channel when on a terminal, see console.rs).
#[allow(clippy::type_complexity)]
fn prepare(bundle: &Path, id: &str) -> Result<(Plan, Option<(Pid, Option<OwnedFd>)>), String> {
    let mut plan = spec::load(bundle)?;
    // Before any namespace: a cgroup namespace's root is this cgroup.
    super::cgroup::enter(Path::new(super::cgroup::ROOT), id, &plan.limits)?;
    let flags = plan.namespaces;
    unshare(flags).map_err(|e| format!("unshare {flags:?}: {e}"))?;
    if !flags.contains(CloneFlags::CLONE_NEWPID) {
        return Ok((plan, None));
    }
    // Open in this process until it dies: lets the child tell, after it
    // sets its parent-death signal again, that the parent is still there.
    let (alive_read, alive_write) =
        pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("creating a pipe: {e}"))?;
    let console = match console::on_terminal() {
        true => Some(console::channel()?),
        false => None,
    };
    // SAFETY: this process is single-threaded.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Parent { child } => {
            std::mem::forget(alive_write);
            Ok((plan, Some((child, console.map(|(ours, _)| ours)))))
        }
        ForkResult::Child => {
            drop(alive_write);
            plan.parent_alive = Some(alive_read);
            plan.console = console.map(|(_, its)| its);
            // The container does not outlive its handle in the agent.
            prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| format!("pdeathsig: {e}"))?;
            Ok((plan, None))
        }
    }
}

/// Sets the parent-death signal again (a change of credentials clears it)
/// and checks the parent did not die before.
fn rearm_parent_death(plan: &Plan) -> Result<(), String> {
    let Some(alive) = &plan.parent_alive else {
        return Ok(());
    };
    prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| format!("pdeathsig: {e}"))?;
    let mut fds = [PollFd::new(alive.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(0) => Ok(()),
        _ => Err("the container's handle in the agent is gone".into()),
    }
}

/// Sets up the container and execs its command once started.
fn run(plan: &Plan, console: Option<OwnedFd>, mut ready: File, mut start: File) -> ExitCode {
    if let Err(e) = setup(plan, console) {
        let _ = ready.write_all(format!("error: {e}").as_bytes());
        return ExitCode::FAILURE;
    }
    if ready.write_all(b"ok").is_err() {
        return ExitCode::FAILURE;
    }
    drop(ready);
    let mut byte = [0u8; 1];
    if !matches!(start.read(&mut byte), Ok(1)) {
        // Deleted before it was started.
        return ExitCode::FAILURE;
    }
    drop(start);
    let err = exec(plan);
    eprintln!("vmjail-agent: exec {:?}: {err}", plan.args[0]);
    ExitCode::from(127)
}

/// Execs the plan's command (found on its env's PATH); returns only on
/// failure, with the reason.
pub(super) fn exec(plan: &Plan) -> String {
    let args = c_strings(&plan.args);
    let env = c_strings(&plan.env);
    match (args, env) {
        (Ok(args), Ok(env)) => execvpe(&args[0], &args, &env).unwrap_err().to_string(),
        _ => "a NUL byte in args or env".into(),
    }
}

fn setup(plan: &Plan, console: Option<OwnedFd>) -> Result<(), String> {
    if let Some(name) = &plan.hostname {
        sethostname(name).map_err(|e| format!("sethostname {name:?}: {e}"))?;
    }
    super::rootfs::enter(plan)?;
    if let Some(channel) = console {
        console::take_own(channel, plan.uid)?;
    }
    become_process(plan)
}

/// What every process of the container goes through once inside its
/// filesystem: the spec's rlimits, the bounding set, the user, the
/// capability sets, the cwd and no_new_privs.
pub(super) fn become_process(plan: &Plan) -> Result<(), String> {
    for &(resource, soft, hard) in &plan.rlimits {
        setrlimit(resource, soft, hard).map_err(|e| format!("setrlimit {resource:?}: {e}"))?;
    }
    caps::limit_bounding(plan.capabilities.bounding)?;
    // Keeps the permitted set across the change to a non-root uid; the
    // sets are then made exactly the spec's.
    prctl::set_keepcaps(true).map_err(|e| format!("keepcaps: {e}"))?;
    let groups: Vec<Gid> = plan
        .additional_gids
        .iter()
        .map(|&g| Gid::from_raw(g))
        .collect();
    setgroups(&groups).map_err(|e| format!("setgroups: {e}"))?;
    setgid(Gid::from_raw(plan.gid)).map_err(|e| format!("setgid {}: {e}", plan.gid))?;
    setuid(Uid::from_raw(plan.uid)).map_err(|e| format!("setuid {}: {e}", plan.uid))?;
    prctl::set_keepcaps(false).map_err(|e| format!("keepcaps: {e}"))?;
    caps::apply(&plan.capabilities)?;
    std::env::set_current_dir(&plan.cwd)
        .map_err(|e| format!("chdir {}: {e}", plan.cwd.display()))?;
    rearm_parent_death(plan)?;
    if plan.no_new_privileges {
        prctl::set_no_new_privs().map_err(|e| format!("no_new_privs: {e}"))?;
    }
    Ok(())
}

fn c_strings(list: &[String]) -> Result<Vec<std::ffi::CString>, std::ffi::NulError> {
    list.iter()
        .map(|s| std::ffi::CString::new(s.as_str()))
        .collect()
}

static CHILD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);
static RESIZED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn note_resize(_: nix::libc::c_int) {
    RESIZED.store(true, std::sync::atomic::Ordering::Relaxed);
}

extern "C" fn pass_on(signal: nix::libc::c_int) {
    let child = CHILD.load(std::sync::atomic::Ordering::Relaxed);
    // SAFETY: kill(2) is async-signal-safe.
    unsafe { nix::libc::kill(child, signal) };
}

/// Passes signals on to the container's pid 1 and ends as it ended; with
/// a console channel, pumps the container's own terminal meanwhile.
pub(super) fn relay(child: Pid, console: Option<OwnedFd>) -> ExitCode {
    CHILD.store(child.as_raw(), std::sync::atomic::Ordering::Relaxed);
    let action = SigAction::new(
        SigHandler::Handler(pass_on),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // Every signal that can be caught, so a signal for the container's
    // process (docker kill -s …) reaches it instead of ending this one.
    for signal in Signal::iterator() {
        if matches!(signal, Signal::SIGKILL | Signal::SIGSTOP | Signal::SIGCHLD) {
            continue;
        }
        // SAFETY: the handler only calls kill(2).
        let _ = unsafe { sigaction(signal, &action) };
    }
    if let Some(channel) = console {
        // The container's pty gets the new size (and with it SIGWINCH).
        let resize = SigAction::new(
            SigHandler::Handler(note_resize),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        // SAFETY: the handler only stores to an atomic.
        let _ = unsafe { sigaction(Signal::SIGWINCH, &resize) };
        if let Some(master) = console::receive(channel) {
            console::pump(master, || {
                RESIZED.swap(false, std::sync::atomic::Ordering::Relaxed)
            });
        }
    }
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return ExitCode::from(code as u8),
            Ok(WaitStatus::Signaled(_, signal, _)) => {
                // End the same way, so the agent reports the signal.
                let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
                // SAFETY: restoring the default action.
                let _ = unsafe { sigaction(signal, &default) };
                let _ = kill(Pid::this(), signal);
                return ExitCode::from(128 + signal as u8);
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return ExitCode::FAILURE,
        }
    }
}
