//! `vmjail exec`: one process in a running sandbox's VM, through its guest
//! agent reached over the VM's vsock; stdio streamed, the process's status
//! as the exit code. What the flags mean is the agent library's
//! ([`ProcessSpec::for_exec`]).

use std::time::{Duration, Instant};

use vmjail_sandbox::agent::{run_session, AgentError, ProcessSpec, SessionIo};
use vmjail_sandbox::{SandboxId, Sandboxes, SelectFactory, Status};

use super::{exit, Failure};
use crate::cli::ExecArgs;

/// How long `exec` waits for the guest's agent to answer (a guest booting
/// under TCG takes seconds).
const AGENT_WAIT: Duration = Duration::from_secs(30);
/// How long a lost agent connection may wait for the VM to show as gone.
const VM_GONE_GRACE: Duration = Duration::from_secs(2);

pub fn exec(sandboxes: &Sandboxes<SelectFactory>, args: &ExecArgs) -> Result<u8, Failure> {
    let id = SandboxId::parse(&args.id)?;
    let spec = ProcessSpec::for_exec(
        args.command.clone(),
        &args.env,
        args.cwd.clone(),
        args.user.as_deref(),
        args.tty,
        args.interactive,
    )
    .map_err(|e| Failure::Usage(format!("exec: {e}")))?;
    // Right after `start` the guest is still booting: wait for its agent.
    let client = sandboxes.agent_client(&id, AGENT_WAIT)?;
    // A connection lost under the command most often means the VM is
    // gone: say so when the sandbox no longer runs.
    let agent_error = |e: AgentError| {
        let lost = matches!(e, AgentError::Transport { .. } | AgentError::Timeout { .. });
        Failure::Other(match lost && vm_stopped(sandboxes, &id) {
            true => {
                format!("sandbox \"{id}\": its VM stopped under the command (guest agent: {e})")
            }
            false => format!("sandbox \"{id}\": guest agent: {e}"),
        })
    };
    let mut io = SessionIo::from_std().map_err(agent_error)?;
    if !args.interactive {
        io.stdin = None;
    }
    let status = run_session(client, &spec, io).map_err(agent_error)?;
    Ok(u8::try_from(status.code()).unwrap_or(exit::FAILURE))
}

/// Whether the sandbox's VM stops within [`VM_GONE_GRACE`]: a VMM closes
/// its sockets as it exits, a moment before its last thread is gone.
fn vm_stopped(sandboxes: &Sandboxes<SelectFactory>, id: &SandboxId) -> bool {
    let deadline = Instant::now() + VM_GONE_GRACE;
    loop {
        match sandboxes.state(id) {
            Ok(view) if view.status != Status::Running => return true,
            Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => return false,
        }
    }
}
