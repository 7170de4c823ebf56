//! What a caller of [`Sandboxes::create_with_containers_then`] may do
//! between recording the sandbox (its netns pinned, its containers
//! recorded) and connecting that netns to a VM: spawn host processes that
//! stand for a container (recorded before they are spawned, as every
//! resource) and run what must change the netns before the VM's NICs are
//! fixed (the OCI prestart hooks: Docker's libnetwork-setkey moves the
//! container's veth in then).

use std::path::Path;

use super::monitors::{add_monitor, change_monitors, set_process};
use crate::process::ProcessId;
use crate::state::{SandboxState, SandboxView};
use crate::store::Store;
use crate::SandboxError;

/// The half-made sandbox, under the lock its `create` holds.
pub struct BeforeVm<'a> {
    pub(super) store: &'a Store,
    pub(super) state: &'a mut SandboxState,
}

impl BeforeVm<'_> {
    /// The sandbox's pinned network namespace (where the VMM will run).
    pub fn netns(&self) -> &Path {
        &self.state.netns.path
    }

    /// The sandbox as `state` shows it now (`creating`).
    pub fn view(&self) -> SandboxView {
        self.state.view()
    }

    /// [`super::Sandboxes::record_monitor`] for this half-made sandbox.
    pub fn record_monitor(&mut self, container: &str, name: &str) -> Result<(), SandboxError> {
        change_monitors(self.store, self.state, container, |m| add_monitor(m, name))
    }

    /// [`super::Sandboxes::set_monitor_process`] for this half-made sandbox.
    pub fn set_monitor_process(
        &mut self,
        container: &str,
        name: &str,
        process: ProcessId,
    ) -> Result<(), SandboxError> {
        change_monitors(self.store, self.state, container, |m| {
            set_process(m, name, process);
            Ok(())
        })
    }
}
