//! The sandbox's network steps: connecting the endpoints of its netns to
//! the VM at `create` (each object recorded in `state.network` before it
//! is made), new endpoints later (`sync_network`), and undoing it all at
//! teardown.

use vmjail_config::InterNetworkingModel;
use vmjail_vmm::net::{self, NetModel, NetworkRecord, NicRecord};
use vmjail_vmm::{BootNetwork, GuestNic};

use super::Sandboxes;
use crate::state::{SandboxState, Status};
use crate::store::Store;
use crate::{crash, HypervisorFactory, SandboxError, SandboxId};

/// The alias every link a sandbox makes carries.
pub(crate) fn tag(id: &str) -> String {
    format!("vmjail:{id}")
}

/// The configuration's model as the network layer runs it: Kata's
/// `default` is macvtap; `enlightened` was never implemented (nor in Kata).
fn model(id: &str, configured: InterNetworkingModel) -> Result<NetModel, SandboxError> {
    match configured {
        InterNetworkingModel::Default | InterNetworkingModel::Macvtap => Ok(NetModel::Macvtap),
        InterNetworkingModel::Tcfilter => Ok(NetModel::Tcfilter),
        InterNetworkingModel::Bridged => Ok(NetModel::Bridged),
        InterNetworkingModel::None => Ok(NetModel::None),
        InterNetworkingModel::Enlightened => Err(SandboxError::NetworkModel {
            id: id.to_owned(),
            model: "enlightened",
        }),
    }
}

fn guest_nic(nic: &NicRecord) -> Option<GuestNic> {
    Some(GuestNic {
        id: nic.nic_id(),
        device: nic.device.clone()?,
        mac: nic.endpoint.mac,
    })
}

/// What the VM boots with, from the record.
fn boot_network(id: &SandboxId, record: &NetworkRecord) -> Result<BootNetwork, SandboxError> {
    Ok(BootNetwork {
        nics: record.nics.iter().filter_map(guest_nic).collect(),
        kernel_params: net::guest::kernel_params(&record.nics).map_err(|source| {
            SandboxError::Network {
                id: id.to_string(),
                step: "describing the network to the guest",
                source: Box::new(source),
            }
        })?,
    })
}

impl<F: HypervisorFactory> Sandboxes<F> {
    /// Connect every endpoint of the sandbox's netns per its model. With
    /// `disable_new_netns` the VMM shares the host's namespace, whose
    /// interfaces are never the sandbox's: nothing is connected.
    pub(super) fn connect_network(
        &self,
        id: &SandboxId,
        state: &mut SandboxState,
    ) -> Result<BootNetwork, SandboxError> {
        if state.config.runtime.disable_new_netns {
            return Ok(BootNetwork::default());
        }
        let _step = tracing::debug_span!("connect_network").entered();
        let mut record = NetworkRecord {
            model: model(id.as_str(), state.config.runtime.internetworking_model)?,
            tag: tag(id.as_str()),
            uid: state.config.jail.uid,
            gid: state.config.jail.gid,
            nics: Vec::new(),
        };
        state.network = Some(record.clone());
        self.store.save(state)?;
        let netns = state.netns.path.clone();
        let store = &self.store;
        let mut saves = 0u32;
        let mut save = save_network(store, state);
        let mut recorder = |r: &NetworkRecord| -> std::io::Result<()> {
            save(r)?;
            saves += 1;
            crash::point(&format!("create-net-record-{saves}"));
            Ok(())
        };
        let connected = net::connect(&netns, &mut record, &mut recorder);
        connected.map_err(|source| SandboxError::Network {
            id: id.to_string(),
            step: "connecting the netns to the VM",
            source: Box::new(source),
        })?;
        crash::point("create-net-connected");
        boot_network(id, &record)
    }

    /// Undo what `state.network` records (idempotent), forgetting each
    /// object as it goes.
    pub(super) fn disconnect_network(&self, state: &mut SandboxState) -> Result<(), SandboxError> {
        let Some(mut record) = state.network.clone() else {
            return Ok(());
        };
        let _step = tracing::debug_span!("disconnect_network").entered();
        let netns = state.netns.path.clone();
        let store = &self.store;
        let id = state.id.clone();
        net::disconnect(&netns, &mut record, &mut save_network(store, state)).map_err(|source| {
            SandboxError::Network {
                id,
                step: "disconnecting the netns from the VM",
                source: Box::new(source),
            }
        })
    }

    /// Connect endpoints that appeared in the netns since `create` and give
    /// them to the VM: hot-plugged on QEMU's PCI machines, and on
    /// Firecracker before `start` only. Returns the names connected.
    #[tracing::instrument(level = "debug", skip_all, fields(id = %id))]
    pub fn sync_network(&self, id: &SandboxId) -> Result<Vec<String>, SandboxError> {
        let (_lock, mut state) = self.lock_state(id, "sync-network")?;
        super::expect_status(
            &state,
            "sync-network",
            &[Status::Created, Status::Running, Status::Paused],
            "a created, running or paused sandbox",
        )?;
        crate::record_check::check(&state, &self.netns_dir, &self.jail)?;
        let Some(mut record) = state.network.clone() else {
            return Ok(Vec::new());
        };
        let netns = state.netns.path.clone();
        let store = &self.store;
        let added = {
            let state = &mut state;
            net::connect(&netns, &mut record, &mut save_network(store, state)).map_err(
                |source| SandboxError::Network {
                    id: id.to_string(),
                    step: "connecting new interfaces",
                    source: Box::new(source),
                },
            )?
        };
        let mut names = Vec::new();
        for (n, &index) in added.iter().enumerate() {
            let nic = record.nics[index].clone();
            let plugged = match guest_nic(&nic) {
                Some(guest) => self.drive(&mut state, "hot-plugging a NIC", |hv| {
                    hv.hot_plug_nic(&guest)
                }),
                None => Ok(()),
            };
            if let Err(err) = plugged {
                // The VM cannot take it, nor the ones after it (never
                // plugged, they would stay connected, skipped by every later
                // sync): undo what was made for each.
                for &rest in &added[n..] {
                    self.forget_nic(&mut state, &record.nics[rest])?;
                }
                return Err(err);
            }
            names.push(nic.endpoint.name.clone());
        }
        self.store.save(&state)?;
        Ok(names)
    }

    /// Undo one NIC the VM could not take.
    fn forget_nic(&self, state: &mut SandboxState, nic: &NicRecord) -> Result<(), SandboxError> {
        let Some(record) = state.network.clone() else {
            return Ok(());
        };
        let mut only = NetworkRecord {
            nics: vec![nic.clone()],
            ..record.clone()
        };
        let netns = state.netns.path.clone();
        let store = &self.store;
        let mut recorder = |r: &NetworkRecord| -> std::io::Result<()> {
            let mut whole = record.clone();
            whole.nics.retain(|n| n.slot != nic.slot);
            whole.nics.extend(r.nics.iter().cloned());
            state.network = Some(whole);
            store.save(state).map_err(std::io::Error::other)
        };
        net::disconnect(&netns, &mut only, &mut recorder).map_err(|source| SandboxError::Network {
            id: state.id.clone(),
            step: "undoing a NIC the VM could not take",
            source: Box::new(source),
        })
    }
}

/// Records each change of the network objects in the sandbox's state
/// (saved before the next object is made).
fn save_network<'a>(
    store: &'a Store,
    state: &'a mut SandboxState,
) -> impl FnMut(&NetworkRecord) -> std::io::Result<()> + 'a {
    |r: &NetworkRecord| {
        state.network = Some(r.clone());
        store.save(state).map_err(std::io::Error::other)
    }
}
