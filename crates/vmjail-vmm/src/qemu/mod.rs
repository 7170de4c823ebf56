//! The QEMU backend: QEMU in vmjail's built-in jail, in the sandbox's netns,
//! as an unprivileged uid, driven over QMP on a Unix socket in the jail.
//!
//! `create` launches QEMU stopped (`-S`); `start` is QMP `cont`; `state` is
//! `query-status`; `pause`/`resume` are `stop`/`cont`; `stop` presses the
//! ACPI power button, then `quit`, then signals, then tears the jail down.

mod assets;
mod backend;
pub mod cmdline;
mod helper_socket;
pub mod layout;
mod nics;
mod output_tail;
pub mod probe;
pub mod qmp;
pub mod vhost_vsock;
pub mod virtiofsd;

use std::path::PathBuf;
use std::time::Duration;

pub use backend::Qemu;
pub use cmdline::{Accel, Machine};
pub use qmp::{Qmp, QmpError, QmpEvent, StatusInfo};

/// The kernel command line QEMU gets for `hv` on this host (what `vmjail
/// env` shows): the configuration's parameters, the console and, under
/// TCG, the TSC hint.
pub fn kernel_cmdline(hv: &vmjail_config::HypervisorConfig) -> Result<String, Error> {
    Ok(cmdline::append(hv, &Qemu::options(hv)?))
}

/// What vmjail says when a configuration selects ACRN.
pub const ACRN_UNAVAILABLE: &str = "ACRN is not available on this host: vmjail can load an \
[hypervisor.acrn] configuration but launches only QEMU (and Firecracker); select \
[hypervisor.qemu] to run a sandbox here";

