//! The lifecycle: create, start, state, list, pause, resume, stop, delete,
//! gc. Every command that changes a sandbox holds its lock, reads its state,
//! checks the transition, acts, and records the result.

// `VmmError`, the seam's error type, is large (it carries each backend's
// error); shrinking it is the vmm crate's call, so closures and factories
// returning it here are allowed to.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use vmjail_config::{JailConfig, RuntimeConfig};
use vmjail_vmm::{Hypervisor, VmmRecord};

use crate::ids::Registry;
use crate::lock::SandboxLock;
use crate::process::ProcessId;
use crate::state::{NetnsRecord, Phase, SandboxState, SandboxView, Status, STATE_VERSION};
use crate::store::{Store, Stored};
use crate::{crash, netns, record_check, HypervisorFactory, SandboxError, SandboxId};

/// What `gc` did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GcReport {
    /// Sandboxes removed with everything they created.
    pub removed: Vec<String>,
    /// Sandboxes another vmjail command holds right now (left alone).
    pub busy: Vec<String>,
    /// Sandboxes gc could not clean, with why (they stay recorded).
    pub failed: Vec<(String, String)>,
}

/// `list`: every readable sandbox, plus the ones whose state is broken.
#[derive(Debug, Default, Clone)]
pub struct Listing {
    pub sandboxes: Vec<SandboxView>,
    pub problems: Vec<String>,
}

/// The sandboxes of one state directory.
pub struct Sandboxes<F> {
    store: Store,
    factory: F,
    /// Hypervisors this process created or attached, reused by later
    /// commands in the same process (`run`), so a VMM that is our own child
    /// is stopped and reaped by the object that spawned it.
    live: RefCell<HashMap<String, Box<dyn Hypervisor>>>,
    /// Where network namespaces are pinned: `/run/netns`.
    netns_dir: PathBuf,
    /// Where VMM uids are claimed: [`crate::ids::REGISTRY`].
    ids: Registry,
    /// This process's `[jail]` configuration.
    jail: JailConfig,
}

impl<F: HypervisorFactory> Sandboxes<F> {
    /// The sandboxes of `jail.state_dir`; `jail` (this process's `[jail]`
    /// configuration) is also what a sandbox's record must agree with
    /// before anything is stopped or removed from it.
    pub fn new(jail: &JailConfig, factory: F) -> Self {
        Self {
            store: Store::new(&jail.state_dir),
            jail: jail.clone(),
            factory,
            live: RefCell::new(HashMap::new()),
            netns_dir: PathBuf::from(netns::NETNS_DIR),
            ids: Registry::host(),
        }
    }

    /// Claim VMM uids in `dir` instead of the host's registry (for tests).
    pub fn with_ids_registry(mut self, dir: &Path) -> Self {
        self.ids = Registry::at(dir);
        self
    }

