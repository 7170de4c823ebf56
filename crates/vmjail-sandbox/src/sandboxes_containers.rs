//! A sandbox's containers. Their bundles are known at `create`: each is
//! recorded, made into an ext4 image in the sandbox's state dir (see
//! [`crate::bundle_image`]) and given to the VM as a boot drive (QEMU's
//! microvm and Firecracker cannot add one later). Once the sandbox runs,
//! the agent sets a container up from its disk, starts and deletes it;
//! each step is recorded in the sandbox's state.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vmjail_config::RuntimeConfig;
use vmjail_vmm::{BlockDevice, SharedDir};

use super::Sandboxes;
use crate::agent::{
    run_process_session, AgentClient, AgentError, ExitStatus, ProcessHandle, SessionIo,
    SessionOptions,
};
use crate::bundle_image::{self, Bundle, BundleError};
use crate::bundle_share;
use crate::state::{ContainerRecord, ContainerStatus, SandboxState, Status};
use crate::{crash, vsock, ErrorKind, HypervisorFactory, SandboxError, SandboxId};

/// Most containers one sandbox is created with.
pub const MAX_CONTAINERS: usize = 8;

/// A container to create with its sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    /// 1 to 64 of `[A-Za-z0-9_.-]`, not `.` or `..`.
    pub id: String,
    /// The OCI bundle directory on the host.
    pub bundle: PathBuf,
    /// One of a pod's containers (CRI): the namespaces its spec joins by
    /// path are the VM's (see [`crate::bundle_pod`]).
    pub pod: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("container id {id:?}: expected 1 to 64 of [A-Za-z0-9_.-] (not \".\" or \"..\")")]
    BadId { id: String },
    #[error("container {id:?} is given twice")]
    Duplicate { id: String },
    #[error(
        "containers run through the guest agent: set use_vsock = true in the [hypervisor] section"
    )]
    NoAgent,
    #[error("at most {MAX_CONTAINERS} containers per sandbox")]
    TooMany,
    #[error(
        "adding a container to a created sandbox (a pod's later container) needs QEMU with \
         shared_fs = \"virtio-fs\" and virtio_fs_daemon in the [hypervisor] section: \
         otherwise each container is a disk the VM gets at create (Firecracker, or QEMU \
         without virtio-fs), and a running VM takes no more"
    )]
    CannotAdd,
    #[error("container {id:?} is {status:?}; delete it in the guest before removing it")]
    StillInGuest { id: String, status: ContainerStatus },
    #[error("container {id:?}: {source}")]
    Bundle { id: String, source: BundleError },
    #[error("no container {id:?} in this sandbox")]
    NotFound { id: String },
    #[error("container {id:?} is {status:?}; {operation} needs {needs}")]
    WrongStatus {
        id: String,
        status: ContainerStatus,
        operation: &'static str,
        needs: &'static str,
    },
    #[error("container {id:?}: {step}: {source}")]
    Agent {
        id: String,
        step: &'static str,
        source: AgentError,
    },
    #[error("the guest agent: {source}")]
    Connect { source: AgentError },
    #[error("at most {} host processes per container", super::MAX_MONITORS)]
    TooManyMonitors,
}

impl ContainerError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ContainerError::BadId { .. }
            | ContainerError::Duplicate { .. }
            | ContainerError::NoAgent
            | ContainerError::TooMany
            | ContainerError::CannotAdd
            | ContainerError::Bundle { .. } => ErrorKind::InvalidInput,
            ContainerError::StillInGuest { .. } => ErrorKind::WrongState,
            ContainerError::TooManyMonitors => ErrorKind::Failed,
            ContainerError::NotFound { .. } => ErrorKind::NotFound,
            ContainerError::WrongStatus { .. } => ErrorKind::WrongState,
            ContainerError::Agent { .. } | ContainerError::Connect { .. } => ErrorKind::Failed,
        }
    }
}

/// Whether `error` from reaching the agent is what a guest still booting
/// gives (nothing accepts the port yet, or a connection dropped before the
/// agent answered) rather than an answer that a retry would not change
/// (another protocol version, a bad answer, a sandbox not running).
fn agent_not_up_yet(error: &SandboxError) -> bool {
    use crate::vsock::VsockError;
    match error {
        SandboxError::Vsock { source, .. } => matches!(
            **source,
            VsockError::Refused { .. } | VsockError::Timeout { .. } | VsockError::Connect { .. }
        ),
        SandboxError::Container { source, .. } => matches!(
            **source,
            ContainerError::Connect {
                source: AgentError::Transport { .. } | AgentError::Timeout { .. }
            }
        ),
        _ => false,
    }
}

pub(super) fn container_err(id: &SandboxId, source: ContainerError) -> SandboxError {
    SandboxError::Container {
        id: id.to_string(),
        source: Box::new(source),
    }
}

