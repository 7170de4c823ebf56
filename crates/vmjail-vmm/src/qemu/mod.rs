//! The qemu backend (being built).

/// Every step of the qemu backend that can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("qemu backend not built yet")]
    NotBuilt,
}
