//! The host <-> guest agent protocol: the protobuf messages and the ttrpc
//! `Agent` service generated from `protos/agent.proto`, the protocol version
//! and the size and time limits both sides enforce.

mod limits;

pub use limits::*;

/// Bumped on every incompatible change of `protos/agent.proto`; the host
/// refuses an agent that answers `Version` with another number.
pub const PROTOCOL_VERSION: u32 = 2;

/// The vsock port the agent listens on by default.
pub const DEFAULT_VSOCK_PORT: u32 = 1024;

/// The protobuf messages.
#[allow(
    clippy::all,
    dead_code,
    missing_docs,
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    unused_imports,
    unused_mut
)]
pub mod agent {
    include!(concat!(env!("OUT_DIR"), "/agent.rs"));
}

/// The ttrpc client (`AgentClient`) and server glue (`Agent`, `create_agent`).
#[allow(
    clippy::all,
    dead_code,
    missing_docs,
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    unused_imports,
    unused_mut
)]
pub mod agent_ttrpc {
    include!(concat!(env!("OUT_DIR"), "/agent_ttrpc.rs"));
}

pub use ttrpc;