pub use vmjail_agent_protocol::valid_container_id;

/// Checks `specs` before anything is claimed or made: ids, count, the
/// agent, and each bundle (its config.json read and checked).
pub(super) fn check_specs(
    id: &SandboxId,
    config: &RuntimeConfig,
    specs: &[ContainerSpec],
) -> Result<Vec<(ContainerSpec, Bundle)>, SandboxError> {
    if specs.is_empty() {
        return Ok(Vec::new());
    }
    let fail = |e| Err(container_err(id, e));
    if !config.hypervisor.use_vsock {
        return fail(ContainerError::NoAgent);
    }
    if specs.len() > MAX_CONTAINERS {
        return fail(ContainerError::TooMany);
    }
    let mut checked = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        if !valid_container_id(&spec.id) {
            return fail(ContainerError::BadId {
                id: spec.id.chars().take(80).collect(),
            });
        }
        if specs[..i].iter().any(|s| s.id == spec.id) {
            return fail(ContainerError::Duplicate {
                id: spec.id.clone(),
            });
        }
        checked.push((spec.clone(), load_bundle(id, spec)?));
    }
    Ok(checked)
}

/// Names `spec`'s container (in sandbox `id`) on a bundle error.
fn bundle_err<'a>(
    id: &'a SandboxId,
    spec: &'a ContainerSpec,
) -> impl FnOnce(BundleError) -> SandboxError + 'a {
    move |source| {
        container_err(
            id,
            ContainerError::Bundle {
                id: spec.id.clone(),
                source,
            },
        )
    }
}

/// Reads and checks `spec`'s bundle, its config as the guest gets it.
pub(super) fn load_bundle(id: &SandboxId, spec: &ContainerSpec) -> Result<Bundle, SandboxError> {
    let mut bundle = bundle_image::load(&spec.bundle).map_err(bundle_err(id, spec))?;
    if spec.pod {
        crate::bundle_pod::join_vm_namespaces(&mut bundle.config);
    }
    Ok(bundle)
}

/// Container slot `index`'s record before its image is made: its paths
/// in the sandbox's state dir `dir`, status `imaging`, no share.
fn container_record(
    dir: &std::path::Path,
    index: usize,
    spec: &ContainerSpec,
    bundle: &Bundle,
) -> ContainerRecord {
    ContainerRecord {
        id: spec.id.clone(),
        bundle: bundle.dir.clone(),
        image: dir.join(format!("container-{index}.img")),
        staging: dir.join(format!("container-{index}.staging")),
        disk_serial: disk_serial(index),
        status: ContainerStatus::Imaging,
        process_id: None,
        monitors: Vec::new(),
        share: None,
    }
}

/// The serial of container slot `index`'s disk (at most 20 bytes).
fn disk_serial(index: usize) -> String {
    format!("vmjail-c{index}")
}

/// What [`Sandboxes::make_bundle_images`] gives the VM: boot drives whose
/// images are still being made, or a shared tree.
#[derive(Default)]
pub(super) struct BundleImages {
    pub drives: Vec<BlockDevice>,
    pub making: Vec<(ContainerSpec, bundle_image::Making)>,
    pub shared: Option<SharedDir>,
}

impl<F: HypervisorFactory> Sandboxes<F> {
    /// Records each bundle and starts making its image (see
    /// [`bundle_image::start`]); returns the boot drives and the images
    /// being made, for [`Sandboxes::finish_bundle_images`] once the VMM is
    /// created. With QEMU's `shared_fs = "virtio-fs"`, records each
    /// container and returns the tree to share instead (see
    /// [`crate::bundle_share`]).
    pub(super) fn make_bundle_images(
        &self,
        id: &SandboxId,
        state: &mut SandboxState,
        bundles: &[(ContainerSpec, Bundle)],
    ) -> Result<BundleImages, SandboxError> {
        if bundle_share::applies(&state.config) && !bundles.is_empty() {
            let dir = self.store.dir(id);
            for (index, (spec, bundle)) in bundles.iter().enumerate() {
                let mut record = container_record(&dir, index, spec, bundle);
                record.status = ContainerStatus::Ready;
                record.share = Some(bundle_share::name(index));
                state.containers.push(record);
            }
            state.shares_made = bundles.len();
            self.store.save(state)?;
            crash::point("create-container-shared");
            return Ok(BundleImages {
                shared: Some(bundle_share::shared_dir(bundles)),
                ..BundleImages::default()
            });
        }
        let dir = self.store.dir(id);
        let mut images = BundleImages::default();
        for (index, (spec, bundle)) in bundles.iter().enumerate() {
            let _step = tracing::debug_span!("bundle_image", container = %spec.id).entered();
            let record = container_record(&dir, index, spec, bundle);
            state.containers.push(record.clone());
            self.store.save(state)?;
            crash::point(&format!("create-container-recorded-{index}"));
            let making = bundle_image::start(bundle, &record.staging, &record.image)
                .map_err(bundle_err(id, spec))?;
            images.making.push((spec.clone(), making));
            crash::point(&format!("create-container-image-{index}"));
            images.drives.push(BlockDevice {
                id: record.disk_serial,
                host_path: record.image,
                read_only: false,
            });
        }
        Ok(images)
    }

