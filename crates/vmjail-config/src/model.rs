//! The resolved, validated configuration every other crate consumes.
//!
//! These types are the seam between the configuration layer and the rest of
//! vmjail: every path in them is absolute and resolved, every default applied
//! and every Kata rule already checked.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which `[hypervisor.<type>]` table the configuration selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HypervisorKind {
    Firecracker,
    Qemu,
    Acrn,
}

/// Where the configuration came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "path")]
pub enum ConfigSource {
    /// A file on disk (resolved, absolute).
    File(PathBuf),
    /// The default configuration embedded in the binary.
    Embedded,
}

/// One kernel command line parameter: `key` or `key=value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelParam {
    pub key: String,
    pub value: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlockDeviceDriver {
    #[serde(rename = "virtio-scsi")]
    VirtioScsi,
    #[serde(rename = "virtio-blk")]
    VirtioBlk,
    #[serde(rename = "virtio-mmio")]
    VirtioMmio,
    #[serde(rename = "nvdimm")]
    Nvdimm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SharedFs {
    #[serde(rename = "virtio-9p")]
    Virtio9p,
    #[serde(rename = "virtio-fs")]
    VirtioFs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InterNetworkingModel {
    Default,
    Bridged,
    Macvtap,
    Enlightened,
    Tcfilter,
    None,
}

/// The resolved `[hypervisor.<type>]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HypervisorConfig {
    pub path: PathBuf,
    /// `None` when `jailer_path` is empty: vmjail's built-in jail is used.
    pub jailer_path: Option<PathBuf>,
    pub kernel: PathBuf,
    /// ACRN's control binary (`acrnctl`); `None` for other hypervisors.
    pub ctlpath: Option<PathBuf>,
    /// Exactly one of `initrd` and `image` is set.
    pub initrd: Option<PathBuf>,
    pub image: Option<PathBuf>,
    pub firmware: Option<PathBuf>,
    pub machine_accelerators: Vec<String>,
    /// The final kernel command line: vmjail defaults, then agent
    /// parameters, then the user's `kernel_params` (later replaces earlier).
    pub kernel_params: Vec<KernelParam>,
    pub machine_type: String,
    pub block_device_driver: BlockDeviceDriver,
    pub entropy_source: PathBuf,
    pub shared_fs: SharedFs,
    pub virtio_fs_daemon: Option<PathBuf>,
    pub virtio_fs_cache: String,
    pub virtio_fs_cache_size: u32,
    pub block_device_cache_set: bool,
    pub block_device_cache_direct: bool,
    pub block_device_cache_noflush: bool,
    pub default_vcpus: u32,
    pub default_maxvcpus: u32,
    /// Guest memory in MiB.
    pub default_memory: u32,
    pub memory_slots: u32,
    pub memory_offset: u32,
    pub default_bridges: u32,
    pub msize_9p: u32,
    pub disable_block_device_use: bool,
    pub enable_mem_prealloc: bool,
    pub enable_hugepages: bool,
    pub file_mem_backend: String,
    pub enable_swap: bool,
    pub enable_debug: bool,
    pub disable_nesting_checks: bool,
    pub enable_iothreads: bool,
    /// Effective vsock use (QEMU falls back to serial without vhost-vsock;
    /// Firecracker always uses its hybrid vsock).
    pub use_vsock: bool,
    pub hotplug_vfio_on_root_bus: bool,
    pub disable_vhost_net: bool,
    pub guest_hook_path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyKind {
    Kata,
    /// No proxy: the agent is reached over vsock.
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxyConfig {
    pub kind: ProxyKind,
    /// `None` when no proxy is used.
    pub path: Option<PathBuf>,
    pub enable_debug: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShimConfig {
    pub path: PathBuf,
    pub enable_debug: bool,
    pub enable_tracing: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentConfig {
    pub enable_debug: bool,
    pub enable_tracing: bool,
    pub trace_mode: String,
    pub trace_type: String,
    pub kernel_modules: Vec<String>,
    pub use_vsock: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeSection {
    pub enable_debug: bool,
    pub enable_tracing: bool,
    pub disable_new_netns: bool,
    pub disable_guest_seccomp: bool,
    pub sandbox_cgroup_only: bool,
    pub experimental: Vec<String>,
    pub internetworking_model: InterNetworkingModel,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactoryConfig {
    pub enable_template: bool,
    pub template_path: PathBuf,
    pub vm_cache_number: u32,
    pub vm_cache_endpoint: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetmonConfig {
    pub path: PathBuf,
    pub enable_debug: bool,
    pub enable_netmon: bool,
}

/// `cgroup_version` in `[jail]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupVersionSetting {
    /// v2 when the host's unified hierarchy has the needed controllers,
    /// else v1.
    Auto,
    #[serde(rename = "1")]
    V1,
    #[serde(rename = "2")]
    V2,
}

fn one() -> u32 {
    1
}

impl CgroupVersionSetting {
    /// As written in the file: `auto`, `1` or `2`.
    pub fn as_str(self) -> &'static str {
        match self {
            CgroupVersionSetting::Auto => "auto",
            CgroupVersionSetting::V1 => "1",
            CgroupVersionSetting::V2 => "2",
        }
    }
}

/// vmjail's own `[jail]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JailConfig {
    /// The first unprivileged uid/gid a VMM runs as (never 0 by default).
    pub uid: u32,
    pub gid: u32,
    /// How many consecutive uids from `uid` (and gids from `gid`) vmjail
    /// hands out, a distinct pair per sandbox; 1: every sandbox runs as
    /// `uid`:`gid` (weaker: its VMMs can reach each other).
    #[serde(default = "one")]
    pub id_range_size: u32,
    /// `<chroot_base_dir>/<exec_name>/<id>/root` is each jail's root.
    pub chroot_base_dir: PathBuf,
    /// Per-sandbox state lives in `<state_dir>/<id>/`.
    pub state_dir: PathBuf,
    pub cgroup_version: CgroupVersionSetting,
    /// `file=value` pairs written into the jail's cgroup, in order
    /// (e.g. `cpu.shares=1024`, `memory.max=1G`).
    pub cgroups: Vec<(String, String)>,
    /// Relative cgroup path under each hierarchy's root; no `..`.
    pub parent_cgroup: String,
    /// `RLIMIT_FSIZE` in bytes; `None` is unlimited.
    pub rlimit_fsize: Option<u64>,
    /// `RLIMIT_NOFILE`.
    pub rlimit_no_file: u64,
    pub new_pid_ns: bool,
    pub daemonize: bool,
}

/// A problem that does not stop loading (unknown key, image bigger than
/// memory, vsock fallback, ...). Printed to stderr by the CLI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigWarning {
    /// `file:line:column` when the warning is about a place in the file.
    pub location: Option<String>,
    pub message: String,
}

/// The whole resolved configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeConfig {
    pub source: ConfigSource,
    pub hypervisor_kind: HypervisorKind,
    pub hypervisor: HypervisorConfig,
    pub proxy: ProxyConfig,
    pub shim: ShimConfig,
    pub agent: AgentConfig,
    pub runtime: RuntimeSection,
    pub factory: FactoryConfig,
    pub netmon: NetmonConfig,
    pub jail: JailConfig,
    pub warnings: Vec<ConfigWarning>,
}
