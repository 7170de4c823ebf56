//! A [`JailSpec`] → a confined VMM process.
//!
//! Two jailers serve one spec: vmjail's built-in jail (its steps in
//! `entry/`, run by a child of the caller that execs the VMM —
//! `in_process.rs` — or, for a new pid namespace, by the small
//! `vmjail-jailer` binary, also `vmjail jailer`, CLI-compatible with
//! Firecracker's `jailer`) and Firecracker's own `jailer` binary.
//! Everything created is recorded in a [`JailRecord`] before it is created,
//! so [`teardown`] can undo it from disk.

mod access;
pub mod args;
mod builtin;
pub mod cgroup;
mod devices;
mod entry;
mod error;
mod exec_only;
mod firecracker_jailer;
mod fsat;
mod in_process;
mod jail;
mod launch;
pub mod libs;
mod libtree;
mod mounts;
pub mod oom;
mod ownership;
mod pid_file;
mod privileges;
pub mod process;
mod rmtree;
pub mod scope;
mod seccomp;
mod spawn;
pub mod spec;
mod status;
mod sys;
mod teardown;
mod temp_name;
pub mod trust;
mod validate;

pub use access::{connect_in_jail, open_in_jail};
pub use builtin::{builtin_jailer_main, prepare_jailer_process};
pub use cgroup::detect_cgroup_version;
pub use error::JailError;
pub use jail::Jail;
pub use launch::LaunchStdio;
pub use privileges::{confine_root_helper, confine_to_dir};
pub use spawn::ChildIo;
pub use spec::*;
pub use teardown::teardown;
pub use validate::{validate_id, MAX_SOCKET_PATH};