    /// Waits until every image [`Sandboxes::make_bundle_images`] started is
    /// complete and marks its container ready: before the guest may run.
    pub(super) fn finish_bundle_images(
        &self,
        id: &SandboxId,
        state: &mut SandboxState,
        making: Vec<(ContainerSpec, bundle_image::Making)>,
    ) -> Result<(), SandboxError> {
        if making.is_empty() {
            return Ok(());
        }
        let _step = tracing::debug_span!("bundle_images_finish").entered();
        for (spec, image) in making {
            image.finish().map_err(bundle_err(id, &spec))?;
            if let Some(c) = state.containers.iter_mut().find(|c| c.id == spec.id) {
                c.status = ContainerStatus::Ready;
            }
        }
        self.store.save(state)?;
        crash::point("create-container-images-made");
        Ok(())
    }

    /// Removes the recorded images and staging copies (after the VMM and
    /// its jail, which bound them, are gone). Only paths inside the
    /// sandbox's own state directory are touched: the record is read
    /// from disk.
    pub(super) fn remove_bundle_images(&self, state: &SandboxState) -> Result<(), SandboxError> {
        let id = SandboxId::parse(&state.id)?;
        let dir = self.store.dir(&id);
        for container in &state.containers {
            for path in [&container.image, &container.staging] {
                if path.parent() != Some(dir.as_path()) {
                    tracing::warn!(
                        "sandbox {}: not removing {} (outside its state dir)",
                        state.id,
                        path.display()
                    );
                    continue;
                }
                let removed = match std::fs::symlink_metadata(path) {
                    Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
                    Ok(_) => std::fs::remove_file(path),
                    Err(e) => Err(e),
                };
                match removed {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => {
                        return Err(SandboxError::RemoveStateDir {
                            path: path.clone(),
                            source,
                        })
                    }
                }
            }
        }
        Ok(())
    }

