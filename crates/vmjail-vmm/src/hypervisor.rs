//! The seam between sandboxes and VMMs.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vmjail_config::HypervisorKind;
use vmjail_jail::JailRecord;

/// What the VM is doing, as its VMM reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VmState {
    /// The VMM is up and configured; the guest has not started.
    Created,
    Running,
    Paused,
    /// The VMM process is gone.
    Stopped,
}

/// What a backend can do while the VM runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub block_hotplug: bool,
    pub network_hotplug: bool,
    pub vsock: bool,
    pub pause: bool,
}

/// Longest id of a drive the guest finds by serial (virtio-blk serials
/// are 20 bytes).
pub const MAX_BOOT_DRIVE_ID: usize = 20;

/// A block device to attach while the VM runs (or at `create`, see
/// [`Hypervisor::set_boot_drives`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockDevice {
    /// Drive id: `[A-Za-z0-9_-]{1,64}`.
    pub id: String,
    pub host_path: PathBuf,
    pub read_only: bool,
}

/// A directory tree shared with the guest over virtio-fs (QEMU's
/// `shared_fs = "virtio-fs"`, tag `vmjail`): built in the daemon's jail
/// from these entries (each mount recorded before it is made), served by a
/// per-sandbox virtiofsd that sees this tree only.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SharedDir {
    pub entries: Vec<ShareEntry>,
}

/// One entry of a [`SharedDir`]; paths are relative, plain components
/// only (checked by the backend).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareEntry {
    /// A file made with these contents.
    File { path: PathBuf, contents: Vec<u8> },
    /// A host file or directory bound there, read-only or read-write (its
    /// owner kept: the guest writes through to the host).
    Bind {
        path: PathBuf,
        source: PathBuf,
        read_only: bool,
    },
}

/// A network interface backed by a tap device in the sandbox netns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetInterface {
    pub id: String,
    /// Tap name (≤ 15 bytes), created by the backend inside the netns.
    pub tap_name: String,
    pub guest_mac: Option<String>,
}

/// A NIC the network layer prepared in the sandbox netns (see
/// [`crate::net::connect`]), for the VMM to give the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestNic {
    /// Device id in the VMM: `net<slot>`.
    pub id: String,
    pub device: crate::net::NicDevice,
    /// The MAC the guest interface gets: the endpoint's.
    pub mac: crate::net::Mac,
}

/// The NICs a VM boots with and the kernel parameters that tell a guest
/// without an agent how to configure them (see [`crate::net::guest`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootNetwork {
    pub nics: Vec<GuestNic>,
    pub kernel_params: Vec<vmjail_config::KernelParam>,
}

/// The hybrid-vsock device (a host Unix socket in the jail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VsockDevice {
    /// Guest CID; 3 unless configured.
    pub guest_cid: u32,
}

/// The guest CID every vmjail VM gets: each VM has a hybrid vsock of its
/// own, reached through its own host socket, so the CID never has to
/// differ between sandboxes.
pub const GUEST_CID: u32 = 3;

/// The kernel parameter that tells vmjail's guest init to start the agent
/// (listening on vsock), which announces readiness itself.
pub const AGENT_KERNEL_PARAM: &str = "vmjail.agent";

/// The agent under the name that makes it the guest's init, which the
/// kernel runs instead of the initramfs's `/init` script (`rdinit=`): the
/// script's start, mounts and checks cost ~0.12 s of a TCG guest's boot.
pub const AGENT_INIT: &str = "/sbin/vmjail-init";

/// `params` plus [`AGENT_KERNEL_PARAM`] and `rdinit=`[`AGENT_INIT`] when
/// the VM has a vsock for the agent (each unless the configuration's own
/// parameters already name it).
pub fn with_agent_param(
    params: &[vmjail_config::KernelParam],
    use_vsock: bool,
) -> Vec<vmjail_config::KernelParam> {
    let mut params = params.to_vec();
    if !use_vsock {
        return params;
    }
    for (key, value) in [(AGENT_KERNEL_PARAM, None), ("rdinit", Some(AGENT_INIT))] {
        if !params.iter().any(|p| p.key == key) {
            params.push(vmjail_config::KernelParam {
                key: key.into(),
                value: value.map(String::from),
            });
        }
    }
    params
}

/// Where the host reaches the guest's vsock: a Firecracker-style hybrid
/// vsock socket (`CONNECT <port>\n` / `OK <port>\n`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VsockRecord {
    pub guest_cid: u32,
    /// The socket's path inside the VMM's jail (below
    /// [`VmmRecord::jail`]'s root).
    pub uds_path: PathBuf,
}

/// A helper daemon jailed beside the VMM (QEMU's `vhost-device-vsock`):
/// a jail of its own, recorded before it is created and torn down with
/// the VMM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelperRecord {
    /// What the helper is, e.g. `vhost-device-vsock`.
    pub name: String,
    pub jail: JailRecord,
}

/// Everything a backend created, serialisable, so another process can find
/// the VMM and undo it all. Saved by the caller before each resource is
/// created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmmRecord {
    pub kind: HypervisorKind,
    pub id: String,
    pub netns: PathBuf,
    pub jail: JailRecord,
    /// The VMM's control socket (Firecracker API / QMP), host path.
    pub api_socket: PathBuf,
    /// Tap devices created inside the netns.
    pub taps: Vec<String>,
    /// Attached block devices, by id, with their in-jail path.
    pub drives: Vec<(String, PathBuf)>,
    /// Helper daemons, each in a jail of its own.
    #[serde(default)]
    pub helpers: Vec<HelperRecord>,
    /// The guest's hybrid vsock, when the VM has one.
    #[serde(default)]
    pub vsock: Option<VsockRecord>,
}

