//! The sandbox's console log in the lifecycle: created with its pump by
//! `create`, finished by `stop` and teardown, read by `logs` and `run`
//! (the log itself: [`crate::console`]).

use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::Duration;

use super::Sandboxes;
use crate::console::{self, ConsoleTail};
use crate::process::{self, ProcessId};
use crate::state::{ConsoleRecord, SandboxState, Status};
use crate::store::Stored;
use crate::{crash, HypervisorFactory, SandboxError, SandboxId};

/// How long the console pump may take to write the last of the console
/// once the VMM is gone (it only has the pipe's buffer left to copy).
const CONSOLE_DRAIN: Duration = Duration::from_secs(5);
/// How often a followed console log is read.
const CONSOLE_POLL: Duration = Duration::from_millis(20);

impl<F: HypervisorFactory> Sandboxes<F> {
    /// Record, then create, the console log and its pump; the pipe's write
    /// end, for the VMM, is returned.
    pub(super) fn start_console(
        &self,
        id: &SandboxId,
        state: &mut SandboxState,
    ) -> Result<OwnedFd, SandboxError> {
        let _step = tracing::debug_span!("start_console").entered();
        let dir = self.store.dir(id);
        state.console = Some(ConsoleRecord {
            log: dir.join(console::LOG),
            pump: None,
        });
        self.store.save(state)?;
        console::create_log(&dir.join(console::LOG)).map_err(|source| {
            SandboxError::ConsoleLog {
                id: id.to_string(),
                source,
            }
        })?;
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|source| {
            SandboxError::ConsolePipe {
                id: id.to_string(),
                source,
            }
        })?;
        let mut command = self.factory.console_pump(&dir);
        command
            .stdin(Stdio::from(read))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Out of the terminal's process group: Ctrl-C is for vmjail,
            // the pump ends when the VMM does.
            .process_group(0);
        // Reaped by whoever it is reparented to once this process exits,
        // or seen as a zombie (gone) by `ProcessId::is_alive` before.
        #[allow(clippy::zombie_processes)]
        let child = command
            .spawn()
            .map_err(|source| SandboxError::ConsolePump {
                id: id.to_string(),
                program: format!("{:?}", command.get_program()),
                source,
            })?;
        let pid = child.id() as i32;
        if let (Some(record), Some(start_time)) = (state.console.as_mut(), process::start_time(pid))
        {
            record.pump = Some(ProcessId { pid, start_time });
        }
        self.store.save(state)?;
        crash::point("create-console-pump");
        Ok(write)
    }

    /// Wait (bounded) for the console pump to write the VMM's last words
    /// and end; one that does not (a writer other than the VMM kept the
    /// pipe open) is killed, so that `delete` can remove the log.
    pub(super) fn finish_console(&self, state: &SandboxState) -> Result<(), SandboxError> {
        let Some(pump) = state.console.as_ref().and_then(|c| c.pump) else {
            return Ok(());
        };
        let _step = tracing::debug_span!("finish_console").entered();
        if pump.wait_gone(CONSOLE_DRAIN) {
            return Ok(());
        }
        tracing::warn!(
            "sandbox {}: the console pump (pid {}) still runs {CONSOLE_DRAIN:?} after the VMM stopped; killing it",
            state.id,
            pump.pid
        );
        pump.kill().map_err(|source| SandboxError::ConsolePumpKill {
            id: state.id.clone(),
            pid: pump.pid,
            source,
        })
    }

    /// Copy sandbox `id`'s console log to `out`. With `follow`, go on
    /// copying what the guest writes until the sandbox is stopped and its
    /// log complete, it is deleted, or `give_up` (asked between polls)
    /// says so.
    pub fn console(
        &self,
        id: &SandboxId,
        out: &mut dyn Write,
        follow: bool,
        give_up: &mut dyn FnMut() -> bool,
    ) -> Result<(), SandboxError> {
        let log = match self.store.load(id)? {
            Stored::State(state) => match state.console {
                Some(console) => console.log,
                None => return Err(SandboxError::NoConsole { id: id.to_string() }),
            },
            // `create` died before recording anything: there is no log.
            Stored::Unrecorded => return Ok(()),
        };
        let mut tail = ConsoleTail::new(&log);
        let read = |tail: &mut ConsoleTail, out: &mut dyn Write| {
            tail.pump(out).map_err(|source| SandboxError::ConsoleLog {
                id: id.to_string(),
                source,
            })
        };
        loop {
            // The state first, the log after: what the guest wrote before
            // it was seen stopped is copied before returning.
            let finished = match self.store.load(id) {
                Ok(Stored::State(state)) => {
                    state.status() == Status::Stopped
                        && !state
                            .console
                            .as_ref()
                            .is_some_and(ConsoleRecord::pump_alive)
                }
                Ok(Stored::Unrecorded) => false,
                // Deleted: the log, unlinked, is still read to its end.
                Err(SandboxError::NotFound { .. }) => true,
                Err(err) => return Err(err),
            };
            read(&mut tail, out)?;
            if !follow || finished || give_up() {
                return Ok(());
            }
            std::thread::sleep(CONSOLE_POLL);
        }
    }
}