/// Every step of the QEMU backend that can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("sandbox id: {0}")]
    InvalidId(#[source] Box<vmjail_jail::JailError>),
    #[error("{}", ACRN_UNAVAILABLE)]
    AcrnUnavailable,
    #[error("use_vsock = true needs {helper}, found in none of {searched}: run scripts/deps.sh (or `cargo install --locked --root /usr/local vhost-device-vsock`), or set use_vsock = false")]
    HelperMissing {
        helper: &'static str,
        searched: String,
    },
    #[error("shared_fs = \"virtio-fs\" needs virtio_fs_daemon, {path:?} is not a file: run scripts/deps.sh (it installs /usr/local/bin/virtiofsd)")]
    VirtiofsdMissing { path: PathBuf },
    #[error("shared directory entry {path:?}: expected a relative path of plain names")]
    BadShareEntry { path: PathBuf },
    #[error("virtiofsd needs a cgroup of its own (teardown finds it there): set [jail] cgroups or mount cgroup v2")]
    VirtiofsdNoCgroup,
    #[error("starting virtiofsd: {source}")]
    VirtiofsdSpawn { source: std::io::Error },
    #[error(
        "a virtio-fs shared directory needs shared_fs = \"virtio-fs\" in the [hypervisor] section"
    )]
    SharedFsNotConfigured,
    #[error("sandbox {id} has no virtiofsd to share more with (it was created without shared_fs = \"virtio-fs\")")]
    NoVirtiofsd { id: String },
    #[error("the helper {helper}: {step}: {source}")]
    Helper {
        helper: &'static str,
        step: &'static str,
        source: Box<vmjail_jail::JailError>,
    },
    #[error("the helper {helper} {state} but opened no vhost-user socket within {waited:?}; its output: {output}")]
    HelperNotReady {
        helper: &'static str,
        state: &'static str,
        waited: Duration,
        output: String,
    },
    #[error("the QEMU backend was given a {0:?} configuration")]
    WrongHypervisor(vmjail_config::HypervisorKind),
    #[error("machine_type {machine:?} is not supported by vmjail's QEMU backend (valid: microvm, q35, pc)")]
    UnsupportedMachine { machine: String },
    #[error("machine_accelerators entry {value:?} is not a single QEMU machine property (valid: 1 to 64 of [A-Za-z0-9_.=-], e.g. \"pit=off\", \"accel=tcg\")")]
    BadMachineAccelerator { value: String },
    #[error("machine_accelerators asks for accel={asked}, but {reason}")]
    AcceleratorUnavailable { asked: String, reason: &'static str },
    #[error("default_vcpus={vcpus} / default_memory={memory_mib} MiB: both must be at least 1")]
    BadSize { vcpus: u32, memory_mib: u32 },
    #[error("path {path} cannot be handed to QEMU (not UTF-8, or holds ',' or a newline)")]
    UnusablePath { path: PathBuf },
    #[error("QEMU firmware file {name} for machine {machine} is in none of {searched}")]
    FirmwareMissing {
        name: &'static str,
        machine: String,
        searched: String,
    },
    #[error("device id {id:?} is invalid: expected 1 to 64 of [A-Za-z0-9_-]")]
    InvalidDeviceId { id: String },
    #[error("{operation}: the VM was never created (call create first)")]
    NotCreated { operation: &'static str },
    #[error("create: a VM was already created for sandbox {id}")]
    AlreadyCreated { id: String },
    #[error("{operation}: the VM is {state:?}, expected {expected}")]
    WrongState {
        operation: &'static str,
        state: crate::VmState,
        expected: &'static str,
    },
    #[error("recording the VMM state before {step}: {source}")]
    Record {
        step: &'static str,
        source: std::io::Error,
    },
    #[error("preparing the jail: {0}")]
    JailPrepare(#[source] Box<vmjail_jail::JailError>),
    #[error("placing {what} {path} in the jail: {source}")]
    Place {
        what: &'static str,
        path: PathBuf,
        source: Box<vmjail_jail::JailError>,
    },
    #[error("creating {path} in the jail: {source}")]
    MakeDir {
        path: PathBuf,
        source: Box<vmjail_jail::JailError>,
    },
    #[error("placing QEMU's shared libraries in the jail: {0}")]
    Libraries(#[source] Box<vmjail_jail::JailError>),
    #[error("opening QEMU's error output file {path}: {source}")]
    OutputFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("launching QEMU in the jail: {source}{output}")]
    Launch {
        source: Box<vmjail_jail::JailError>,
        /// `; QEMU's output: ...`, or empty when it wrote nothing.
        output: String,
    },
    #[error("launching QEMU in the jail: {source}, likely out of memory in {pressure}; raise the memory limit in [jail] cgroups (QEMU needs its own memory on top of default_memory)")]
    LaunchOutOfMemory {
        source: Box<vmjail_jail::JailError>,
        pressure: vmjail_jail::oom::MemoryPressure,
    },
    #[error("QEMU (pid {pid}) was killed during {step}, likely out of memory in {pressure}; raise the memory limit in [jail] cgroups (QEMU needs its own memory on top of default_memory)")]
    OutOfMemory {
        pid: i32,
        step: &'static str,
        pressure: vmjail_jail::oom::MemoryPressure,
    },
    #[error("QEMU (pid {pid}) stalled during {step} at its memory limit, likely out of memory in {pressure}; raise the memory limit in [jail] cgroups (QEMU needs its own memory on top of default_memory)")]
    MemoryStalled {
        pid: i32,
        step: &'static str,
        pressure: vmjail_jail::oom::MemoryPressure,
    },
    #[error("QEMU (pid {pid}) exited during {step}; its last output: {output}")]
    Exited {
        pid: i32,
        step: &'static str,
        output: String,
    },
    #[error("connecting to QMP in the jail: {0}")]
    Connect(#[source] Box<vmjail_jail::JailError>),
    #[error("QMP handshake on {socket}: {source}")]
    Handshake { socket: PathBuf, source: QmpError },
    #[error("QMP {command} on {socket}: {source}")]
    Qmp {
        command: &'static str,
        socket: PathBuf,
        source: QmpError,
    },
    #[error("QEMU reports run state {status:?}, which vmjail does not know")]
    UnknownStatus { status: String },
    #[error("{operation}: QEMU still reports {status:?} after {waited:?}")]
    NotConfirmed {
        operation: &'static str,
        status: String,
        waited: Duration,
    },
    #[error("attach {id}: a drive with this id is already attached")]
    DriveAttached { id: String },
    #[error("detach {id}: no drive with this id is attached")]
    UnknownDrive { id: String },
    #[error("{operation} {id}: removing {path} from the jail: {source}")]
    Unplace {
        operation: &'static str,
        id: String,
        path: PathBuf,
        source: Box<vmjail_jail::JailError>,
    },
    #[error("stop: QEMU: {0}")]
    Terminate(#[from] crate::process::TerminateError),
    #[error("NIC {id:?} on {device:?}: expected an id of 1 to 32 [A-Za-z0-9-] and a device name of [A-Za-z0-9_.-]{{1,15}}")]
    InvalidNic { id: String, device: String },
    #[error("internetworking_model = \"macvtap\" needs a PCI machine with QEMU (machine_type = \"q35\" or \"pc\"): a macvtap's descriptor is plugged over QMP, and microvm's virtio-mmio has no hotplug")]
    MacvtapNeedsPci,
    #[error("NIC {id}: q35 has {ports} hotplug ports for NICs net0 to net<{ports}-1>; this one has none")]
    NoHotplugPort { id: String, ports: u32 },
    #[error("NIC {id}: {source}")]
    Nic {
        id: String,
        source: crate::net::Error,
    },
    #[error("NIC {id}: QMP {command}: {source}")]
    NicQmp {
        command: &'static str,
        id: String,
        source: QmpError,
    },
    #[error("stop: tearing the jail down: {0}")]
    Teardown(#[source] Box<vmjail_jail::JailError>),
}
