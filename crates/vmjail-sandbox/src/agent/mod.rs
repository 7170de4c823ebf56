//! The host's side of the guest agent: a client over one connected stream
//! ([`AgentClient`]). The guest is untrusted: every answer is bounded in
//! size (ttrpc's message limit, then per field) and in time (a deadline on
//! every call).

mod client;
mod error;
mod types;

pub use client::{AgentClient, DEFAULT_CALL_TIMEOUT};
pub use error::AgentError;
pub use types::{ExitStatus, GuestInfo, Output, ProcessInfo, ProcessSpec};
