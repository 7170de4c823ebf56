//! A [`JailSpec`] → a confined VMM process.
//!
//! Two jailers serve one spec: vmjail's built-in jailer (the hidden
//! `vmjail jailer` subcommand, CLI-compatible with Firecracker's `jailer`)
//! and Firecracker's own `jailer` binary. Everything created is recorded in a
//! [`JailRecord`] before it is created, so [`teardown`] can undo it from disk.

pub mod spec;

pub use spec::*;
