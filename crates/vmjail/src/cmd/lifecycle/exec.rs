//! `vmjail exec`: one process in a running sandbox's VM, through its guest
//! agent reached over the VM's vsock; stdio streamed, the process's status
//! as the exit code. What the flags mean is the agent library's
//! ([`ProcessSpec::for_exec`]).

use std::sync::Arc;

use vmjail_sandbox::agent::{run_session, AgentClient, ProcessSpec, SessionIo};
use vmjail_sandbox::{vsock, SandboxId, Sandboxes, SelectFactory};

use super::{exit, Failure};
use crate::cli::ExecArgs;

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
    let stream = sandboxes.connect_vsock(&id, vsock::AGENT_PORT, vsock::CONNECT_TIMEOUT)?;
    let agent_error = |e| Failure::Other(format!("sandbox \"{id}\": guest agent: {e}"));
    let client = AgentClient::new(stream).map_err(agent_error)?;
    let mut io = SessionIo::from_std().map_err(agent_error)?;
    if !args.interactive {
        io.stdin = None;
    }
    let status = run_session(Arc::new(client), &spec, io).map_err(agent_error)?;
    Ok(u8::try_from(status.code()).unwrap_or(exit::FAILURE))
}
