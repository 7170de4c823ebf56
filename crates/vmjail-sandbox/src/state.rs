//! What `<state_dir>/<id>/state.json` holds, and the status derived from it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use vmjail_config::{HypervisorKind, RuntimeConfig};
use vmjail_vmm::VmmRecord;

use crate::ids::JailIds;
use crate::process::{self, ProcessId};

/// The on-disk format version; bumped on incompatible changes.
pub const STATE_VERSION: u32 = 1;

/// Where the sandbox is in its life, as last recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// `create` claimed the id and has not finished: resources may be
    /// half-made (all of them recorded below).
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

/// A sandbox's status as reported to users: the recorded phase, except that
/// a created/running/paused sandbox whose VMM is gone is `stopped`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The network namespace the VMM runs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetnsRecord {
    /// The namespace file the VMM joins and every later command uses:
    /// `/run/netns/vmjail-<id>` when `owned` or `pinned`.
    pub path: PathBuf,
    /// vmjail created the namespace (it goes with the pin on delete).
    pub owned: bool,
    /// vmjail pinned a namespace it was given (`--netns`, or its own with
    /// `disable_new_netns`) at `path`: the pin goes on delete, the
    /// namespace and its other users stay.
    #[serde(default)]
    pub pinned: bool,
}

impl NetnsRecord {
    /// vmjail made the file at `path` (a pin of either kind).
    pub fn is_ours(&self) -> bool {
        self.owned || self.pinned
    }
}

/// The guest console log and the process that keeps it (see
/// [`crate::console`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleRecord {
    /// `<state_dir>/<id>/console.log`, removed with the state on delete.
    pub log: PathBuf,
    /// The console pump, once spawned; it ends when the VMM does.
    pub pump: Option<ProcessId>,
}

impl ConsoleRecord {
    /// True while the pump may still be writing the log.
    pub fn pump_alive(&self) -> bool {
        self.pump.is_some_and(|p| p.is_alive())
    }
}

/// Everything `state.json` holds: enough for any later vmjail process to
/// find the VMM and undo every resource, even after a crash mid-`create`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxState {
    pub version: u32,
    pub id: String,
    pub phase: Phase,
    /// RFC 3339, UTC.
    pub created: String,
    /// The `create` process, so `gc` can tell a live creation from a dead one.
    pub creator: Option<ProcessId>,
    /// The configuration the sandbox was created with; later commands
    /// reattach with it, whatever the config file says now.
    pub config: RuntimeConfig,
    pub netns: NetnsRecord,
    /// The uid/gid pair allocated to this sandbox's VMM (also written into
    /// `config.jail`), claimed host-wide until delete; `None` when the
    /// configuration shares one pair (`id_range_size = 1`).
    #[serde(default)]
    pub jail_ids: Option<JailIds>,
    /// The backend's record, saved before each resource it creates.
    pub vmm: Option<VmmRecord>,
    /// Recorded before the log and its pump are created.
    #[serde(default)]
    pub console: Option<ConsoleRecord>,
    /// What the network layer made and changed in the netns, recorded
    /// before each step (`None`: nothing connected, e.g. with
    /// `disable_new_netns`).
    #[serde(default)]
    pub network: Option<vmjail_vmm::net::NetworkRecord>,
    /// The sandbox's containers, each recorded before its image is made.
    #[serde(default)]
    pub containers: Vec<ContainerRecord>,
    /// Share directories given out so far (the next one's number): a
    /// container added later never reuses a removed one's name, which the
    /// guest may still have cached.
    #[serde(default)]
    pub shares_made: usize,
}

impl SandboxState {
    /// The VMM's pid and start time, when both are recorded (a pid alone
    /// could name any process).
    pub fn vmm_process(&self) -> Option<(i32, u64)> {
        self.vmm.as_ref()?.jail.vmm_process()
    }

    /// True while the recorded VMM process (not a recycled pid) exists.
    pub fn vmm_alive(&self) -> bool {
        self.vmm_process()
            .is_some_and(|(pid, start)| process::is_alive(pid, Some(start)))
    }

    /// True while the process that is creating this sandbox still lives.
    pub fn creator_alive(&self) -> bool {
        self.creator.is_some_and(|c| c.is_alive())
    }

    pub fn status(&self) -> Status {
        match self.phase {
            Phase::Creating => Status::Creating,
            Phase::Stopped => Status::Stopped,
            _ if !self.vmm_alive() => Status::Stopped,
            Phase::Created => Status::Created,
            Phase::Running => Status::Running,
            Phase::Paused => Status::Paused,
        }
    }

