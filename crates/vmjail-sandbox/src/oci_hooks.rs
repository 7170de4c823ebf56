//! OCI runtime hooks (`config.json`'s `hooks`): host programs a runtime
//! runs at points of a container's life, each given the container's OCI
//! state JSON on its stdin. This module checks a spec's hooks and runs a
//! list of them; which list runs when is the caller's business.
//!
//! A hook is a host process run as root: it gets exactly its spec's argv
//! and env, the bundle as its working directory, and its own process
//! group, which is SIGKILLed at the hook's `timeout` (or
//! [`DEFAULT_TIMEOUT`] when it has none: a hung hook must not hang the
//! runtime). Its stdout and stderr are read all along (so it never blocks
//! on a full pipe) but only the first [`KEPT_OUTPUT`] bytes of each are
//! kept, for the log and the error.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
pub use oci_spec::runtime::Hook;

/// How long a hook without a `timeout` of its own may run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes of each of a hook's stdout and stderr kept (the rest is read
/// and dropped).
pub const KEPT_OUTPUT: usize = 4096;
/// How long the pipes are still read once the hook exited: a background
/// child of the hook may hold them open for ever.
const DRAIN_GRACE: Duration = Duration::from_millis(100);

/// The points of a container's life the OCI runtime spec names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl HookKind {
    pub const ALL: [HookKind; 6] = [
        HookKind::Prestart,
        HookKind::CreateRuntime,
        HookKind::CreateContainer,
        HookKind::StartContainer,
        HookKind::Poststart,
        HookKind::Poststop,
    ];

    /// Its key in `config.json`'s `hooks`.
    pub fn key(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }
}

impl std::fmt::Display for HookKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("config.json: hooks: {0}")]
    Invalid(String),
    #[error("config.json: hooks.{kind}[{index}]: {why}")]
    Bad {
        kind: HookKind,
        index: usize,
        why: String,
    },
    #[error("{kind} hook {index} ({}): starting it: {source}", path.display())]
    Spawn {
        kind: HookKind,
        index: usize,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{kind} hook {index} ({}): {step}: {source}", path.display())]
    Io {
        kind: HookKind,
        index: usize,
        path: PathBuf,
        step: &'static str,
        source: std::io::Error,
    },
    #[error("{kind} hook {index} ({}) failed: {status}{output}", path.display())]
    Failed {
        kind: HookKind,
        index: usize,
        path: PathBuf,
        status: String,
        output: String,
    },
    #[error("{kind} hook {index} ({}) timed out after {}s (killed){output}", path.display(), timeout.as_secs())]
    TimedOut {
        kind: HookKind,
        index: usize,
        path: PathBuf,
        timeout: Duration,
        output: String,
    },
}

/// A spec's hooks, checked: every path absolute, every `env` entry
/// `KEY=VALUE`, every `timeout` above zero.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks(oci_spec::runtime::Hooks);

impl Hooks {
    /// The hooks of `config` (a whole `config.json`); none when it has no
    /// `hooks`.
    pub fn from_spec(config: &serde_json::Value) -> Result<Hooks, HookError> {
        let Some(value) = config.get("hooks") else {
            return Ok(Hooks::default());
        };
        let hooks: oci_spec::runtime::Hooks =
            serde_json::from_value(value.clone()).map_err(|e| HookError::Invalid(e.to_string()))?;
        let hooks = Hooks(hooks);
        for kind in HookKind::ALL {
            for (index, hook) in hooks.list(kind).iter().enumerate() {
                check(hook).map_err(|why| HookError::Bad { kind, index, why })?;
            }
        }
        Ok(hooks)
    }

    /// The hooks of `kind`, in the spec's order.
    pub fn list(&self, kind: HookKind) -> &[Hook] {
        // `prestart` is deprecated by the spec but still what Docker
        // (libnetwork-setkey) uses: a runtime must run it.
        #[allow(deprecated)]
        let list = match kind {
            HookKind::Prestart => self.0.prestart(),
            HookKind::CreateRuntime => self.0.create_runtime(),
            HookKind::CreateContainer => self.0.create_container(),
            HookKind::StartContainer => self.0.start_container(),
            HookKind::Poststart => self.0.poststart(),
            HookKind::Poststop => self.0.poststop(),
        };
        list.as_deref().unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        HookKind::ALL.iter().all(|k| self.list(*k).is_empty())
    }

