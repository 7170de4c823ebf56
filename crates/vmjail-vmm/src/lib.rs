//! The [`Hypervisor`] trait and its backends.
//!
//! A backend is handed the sandbox id and its network namespace and decides
//! itself how and where its VMM process starts (always jailed).

mod error;
pub mod firecracker;
pub mod hypervisor;
pub mod jail_spec;
pub mod kvm;
pub mod net;
mod process;
pub mod qemu;
pub mod select;

pub use error::VmmError;
pub use process::TerminateError;

pub use hypervisor::*;
