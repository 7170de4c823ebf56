//! `vmjail exec`: one process in a running sandbox's VM, through its guest
//! agent reached over the VM's vsock; stdio streamed, the process's status
//! as the exit code.

use std::sync::Arc;

use vmjail_sandbox::agent::{run_session, AgentClient, ProcessSpec, SessionIo};
use vmjail_sandbox::{vsock, SandboxId, Sandboxes, SelectFactory};

use super::{exit, Failure};
use crate::cli::ExecArgs;

/// `PATH` unless `-e PATH=...` is given: the guest's init has none to pass.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The terminal size asked for with `-t` when stdin is not a terminal.
const DEFAULT_TTY_SIZE: (u16, u16) = (24, 80);

pub fn exec(sandboxes: &Sandboxes<SelectFactory>, args: &ExecArgs) -> Result<u8, Failure> {
    let id = SandboxId::parse(&args.id)?;
    let spec = spec(args).map_err(|reason| Failure::Usage(format!("exec: {reason}")))?;
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

/// The process to start, from the arguments.
fn spec(args: &ExecArgs) -> Result<ProcessSpec, String> {
    let (uid, gid) = match &args.user {
        Some(user) => parse_user(user)?,
        None => (0, 0),
    };
    for var in &args.env {
        match var.split_once('=') {
            Some((key, _)) if !key.is_empty() && !key.contains('\0') => {}
            _ => return Err(format!("-e {var:?}: expected KEY=VALUE")),
        }
    }
    let mut env = Vec::with_capacity(args.env.len() + 1);
    if !args.env.iter().any(|v| v.starts_with("PATH=")) {
        env.push(DEFAULT_PATH.to_owned());
    }
    env.extend(args.env.iter().cloned());
    Ok(ProcessSpec {
        argv: args.command.clone(),
        env,
        cwd: args.cwd.clone(),
        uid,
        gid,
        additional_gids: Vec::new(),
        // The session replaces this with the local terminal's size.
        tty: args.tty.then_some(DEFAULT_TTY_SIZE),
        stdin: args.interactive,
    })
}

/// `UID` or `UID:GID`, numeric (the guest has no user database); the
/// group defaults to the uid.
fn parse_user(user: &str) -> Result<(u32, u32), String> {
    let number = |s: &str| {
        s.parse::<u32>()
            .map_err(|_| format!("--user {user:?}: expected UID[:GID], numeric"))
    };
    match user.split_once(':') {
        Some((uid, gid)) => Ok((number(uid)?, number(gid)?)),
        None => number(user).map(|uid| (uid, uid)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(env: &[&str], user: Option<&str>) -> ExecArgs {
        ExecArgs {
            id: "sb".into(),
            tty: false,
            interactive: false,
            env: env.iter().map(|s| s.to_string()).collect(),
            cwd: None,
            user: user.map(str::to_owned),
            command: vec!["true".into()],
        }
    }

    #[test]
    fn users_env_and_path() {
        assert_eq!(parse_user("1000").unwrap(), (1000, 1000));
        assert_eq!(parse_user("1000:50").unwrap(), (1000, 50));
        for bad in ["", "x", "1:", ":1", "-1", "1:2:3"] {
            assert!(parse_user(bad).is_err(), "{bad}");
        }
        let spec = spec(&args(&["A=1"], Some("7:8"))).unwrap();
        assert_eq!(spec.env, [DEFAULT_PATH, "A=1"]);
        assert_eq!((spec.uid, spec.gid), (7, 8));
        assert_eq!(spec.tty, None);
        assert!(!spec.stdin);
        let own_path = super::spec(&args(&["PATH=/x"], None)).unwrap();
        assert_eq!(own_path.env, ["PATH=/x"]);
        assert!(super::spec(&args(&["NOEQUALS"], None)).is_err());
        assert!(super::spec(&args(&["=v"], None)).is_err());
    }
}