    /// Pin network namespaces in `dir` instead of `/run/netns` (for tests
    /// that must not share the host's directory).
    pub fn with_netns_dir(mut self, dir: &Path) -> Self {
        self.netns_dir = dir.to_owned();
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Create sandbox `id`: claim the id, record, create the netns (unless
    /// `netns` names one), launch the jailed VMM. On failure everything made
    /// so far is undone.
    #[tracing::instrument(level = "debug", skip_all, fields(id = %id))]
    pub fn create(
        &self,
        id: &SandboxId,
        config: &RuntimeConfig,
        netns: Option<&Path>,
    ) -> Result<SandboxView, SandboxError> {
        self.create_with_containers(id, config, netns, &[])
    }

    /// [`Sandboxes::create`] with `containers`: each bundle is checked,
    /// recorded, made into an ext4 image in the sandbox's state dir and
    /// given to the VM as a boot drive, ready for
    /// [`Sandboxes::create_container`] once the sandbox runs. Containers
    /// need the agent: `use_vsock` must be on.
    #[tracing::instrument(level = "debug", skip_all, fields(id = %id))]
    pub fn create_with_containers(
        &self,
        id: &SandboxId,
        config: &RuntimeConfig,
        netns: Option<&Path>,
        containers: &[ContainerSpec],
    ) -> Result<SandboxView, SandboxError> {
        self.create_with_containers_then(id, config, netns, containers, |_| Ok(()))
    }

    /// [`Sandboxes::create_with_containers`], calling `before_vm` once the
    /// sandbox is recorded, its netns pinned and its containers recorded,
    /// and before the netns is connected to the VM and the VMM launched:
    /// what it adds to the netns (a container runtime's hooks moving
    /// interfaces in) is what the VM gets. Its error fails the create,
    /// which undoes everything, what it recorded included.
    pub fn create_with_containers_then(
        &self,
        id: &SandboxId,
        config: &RuntimeConfig,
        netns: Option<&Path>,
        containers: &[ContainerSpec],
        before_vm: impl FnOnce(&mut BeforeVm<'_>) -> Result<(), String>,
    ) -> Result<SandboxView, SandboxError> {
        let bundles = containers::check_specs(id, config, containers)?;
        let given = match netns {
            Some(path) => Some(open_netns(path, config)?),
            // The VMM stays in the host's namespace: pin vmjail's own.
            None if config.runtime.disable_new_netns => Some(open_own_netns()?),
            None => None,
        };
        let lock = self.store.lock(id)?;
        self.store.claim(id, &lock)?;
        crash::point("create-claimed");
        let mut state = SandboxState {
            version: STATE_VERSION,
            id: id.to_string(),
            phase: Phase::Creating,
            created: crate::time::rfc3339(SystemTime::now()),
            creator: ProcessId::current(),
            config: config.clone(),
            netns: NetnsRecord {
                path: netns::path_for(&self.netns_dir, id),
                owned: given.is_none(),
                pinned: given.is_some(),
            },
            jail_ids: None,
            vmm: None,
            console: None,
            network: None,
            containers: Vec::new(),
            shares_made: 0,
        };
        if let Err(err) = self.store.save(&state) {
            let _ = self.store.remove(id, lock);
            return Err(err);
        }
        crash::point("create-recorded");
        match self.create_resources(id, &mut state, given.as_ref(), &bundles, before_vm) {
            Ok(()) => Ok(state.view()),
            Err(err) => match self
                .teardown(&mut state, ROLLBACK_TIMEOUT)
                .and_then(|()| self.store.remove(id, lock))
            {
                Ok(()) => Err(err),
                Err(cleanup) => Err(SandboxError::Incomplete {
                    id: id.to_string(),
                    source: Box::new(err),
                    cleanup: Box::new(cleanup),
                }),
            },
        }
    }

    fn create_resources(
        &self,
        id: &SandboxId,
        state: &mut SandboxState,
        given: Option<&File>,
        bundles: &[(ContainerSpec, crate::bundle_image::Bundle)],
        before_vm: impl FnOnce(&mut BeforeVm<'_>) -> Result<(), String>,
    ) -> Result<(), SandboxError> {
        let made = {
            let _step = tracing::debug_span!("pin_netns").entered();
            match given {
                Some(ns) => netns::pin(ns, &state.netns.path),
                None => netns::create(&state.netns.path),
            }
        };
        if let Err(source) = made {
            if matches!(source, netns::NetnsError::Exists { .. }) {
                // Not ours: make sure teardown leaves it alone.
                state.netns.owned = false;
                state.netns.pinned = false;
                self.store.save(state)?;
            }
            return Err(SandboxError::Netns {
                id: id.to_string(),
                source,
            });
        }
        crash::point("create-netns");
        let jail = &state.config.jail;
        if jail.id_range_size > 1 {
            let range = (jail.uid, jail.gid, jail.id_range_size);
            let store = &self.store;
            self.ids.allocate(store.root(), id, range, |ids| {
                // The VMM runs as this pair from now on, whatever the
                // configuration file says later.
                state.jail_ids = Some(ids);
                state.config.jail.uid = ids.uid;
                state.config.jail.gid = ids.gid;
                state.config.jail.id_range_size = 1;
                store.save(state)
            })?;
            crash::point("create-ids");
        }
        ensure_chroot_base(&state.config.jail.chroot_base_dir)?;
        // The images are made while the VMM starts (see finish below).
        let images = self.make_bundle_images(id, state, bundles)?;
        before_vm(&mut BeforeVm {
            store: &self.store,
            state,
        })
        .map_err(|reason| SandboxError::BeforeVm {
            id: id.to_string(),
            reason,
        })?;
        crash::point("create-before-vm-done");
        let boot_network = self.connect_network(id, state)?;
        let mut hv = self
            .factory
            .new_hypervisor(&state.config)
            .map_err(|source| hv_error(id, "preparing the hypervisor", source))?;
        hv.set_boot_network(boot_network)
            .map_err(|source| hv_error(id, "giving the VM its network", source))?;
        hv.set_boot_drives(images.drives)
            .map_err(|source| hv_error(id, "giving the VM its bundle disks", source))?;
        if let Some(shared) = images.shared {
            hv.set_shared_dir(shared)
                .map_err(|source| hv_error(id, "sharing the bundles with the VM", source))?;
        }
        let console = self.start_console(id, state)?;
        let netns_path = state.netns.path.clone();
        let store = &self.store;
        let mut records = 0u32;
        let mut pid_recorded = false;
        let mut recorder = |record: &VmmRecord| -> std::io::Result<()> {
            state.vmm = Some(record.clone());
            store.save(state).map_err(std::io::Error::other)?;
            records += 1;
            crash::point(&format!("create-vmm-record-{records}"));
            if record.jail.vmm_pid.is_some() && !pid_recorded {
                pid_recorded = true;
                crash::point("create-vmm-pid-recorded");
            }
            Ok(())
        };
        // `console` goes to the backend and is closed when it returns: the
        // VMM then holds the pipe's only write end, so the pump ends with it.
        let created = hv.create(id.as_str(), &netns_path, console, &mut recorder);
        // Keep the backend even when create failed: it knows best how to
        // undo its half-made VMM.
        let record = hv.record().clone();
        self.live.borrow_mut().insert(id.to_string(), hv);
        created.map_err(|source| hv_error(id, "creating the VMM", source))?;
        crash::point("create-vmm-created");
        state.vmm = Some(record);
        // The guest has not run: no byte of an image was read yet.
        self.finish_bundle_images(id, state, images.making)?;
        state.phase = Phase::Created;
        self.store.save(state)
    }

    /// Start the guest of a created sandbox.
    #[tracing::instrument(level = "debug", skip_all, fields(id = %id))]
    pub fn start(&self, id: &SandboxId, timeout: Duration) -> Result<SandboxView, SandboxError> {
        let (lock, mut state) = self.lock_state(id, "start")?;
        crash::point("start-locked");
        expect_status(&state, "start", &[Status::Created], "a created sandbox")?;
        self.drive(&mut state, "starting the guest", |hv| hv.start(timeout))?;
        crash::point("start-vmm-started");
        state.phase = Phase::Running;
        self.store.save(&state)?;
        drop(lock);
        Ok(state.view())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(id = %id))]
    pub fn pause(&self, id: &SandboxId) -> Result<SandboxView, SandboxError> {
        let (_lock, mut state) = self.lock_state(id, "pause")?;
        expect_status(&state, "pause", &[Status::Running], "a running sandbox")?;
        self.drive(&mut state, "pausing the VM", |hv| hv.pause())?;
        state.phase = Phase::Paused;
        self.store.save(&state)?;
        Ok(state.view())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(id = %id))]
    pub fn resume(&self, id: &SandboxId) -> Result<SandboxView, SandboxError> {
        let (_lock, mut state) = self.lock_state(id, "resume")?;
        expect_status(&state, "resume", &[Status::Paused], "a paused sandbox")?;
        self.drive(&mut state, "resuming the VM", |hv| hv.resume())?;
        state.phase = Phase::Running;
        self.store.save(&state)?;
        Ok(state.view())
    }

    /// Stop the VMM (graceful, then forced) and tear its jail down.
    /// Stopping a stopped sandbox succeeds, as in runc and Docker: one
    /// whose guest powered off by itself has its jail torn down, one
    /// already stopped by `stop` is left as it is.
    #[tracing::instrument(level = "debug", skip_all, fields(id = %id))]
    pub fn stop(&self, id: &SandboxId, timeout: Duration) -> Result<SandboxView, SandboxError> {
        let (_lock, mut state) = self.lock_state(id, "stop")?;
        if state.phase == Phase::Stopped {
            return Ok(state.view());
        }
        expect_status(
            &state,
            "stop",
            &[
                Status::Created,
                Status::Running,
                Status::Paused,
                Status::Stopped,
            ],
            "a created, running or paused sandbox (use `delete --force` for a half-created one)",
        )?;
        self.stop_vmm(&mut state, timeout)?;
        state.phase = Phase::Stopped;
        self.store.save(&state)?;
        self.finish_console(&state)?;
        Ok(state.view())
    }

    /// Delete a stopped sandbox and everything it created. With `force`,
    /// any sandbox: a running VMM is stopped first, a half-created one is
    /// cleaned from its record.
    #[tracing::instrument(level = "debug", skip_all, fields(id = %id))]
    pub fn delete(
        &self,
        id: &SandboxId,
        force: bool,
        timeout: Duration,
    ) -> Result<(), SandboxError> {
        let lock = self.lock_existing(id)?;
        match self.store.load(id)? {
            Stored::Unrecorded if force => self.store.remove(id, lock),
            Stored::Unrecorded => Err(SandboxError::WrongState {
                id: id.to_string(),
                operation: "delete",
                status: Status::Creating,
                needs: "a stopped sandbox (use --force to clean up a half-created one)",
            }),
            Stored::State(mut state) => {
                if !force {
                    expect_status(
                        &state,
                        "delete",
                        &[Status::Stopped],
                        "a stopped sandbox (stop it first, or use --force)",
                    )?;
                }
                self.teardown(&mut state, timeout)?;
                self.store.remove(id, lock)
            }
        }
    }

    /// The sandbox's current status (reads only; never blocks on its lock).
    pub fn state(&self, id: &SandboxId) -> Result<SandboxView, SandboxError> {
        match self.store.load(id)? {
            Stored::State(state) => Ok(state.view()),
            Stored::Unrecorded => Ok(SandboxView::unrecorded(id.as_str())),
        }
    }

    pub fn list(&self) -> Result<Listing, SandboxError> {
        let mut listing = Listing::default();
        for id in self.store.ids()? {
            match self.state(&id) {
                Ok(view) => listing.sandboxes.push(view),
                // Deleted between listing and reading.
                Err(SandboxError::NotFound { .. }) => {}
                Err(err) => listing.problems.push(err.to_string()),
            }
        }
        Ok(listing)
    }

    /// Remove every sandbox whose VMM is gone or whose creation died, with
    /// everything it created. Sandboxes another command holds are skipped.
    pub fn gc(&self, timeout: Duration) -> Result<GcReport, SandboxError> {
        let mut report = GcReport::default();
        for id in self.store.ids()? {
            let Some(lock) = self.store.try_lock(&id)? else {
                report.busy.push(id.to_string());
                continue;
            };
            let outcome = match self.store.load(&id) {
                Err(SandboxError::NotFound { .. }) => lock.remove().map(|()| false),
                Err(err) => Err(err),
                Ok(Stored::Unrecorded) => self.store.remove(&id, lock).map(|()| true),
                Ok(Stored::State(mut state)) => {
                    let abandoned = match state.phase {
                        Phase::Creating => !state.creator_alive(),
                        _ => !state.vmm_alive(),
                    };
                    if abandoned {
                        self.teardown(&mut state, timeout)
                            .and_then(|()| self.store.remove(&id, lock))
                            .map(|()| true)
                    } else {
                        Ok(false)
                    }
                }
            };
            match outcome {
                Ok(true) => report.removed.push(id.to_string()),
                Ok(false) => {}
                Err(err) => report.failed.push((id.to_string(), err.to_string())),
            }
        }
        self.remove_orphan_locks();
        Ok(report)
    }

    /// Lock files whose sandbox directory is gone (a crash between removing
    /// the directory and the lock file).
    fn remove_orphan_locks(&self) {
        let Ok(entries) = std::fs::read_dir(self.store.root()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".lock"))
                .and_then(|n| SandboxId::parse(n).ok())
            else {
                continue;
            };
            if let Ok(Some(lock)) = self.store.try_lock(&id) {
                if !self.store.exists(&id) {
                    let _ = lock.remove();
                }
            }
        }
    }

