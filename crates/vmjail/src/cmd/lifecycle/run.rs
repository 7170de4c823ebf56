//! `vmjail run`: create and start a sandbox, stream its console to stdout,
//! then stop and delete it when the guest exits, at `--timeout`, or on
//! Ctrl-C / SIGTERM / SIGHUP. Whatever happens after `create`, the sandbox
//! is deleted before `run` returns, and its processes reaped: `run` is the
//! child subreaper of what it starts.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use vmjail_config::RuntimeConfig;
use vmjail_sandbox::{interrupt, reaper, ContainerSpec, SandboxId, Sandboxes, SelectFactory};

use super::{exit, Failure, CLEANUP_TIMEOUT, START_TIMEOUT};
use crate::cli::RunArgs;

pub fn run(
    sandboxes: &Sandboxes<SelectFactory>,
    config: &RuntimeConfig,
    args: &RunArgs,
) -> Result<u8, Failure> {
    interrupt::catch_termination()
        .map_err(|e| Failure::Other(format!("installing signal handlers: {e}")))?;
    // The VMM, orphaned by its jailer, becomes our child: reaped here, not
    // left a zombie for pid 1.
    reaper::become_subreaper().map_err(|e| {
        Failure::Other(format!(
            "becoming the child subreaper (PR_SET_CHILD_SUBREAPER): {e}"
        ))
    })?;
    let id = match &args.id {
        Some(id) => SandboxId::parse(id)?,
        None => {
            let id = generated_id()?;
            // On stderr: stdout is the guest's console. The id is what
            // `state`, `logs` or `stop` need from another terminal.
            crate::out::errln!("vmjail: run: sandbox id {id}");
            id
        }
    };
    let outcome = match &args.bundle {
        Some(bundle) => {
            let container = ContainerSpec {
                id: id.to_string(),
                bundle: bundle.clone(),
                pod: false,
            };
            sandboxes.create_with_containers(
                &id,
                config,
                args.netns.as_deref(),
                std::slice::from_ref(&container),
            )?;
            super::run_bundle::follow(sandboxes, &id, &container.id, args.tty)
        }
        None => {
            sandboxes.create(&id, config, args.netns.as_deref())?;
            follow(sandboxes, &id, Duration::from_secs(args.timeout))
        }
    };
    let cleanup = sandboxes.delete(&id, true, CLEANUP_TIMEOUT);
    // The VMM and the console pump are gone by now (or delete failed and
    // says so); their zombies are ours.
    reaper::reap_exited();
    match (outcome, cleanup) {
        (Ok(code), Ok(())) => Ok(code),
        (Err(err), Ok(())) => Err(err),
        (Ok(_), Err(cleanup)) => Err(cleanup.into()),
        (Err(err), Err(cleanup)) => Err(Failure::Other(format!(
            "{err}; deleting the sandbox also failed: {cleanup}"
        ))),
    }
}

/// Start the guest and stream its console until it exits, the deadline
/// passes or a termination signal arrives; returns the exit code.
fn follow(
    sandboxes: &Sandboxes<SelectFactory>,
    id: &SandboxId,
    timeout: Duration,
) -> Result<u8, Failure> {
    if let Some(code) = interrupted(id) {
        return Ok(code);
    }
    sandboxes.start(id, START_TIMEOUT)?;
    let deadline = Instant::now() + timeout;
    let mut ended = None;
    let mut give_up = || {
        ended = interrupted(id);
        if ended.is_none() && Instant::now() >= deadline {
            crate::out::errln!(
                "vmjail: run: the guest of sandbox {id} still runs after {}s; stopping it",
                timeout.as_secs()
            );
            ended = Some(exit::TIMEOUT);
        }
        ended.is_some()
    };
    sandboxes.console(id, &mut Stdout::default(), true, &mut give_up)?;
    // A terminal's Ctrl-C may reach the VMM too: report the signal, not
    // the VMM's exit it caused.
    Ok(ended.or_else(|| interrupted(id)).unwrap_or(exit::OK))
}

/// stdout for the console: once it fails (closed), the guest keeps
/// running to its end, its output discarded after one warning.
#[derive(Default)]
struct Stdout {
    closed: bool,
}

impl std::io::Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.closed {
            if let Err(e) = std::io::stdout().write_all(buf) {
                self.closed = true;
                crate::out::errln!(
                    "vmjail: warning: stdout closed ({e}); no longer streaming the console"
                );
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.closed {
            if let Err(e) = std::io::stdout().flush() {
                self.closed = true;
                crate::out::errln!(
                    "vmjail: warning: stdout closed ({e}); no longer streaming the console"
                );
            }
        }
        Ok(())
    }
}

pub(super) fn interrupted(id: &SandboxId) -> Option<u8> {
    let signal = interrupt::received()?;
    crate::out::errln!("vmjail: run: {signal} received; stopping and deleting sandbox {id}");
    Some(128u8.saturating_add(signal as u8))
}

/// `run-<pid>-<time>`: unique per process and instant, within the id rules.
fn generated_id() -> Result<SandboxId, Failure> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Ok(SandboxId::parse(&format!(
        "run-{}-{:x}",
        std::process::id(),
        nanos & 0xffff_ffff_ffff
    ))?)
}
