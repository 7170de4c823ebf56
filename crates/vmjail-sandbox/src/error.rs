//! Every step of the sandbox lifecycle that can fail.

use std::path::PathBuf;

use vmjail_vmm::VmmError;

use crate::netns::NetnsError;
use crate::state::Status;

/// What kind of failure, for callers that map errors to exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A bad argument (id, `--netns` path).
    InvalidInput,
    NotFound,
    AlreadyExists,
    /// The operation does not apply to the sandbox's current status.
    WrongState,
    /// The host, the VMM or the state store failed.
    Failed,
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("invalid sandbox id \"{id}\": {reason}; a valid id matches [A-Za-z0-9][A-Za-z0-9-]{{0,63}} (a letter or digit first)")]
    InvalidId { id: String, reason: &'static str },
    // "does not exist": what containerd looks for in a runtime's error.
    #[error("no sandbox \"{id}\" in {}: it does not exist", state_dir.display())]
    NotFound { id: String, state_dir: PathBuf },
    #[error("sandbox \"{id}\" already exists ({}); pick another id, or remove it with `vmjail delete --force {id}`", path.display())]
    AlreadyExists { id: String, path: PathBuf },
    #[error("cannot {operation} sandbox \"{id}\": it is {status}; {operation} needs {needs}")]
    WrongState {
        id: String,
        operation: &'static str,
        status: Status,
        needs: &'static str,
    },
    #[error("sandbox \"{id}\": internetworking_model = \"{model}\" is not implemented (nor is it in Kata); use tcfilter, macvtap, bridged or none")]
    NetworkModel { id: String, model: &'static str },
    #[error("sandbox \"{id}\": {step}: {source}")]
    Network {
        id: String,
        step: &'static str,
        source: Box<vmjail_vmm::net::Error>,
    },
    #[error("--netns {}: {reason}", path.display())]
    BadNetns { path: PathBuf, reason: String },
    #[error("creating the jail's chroot base directory {}: {source}", path.display())]
    CreateChrootBase {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("creating state directory {}: {source}", path.display())]
    CreateStateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{source}")]
    UntrustedState { source: Box<vmjail_jail::JailError> },
    #[error("{} is not a directory; the state store holds one directory per sandbox", path.display())]
    NotADirectory { path: PathBuf },
    #[error("locking {}: {source}", path.display())]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("removing lock file {}: {source}", path.display())]
    RemoveLock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing sandbox state {}: {source}", path.display())]
    WriteState {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading sandbox state {}: {source}", path.display())]
    ReadState {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("sandbox state {} is not valid state JSON: {source}", path.display())]
    ParseState {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("sandbox state {} belongs to sandbox \"{found}\"", path.display())]
    StateMismatch { path: PathBuf, found: String },
    #[error("removing sandbox state directory {}: {source}", path.display())]
    RemoveStateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("listing state directory {}: {source}", path.display())]
    ListStateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("sandbox \"{id}\": its VMM's uid/gid: {source}")]
    Ids {
        id: String,
        source: crate::ids::IdsError,
    },
    /// What the creator did before the VM was made failed (its message).
    #[error("{reason}")]
    BeforeVm { id: String, reason: String },
    #[error("sandbox \"{id}\": network namespace: {source}")]
    Netns { id: String, source: NetnsError },
    #[error("{source}; undoing the half-made sandbox also failed: {cleanup}; `vmjail delete --force {id}` retries the cleanup")]
    Incomplete {
        id: String,
        source: Box<SandboxError>,
        cleanup: Box<SandboxError>,
    },
    #[error("sandbox \"{id}\": refusing to act on its record: {reason}")]
    ForgedRecord { id: String, reason: String },
    #[error("sandbox \"{id}\" was created with [jail] {key} = {was}, this configuration says {now}: run vmjail with the configuration it was created with (--config)")]
    ConfigMismatch {
        id: String,
        key: &'static str,
        was: String,
        now: String,
    },
    #[error("sandbox \"{id}\": console log: {source}")]
    ConsoleLog {
        id: String,
        source: crate::console::ConsoleError,
    },
    #[error("sandbox \"{id}\": creating the console pipe: {source}")]
    ConsolePipe { id: String, source: nix::Error },
    #[error("sandbox \"{id}\": starting the console pump {program}: {source}")]
    ConsolePump {
        id: String,
        program: String,
        source: std::io::Error,
    },
    #[error("sandbox \"{id}\": stopping the console pump (pid {pid}): {source}")]
    ConsolePumpKill {
        id: String,
        pid: i32,
        source: nix::Error,
    },
    #[error("sandbox \"{id}\" has no console log (created by an older vmjail)")]
    NoConsole { id: String },
    #[error("sandbox \"{id}\": {step}: its state records no VMM")]
    NoVmmRecord { id: String, step: &'static str },
    #[error("sandbox \"{id}\": vsock port {port}: {source}")]
    Vsock {
        id: String,
        port: u32,
        source: Box<crate::vsock::VsockError>,
    },
    #[error("the guest agent: {source}")]
    Agent {
        source: Box<crate::agent::AgentError>,
    },
    #[error("sandbox \"{id}\": {source}")]
    Container {
        id: String,
        source: Box<crate::ContainerError>,
    },
    #[error("sandbox \"{id}\": {step}: {source}")]
    Hypervisor {
        id: String,
        step: &'static str,
        // Boxed: backend errors are large and this enum is returned often.
        source: Box<VmmError>,
    },
}

impl From<crate::agent::AgentError> for SandboxError {
    fn from(source: crate::agent::AgentError) -> Self {
        SandboxError::Agent {
            source: Box::new(source),
        }
    }
}

impl SandboxError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SandboxError::InvalidId { .. } | SandboxError::BadNetns { .. } => {
                ErrorKind::InvalidInput
            }
            SandboxError::NotFound { .. } => ErrorKind::NotFound,
            SandboxError::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            SandboxError::WrongState { .. } => ErrorKind::WrongState,
            SandboxError::Incomplete { source, .. } => source.kind(),
            SandboxError::Container { source, .. } => source.kind(),
            _ => ErrorKind::Failed,
        }
    }
}