    /// Lock `id` and fail with `NotFound` (removing the lock file just made)
    /// when no such sandbox exists.
    fn lock_existing(&self, id: &SandboxId) -> Result<SandboxLock, SandboxError> {
        let lock = self.store.lock(id)?;
        if !self.store.exists(id) {
            lock.remove()?;
            return Err(SandboxError::NotFound {
                id: id.to_string(),
                state_dir: self.store.root().to_owned(),
            });
        }
        Ok(lock)
    }

    /// Lock `id` and read its complete state (a half-created one is a wrong
    /// state for every command but `delete --force` and `gc`).
    fn lock_state(
        &self,
        id: &SandboxId,
        operation: &'static str,
    ) -> Result<(SandboxLock, SandboxState), SandboxError> {
        let lock = self.lock_existing(id)?;
        match self.store.load(id)? {
            Stored::State(state) => Ok((lock, *state)),
            Stored::Unrecorded => Err(SandboxError::WrongState {
                id: id.to_string(),
                operation,
                status: Status::Creating,
                needs: "a fully created sandbox (clean this one with `delete --force` or `gc`)",
            }),
        }
    }

    /// Run `op` on the sandbox's hypervisor (this process's own, else one
    /// reattached from the record) and record what it changed.
    fn drive<T>(
        &self,
        state: &mut SandboxState,
        step: &'static str,
        op: impl FnOnce(&mut dyn Hypervisor) -> Result<T, vmjail_vmm::VmmError>,
    ) -> Result<T, SandboxError> {
        self.drive_recorded(state, step, |hv, _| op(hv))
    }

