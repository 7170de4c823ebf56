//! A started container's processes: its own (signal, wait, freeze, list
//! by container id, its cgroup figures) and the ones run inside it
//! (`runc exec`).

use std::sync::Arc;

use super::containers::{container_err, find};
use super::Sandboxes;
use crate::agent::{AgentClient, AgentError, ContainerStats, ProcessHandle, ProcessSpec};
use crate::state::{ContainerRecord, ContainerStatus, Status};
use crate::{ContainerError, HypervisorFactory, SandboxError, SandboxId, Stored};

/// Statuses in which a container's process exists in the guest.
const IN_GUEST: &[ContainerStatus] = &[
    ContainerStatus::Created,
    ContainerStatus::Running,
    ContainerStatus::Paused,
];

impl<F: HypervisorFactory> Sandboxes<F> {
    /// Container `container` of sandbox `id` as last recorded (read
    /// without the sandbox's lock).
    pub fn container_record(
        &self,
        id: &SandboxId,
        container: &str,
    ) -> Result<ContainerRecord, SandboxError> {
        match self.store.load(id)? {
            Stored::State(state) => find(id, &state, container),
            Stored::Unrecorded => Err(SandboxError::WrongState {
                id: id.to_string(),
                operation: "find a container of",
                status: Status::Creating,
                needs: "a fully created sandbox",
            }),
        }
    }

    /// The record of `container`, checked to be in one of `statuses`.
    fn container_in(
        &self,
        id: &SandboxId,
        container: &str,
        statuses: &[ContainerStatus],
        operation: &'static str,
        needs: &'static str,
    ) -> Result<ContainerRecord, SandboxError> {
        let record = self.container_record(id, container)?;
        if !statuses.contains(&record.status) {
            return Err(container_err(
                id,
                ContainerError::WrongStatus {
                    id: record.id,
                    status: record.status,
                    operation,
                    needs,
                },
            ));
        }
        Ok(record)
    }

    /// The container's own process (created, running or paused), to wait
    /// for, signal or stream.
    pub fn container_process(
        &self,
        id: &SandboxId,
        client: Arc<AgentClient>,
        container: &str,
    ) -> Result<ProcessHandle, SandboxError> {
        let record = self.container_in(
            id,
            container,
            IN_GUEST,
            "find the process of",
            "a container created in the guest",
        )?;
        let process_id = record.process_id.ok_or_else(|| {
            container_err(
                id,
                ContainerError::WrongStatus {
                    id: record.id.clone(),
                    status: record.status,
                    operation: "find the process of",
                    needs: "a container created by this vmjail (its process id recorded)",
                },
            )
        })?;
        Ok(ProcessHandle::from_id(client, process_id))
    }

    /// Starts `spec` inside running container `container` (`runc exec`:
    /// the container's namespaces, cgroup and root; argv[0] looked up in
    /// the container). Nothing is recorded on the host: the process lives
    /// in the VM and goes with it.
    pub fn exec_in_container(
        &self,
        id: &SandboxId,
        client: Arc<AgentClient>,
        container: &str,
        spec: &ProcessSpec,
    ) -> Result<ProcessHandle, SandboxError> {
        let record = self.container_in(
            id,
            container,
            &[ContainerStatus::Running],
            "exec in",
            "a running container",
        )?;
        ProcessHandle::exec_in_container(client, &record.id, spec)
            .map_err(|source| agent_err(id, &record, "running a process in it", source))
    }

    /// Sends signal number `signal` to the container's process, or with
    /// `all` to every process of the container.
    pub fn signal_container(
        &self,
        id: &SandboxId,
        client: &AgentClient,
        container: &str,
        signal: i32,
        all: bool,
    ) -> Result<(), SandboxError> {
        let record = self.container_in(
            id,
            container,
            IN_GUEST,
            "signal",
            "a container created in the guest",
        )?;
        client
            .signal_container(&record.id, signal, all)
            .map_err(|source| agent_err(id, &record, "signalling it", source))
    }

    /// Freezes every process of running container `container`.
    pub fn pause_container(
        &self,
        id: &SandboxId,
        client: &AgentClient,
        container: &str,
    ) -> Result<(), SandboxError> {
        self.container_step(
            id,
            container,
            "pause",
            (&[ContainerStatus::Running], "a running container"),
            ContainerStatus::Paused,
            |record| {
                client
                    .pause_container(&record.id)
                    .map_err(|source| (source, "freezing it"))
            },
        )
    }

    /// Thaws paused container `container`.
    pub fn resume_container(
        &self,
        id: &SandboxId,
        client: &AgentClient,
        container: &str,
    ) -> Result<(), SandboxError> {
        self.container_step(
            id,
            container,
            "resume",
            (&[ContainerStatus::Paused], "a paused container"),
            ContainerStatus::Running,
            |record| {
                client
                    .resume_container(&record.id)
                    .map_err(|source| (source, "thawing it"))
            },
        )
    }

    /// The guest pids of the container's processes.
    pub fn container_pids(
        &self,
        id: &SandboxId,
        client: &AgentClient,
        container: &str,
    ) -> Result<Vec<u32>, SandboxError> {
        let record = self.container_in(
            id,
            container,
            IN_GUEST,
            "list the processes of",
            "a container created in the guest",
        )?;
        client
            .container_pids(&record.id)
            .map_err(|source| agent_err(id, &record, "listing its processes", source))
    }

    /// Container `container`'s CPU, memory and pids figures (its cgroup v2
    /// in the guest).
    pub fn container_stats(
        &self,
        id: &SandboxId,
        client: &AgentClient,
        container: &str,
    ) -> Result<ContainerStats, SandboxError> {
        let record = self.container_in(
            id,
            container,
            IN_GUEST,
            "read the figures of",
            "a container created in the guest",
        )?;
        client
            .container_stats(&record.id)
            .map_err(|source| agent_err(id, &record, "reading its cgroup figures", source))
    }
}

fn agent_err(
    id: &SandboxId,
    record: &ContainerRecord,
    step: &'static str,
    source: AgentError,
) -> SandboxError {
    container_err(
        id,
        ContainerError::Agent {
            id: record.id.clone(),
            step,
            source,
        },
    )
}