    /// A client of running sandbox `id`'s agent, first dialled once the
    /// guest says it is up (see [`super::GUEST_READY`]), retrying the
    /// connection until `timeout`.
    pub fn agent_client(
        &self,
        id: &SandboxId,
        timeout: Duration,
    ) -> Result<Arc<AgentClient>, SandboxError> {
        let deadline = Instant::now() + timeout;
        self.wait_guest_ready(id, deadline);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let attempt = self
                .connect_vsock(id, vsock::AGENT_PORT, left.min(vsock::CONNECT_TIMEOUT))
                .and_then(|stream| {
                    AgentClient::new(stream)
                        .map_err(|source| container_err(id, ContainerError::Connect { source }))
                });
            match attempt {
                Ok(client) => return Ok(Arc::new(client)),
                Err(e) if Instant::now() >= deadline || !agent_not_up_yet(&e) => return Err(e),
                Err(e) => {
                    tracing::debug!("agent not reachable yet: {e}");
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    /// Sets container `container` of running sandbox `id` up in the guest
    /// from its bundle disk; its process waits for
    /// [`Sandboxes::start_container`]. `tty`/`stdin` as in
    /// [`crate::agent::ProcessSpec`].
    pub fn create_container(
        &self,
        id: &SandboxId,
        client: Arc<AgentClient>,
        container: &str,
        tty: Option<(u16, u16)>,
        stdin: bool,
    ) -> Result<ProcessHandle, SandboxError> {
        self.container_step(
            id,
            container,
            "create",
            (&[ContainerStatus::Ready], "a container whose disk is ready"),
            ContainerStatus::Created,
            |record| {
                let process = match &record.share {
                    Some(share) => ProcessHandle::create_container_from_share(
                        client.clone(),
                        &record.id,
                        share,
                        tty,
                        stdin,
                    ),
                    None => ProcessHandle::create_container_from_disk(
                        client.clone(),
                        &record.id,
                        &record.disk_serial,
                        tty,
                        stdin,
                    ),
                }
                .map_err(|source| (source, "setting it up in the guest"))?;
                record.process_id = Some(process.id());
                Ok(process)
            },
        )
    }

    /// Lets created container `container` exec its process.
    pub fn start_container(
        &self,
        id: &SandboxId,
        client: &AgentClient,
        container: &str,
    ) -> Result<(), SandboxError> {
        self.container_step(
            id,
            container,
            "start",
            (&[ContainerStatus::Created], "a created container"),
            ContainerStatus::Running,
            |record| {
                client
                    .start_container(&record.id)
                    .map_err(|source| (source, "starting it"))
            },
        )
    }

    /// Kills container `container`'s process if it runs and removes it
    /// from the guest (its disk stays, for the sandbox's delete).
    pub fn delete_container(
        &self,
        id: &SandboxId,
        client: &AgentClient,
        container: &str,
    ) -> Result<(), SandboxError> {
        let (_lock, mut state) = self.lock_state(id, "delete a container of")?;
        let record = find(id, &state, container)?;
        if matches!(
            record.status,
            ContainerStatus::Created | ContainerStatus::Running | ContainerStatus::Paused
        ) {
            client.delete_container(&record.id).map_err(|source| {
                container_err(
                    id,
                    ContainerError::Agent {
                        id: record.id.clone(),
                        step: "deleting it in the guest",
                        source,
                    },
                )
            })?;
        }
        set_status(&mut state, container, ContainerStatus::Stopped);
        self.store.save(&state)
    }

    /// Creates and starts container `container` of running sandbox `id`
    /// with `io` as its stdio (see [`run_process_session`]), waits for
    /// its end, deletes it in the guest and returns how it ended.
    pub fn run_container(
        &self,
        id: &SandboxId,
        client: Arc<AgentClient>,
        container: &str,
        options: SessionOptions,
        io: SessionIo,
    ) -> Result<ExitStatus, SandboxError> {
        let ended = run_process_session(
            options,
            io,
            |tty| self.create_container(id, client.clone(), container, tty, options.stdin),
            |_| self.start_container(id, &client, container),
        );
        let deleted = self.delete_container(id, &client, container);
        let status = ended?;
        deleted?;
        Ok(status)
    }

    /// One recorded transition of a container, under the sandbox's lock:
    /// `act` may also fill in the record; it is saved with status `to`.
    pub(super) fn container_step<T>(
        &self,
        id: &SandboxId,
        container: &str,
        operation: &'static str,
        (from, needs): (&[ContainerStatus], &'static str),
        to: ContainerStatus,
        act: impl FnOnce(&mut ContainerRecord) -> Result<T, (AgentError, &'static str)>,
    ) -> Result<T, SandboxError> {
        let (_lock, mut state) = self.lock_state(id, "manage a container of")?;
        if state.status() != Status::Running {
            return Err(SandboxError::WrongState {
                id: id.to_string(),
                operation: "manage a container of",
                status: state.status(),
                needs: "a running sandbox",
            });
        }
        let mut record = find(id, &state, container)?;
        if !from.contains(&record.status) {
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
        let done = act(&mut record).map_err(|(source, step)| {
            container_err(
                id,
                ContainerError::Agent {
                    id: record.id.clone(),
                    step,
                    source,
                },
            )
        })?;
        record.status = to;
        if let Some(c) = state.containers.iter_mut().find(|c| c.id == container) {
            *c = record;
        }
        self.store.save(&state)?;
        Ok(done)
    }
}

pub(super) fn find(
    id: &SandboxId,
    state: &SandboxState,
    container: &str,
) -> Result<ContainerRecord, SandboxError> {
    state
        .containers
        .iter()
        .find(|c| c.id == container)
        .cloned()
        .ok_or_else(|| {
            container_err(
                id,
                ContainerError::NotFound {
                    id: container.chars().take(80).collect(),
                },
            )
        })
}

fn set_status(state: &mut SandboxState, container: &str, status: ContainerStatus) {
    if let Some(c) = state.containers.iter_mut().find(|c| c.id == container) {
        c.status = status;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vsock::VsockError;

    fn vsock(source: VsockError) -> SandboxError {
        SandboxError::Vsock {
            id: "a".into(),
            port: 1024,
            source: Box::new(source),
        }
    }

    fn connect(source: AgentError) -> SandboxError {
        container_err(
            &SandboxId::parse("a").unwrap(),
            ContainerError::Connect { source },
        )
    }

    #[test]
    fn only_a_guest_still_booting_is_waited_for() {
        assert!(agent_not_up_yet(&vsock(VsockError::Refused { port: 1024 })));
        assert!(agent_not_up_yet(&vsock(VsockError::Timeout {
            port: 1024,
            waited: Duration::from_secs(1),
        })));
        assert!(agent_not_up_yet(&connect(AgentError::Transport {
            call: "Version",
            message: "reset".into(),
        })));
        // Answers a retry would not change end the wait at once.
        assert!(!agent_not_up_yet(&vsock(VsockError::NoVsock)));
        assert!(!agent_not_up_yet(&vsock(VsockError::BadAnswer {
            port: 1024,
            answer: "NO".into(),
        })));
        assert!(!agent_not_up_yet(&connect(AgentError::VersionMismatch {
            host: 2,
            agent: 1,
            agent_version: "0.1.0".into(),
        })));
    }
}