    /// [`Sandboxes::drive`] for an operation that creates host resources:
    /// `op`'s recorder saves the state with each updated VMM record.
    fn drive_recorded<T>(
        &self,
        state: &mut SandboxState,
        step: &'static str,
        op: impl FnOnce(
            &mut dyn Hypervisor,
            &mut dyn vmjail_vmm::VmmRecorder,
        ) -> Result<T, vmjail_vmm::VmmError>,
    ) -> Result<T, SandboxError> {
        let mut live = self.live.borrow_mut();
        let hv = match (live.get_mut(&state.id), state.vmm.clone()) {
            (Some(hv), _) => hv,
            (None, Some(record)) => live
                .entry(state.id.clone())
                .or_insert_with(|| self.factory.reattach(record, &state.config)),
            (None, None) => {
                return Err(SandboxError::NoVmmRecord {
                    id: state.id.clone(),
                    step,
                })
            }
        };
        let store = &self.store;
        let mut recorder = |record: &VmmRecord| -> std::io::Result<()> {
            state.vmm = Some(record.clone());
            store.save(state).map_err(std::io::Error::other)
        };
        let result = op(hv.as_mut(), &mut recorder);
        state.vmm = Some(hv.record().clone());
        result.map_err(|source| SandboxError::Hypervisor {
            id: state.id.clone(),
            step,
            source: Box::new(source),
        })
    }

