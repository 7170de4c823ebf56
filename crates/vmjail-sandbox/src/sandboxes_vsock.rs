//! A byte stream to a port in a sandbox's guest (for the agent client),
//! through the VM's hybrid vsock (see [`crate::vsock`]).

use std::os::unix::net::UnixStream;
use std::time::Duration;

use super::Sandboxes;
use crate::state::Status;
use crate::store::Stored;
use crate::{record_check, vsock, HypervisorFactory, SandboxError, SandboxId};

impl<F: HypervisorFactory> Sandboxes<F> {
    /// Connect to vsock `port` of running sandbox `id`'s guest within
    /// `timeout` (e.g. [`vsock::AGENT_PORT`], [`vsock::CONNECT_TIMEOUT`]).
    /// Takes no lock: a stream outlives the command that opened it, and
    /// one to a VM stopped meanwhile just ends.
    pub fn connect_vsock(
        &self,
        id: &SandboxId,
        port: u32,
        timeout: Duration,
    ) -> Result<UnixStream, SandboxError> {
        let state = match self.store.load(id)? {
            Stored::State(state) => state,
            Stored::Unrecorded => {
                return Err(SandboxError::WrongState {
                    id: id.to_string(),
                    operation: "connect to",
                    status: Status::Creating,
                    needs: "a running sandbox",
                })
            }
        };
        if state.status() != Status::Running {
            return Err(SandboxError::WrongState {
                id: id.to_string(),
                operation: "connect to",
                status: state.status(),
                needs: "a running sandbox",
            });
        }
        // The socket is found from the record: it must be this sandbox's.
        record_check::check(&state, &self.netns_dir, &self.jail)?;
        vsock::connect(&state, port, timeout).map_err(|source| SandboxError::Vsock {
            id: id.to_string(),
            port,
            source: Box::new(source),
        })
    }
}
