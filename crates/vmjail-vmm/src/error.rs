//! Errors a sandbox sees from any backend; each backend's own error type
//! says which step failed and carries the VMM's message.

use vmjail_config::HypervisorKind;

#[derive(Debug, thiserror::Error)]
pub enum VmmError {
    #[error(transparent)]
    Firecracker(#[from] crate::firecracker::Error),
    #[error(transparent)]
    Qemu(#[from] crate::qemu::Error),
    #[error("{operation} is not supported by {kind:?}")]
    Unsupported {
        kind: HypervisorKind,
        operation: &'static str,
    },
}