    /// The public view printed by `vmjail state` and `vmjail list --json`.
    /// A path is shown only while it exists (the jail root is gone after
    /// `stop`; the console log stays until `delete`).
    pub fn view(&self) -> SandboxView {
        let vmm = self.vmm.as_ref();
        let status = self.status();
        SandboxView {
            id: self.id.clone(),
            status,
            hypervisor: Some(self.config.hypervisor_kind),
            vmm_pid: match status {
                Status::Stopped => None,
                _ => self.vmm_process().map(|(pid, _)| pid),
            },
            jail_root: vmm
                .filter(|v| !v.jail.jail_dir.as_os_str().is_empty())
                .map(|v| v.jail.root())
                .filter(|root| root.is_dir()),
            console_log: self
                .console
                .as_ref()
                .map(|c| c.log.clone())
                .filter(|log| log.is_file()),
            netns: Some(self.netns.path.clone()).filter(|ns| ns.exists()),
            created: Some(self.created.clone()),
            interfaces: self
                .network
                .as_ref()
                .map(InterfaceView::all)
                .unwrap_or_default(),
        }
    }
}

/// Where a container is in its life, as last recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerStatus {
    /// Recorded; its bundle image may be half-made.
    Imaging,
    /// Its bundle image is made and given to the VM; nothing in the guest.
    Ready,
    /// Set up in the guest, its process waiting to start.
    Created,
    Running,
    /// Its processes frozen (the guest cgroup's freezer).
    Paused,
    /// Its process ended or it was deleted in the guest.
    Stopped,
}

/// A container of the sandbox: its bundle on the host, the ext4 image of
/// it in the sandbox's state dir (a virtio-blk disk the guest finds by
/// `disk_serial`), and the staging copy the image is made from (removed
/// once it is made, and by teardown if a crash left it). With QEMU's
/// `shared_fs = "virtio-fs"` there is no image: the bundle is directory
/// `share` of the sandbox's virtio-fs share (its mounts recorded in the
/// VMM record's virtiofsd helper), and `image`/`staging` are never made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub bundle: PathBuf,
    pub image: PathBuf,
    pub staging: PathBuf,
    pub disk_serial: String,
    pub status: ContainerStatus,
    /// The agent's process id of the container's process, from its create
    /// in the guest on (for signal and wait by container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_id: Option<u64>,
    /// Host processes that stand for processes of the container (the runc
    /// CLI's monitors), each recorded before it is spawned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub monitors: Vec<MonitorRecord>,
    /// The container's directory in the sandbox's virtio-fs share, when
    /// its bundle is shared that way rather than given as a disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<String>,
}

/// A host process standing for one process of a container in the guest:
/// it holds the caller's stdio, pumps it and exits with the process's
/// status. Recorded (`process: None`) before it is spawned; one killed
/// between spawn and the pid's record ends by itself once the VM is gone
/// (its agent connection fails).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorRecord {
    /// `init` for the container's own process, else the agent's process id
    /// of an exec.
    pub name: String,
    pub process: Option<crate::process::ProcessId>,
}

/// One interface of the sandbox netns given to the VM, as `state` shows
/// it: the identity the guest took over and how it is connected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceView {
    /// The interface in the sandbox netns (e.g. the CNI's `eth0`).
    pub name: String,
    /// The MAC the guest interface has (the interface's own, as found).
    pub mac: String,
    /// The addresses the guest interface has, `10.0.0.2/24`.
    pub addresses: Vec<String>,
    /// The internetworking model that connects it.
    pub model: String,
    /// The NIC's id in the VMM (`net0`).
    pub guest_nic: String,
    /// What the VMM opens: our tap or macvtap in the netns.
    pub device: Option<String>,
}

impl InterfaceView {
    fn all(network: &vmjail_vmm::net::NetworkRecord) -> Vec<InterfaceView> {
        network
            .nics
            .iter()
            .map(|nic| InterfaceView {
                name: nic.endpoint.name.clone(),
                mac: nic.endpoint.mac.to_string(),
                addresses: nic
                    .endpoint
                    .addresses
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                model: network.model.name().to_owned(),
                guest_nic: nic.nic_id(),
                device: nic.device.as_ref().map(|d| match d {
                    vmjail_vmm::net::NicDevice::Tap { name }
                    | vmjail_vmm::net::NicDevice::Macvtap { name, .. } => name.clone(),
                }),
            })
            .collect()
    }
}

/// `vmjail state ID` output; a stable JSON shape (fields are only ever
/// added).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxView {
    pub id: String,
    pub status: Status,
    /// `null` only for a sandbox whose creation died before recording it.
    pub hypervisor: Option<HypervisorKind>,
    /// The VMM's host pid while it runs.
    pub vmm_pid: Option<i32>,
    /// Host path of the jail's root directory, while the jail exists.
    pub jail_root: Option<PathBuf>,
    /// Host path of the guest console log (kept until `delete`).
    pub console_log: Option<PathBuf>,
    pub netns: Option<PathBuf>,
    /// RFC 3339, UTC.
    pub created: Option<String>,
    /// The interfaces of the sandbox netns given to the VM.
    #[serde(default)]
    pub interfaces: Vec<InterfaceView>,
}

impl SandboxView {
    /// A sandbox directory without a `state.json`: `create` died between
    /// claiming the id and recording anything, so nothing else exists.
    pub fn unrecorded(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            status: Status::Creating,
            hypervisor: None,
            vmm_pid: None,
            jail_root: None,
            console_log: None,
            netns: None,
            created: None,
            interfaces: Vec::new(),
        }
    }
}
