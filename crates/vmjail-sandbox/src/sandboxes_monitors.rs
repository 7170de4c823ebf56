//! The host processes that stand for a container's processes (see
//! [`MonitorRecord`]): recorded before they are spawned, their pids once
//! they run, killed by the sandbox's teardown.

use super::containers::{container_err, find};
use super::Sandboxes;
use crate::process::ProcessId;
use crate::state::{MonitorRecord, SandboxState};
use crate::store::Store;
use crate::{ContainerError, HypervisorFactory, SandboxError, SandboxId};

/// Most monitors kept per container; ended ones are dropped first.
pub const MAX_MONITORS: usize = 256;

/// Applies `change` to `container`'s monitors in `state` (held under the
/// sandbox's lock by the caller) and saves it.
pub(super) fn change_monitors(
    store: &Store,
    state: &mut SandboxState,
    container: &str,
    change: impl FnOnce(&mut Vec<MonitorRecord>) -> Result<(), ContainerError>,
) -> Result<(), SandboxError> {
    let id = SandboxId::parse(&state.id)?;
    find(&id, state, container)?;
    if let Some(c) = state.containers.iter_mut().find(|c| c.id == container) {
        change(&mut c.monitors).map_err(|e| container_err(&id, e))?;
    }
    store.save(state)
}

/// Adds monitor `name`, not yet spawned (replacing one of that name),
/// dropping monitors that have ended.
pub(super) fn add_monitor(
    monitors: &mut Vec<MonitorRecord>,
    name: &str,
) -> Result<(), ContainerError> {
    monitors.retain(|m| m.name != name && m.process.is_none_or(|p| p.is_alive()));
    if monitors.len() >= MAX_MONITORS {
        return Err(ContainerError::TooManyMonitors);
    }
    monitors.push(MonitorRecord {
        name: name.into(),
        process: None,
    });
    Ok(())
}

/// Records the process of monitor `name`.
pub(super) fn set_process(monitors: &mut [MonitorRecord], name: &str, process: ProcessId) {
    if let Some(m) = monitors.iter_mut().find(|m| m.name == name) {
        m.process = Some(process);
    }
}

impl<F: HypervisorFactory> Sandboxes<F> {
    /// Records monitor `name` of `container` as about to be spawned
    /// (replacing one of that name), dropping monitors that have ended.
    pub fn record_monitor(
        &self,
        id: &SandboxId,
        container: &str,
        name: &str,
    ) -> Result<(), SandboxError> {
        self.update_monitors(id, container, |monitors| add_monitor(monitors, name))
    }

    /// Records the process of monitor `name`, spawned.
    pub fn set_monitor_process(
        &self,
        id: &SandboxId,
        container: &str,
        name: &str,
        process: ProcessId,
    ) -> Result<(), SandboxError> {
        self.update_monitors(id, container, |monitors| {
            set_process(monitors, name, process);
            Ok(())
        })
    }

    fn update_monitors(
        &self,
        id: &SandboxId,
        container: &str,
        change: impl FnOnce(&mut Vec<MonitorRecord>) -> Result<(), ContainerError>,
    ) -> Result<(), SandboxError> {
        let (_lock, mut state) = self.lock_state(id, "record a process of")?;
        change_monitors(&self.store, &mut state, container, change)
    }

    /// SIGKILLs every recorded monitor still alive (the very process, not a
    /// recycled pid) and forgets them.
    pub(super) fn kill_monitors(&self, state: &mut SandboxState) -> Result<(), SandboxError> {
        let mut killed = false;
        for container in &mut state.containers {
            for monitor in container.monitors.drain(..) {
                let Some(process) = monitor.process else {
                    continue;
                };
                if let Err(e) = process.kill() {
                    tracing::warn!(
                        "sandbox {}: killing monitor {} (pid {}): {e}",
                        state.id,
                        monitor.name,
                        process.pid
                    );
                }
                killed = true;
            }
        }
        if killed {
            self.store.save(state)?;
        }
        Ok(())
    }
}