    /// The spec's JSON form of these hooks.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.0).unwrap_or_default()
    }
}

fn check(hook: &Hook) -> Result<(), String> {
    if !hook.path().is_absolute() {
        return Err(format!(
            "path {:?} is not absolute (the spec requires an absolute path)",
            hook.path()
        ));
    }
    if let Some(bad) = hook
        .env()
        .iter()
        .flatten()
        .find(|e| e.split_once('=').is_none_or(|(k, _)| k.is_empty()))
    {
        return Err(format!("env entry {bad:?} is not KEY=VALUE"));
    }
    match hook.timeout() {
        Some(t) if t <= 0 => Err(format!("timeout {t}: must be greater than zero")),
        _ => Ok(()),
    }
}

/// Runs `hooks` (of `kind`) one after the other, each with `state` on its
/// stdin and `cwd` as its working directory; stops at the first that
/// fails (exits non-zero, is killed, or runs past its timeout).
pub fn run(kind: HookKind, hooks: &[Hook], state: &[u8], cwd: &Path) -> Result<(), HookError> {
    for (index, hook) in hooks.iter().enumerate() {
        run_one(kind, index, hook, state, cwd)?;
    }
    Ok(())
}

/// Runs every hook of `hooks` as [`run`] does, going on after a failure
/// (as the spec has it for poststart and poststop); returns the failures
/// for the caller to log.
pub fn run_logged(kind: HookKind, hooks: &[Hook], state: &[u8], cwd: &Path) -> Vec<HookError> {
    let mut failures = Vec::new();
    for (index, hook) in hooks.iter().enumerate() {
        if let Err(e) = run_one(kind, index, hook, state, cwd) {
            failures.push(e);
        }
    }
    failures
}

fn run_one(
    kind: HookKind,
    index: usize,
    hook: &Hook,
    state: &[u8],
    cwd: &Path,
) -> Result<(), HookError> {
    let path = hook.path().clone();
    let io = |step: &'static str| {
        let path = path.clone();
        move |source| HookError::Io {
            kind,
            index,
            path,
            step,
            source,
        }
    };
    let mut command = Command::new(&path);
    if let Some((arg0, rest)) = hook.args().as_deref().and_then(|a| a.split_first()) {
        command.arg0(arg0).args(rest);
    }
    command.env_clear();
    for entry in hook.env().iter().flatten() {
        if let Some((key, value)) = entry.split_once('=') {
            command.env(key, value);
        }
    }
    command
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group: the timeout kills whatever it started too.
        .process_group(0);
    let timeout = hook
        .timeout()
        .and_then(|t| u64::try_from(t).ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let started = Instant::now();
    let mut child = command.spawn().map_err(|source| HookError::Spawn {
        kind,
        index,
        path: path.clone(),
        source,
    })?;
    // A timeout past what an Instant holds (the spec allows any i64) is
    // as good as none: a year.
    let deadline = started
        .checked_add(timeout)
        .unwrap_or(started + Duration::from_secs(365 * 24 * 3600));
    let exchanged = exchange(&mut child, state, deadline).map_err(io("its stdio"));
    let (status, output) = match exchanged {
        Ok(done) => done,
        Err(e) => {
            kill_group(&mut child);
            return Err(e);
        }
    };
    let Some(status) = status else {
        kill_group(&mut child);
        return Err(HookError::TimedOut {
            kind,
            index,
            path,
            timeout,
            output: output.describe(),
        });
    };
    tracing::debug!(
        "{kind} hook {index} ({}): {status} after {:?}{}",
        path.display(),
        started.elapsed(),
        output.describe()
    );
    if status.success() {
        return Ok(());
    }
    let status = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    };
    Err(HookError::Failed {
        kind,
        index,
        path,
        status,
        output: output.describe(),
    })
}

/// SIGKILL to the hook's process group, then reaps the hook.
fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = child.wait();
}

/// The first [`KEPT_OUTPUT`] bytes of a stream, and how many more came.
#[derive(Default)]
struct Kept {
    bytes: Vec<u8>,
    dropped: u64,
}

