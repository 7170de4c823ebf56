//! The firecracker backend (being built).

/// Every step of the firecracker backend that can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("firecracker backend not built yet")]
    NotBuilt,
}