    fn stop_vmm(&self, state: &mut SandboxState, timeout: Duration) -> Result<(), SandboxError> {
        record_check::check(state, &self.netns_dir, &self.jail)?;
        if state.vmm.is_none() {
            return Ok(());
        }
        let timeout = self.power_off_through_agent(state, timeout);
        self.drive(state, "stopping the VMM", |hv| hv.stop(timeout))
    }

    /// Undo everything `state` records: the VMM and its jail (through the
    /// backend's idempotent stop), taps in a foreign netns, our pin.
    fn teardown(&self, state: &mut SandboxState, timeout: Duration) -> Result<(), SandboxError> {
        self.kill_monitors(state)?;
        self.stop_vmm(state, timeout)?;
        self.finish_console(state)?;
        self.live.borrow_mut().remove(&state.id);
        self.disconnect_network(state)?;
        if let Some(vmm) = &state.vmm {
            if !state.netns.owned {
                for problem in netns::delete_taps(&state.netns.path, &vmm.taps) {
                    tracing::warn!("sandbox {}: {problem}", state.id);
                }
            }
        }
        if state.netns.is_ours() {
            let _step = tracing::debug_span!("remove_netns").entered();
            netns::remove(&state.netns.path).map_err(|source| SandboxError::Netns {
                id: state.id.clone(),
                source,
            })?;
        }
        self.remove_bundle_images(state)?;
        if let Some(ids) = state.jail_ids {
            let id = SandboxId::parse(&state.id)?;
            self.ids
                .release(self.store.root(), &id, ids)
                .map_err(|source| SandboxError::Ids {
                    id: state.id.clone(),
                    source,
                })?;
        }
        Ok(())
    }
}

