//! Stopping a guest that runs vmjail's agent: the agent is asked to power
//! the VM off (`Shutdown`: sync, then power off from inside) before the
//! hypervisor's own stop. The ACPI power button alone is not enough: the
//! guest's init opens it only once its agent is up, and a container that
//! ends within a moment of the boot (`vmjail run --bundle B` of `echo`)
//! had its VM's button pressed before anything listened, so every such
//! stop waited out its whole timeout before QEMU was made to quit.

use std::time::Duration;

use super::Sandboxes;
use crate::agent::AgentClient;
use crate::state::{SandboxState, Status};
use crate::{vsock, HypervisorFactory, SandboxId};

/// How long the agent's port is dialled for; a guest that does not answer
/// in this time is stopped by the hypervisor alone.
const DIAL_TIMEOUT: Duration = Duration::from_secs(1);

impl<F: HypervisorFactory> Sandboxes<F> {
    /// Asks the agent of `state`'s guest to power off, when it has one that
    /// said it was up; what the guest answers (or not) is only logged: the
    /// hypervisor's stop follows either way and waits for the VMM to go.
    pub(super) fn ask_agent_to_power_off(&self, state: &SandboxState) {
        let Ok(id) = SandboxId::parse(&state.id) else {
            return;
        };
        if !state.config.hypervisor.use_vsock
            || state.status() != Status::Running
            || !self.guest_said_ready(&id)
        {
            return;
        }
        let asked = self
            .connect_vsock(&id, vsock::AGENT_PORT, DIAL_TIMEOUT)
            .map_err(|e| e.to_string())
            .and_then(|stream| AgentClient::new(stream).map_err(|e| e.to_string()))
            .and_then(|client| client.shutdown().map_err(|e| e.to_string()));
        if let Err(e) = asked {
            tracing::debug!(
                "sandbox {}: the agent was not asked to power off: {e}",
                state.id
            );
        }
    }
}
