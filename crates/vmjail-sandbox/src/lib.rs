//! Sandbox lifecycle and the on-disk state store.
//!
//! Each sandbox lives in `<state_dir>/<id>/state.json` (written atomically)
//! and is serialised by `flock` on `<state_dir>/<id>.lock`. Every resource —
//! the network namespace, the backend's [`vmjail_vmm::VmmRecord`] (jail,
//! mounts, cgroups, VMM pid, taps) — is recorded before it is created, so
//! any later vmjail process can stop, delete or garbage-collect it, even
//! after the creator was killed.

pub mod agent;
pub mod bundle_binds;
pub mod bundle_image;
pub mod bundle_pod;
pub mod bundle_share;
pub mod console;
pub mod crash;
mod error;
mod factory;
mod id;
pub mod ids;
pub mod interrupt;
mod lock;
pub mod netns;
pub mod oci_hooks;
pub mod process;
pub mod reaper;
mod record_check;
mod sandboxes;
mod staged_binds;
pub mod state;
mod store;
mod time;
pub mod vsock;

#[cfg(test)]
mod test_double;

pub use error::{ErrorKind, SandboxError};
pub use factory::{HypervisorFactory, SelectFactory};
pub use id::{SandboxId, MAX_ID_LEN};
pub use lock::SandboxLock;
pub use sandboxes::{valid_container_id, ContainerError, ContainerSpec, MAX_CONTAINERS};
pub use sandboxes::{BeforeVm, GcReport, Listing, Sandboxes, GUEST_READY};
pub use state::{
    ConsoleRecord, ContainerRecord, ContainerStatus, InterfaceView, MonitorRecord, NetnsRecord,
    Phase, SandboxState, SandboxView, Status,
};
pub use store::{Store, Stored};
pub use time::rfc3339;
