//! Stopping a QEMU guest that runs vmjail's agent: the agent is asked to
//! power the VM off (`Shutdown`: sync, then power off from inside) before
//! the hypervisor's own stop. Such a guest does not listen to the ACPI
//! power button (its init only waits for the agent, see guest/init), so a
//! `system_powerdown` alone would wait out the whole stop timeout.

use std::time::{Duration, Instant};

use vmjail_config::HypervisorKind;

use super::Sandboxes;
use crate::agent::AgentClient;
use crate::state::{SandboxState, Status};
use crate::{vsock, HypervisorFactory, SandboxId};

/// The longest the agent is given, to be dialled and for each of its two
/// calls (`Version`, `Shutdown`); at most half the stop's timeout.
const ASK_TIMEOUT: Duration = Duration::from_secs(1);

/// How long QEMU is given to end after a powerdown when the guest's agent
/// could not be asked: vmjail's guest with an agent ignores the button.
const UNASKED_GRACE: Duration = Duration::from_secs(1);

impl<F: HypervisorFactory> Sandboxes<F> {
    /// How long the hypervisor's stop may wait for a graceful end, out of
    /// `timeout`: for a QEMU guest with an agent that said it was up, the
    /// agent is asked to power off first. Firecracker is left out: on x86
    /// it does not end when its guest powers off.
    pub(super) fn power_off_through_agent(
        &self,
        state: &SandboxState,
        timeout: Duration,
    ) -> Duration {
        let config = &state.config;
        if config.hypervisor_kind != HypervisorKind::Qemu
            || !config.hypervisor.use_vsock
            || state.status() != Status::Running
        {
            return timeout;
        }
        let Ok(id) = SandboxId::parse(&state.id) else {
            return timeout;
        };
        // A guest that never said it was up may not be vmjail's: it keeps
        // the whole timeout to react to the button.
        if !self.guest_said_ready(&id) || timeout.is_zero() {
            return timeout;
        }
        let started = Instant::now();
        let each = ASK_TIMEOUT.min(timeout / 2);
        let asked = self
            .connect_vsock(&id, vsock::AGENT_PORT, each)
            .map_err(|e| e.to_string())
            .and_then(|stream| AgentClient::with_timeout(stream, each).map_err(|e| e.to_string()))
            .and_then(|client| client.shutdown().map_err(|e| e.to_string()));
        let left = timeout.saturating_sub(started.elapsed());
        match asked {
            Ok(()) => left,
            Err(e) => {
                tracing::warn!("sandbox {id}: its agent could not be asked to power off: {e}");
                left.min(UNASKED_GRACE)
            }
        }
    }
}
