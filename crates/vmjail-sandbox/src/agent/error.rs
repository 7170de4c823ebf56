//! Everything that can go wrong talking to the guest agent. The guest is
//! untrusted: its own words (status messages) are cut short before they are
//! shown.

use std::time::Duration;

/// Longest part of an agent's error message kept in an [`AgentError`].
const MAX_AGENT_MESSAGE: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("preparing the agent connection: {0}")]
    Setup(#[source] std::io::Error),
    #[error("agent call {call}: no answer within {}s; the guest agent is hung, too slow or not an agent", timeout.as_secs_f64())]
    Timeout {
        call: &'static str,
        timeout: Duration,
    },
    #[error("agent call {call}: the connection failed: {message}")]
    Transport { call: &'static str, message: String },
    #[error("agent call {call}: the agent refused: {message} ({code})")]
    Refused {
        call: &'static str,
        code: String,
        message: String,
    },
    #[error("guest agent speaks protocol version {agent}, this vmjail speaks {host}; install the agent built with this vmjail into the guest image (agent {agent_version:?})")]
    VersionMismatch {
        host: u32,
        agent: u32,
        agent_version: String,
    },
    #[error("agent call {call}: the answer breaks the protocol: {reason}")]
    BadAnswer { call: &'static str, reason: String },
    #[error("{what}: {source}")]
    LocalIo {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl AgentError {
    /// Maps a ttrpc failure of `call` that took `elapsed` of its `timeout`.
    pub(crate) fn from_ttrpc(
        call: &'static str,
        error: vmjail_agent_protocol::ttrpc::Error,
        elapsed: Duration,
        timeout: Duration,
    ) -> Self {
        use vmjail_agent_protocol::ttrpc::Error;
        match error {
            // ttrpc's own verdict on an oversized frame (discarded unread)
            // arrives as a status; it is the guest's fault, not a refusal.
            Error::RpcStatus(status)
                if status.message().contains("exceed maximum message size") =>
            {
                AgentError::BadAnswer {
                    call,
                    reason: truncate(status.message()),
                }
            }
            Error::RpcStatus(status) => AgentError::Refused {
                call,
                code: format!("{:?}", status.code()),
                message: truncate(status.message()),
            },
            // ttrpc reports an expired deadline as a generic error; the
            // clock tells it apart from the rest.
            _ if elapsed >= timeout => AgentError::Timeout { call, timeout },
            other => AgentError::Transport {
                call,
                message: truncate(&other.to_string()),
            },
        }
    }
}

fn truncate(message: &str) -> String {
    if message.len() <= MAX_AGENT_MESSAGE {
        return message.to_string();
    }
    let mut end = MAX_AGENT_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &message[..end], message.len())
}
