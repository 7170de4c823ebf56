//! The host's side of the guest agent: a client over one connected stream
//! ([`AgentClient`]), processes in the guest ([`ProcessHandle`]) and whole
//! exec sessions ([`run_session`]). The guest is untrusted: every answer is
//! bounded in size (ttrpc's message limit, then per field) and in time (a
//! deadline on every call).

mod client;
mod error;
mod exec;
mod process;
mod session;
mod terminal;
mod types;

pub use client::{AgentClient, DEFAULT_CALL_TIMEOUT};
pub use error::AgentError;
pub use exec::{ExecArgError, DEFAULT_TTY_SIZE};
pub use process::{ProcessHandle, Stream};
pub use session::{run_process_session, run_session, SessionIo, SessionOptions, SIGNAL_GRACE};
pub use types::{ContainerStats, ExitStatus, GuestInfo, Output, ProcessInfo, ProcessSpec};
