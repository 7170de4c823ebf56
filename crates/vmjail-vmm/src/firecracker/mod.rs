//! The Firecracker backend: a jailed Firecracker (its own `jailer` when
//! `jailer_path` is set, vmjail's built-in jail otherwise) in the sandbox's
//! netns, driven through its HTTP API on the jail's Unix socket.

pub mod api;
mod backend;
pub mod client;
pub mod configure;
mod drives;
mod fifo;
pub mod layout;

use std::path::PathBuf;

pub use backend::{CreateTimings, Firecracker};
pub use client::{ApiClient, ApiError, WaitError};
pub use configure::{configure, BootPlan};

/// Every step of the Firecracker backend that can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("macvtap {name}: Firecracker cannot use a macvtap (it opens taps by name only); use internetworking_model = \"tcfilter\"")]
    MacvtapUnsupported { name: String },
    #[error("sandbox id: {0}")]
    InvalidId(#[source] vmjail_jail::JailError),
    #[error("the firecracker backend was given a {0:?} configuration")]
    WrongHypervisor(vmjail_config::HypervisorKind),
    #[error("the configuration names neither an initrd nor an image for firecracker")]
    NoRootSource,
    #[error("device id {id:?} is invalid: expected 1 to 64 of [A-Za-z0-9_-]")]
    InvalidDeviceId { id: String },
    #[error("vsock guest CID {cid} is invalid: it must be at least 3")]
    InvalidGuestCid { cid: u32 },
    #[error("{operation}: the VM was never created (call create first)")]
    NotCreated { operation: &'static str },
    #[error("create: a VM was already created for sandbox {id}")]
    AlreadyCreated { id: String },
    #[error("starting the API client runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("recording the VMM state before {step}: {source}")]
    Record {
        step: &'static str,
        source: std::io::Error,
    },
    #[error("preparing the jail: {0}")]
    JailPrepare(#[source] vmjail_jail::JailError),
    #[error("placing {what} {path} in the jail: {source}")]
    Place {
        what: &'static str,
        path: PathBuf,
        source: vmjail_jail::JailError,
    },
    #[error("creating {path} in the jail: {source}")]
    MakeDir {
        path: PathBuf,
        source: vmjail_jail::JailError,
    },
    #[error("opening FIFO {path} for reading: {source}")]
    OpenFifo {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("creating {what} {path} in the jail: {source}")]
    MakeFile {
        what: &'static str,
        path: PathBuf,
        source: vmjail_jail::JailError,
    },
    #[error("duplicating the console descriptor for firecracker's stderr: {0}")]
    ConsoleDup(#[source] std::io::Error),
    #[error("launching firecracker in the jail: {0}")]
    Launch(#[source] vmjail_jail::JailError),
    #[error("waiting for firecracker's API socket {path}: {source}")]
    ApiSocket { path: PathBuf, source: WaitError },
    #[error("firecracker API {method} {path} (socket {socket}): {source}")]
    Api {
        method: &'static str,
        path: String,
        socket: PathBuf,
        source: ApiError,
    },
    #[error("firecracker answered GET / with a body that is not InstanceInfo: {0}")]
    BadInstanceInfo(#[source] serde_json::Error),
    #[error("start: firecracker accepted InstanceStart but reports state {state:?}")]
    NotRunning { state: api::InstanceState },
    #[error("tap {name} in {netns}: {source}")]
    Tap {
        name: String,
        netns: PathBuf,
        source: crate::net::Error,
    },
    #[error("{operation}: firecracker only accepts this before the VM starts")]
    AfterBoot { operation: &'static str },
    #[error("attach {id}: all {slots} placeholder drives are in use")]
    NoFreeDriveSlot { id: String, slots: usize },
    #[error("attach {id}: a drive with this id is already attached")]
    DriveAttached { id: String },
    #[error("detach {id}: no drive with this id is attached")]
    UnknownDrive { id: String },
    #[error("attach {id}: a read-only drive can only be attached before the VM starts (placeholders are read-write and Firecracker cannot change that after boot)")]
    ReadOnlyAfterBoot { id: String },
    #[error("detach {id}: removing {path} from the jail: {source}")]
    Unplace {
        id: String,
        path: PathBuf,
        source: vmjail_jail::JailError,
    },
    #[error("stop: firecracker: {0}")]
    Terminate(#[from] crate::process::TerminateError),
    #[error("stop: tearing the jail down: {0}")]
    Teardown(#[source] vmjail_jail::JailError),
    #[error("stop: removing taps: {0}")]
    RemoveTaps(String),
}
