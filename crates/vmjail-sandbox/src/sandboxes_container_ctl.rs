//! Figures and freezing of a running container: its cgroup in the guest,
//! read or frozen by the agent. Neither changes the sandbox's record (a
//! frozen container is still a running one to vmjail's state).

use crate::agent::{AgentClient, ContainerStats};
use crate::state::{ContainerStatus, Status};
use crate::{HypervisorFactory, SandboxError, SandboxId};

use super::containers::{container_err, find};
use super::{ContainerError, Sandboxes};

impl<F: HypervisorFactory> Sandboxes<F> {
    /// Container `container`'s CPU, memory and pids figures (cgroup v2 in
    /// the guest).
    pub fn container_stats(
        &self,
        id: &SandboxId,
        client: &AgentClient,
        container: &str,
    ) -> Result<ContainerStats, SandboxError> {
        let record = self.live_container(id, container, "read the figures of")?;
        client.container_stats(&record).map_err(|source| {
            container_err(
                id,
                ContainerError::Agent {
                    id: record.clone(),
                    step: "reading its cgroup figures",
                    source,
                },
            )
        })
    }

    /// Freezes (`true`) or thaws every process of container `container`;
    /// the VM and its agent go on running.
    pub fn freeze_container(
        &self,
        id: &SandboxId,
        client: &AgentClient,
        container: &str,
        frozen: bool,
    ) -> Result<(), SandboxError> {
        let record = self.live_container(id, container, "freeze or thaw")?;
        client.freeze_container(&record, frozen).map_err(|source| {
            container_err(
                id,
                ContainerError::Agent {
                    id: record.clone(),
                    step: if frozen { "freezing it" } else { "thawing it" },
                    source,
                },
            )
        })
    }

    /// The id of `container` when it is created or running in running
    /// sandbox `id`.
    fn live_container(
        &self,
        id: &SandboxId,
        container: &str,
        operation: &'static str,
    ) -> Result<String, SandboxError> {
        let (_lock, state) = self.lock_state(id, "manage a container of")?;
        if state.status() != Status::Running {
            return Err(SandboxError::WrongState {
                id: id.to_string(),
                operation: "manage a container of",
                status: state.status(),
                needs: "a running sandbox",
            });
        }
        let record = find(id, &state, container)?;
        match record.status {
            ContainerStatus::Created | ContainerStatus::Running => Ok(record.id),
            status => Err(container_err(
                id,
                ContainerError::WrongStatus {
                    id: record.id,
                    status,
                    operation,
                    needs: "a created or running container",
                },
            )),
        }
    }
}
