//! `exec` in a container (runc's exec): the process from `--process
//! FILE.json` or from CMD and the flags, inside the running container;
//! with `--detach` left to a host process of its own (its pid in
//! `--pid-file`, its stdio the caller's or a pty via `--console-socket`),
//! else streamed here and its status the exit code.

use std::path::Path;

use vmjail_sandbox::agent::{
    run_process_session, ProcessSpec, SessionIo, SessionOptions, DEFAULT_TTY_SIZE,
};
use vmjail_sandbox::{SandboxId, Sandboxes, SelectFactory};

use super::create::{stdin_is_null, write_pid_file};
use super::monitor::{self, Spawn};
use super::{console, Globals, AGENT_TIMEOUT};
use crate::cli::ExecArgs;
use crate::cmd::lifecycle::{exit, Failure};

/// Most bytes of a `--process` file read.
const MAX_PROCESS_FILE: u64 = 1 << 20;

pub fn exec(
    sandboxes: &Sandboxes<SelectFactory>,
    args: &ExecArgs,
    globals: &Globals,
) -> Result<u8, Failure> {
    let id = SandboxId::parse(&args.id)?;
    let mut spec = match &args.process {
        Some(path) => process_file(path)?,
        None => ProcessSpec::for_exec(
            args.command.clone(),
            &args.env,
            args.cwd.clone(),
            args.user.as_deref(),
            args.tty,
            false,
        )
        .map_err(|e| Failure::Usage(format!("exec: {e}")))?,
    };
    let tty = spec.tty.is_some();
    spec.stdin = tty || args.interactive || !stdin_is_null();
    if tty && args.detach && args.console_socket.is_none() {
        return Err(Failure::Usage(
            "exec --detach with a terminal needs --console-socket for its pty".into(),
        ));
    }
    let client = sandboxes.agent_client(&id, AGENT_TIMEOUT)?;
    if !args.detach {
        let mut io = SessionIo::from_std()
            .map_err(|e| Failure::Other(format!("container \"{id}\": local stdio: {e}")))?;
        if !spec.stdin {
            io.stdin = None;
        }
        let options = SessionOptions {
            tty: spec.tty,
            stdin: spec.stdin,
            forward_signals: true,
        };
        let status = run_process_session(
            options,
            io,
            |size| {
                let mut spec = spec.clone();
                spec.tty = size;
                sandboxes.exec_in_container(&id, client.clone(), id.as_str(), &spec)
            },
            |_| Ok::<_, vmjail_sandbox::SandboxError>(()),
        )?;
        return Ok(u8::try_from(status.code()).unwrap_or(exit::FAILURE));
    }
    let handle = sandboxes.exec_in_container(&id, client, id.as_str(), &spec)?;
    let slave = match (&args.console_socket, spec.tty) {
        (Some(socket), Some(size)) => {
            Some(console::send_master(socket, size).map_err(Failure::Other)?)
        }
        _ => None,
    };
    let name = handle.id().to_string();
    let spawned = monitor::spawn(
        sandboxes,
        globals,
        Spawn {
            sandbox: &id,
            container: id.as_str(),
            name: &name,
            tty,
            stdin: spec.stdin,
            stdio: slave,
        },
        handle.id(),
    );
    let process = match spawned {
        Ok(process) => process,
        Err(e) => {
            let _ = handle.delete();
            return Err(e);
        }
    };
    if let Some(path) = &args.pid_file {
        write_pid_file(path, process.pid)?;
    }
    Ok(exit::OK)
}

/// An OCI `process` JSON (what `--process` names): args, env, cwd, user,
/// terminal and consoleSize are used.
fn process_file(path: &Path) -> Result<ProcessSpec, Failure> {
    let bad = |why: String| Failure::Usage(format!("--process {}: {why}", path.display()));
    let size = std::fs::metadata(path)
        .map_err(|e| bad(e.to_string()))?
        .len();
    if size > MAX_PROCESS_FILE {
        return Err(bad(format!("{size} bytes, more than {MAX_PROCESS_FILE}")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let process: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let strings = |key: &str| -> Vec<String> {
        process
            .get(key)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let argv = strings("args");
    if argv.is_empty() {
        return Err(bad("no args".into()));
    }
    let number = |pointer: &str| {
        process
            .pointer(pointer)
            .and_then(|v| v.as_u64())
            .and_then(|v| u32::try_from(v).ok())
    };
    let terminal = process
        .get("terminal")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let size = match (number("/consoleSize/height"), number("/consoleSize/width")) {
        (Some(rows @ 1..=65535), Some(cols @ 1..=65535)) => (rows as u16, cols as u16),
        _ => DEFAULT_TTY_SIZE,
    };
    Ok(ProcessSpec {
        argv,
        env: strings("env"),
        cwd: process
            .get("cwd")
            .and_then(|v| v.as_str())
            .filter(|c| !c.is_empty())
            .map(String::from),
        uid: number("/user/uid").unwrap_or(0),
        gid: number("/user/gid").unwrap_or(0),
        additional_gids: process
            .pointer("/user/additionalGids")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|g| g.as_u64().and_then(|g| u32::try_from(g).ok()))
                    .collect()
            })
            .unwrap_or_default(),
        tty: terminal.then_some(size),
        stdin: false,
    })
}
