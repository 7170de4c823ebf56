//! The runc-compatible side of the command line: a container from an OCI
//! bundle in a sandbox (VM) of its own, whose id is the sandbox's, driven
//! by runc's commands as Docker's containerd shim and Podman's conmon call
//! them. The sandbox/container API does the work (`vmjail_sandbox`); this
//! module maps runc's grammar, outputs and exit codes onto it.
//!
//! A sandbox is "a container" here when it holds a container of its own
//! id (what `create --bundle` and `run --bundle` make); `start`, `state`,
//! `pause`, `resume`, `exec` and `delete` then act on the container, and
//! on the sandbox's VM otherwise, as before.

mod console;
mod create;
mod exec;
mod features;
mod hooks;
pub mod monitor;
pub mod pointer;
mod signal;
mod state;
mod update;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use vmjail_sandbox::{ContainerStatus, SandboxId, Sandboxes, SelectFactory};

use crate::cli::{KillArgs, LogFormat, PsArgs};
use crate::cmd::lifecycle::{exit, Failure};

pub use create::create;
pub use exec::exec;
pub use features::features;
pub use state::{oci_status, print_state, OciStatus};
pub use update::update;

/// How long the guest may take to boot and answer on its agent's port.
pub const AGENT_TIMEOUT: Duration = Duration::from_secs(60);

/// The global flags, as a container's host process is given them again.
#[derive(Debug, Clone)]
pub struct Globals {
    pub config: Option<PathBuf>,
    pub root: Option<PathBuf>,
    pub log: Option<PathBuf>,
    pub log_format: LogFormat,
    pub debug: bool,
}

impl Globals {
    /// The flags before a subcommand that reproduce these (paths made
    /// absolute: the host process runs in `/`).
    pub fn args(&self) -> Vec<OsString> {
        let mut args = Vec::new();
        let mut pair = |flag: &str, value: &Option<PathBuf>| {
            if let Some(v) = value {
                args.push(OsString::from(flag));
                let v = std::path::absolute(v).unwrap_or_else(|_| v.clone());
                args.push(v.into_os_string());
            }
        };
        pair("--config", &self.config);
        pair("--root", &self.root);
        pair("--log", &self.log);
        if self.log_format == LogFormat::Json {
            args.push("--log-format".into());
            args.push("json".into());
        }
        if self.debug {
            args.push("--debug".into());
        }
        args
    }
}

/// Whether sandbox `id` holds a container of its own id.
pub fn is_container(sandboxes: &Sandboxes<SelectFactory>, id: &SandboxId) -> bool {
    sandboxes.container_record(id, id.as_str()).is_ok()
}

/// runc's words for a container that is not there (containerd matches
/// "does not exist").
fn not_found(id: &SandboxId) -> Failure {
    Failure::NotFound(format!("container \"{id}\" does not exist"))
}

/// The container's status, `NotFound` when there is no such container.
pub(super) fn status_of(
    sandboxes: &Sandboxes<SelectFactory>,
    id: &SandboxId,
) -> Result<OciStatus, Failure> {
    if !is_container(sandboxes, id) {
        return Err(not_found(id));
    }
    Ok(oci_status(sandboxes, id)?.0)
}

pub fn start(sandboxes: &Sandboxes<SelectFactory>, id: &SandboxId) -> Result<u8, Failure> {
    let client = sandboxes.agent_client(id, AGENT_TIMEOUT)?;
    sandboxes.start_container(id, &client, id.as_str())?;
    hooks::run_poststart(sandboxes, id, &hooks::recorded(id));
    Ok(exit::OK)
}

pub fn kill(sandboxes: &Sandboxes<SelectFactory>, args: &KillArgs) -> Result<u8, Failure> {
    let id = SandboxId::parse(&args.id)?;
    let signal = signal::parse(args.signal.as_deref().unwrap_or("TERM"))?;
    match status_of(sandboxes, &id)? {
        OciStatus::Created | OciStatus::Running | OciStatus::Paused => {}
        // containerd matches "container not running".
        _ => {
            return Err(Failure::WrongState(format!(
                "container \"{id}\": container not running"
            )))
        }
    }
    let client = sandboxes.agent_client(&id, AGENT_TIMEOUT)?;
    sandboxes.signal_container(&id, &client, id.as_str(), signal, args.all)?;
    Ok(exit::OK)
}

/// `delete [--force]` of a container: a running or paused one only with
/// `--force` (as runc); the sandbox goes with it.
pub fn delete(
    sandboxes: &Sandboxes<SelectFactory>,
    id: &SandboxId,
    force: bool,
    timeout: Duration,
) -> Result<u8, Failure> {
    let status = status_of(sandboxes, id)?;
    if !force && matches!(status, OciStatus::Running | OciStatus::Paused) {
        return Err(Failure::WrongState(format!(
            "cannot delete container \"{id}\" that is not stopped: {status} (use --force)"
        )));
    }
    let hooks = hooks::recorded(id);
    let state = (!hooks.is_empty())
        .then(|| state::oci_state(sandboxes, id).ok())
        .flatten();
    sandboxes.delete(id, true, timeout)?;
    pointer::remove(id.as_str());
    hooks::run_poststop(id, &hooks, state);
    Ok(exit::OK)
}

pub fn pause(
    sandboxes: &Sandboxes<SelectFactory>,
    id: &SandboxId,
    freeze: bool,
) -> Result<u8, Failure> {
    let client = sandboxes.agent_client(id, AGENT_TIMEOUT)?;
    if freeze {
        sandboxes.pause_container(id, &client, id.as_str())?;
    } else {
        sandboxes.resume_container(id, &client, id.as_str())?;
    }
    Ok(exit::OK)
}

pub fn ps(sandboxes: &Sandboxes<SelectFactory>, args: &PsArgs) -> Result<u8, Failure> {
    let id = SandboxId::parse(&args.id)?;
    status_of(sandboxes, &id)?;
    let record = sandboxes.container_record(&id, id.as_str())?;
    let pids = match record.status {
        ContainerStatus::Created | ContainerStatus::Running | ContainerStatus::Paused => {
            let client = sandboxes.agent_client(&id, AGENT_TIMEOUT)?;
            sandboxes.container_pids(&id, &client, id.as_str())?
        }
        _ => Vec::new(),
    };
    match args.format {
        crate::cli::ListFormat::Json => {
            crate::cmd::lifecycle::print_json(&pids)?;
        }
        crate::cli::ListFormat::Table => {
            crate::out::outln!("PID");
            for pid in pids {
                crate::out::outln!("{pid}");
            }
        }
    }
    Ok(exit::OK)
}