impl Kept {
    fn add(&mut self, data: &[u8]) {
        let room = KEPT_OUTPUT.saturating_sub(self.bytes.len()).min(data.len());
        self.bytes.extend_from_slice(&data[..room]);
        self.dropped += (data.len() - room) as u64;
    }

    fn text(&self) -> String {
        let text = String::from_utf8_lossy(&self.bytes).trim().to_string();
        match self.dropped {
            0 => text,
            n => format!("{text} … ({n} more bytes)"),
        }
    }
}

#[derive(Default)]
struct Output {
    stdout: Kept,
    stderr: Kept,
}

impl Output {
    /// `; stderr: …; stdout: …` for what the hook wrote.
    fn describe(&self) -> String {
        let mut text = String::new();
        for (name, kept) in [("stderr", &self.stderr), ("stdout", &self.stdout)] {
            let t = kept.text();
            if !t.is_empty() {
                text.push_str(&format!("; {name}: {t}"));
            }
        }
        text
    }
}

fn nonblocking(fd: impl AsFd) -> std::io::Result<()> {
    let raw = fd.as_fd().as_raw_fd();
    let flags = fcntl(raw, FcntlArg::F_GETFL)?;
    fcntl(
        raw,
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )?;
    Ok(())
}

/// Writes `input` to the child's stdin (then closes it) and reads its
/// stdout and stderr until it exits and they close (or [`DRAIN_GRACE`]
/// after its exit); `None` as its status when `deadline` came first.
fn exchange(
    child: &mut Child,
    input: &[u8],
    deadline: Instant,
) -> std::io::Result<(Option<ExitStatus>, Output)> {
    let mut stdin = child.stdin.take();
    let mut pipes = [
        child.stdout.take().map(Pipe::Out),
        child.stderr.take().map(Pipe::Err),
    ];
    if let Some(s) = &stdin {
        nonblocking(s)?;
    }
    for pipe in pipes.iter().flatten() {
        nonblocking(pipe.fd())?;
    }
    let mut written = 0;
    let mut output = Output::default();
    let mut exited: Option<(ExitStatus, Instant)> = None;
    let mut buf = [0u8; 16 * 1024];
    loop {
        if exited.is_none() {
            exited = child.try_wait()?.map(|s| (s, Instant::now()));
        }
        let open = pipes.iter().any(Option::is_some);
        let now = Instant::now();
        match exited {
            Some((status, at)) if !open || now >= at + DRAIN_GRACE => {
                return Ok((Some(status), output))
            }
            None if now >= deadline => return Ok((None, output)),
            _ => {}
        }
        if written >= input.len() {
            // EOF for a hook reading its state to the end.
            stdin = None;
        }
        let mut fds = Vec::with_capacity(3);
        if let Some(s) = &stdin {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLOUT));
        }
        for pipe in pipes.iter().flatten() {
            fds.push(PollFd::new(pipe.fd(), PollFlags::POLLIN));
        }
        // Short slices: the hook's exit has no descriptor to wait on.
        let slice = deadline
            .saturating_duration_since(now)
            .min(Duration::from_millis(20));
        match poll(
            &mut fds,
            PollTimeout::try_from(slice).unwrap_or(PollTimeout::ZERO),
        ) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        drop(fds);
        if let Some(s) = &mut stdin {
            match s.write(&input[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                // The hook does not read its state (EPIPE): fine.
                Err(_) => written = input.len(),
            }
        }
        for slot in pipes.iter_mut() {
            let Some(pipe) = slot else { continue };
            // Bounded: a hook writing without pause must not keep this
            // loop from its deadline.
            for _ in 0..16 {
                match pipe.read(&mut buf) {
                    Ok(0) => {
                        *slot = None;
                        break;
                    }
                    Ok(n) => match pipe {
                        Pipe::Out(_) => output.stdout.add(&buf[..n]),
                        Pipe::Err(_) => output.stderr.add(&buf[..n]),
                    },
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

enum Pipe {
    Out(std::process::ChildStdout),
    Err(std::process::ChildStderr),
}

impl Pipe {
    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Pipe::Out(p) => p.as_fd(),
            Pipe::Err(p) => p.as_fd(),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Pipe::Out(p) => p.read(buf),
            Pipe::Err(p) => p.read(buf),
        }
    }
}

#[cfg(test)]
#[path = "oci_hooks_tests.rs"]
mod tests;