/// How long undoing a failed `create` may wait for each shutdown step.
const ROLLBACK_TIMEOUT: Duration = Duration::from_secs(5);

fn hv_error(id: &SandboxId, step: &'static str, source: vmjail_vmm::VmmError) -> SandboxError {
    SandboxError::Hypervisor {
        id: id.to_string(),
        step,
        source: Box::new(source),
    }
}

fn wrong_state(state: &SandboxState, operation: &'static str, needs: &'static str) -> SandboxError {
    SandboxError::WrongState {
        id: state.id.clone(),
        operation,
        status: state.status(),
        needs,
    }
}

fn expect_status(
    state: &SandboxState,
    operation: &'static str,
    allowed: &[Status],
    needs: &'static str,
) -> Result<(), SandboxError> {
    if allowed.contains(&state.status()) {
        Ok(())
    } else {
        Err(wrong_state(state, operation, needs))
    }
}

/// `--netns` must name an existing network namespace (a `/run/netns/<name>`
/// bind mount or a `/proc/<pid>/ns/net` link), opened here once so that
/// what is checked is what gets pinned. The host's own namespace only with
/// `disable_new_netns = true`.
fn open_netns(path: &Path, config: &RuntimeConfig) -> Result<File, SandboxError> {
    let bad = |reason: String| SandboxError::BadNetns {
        path: path.to_owned(),
        reason,
    };
    if !path.is_absolute() {
        return Err(bad("must be an absolute path".to_owned()));
    }
    let ns = File::open(path).map_err(|e| bad(e.to_string()))?;
    let fs = nix::sys::statfs::fstatfs(&ns).map_err(|e| bad(e.to_string()))?;
    if fs.filesystem_type() != nix::sys::statfs::NSFS_MAGIC {
        return Err(bad(
            "is not a namespace file (expected /run/netns/<name> or /proc/<pid>/ns/net)".to_owned(),
        ));
    }
    if !netns::is_net_namespace(&ns).map_err(|e| bad(e.to_string()))? {
        return Err(bad(
            "is a namespace, but not a network namespace (expected /run/netns/<name> or /proc/<pid>/ns/net)"
                .to_owned(),
        ));
    }
    if !config.runtime.disable_new_netns
        && netns::is_host_namespace(&ns).map_err(|e| bad(e.to_string()))?
    {
        return Err(bad(
            "is the host's network namespace; a VMM runs there only with `disable_new_netns = true` in [runtime]"
                .to_owned(),
        ));
    }
    Ok(ns)
}

/// vmjail's own network namespace, for `disable_new_netns = true`.
fn open_own_netns() -> Result<File, SandboxError> {
    let path = Path::new("/proc/thread-self/ns/net");
    File::open(path).map_err(|e| SandboxError::BadNetns {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

#[path = "sandboxes_console.rs"]
mod console_log;

#[path = "sandboxes_network.rs"]
mod network;

#[path = "sandboxes_containers.rs"]
mod containers;
pub use containers::{valid_container_id, ContainerError, ContainerSpec, MAX_CONTAINERS};

#[path = "sandboxes_container_process.rs"]
mod container_process;

#[path = "sandboxes_pod.rs"]
mod pod;

#[path = "sandboxes_monitors.rs"]
mod monitors;
pub use monitors::MAX_MONITORS;

#[path = "sandboxes_before_vm.rs"]
mod before_vm;
pub use before_vm::BeforeVm;

#[path = "sandboxes_guest_ready.rs"]
mod guest_ready;
pub use guest_ready::GUEST_READY;

#[path = "sandboxes_power_off.rs"]
mod power_off;
#[path = "sandboxes_vsock.rs"]
mod vsock_stream;
pub(crate) use network::tag as network_tag;

#[cfg(test)]
#[path = "sandboxes_tests.rs"]
mod tests;

/// The configured chroot base is vmjail's to set up, like its state dir: a
/// missing one is created root-owned and not writable by others (the jail
/// then refuses any base that is not). An existing one is left as it is.
fn ensure_chroot_base(path: &Path) -> Result<(), SandboxError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(path)
        .map_err(|source| SandboxError::CreateChrootBase {
            path: path.to_path_buf(),
            source,
        })
}