/// Persists the backend's record; called before each resource is created.
pub trait VmmRecorder {
    fn record(&mut self, record: &VmmRecord) -> std::io::Result<()>;
}

impl<F: FnMut(&VmmRecord) -> std::io::Result<()>> VmmRecorder for F {
    fn record(&mut self, record: &VmmRecord) -> std::io::Result<()> {
        self(record)
    }
}

/// What a sandbox talks to, whatever the VMM.
pub trait Hypervisor {
    fn kind(&self) -> HypervisorKind;
    fn capabilities(&self) -> Capabilities;

    /// Launch the jailed VMM for sandbox `id` inside network namespace
    /// `netns` and configure it, leaving the guest not yet started. The
    /// guest's serial console goes to `console` (the VMM's stdout): a
    /// descriptor, so the VMM never learns, nor reaches, where it is kept.
    fn create(
        &mut self,
        id: &str,
        netns: &Path,
        console: OwnedFd,
        recorder: &mut dyn VmmRecorder,
    ) -> Result<(), crate::VmmError>;
    /// Start the guest; fail if the VMM does not confirm within `timeout`.
    fn start(&mut self, timeout: Duration) -> Result<(), crate::VmmError>;
    fn state(&mut self) -> Result<VmState, crate::VmmError>;
    fn pause(&mut self) -> Result<(), crate::VmmError>;
    fn resume(&mut self) -> Result<(), crate::VmmError>;
    /// Graceful shutdown, then forced, each bounded by `timeout`; then the
    /// jail's teardown. Idempotent.
    fn stop(&mut self, timeout: Duration) -> Result<(), crate::VmmError>;
    // The device operations below create host resources (mounts in the
    // jail, taps in the netns) while the VM runs: like `create`, they hand
    // the updated record to `recorder` before each one is created.
    fn attach_block(
        &mut self,
        device: &BlockDevice,
        recorder: &mut dyn VmmRecorder,
    ) -> Result<(), crate::VmmError>;
    fn detach_block(
        &mut self,
        id: &str,
        recorder: &mut dyn VmmRecorder,
    ) -> Result<(), crate::VmmError>;
    fn add_network_interface(
        &mut self,
        iface: &NetInterface,
        recorder: &mut dyn VmmRecorder,
    ) -> Result<(), crate::VmmError>;
    /// The NICs (already made in the netns) the VM gets at `create`;
    /// called before `create`.
    fn set_boot_network(&mut self, network: BootNetwork) -> Result<(), crate::VmmError>;
    /// The drives the VM gets at `create` (beside its boot image), each a
    /// virtio-blk disk whose serial is its id (what the guest finds it
    /// by: QEMU's `serial=`, Firecracker's drive id); called before
    /// `create`. Placed in the jail (recorded first) like hot-plugged
    /// drives and listed in [`VmmRecord::drives`].
    fn set_boot_drives(&mut self, drives: Vec<BlockDevice>) -> Result<(), crate::VmmError>;
    /// The tree the VM gets over virtio-fs at `create` (QEMU only: its
    /// virtiofsd helper); called before `create`.
    fn set_shared_dir(&mut self, shared: SharedDir) -> Result<(), crate::VmmError>;
    /// Adds `shared`'s entries to the virtio-fs tree of a created VM (a
    /// pod's later container), each mount recorded before it is made; the
    /// guest sees them at once (the tree's mounts propagate into the
    /// daemon's own mount namespace). QEMU with virtio-fs only.
    fn add_shared(
        &mut self,
        shared: &SharedDir,
        recorder: &mut dyn VmmRecorder,
    ) -> Result<(), crate::VmmError>;
    /// Removes top-level directory `dir` of the virtio-fs tree with what
    /// is in it: its mounts first (each forgotten once gone), then its
    /// files. Gone already is fine.
    fn remove_shared(
        &mut self,
        dir: &Path,
        recorder: &mut dyn VmmRecorder,
    ) -> Result<(), crate::VmmError>;
    /// Give the VM a NIC (already made in the netns) after `create`: QEMU
    /// on a PCI machine at any time, Firecracker only before `start`.
    fn hot_plug_nic(&mut self, nic: &GuestNic) -> Result<(), crate::VmmError>;
    fn add_vsock(
        &mut self,
        vsock: &VsockDevice,
        recorder: &mut dyn VmmRecorder,
    ) -> Result<(), crate::VmmError>;
    /// The VMM's real host pid (never the jailer's).
    fn pid(&self) -> Option<i32>;
    fn record(&self) -> &VmmRecord;
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmjail_config::KernelParam;

    fn words(params: &[KernelParam]) -> Vec<String> {
        params
            .iter()
            .map(|p| match &p.value {
                Some(v) => format!("{}={v}", p.key),
                None => p.key.clone(),
            })
            .collect()
    }

    #[test]
    fn an_agent_guest_gets_the_agent_as_its_init_unless_configured_otherwise() {
        let quiet = KernelParam {
            key: "quiet".into(),
            value: None,
        };
        let quiet = std::slice::from_ref(&quiet);
        assert_eq!(words(&with_agent_param(quiet, false)), ["quiet"]);
        assert_eq!(
            words(&with_agent_param(quiet, true)),
            ["quiet", "vmjail.agent", "rdinit=/sbin/vmjail-init"]
        );
        let own_init = KernelParam {
            key: "rdinit".into(),
            value: Some("/init".into()),
        };
        assert_eq!(
            words(&with_agent_param(&[own_init], true)),
            ["rdinit=/init", "vmjail.agent"]
        );
    }
}
