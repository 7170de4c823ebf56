//! A pod's later containers: added to a sandbox whose VM already runs
//! (the first, a CRI pod's sandbox container, created it) and removed
//! again when deleted, while the VM goes on. Only a sandbox that shares
//! its bundles over virtio-fs can take one: its directory in the share
//! (config, rootfs and bind sources bound in by the backend, each mount
//! recorded in the virtiofsd helper's jail record before it is made)
//! appears in the guest at once, and the agent creates the container from
//! it as from a directory made at create. A disk-image sandbox gives the
//! VM every disk at create and is refused.

use std::path::Path;

use super::containers::{container_err, find, load_bundle};
use super::{expect_status, Sandboxes};
use crate::bundle_share;
use crate::state::{ContainerRecord, ContainerStatus, Status};
use crate::{
    crash, ContainerError, ContainerSpec, HypervisorFactory, SandboxError, SandboxId,
    MAX_CONTAINERS,
};

/// Most share directories one sandbox gives out (the agent takes names
/// of up to 3 digits).
const MAX_SHARES: usize = 1000;

impl<F: HypervisorFactory> Sandboxes<F> {
    /// Adds container `spec` to created or running sandbox `id`: checked,
    /// recorded, its bundle shared with the VM; it is then ready for
    /// [`Sandboxes::create_container`]. On failure what was shared is
    /// taken back and the record removed.
    pub fn add_container(&self, id: &SandboxId, spec: &ContainerSpec) -> Result<(), SandboxError> {
        let (_lock, mut state) = self.lock_state(id, "add a container to")?;
        expect_status(
            &state,
            "add a container to",
            &[Status::Created, Status::Running],
            "a created or running sandbox",
        )?;
        let fail = |e| Err(container_err(id, e));
        if !bundle_share::applies(&state.config) {
            return fail(ContainerError::CannotAdd);
        }
        if !crate::valid_container_id(&spec.id) {
            return fail(ContainerError::BadId {
                id: spec.id.chars().take(80).collect(),
            });
        }
        if state.containers.iter().any(|c| c.id == spec.id) {
            return fail(ContainerError::Duplicate {
                id: spec.id.clone(),
            });
        }
        if state.containers.len() >= MAX_CONTAINERS || state.shares_made >= MAX_SHARES {
            return fail(ContainerError::TooMany);
        }
        let bundle = load_bundle(id, spec)?;
        let share = bundle_share::name(state.shares_made);
        state.shares_made += 1;
        let dir = self.store.dir(id);
        state.containers.push(ContainerRecord {
            id: spec.id.clone(),
            bundle: bundle.dir.clone(),
            image: dir.join(format!("container-{share}.img")),
            staging: dir.join(format!("container-{share}.staging")),
            disk_serial: String::new(),
            // Until its directory is complete.
            status: ContainerStatus::Imaging,
            process_id: None,
            monitors: Vec::new(),
            share: Some(share.clone()),
        });
        self.store.save(&state)?;
        crash::point("add-container-recorded");
        let shared = vmjail_vmm::SharedDir {
            entries: bundle_share::entries_for(&share, &bundle),
        };
        let added = self.drive_recorded(
            &mut state,
            "sharing a container's bundle with the VM",
            |hv, recorder| hv.add_shared(&shared, recorder),
        );
        if let Err(e) = added {
            if let Err(undo) = self.drive_recorded(
                &mut state,
                "taking back a half-shared bundle",
                |hv, recorder| hv.remove_shared(Path::new(&share), recorder),
            ) {
                tracing::warn!("sandbox {id}: {undo}");
            } else {
                state.containers.retain(|c| c.id != spec.id);
            }
            self.store.save(&state)?;
            return Err(e);
        }
        if let Some(c) = state.containers.iter_mut().find(|c| c.id == spec.id) {
            c.status = ContainerStatus::Ready;
        }
        self.store.save(&state)
    }

    /// Removes container `container`, added by [`Sandboxes::add_container`]
    /// and no longer in the guest (never created there, or deleted), from
    /// sandbox `id`: its share directory is taken back and its record
    /// dropped; the VM goes on.
    pub fn remove_container(&self, id: &SandboxId, container: &str) -> Result<(), SandboxError> {
        let (_lock, mut state) = self.lock_state(id, "remove a container of")?;
        let record = find(id, &state, container)?;
        if matches!(
            record.status,
            ContainerStatus::Created | ContainerStatus::Running | ContainerStatus::Paused
        ) {
            return Err(container_err(
                id,
                ContainerError::StillInGuest {
                    id: record.id,
                    status: record.status,
                },
            ));
        }
        if let Some(share) = &record.share {
            self.drive_recorded(
                &mut state,
                "taking back a container's shared bundle",
                |hv, recorder| hv.remove_shared(Path::new(share), recorder),
            )?;
        }
        state.containers.retain(|c| c.id != container);
        self.store.save(&state)
    }
}
