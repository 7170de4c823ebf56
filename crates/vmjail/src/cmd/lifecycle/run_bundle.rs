//! `vmjail run --bundle DIR`: after `create` made the bundle's disk, start
//! the sandbox, reach its agent and run the container with this process's
//! stdio; the exit code is the container's (128+N for a signal). `run`
//! deletes the sandbox afterwards.

use std::time::Duration;

use vmjail_sandbox::agent::{SessionIo, SessionOptions, DEFAULT_TTY_SIZE};
use vmjail_sandbox::{SandboxId, Sandboxes, SelectFactory};

use super::run::interrupted;
use super::{exit, Failure, START_TIMEOUT};

/// How long the guest may take to boot and answer on its agent's port.
const AGENT_TIMEOUT: Duration = Duration::from_secs(60);

pub fn follow(
    sandboxes: &Sandboxes<SelectFactory>,
    id: &SandboxId,
    container: &str,
    tty: bool,
) -> Result<u8, Failure> {
    if let Some(code) = interrupted(id) {
        return Ok(code);
    }
    sandboxes.start(id, START_TIMEOUT)?;
    if let Some(code) = interrupted(id) {
        return Ok(code);
    }
    let client = sandboxes.agent_client(id, AGENT_TIMEOUT)?;
    if let Some(code) = interrupted(id) {
        return Ok(code);
    }
    let io = SessionIo::from_std()
        .map_err(|e| Failure::Other(format!("sandbox \"{id}\": local stdio: {e}")))?;
    let options = SessionOptions {
        tty: tty.then_some(DEFAULT_TTY_SIZE),
        stdin: true,
        forward_signals: true,
    };
    let status = sandboxes.run_container(id, client, container, options, io)?;
    Ok(u8::try_from(status.code()).unwrap_or(exit::FAILURE))
}
