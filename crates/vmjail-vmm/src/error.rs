//! Errors a sandbox sees from any backend; each backend's own error type
//! says which step failed and carries the VMM's message.

use vmjail_config::HypervisorKind;

/// Backend errors are boxed: they carry paths and the VMM's own messages,
/// and every `Result` on the sandbox's paths would otherwise carry their
/// full size.
#[derive(Debug, thiserror::Error)]
pub enum VmmError {
    #[error(transparent)]
    Firecracker(Box<crate::firecracker::Error>),
    #[error(transparent)]
    Qemu(Box<crate::qemu::Error>),
    #[error("{operation} is not supported by {kind:?}")]
    Unsupported {
        kind: HypervisorKind,
        operation: &'static str,
    },
}

impl From<crate::firecracker::Error> for VmmError {
    fn from(error: crate::firecracker::Error) -> Self {
        VmmError::Firecracker(Box::new(error))
    }
}

impl From<crate::qemu::Error> for VmmError {
    fn from(error: crate::qemu::Error) -> Self {
        VmmError::Qemu(Box::new(error))
    }
}
