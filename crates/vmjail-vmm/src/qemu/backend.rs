//! [`Qemu`]: the [`Hypervisor`] for QEMU in vmjail's built-in jail.

use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::json;
use vmjail_config::{HypervisorConfig, HypervisorKind, RuntimeConfig};
use vmjail_jail::{host_path, Jail, JailRecord, Jailer, LaunchStdio, Placement, Recorder};

use super::cmdline::{self, Accel, Machine, Options};
use super::qmp::Qmp;
use super::{assets, layout, nics, output_tail, probe, vhost_vsock, virtiofsd, Error};
use crate::hypervisor::{
    BlockDevice, BootNetwork, Capabilities, GuestNic, Hypervisor, NetInterface, SharedDir, VmState,
    VmmRecord, VmmRecorder, VsockDevice,
};
use crate::process;
use crate::VmmError;

/// How long QEMU may take to open its QMP socket after launch.
const QMP_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on one QMP command (TCG on shared cores can be slow).
const QMP_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an exiting QEMU may take to disappear after closing QMP.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// QEMU's stderr inside the jail, for error messages.
const QEMU_OUTPUT: &str = "/run/qemu.out";

/// QEMU in vmjail's built-in jail.
pub struct Qemu {
    config: RuntimeConfig,
    jailer_exe: PathBuf,
    record: VmmRecord,
    created: bool,
    /// The NICs and their kernel parameters, given before `create`.
    network: BootNetwork,
    /// Drives given at `create` (see `Hypervisor::set_boot_drives`).
    boot_drives: Vec<BlockDevice>,
    /// The tree shared over virtio-fs (see `Hypervisor::set_shared_dir`).
    shared: Option<SharedDir>,
}

/// Forwards the jail's record into the VMM record and persists that.
struct Chain<'a> {
    record: &'a mut VmmRecord,
    outer: &'a mut dyn VmmRecorder,
}

impl Recorder for Chain<'_> {
    fn record(&mut self, jail: &JailRecord) -> std::io::Result<()> {
        self.record.jail = jail.clone();
        self.outer.record(self.record)
    }
}

fn valid_device_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// QEMU's run state → vmjail's.
fn vm_state(status: &str) -> Result<VmState, Error> {
    Ok(match status {
        "prelaunch" | "inmigrate" => VmState::Created,
        "running" => VmState::Running,
        "paused" | "suspended" | "debug" | "save-vm" | "restore-vm" | "finish-migrate"
        | "postmigrate" | "colo" | "watchdog" | "io-error" => VmState::Paused,
        "shutdown" | "guest-panicked" | "internal-error" => VmState::Stopped,
        other => {
            return Err(Error::UnknownStatus {
                status: other.to_owned(),
            })
        }
    })
}

impl Qemu {
    /// A backend for `config` (which must select QEMU); `jailer_exe` is the
    /// built-in jailer (`vmjail-jailer`) that confines QEMU.
    pub fn new(config: &RuntimeConfig, jailer_exe: &Path) -> Result<Self, Error> {
        match config.hypervisor_kind {
            HypervisorKind::Qemu => {}
            HypervisorKind::Acrn => return Err(Error::AcrnUnavailable),
            other => return Err(Error::WrongHypervisor(other)),
        }
        Machine::parse(&config.hypervisor.machine_type)?;
        // A guest left without the channel the config promised would be
        // worse than a clear refusal now.
        if config.hypervisor.use_vsock {
            vhost_vsock::find()?;
        }
        Ok(Qemu {
            config: config.clone(),
            jailer_exe: jailer_exe.to_path_buf(),
            record: VmmRecord {
                kind: HypervisorKind::Qemu,
                id: String::new(),
                netns: PathBuf::new(),
                jail: JailRecord::default(),
                api_socket: PathBuf::new(),
                taps: Vec::new(),
                drives: Vec::new(),
                helpers: Vec::new(),
                vsock: None,
            },
            created: false,
            network: BootNetwork::default(),
            boot_drives: Vec::new(),
            shared: None,
        })
    }

    /// Re-attach to a VM another process created, from its saved record.
    pub fn from_record(record: VmmRecord, config: &RuntimeConfig, jailer_exe: &Path) -> Self {
        Qemu {
            config: config.clone(),
            jailer_exe: jailer_exe.to_path_buf(),
            record,
            created: true,
            network: BootNetwork::default(),
            boot_drives: Vec::new(),
            shared: None,
        }
    }

    fn machine(&self) -> Result<Machine, Error> {
        Machine::parse(&self.config.hypervisor.machine_type)
    }

    /// The accelerator: `accel=` in `machine_accelerators` when given
    /// (KVM refused when unusable), else KVM when usable, else TCG.
    fn accelerator(hv: &HypervisorConfig, kvm_usable: bool) -> Result<Accel, Error> {
        let asked = hv
            .machine_accelerators
            .iter()
            .find_map(|a| a.strip_prefix("accel="));
        match asked {
            Some("tcg") => Ok(Accel::Tcg),
            Some("kvm") if kvm_usable => Ok(Accel::Kvm),
            Some("kvm") => Err(Error::AcceleratorUnavailable {
                asked: "kvm".into(),
                reason: "QEMU cannot run a vCPU under this host's /dev/kvm",
            }),
            Some(other) => Err(Error::AcceleratorUnavailable {
                asked: other.into(),
                reason: "vmjail knows only kvm and tcg",
            }),
            None if kvm_usable => Ok(Accel::Kvm),
            None => Ok(Accel::Tcg),
        }
    }

    /// How this host runs `hv`'s QEMU, stopped (`-S`): the accelerator,
    /// seccomp and the TSC hint.
    pub(super) fn options(hv: &HypervisorConfig) -> Result<Options, Error> {
        let found = probe::probe(&hv.path);
        Ok(Options {
            accel: Qemu::accelerator(hv, found.kvm)?,
            seccomp: found.seccomp,
            stopped: true,
            tsc_khz: cmdline::host_tsc_khz(),
        })
    }

    /// This sandbox's jail, re-opened from the record (devices and
    /// `vmm_args` only matter at launch).
    fn jail(&self) -> Jail {
        let spec = crate::jail_spec::jail_spec(
            &self.record.id,
            &self.config.hypervisor.path,
            &self.record.netns,
            &self.config.jail,
            Vec::new(),
            Vec::new(),
        );
        Jail::from_record(spec, self.jailer(), self.record.jail.clone())
    }

    fn jailer(&self) -> Jailer {
        Jailer::BuiltIn {
            jailer_exe: self.jailer_exe.clone(),
        }
    }

    /// Whether QEMU is gone now or within `grace`.
    fn gone_within(&self, grace: Duration) -> bool {
        process::wait_gone(&self.record.jail, grace)
    }

    fn alive(&self) -> bool {
        process::is_alive(&self.record.jail)
    }

    /// A negotiated QMP session with this VM's QEMU.
    fn qmp(&self, connect_timeout: Duration) -> Result<Qmp, Error> {
        let alive = || self.alive();
        let stream = vmjail_jail::connect_in_jail(
            &self.record.jail.root(),
            Path::new(layout::QMP_SOCKET),
            connect_timeout,
            &alive,
        )
        .map_err(|e| Error::Connect(Box::new(e)))?;
        Qmp::handshake(stream, QMP_COMMAND_TIMEOUT).map_err(|source| Error::Handshake {
            socket: self.record.api_socket.clone(),
            source,
        })
    }

    fn command(
        &self,
        qmp: &mut Qmp,
        command: &'static str,
        arguments: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, Error> {
        qmp.execute(command, arguments)
            .map_err(|source| Error::Qmp {
                command,
                socket: self.record.api_socket.clone(),
                source,
            })
    }

    fn status(&self, qmp: &mut Qmp) -> Result<String, Error> {
        qmp.query_status()
            .map(|s| s.status)
            .map_err(|source| Error::Qmp {
                command: "query-status",
                socket: self.record.api_socket.clone(),
                source,
            })
    }

    /// The last bytes QEMU wrote to its output (for error messages); `None`
    /// when it wrote nothing.
    fn output_tail(&self) -> Option<String> {
        output_tail::output_tail(&self.record.jail.root(), QEMU_OUTPUT)
    }

    /// A failure while QEMU may have died: say so, with its memory cgroup's
    /// account when that shows the limit was hit (the OOM killer's SIGKILL
    /// leaves QEMU no word of its own), else with its output. A QEMU still
    /// alive but stuck at its memory limit (reclaiming its own pages rather
    /// than being killed) is named as such.
    fn explain(&self, step: &'static str, error: Error) -> Error {
        let pressure = || vmjail_jail::oom::memory_pressure(&self.record.jail.cgroups);
        match self.record.jail.vmm_process() {
            Some((pid, _)) if self.alive() => match pressure() {
                Some(pressure) => Error::MemoryStalled {
                    pid,
                    step,
                    pressure,
                },
                None => error,
            },
            Some((pid, _)) => match pressure() {
                Some(pressure) => Error::OutOfMemory {
                    pid,
                    step,
                    pressure,
                },
                None => Error::Exited {
                    pid,
                    step,
                    output: self.output_tail().unwrap_or_else(|| "(none)".into()),
                },
            },
            _ => error,
        }
    }

    /// Everything `create` does once the jail directory exists.
    fn launch(
        &mut self,
        jail: &mut Jail,
        recorder: &mut dyn VmmRecorder,
        console: OwnedFd,
        machine: Machine,
        accel: Accel,
    ) -> Result<(), Error> {
        let placing = tracing::debug_span!("place_assets").entered();
        // Launched first, so that its start-up overlaps the placing below;
        // waited for before QEMU, which connects to it at its start.
        let vsock_helper = match self.config.hypervisor.use_vsock {
            true => {
                let _step = tracing::debug_span!("vsock_helper_launch").entered();
                Some(vhost_vsock::launch(
                    &mut self.record,
                    recorder,
                    &self.config,
                    &self.jailer_exe,
                )?)
            }
            false => None,
        };
        let mut chain = Chain {
            record: &mut self.record,
            outer: recorder,
        };
        assets::place_all(jail, &mut chain, &self.config.hypervisor, machine, accel)?;
        for drive in &self.boot_drives {
            let in_jail = Path::new(layout::DRIVES_DIR).join(&drive.id);
            chain
                .record
                .drives
                .push((drive.id.clone(), in_jail.clone()));
            let how = if drive.read_only {
                Placement::ReadOnlyBind
            } else {
                Placement::ReadWriteBind
            };
            jail.place(&mut chain, &drive.host_path, &in_jail, how)
                .map_err(|source| Error::Place {
                    what: "drive",
                    path: drive.host_path.clone(),
                    source: Box::new(source),
                })?;
        }
        jail.make_dir(Path::new(layout::RUN_DIR))
            .map_err(|source| Error::MakeDir {
                path: layout::RUN_DIR.into(),
                source: Box::new(source),
            })?;
        let output_path =
            jail.make_file(Path::new(QEMU_OUTPUT))
                .map_err(|source| Error::MakeDir {
                    path: QEMU_OUTPUT.into(),
                    source: Box::new(source),
                })?;
        // Created by us a moment ago and QEMU is not running yet, so the
        // path cannot have been swapped; O_NOFOLLOW all the same.
        let output = std::fs::OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&output_path)
            .map_err(|source| Error::OutputFile {
                path: output_path.clone(),
                source,
            })?;
        jail.place_shared_libraries(&mut chain)
            .map_err(|e| Error::Libraries(Box::new(e)))?;
        if let Some(helper) = vsock_helper {
            let _step = tracing::debug_span!("vsock_helper_ready").entered();
            vhost_vsock::wait_ready(&helper)?;
            let mut chain = Chain {
                record: &mut self.record,
                outer: recorder,
            };
            vhost_vsock::bind_into(jail, helper.record(), &mut chain)?;
            self.record.jail = jail.record().clone();
            self.record.vsock = Some(vhost_vsock::vsock_record());
            recorder_after(recorder, &self.record, "binding the vsock helper's sockets")?;
        }
        if let Some(shared) = &self.shared {
            let _step = tracing::debug_span!("virtiofsd").entered();
            let helper = virtiofsd::launch(
                &mut self.record,
                recorder,
                &self.config,
                &self.jailer_exe,
                shared,
            )?;
            let mut chain = Chain {
                record: &mut self.record,
                outer: recorder,
            };
            virtiofsd::bind_into(jail, helper.record(), &mut chain)?;
            self.record.jail = jail.record().clone();
            recorder_after(recorder, &self.record, "binding virtiofsd's socket")?;
        }
        drop(placing);
        let launching = tracing::debug_span!("launch").entered();
        let mut chain = Chain {
            record: &mut self.record,
            outer: recorder,
        };
        jail.launch_with(
            &mut chain,
            LaunchStdio {
                stdin: vmjail_jail::ChildIo::Null,
                stdout: console.into(),
                stderr: output.into(),
            },
        )
        .map_err(|e| {
            // The jailer joins QEMU's cgroups before it execs QEMU: a limit
            // too small even for that ends it by the OOM killer, silently.
            match vmjail_jail::oom::memory_pressure(&jail.record().cgroups) {
                Some(pressure) => Error::LaunchOutOfMemory {
                    source: Box::new(e),
                    pressure,
                },
                None => Error::Launch {
                    source: Box::new(e),
                    output: self
                        .output_tail()
                        .map(|tail| format!("; QEMU's output: {tail}"))
                        .unwrap_or_default(),
                },
            }
        })?;
        self.record.jail = jail.record().clone();
        recorder_after(recorder, &self.record, "connecting to QMP")?;
        drop(launching);

        let _ready = tracing::debug_span!("qmp_ready").entered();
        let mut qmp = self
            .qmp(QMP_READY_TIMEOUT)
            .map_err(|e| self.explain("the QMP handshake", e))?;
        if nics::has_macvtap(&self.network.nics) {
            let _step = tracing::debug_span!("macvtap_fds").entered();
            nics::plug_macvtaps(&mut qmp, machine, &self.network.nics, &self.record.netns)
                .map_err(|e| self.explain("handing over the macvtap devices", e))?;
        }
        let status = self
            .status(&mut qmp)
            .map_err(|e| self.explain("query-status", e))?;
        match vm_state(&status)? {
            VmState::Created => Ok(()),
            state => Err(Error::WrongState {
                operation: "create",
                state,
                expected: "created (QEMU's prelaunch)",
            }),
        }
    }

    /// Undo a failed `create` as far as possible; the record (already
    /// persisted) lets `stop`/gc finish the job if this fails.
    fn abandon(&mut self, timeout: Duration) {
        let _ = process::signal(&self.record.jail, Signal::SIGKILL);
        process::wait_gone(&self.record.jail, timeout);
        let _ = vmjail_jail::teardown(&self.record.jail, timeout);
        let _ = vhost_vsock::teardown_all(&self.record, timeout);
    }

    /// Wait (bounded) until QEMU reports `wanted`.
    fn confirm(
        &self,
        qmp: &mut Qmp,
        operation: &'static str,
        wanted: VmState,
        timeout: Duration,
    ) -> Result<(), Error> {
        let start = Instant::now();
        loop {
            let status = self.status(qmp)?;
            if vm_state(&status)? == wanted {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                return Err(Error::NotConfirmed {
                    operation,
                    status,
                    waited: start.elapsed(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn require_created(&self, operation: &'static str) -> Result<(), Error> {
        if self.created {
            Ok(())
        } else {
            Err(Error::NotCreated { operation })
        }
    }

    /// The state, requiring `expected`, with a live session for the next step.
    fn session_in(
        &self,
        operation: &'static str,
        expected: VmState,
        expected_text: &'static str,
    ) -> Result<Qmp, Error> {
        self.require_created(operation)?;
        if !self.alive() {
            return Err(Error::WrongState {
                operation,
                state: VmState::Stopped,
                expected: expected_text,
            });
        }
        let mut qmp = self.qmp(QMP_COMMAND_TIMEOUT)?;
        let state = vm_state(&self.status(&mut qmp)?)?;
        if state != expected {
            return Err(Error::WrongState {
                operation,
                state,
                expected: expected_text,
            });
        }
        Ok(qmp)
    }

    /// Graceful, then forced shutdown of a live QEMU.
    fn shut_down(&self, timeout: Duration) -> Result<(), Error> {
        let vmm = &self.record.jail;
        let graceful = Duration::min(timeout, QMP_COMMAND_TIMEOUT);
        if let Ok(mut qmp) = self.qmp(graceful) {
            // Only a running guest can react to the power button.
            if self.status(&mut qmp).ok().as_deref() == Some("running") {
                let _step = tracing::debug_span!("powerdown").entered();
                if qmp.execute("system_powerdown", None).is_ok() && process::wait_gone(vmm, timeout)
                {
                    return Ok(());
                }
            }
            let _step = tracing::debug_span!("quit").entered();
            // `quit` closes the connection as QEMU exits; either is fine.
            let _ = qmp.execute("quit", None);
            if process::wait_gone(vmm, timeout) {
                return Ok(());
            }
        }
        let _step = tracing::debug_span!("terminate").entered();
        Ok(process::terminate(vmm, timeout)?)
    }
}

/// Persist the record after `step` changed it.
fn recorder_after(
    recorder: &mut dyn VmmRecorder,
    record: &VmmRecord,
    step: &'static str,
) -> Result<(), Error> {
    recorder
        .record(record)
        .map_err(|source| Error::Record { step, source })
}

impl Hypervisor for Qemu {
    fn kind(&self) -> HypervisorKind {
        HypervisorKind::Qemu
    }

    fn capabilities(&self) -> Capabilities {
        let pci = matches!(self.machine(), Ok(Machine::Pc(_)));
        Capabilities {
            // virtio-mmio (microvm) has no hotplug; PCI machines do.
            block_hotplug: pci,
            network_hotplug: pci,
            vsock: self.config.hypervisor.use_vsock,
            pause: true,
        }
    }

    fn create(
        &mut self,
        id: &str,
        netns: &Path,
        console: OwnedFd,
        recorder: &mut dyn VmmRecorder,
    ) -> Result<(), VmmError> {
        if self.created {
            return Err(Error::AlreadyCreated { id: id.to_owned() }.into());
        }
        let _create = tracing::debug_span!("qemu_create").entered();
        vmjail_jail::validate_id(id).map_err(|e| Error::InvalidId(Box::new(e)))?;
        let machine = self.machine()?;
        let hv = &self.config.hypervisor;
        let options = Qemu::options(hv)?;
        if !options.seccomp {
            tracing::warn!(
                qemu = %hv.path.display(),
                "QEMU has no working -sandbox (seccomp): running it without its syscall filter"
            );
        }
        let accel = options.accel;
        // The guest learns its network from vmjail's kernel parameters.
        let mut with_net = hv.clone();
        with_net
            .kernel_params
            .extend(self.network.kernel_params.iter().cloned());
        with_net.kernel_params = crate::with_agent_param(&with_net.kernel_params, hv.use_vsock);
        let mut paths = assets::jail_paths(hv);
        if hv.use_vsock {
            paths.vhost_vsock_socket = Some(vhost_vsock::vhost_socket_in_qemu_jail());
        }
        if self.shared.is_some() {
            paths.virtiofs_socket = Some(virtiofsd::socket_in_qemu_jail());
        }
        let mut args = cmdline::build(&with_net, &paths, &options)?;
        args.extend(nics::args(machine, &self.network.nics)?);
        for drive in &self.boot_drives {
            let in_jail = Path::new(layout::DRIVES_DIR).join(&drive.id);
            args.extend(
                cmdline::boot_drive_args(machine, &drive.id, &in_jail, drive.read_only)?
                    .into_iter()
                    .map(std::ffi::OsString::from),
            );
        }
        let mut devices = match accel {
            Accel::Kvm => vec![PathBuf::from("/dev/kvm")],
            Accel::Tcg => Vec::new(),
        };
        // Taps are attached through /dev/net/tun: for the boot NICs, and on
        // a PCI machine for any tap hot-plugged later. Without
        // CAP_NET_ADMIN QEMU can only attach taps its uid owns.
        if nics::needs_tun(&self.network.nics) || matches!(machine, Machine::Pc(_)) {
            devices.push(PathBuf::from("/dev/net/tun"));
        }
        self.record.id = id.to_owned();
        self.record.netns = netns.to_path_buf();
        let spec =
            crate::jail_spec::jail_spec(id, &hv.path, netns, &self.config.jail, devices, args);
        recorder
            .record(&self.record)
            .map_err(|source| Error::Record {
                step: "preparing the jail",
                source,
            })?;
        let jailer = self.jailer();
        let mut jail = {
            let _step = tracing::debug_span!("prepare_jail").entered();
            let mut chain = Chain {
                record: &mut self.record,
                outer: &mut *recorder,
            };
            Jail::prepare(spec, jailer, &mut chain).map_err(|e| Error::JailPrepare(Box::new(e)))?
        };
        self.record.jail = jail.record().clone();
        let root = jail.root();
        self.record.api_socket = host_path(&root, Path::new(layout::QMP_SOCKET));
        self.created = true;
        if let Err(e) = self.launch(&mut jail, recorder, console, machine, accel) {
            self.record.jail = jail.record().clone();
            self.abandon(QMP_COMMAND_TIMEOUT);
            self.created = false;
            return Err(e.into());
        }
        Ok(())
    }

    fn start(&mut self, timeout: Duration) -> Result<(), VmmError> {
        let _step = tracing::debug_span!("qemu_start").entered();
        let mut qmp = self.session_in("start", VmState::Created, "created")?;
        self.command(&mut qmp, "cont", None)
            .map_err(|e| self.explain("cont", e))?;
        match self.confirm(&mut qmp, "start", VmState::Running, timeout) {
            Ok(()) => Ok(()),
            // The guest ran and already powered off: it did start.
            Err(_) if self.gone_within(EXIT_GRACE) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn state(&mut self) -> Result<VmState, VmmError> {
        self.require_created("state")?;
        if !self.alive() {
            return Ok(VmState::Stopped);
        }
        let result = self
            .qmp(QMP_COMMAND_TIMEOUT)
            .and_then(|mut qmp| self.status(&mut qmp))
            .and_then(|status| vm_state(&status));
        match result {
            Ok(state) => Ok(state),
            // QEMU closing the socket as it exits: give it a moment to go.
            Err(_) if self.gone_within(EXIT_GRACE) => Ok(VmState::Stopped),
            Err(e) => Err(e.into()),
        }
    }

    fn pause(&mut self) -> Result<(), VmmError> {
        let _step = tracing::debug_span!("qemu_pause").entered();
        let mut qmp = self.session_in("pause", VmState::Running, "running")?;
        self.command(&mut qmp, "stop", None)?;
        self.confirm(&mut qmp, "pause", VmState::Paused, QMP_COMMAND_TIMEOUT)?;
        Ok(())
    }

    fn resume(&mut self) -> Result<(), VmmError> {
        let _step = tracing::debug_span!("qemu_resume").entered();
        let mut qmp = self.session_in("resume", VmState::Paused, "paused")?;
        self.command(&mut qmp, "cont", None)?;
        self.confirm(&mut qmp, "resume", VmState::Running, QMP_COMMAND_TIMEOUT)?;
        Ok(())
    }

    fn stop(&mut self, timeout: Duration) -> Result<(), VmmError> {
        if !self.created {
            return Ok(());
        }
        let _stop = tracing::debug_span!("qemu_stop").entered();
        if self.alive() {
            self.shut_down(timeout)?;
        }
        let _step = tracing::debug_span!("teardown").entered();
        vmjail_jail::teardown(&self.record.jail, timeout)
            .map_err(|e| Error::Teardown(Box::new(e)))?;
        // After QEMU's jail: its bind of the helper's sockets is gone.
        vhost_vsock::teardown_all(&self.record, timeout)?;
        Ok(())
    }

    fn attach_block(
        &mut self,
        device: &BlockDevice,
        recorder: &mut dyn VmmRecorder,
    ) -> Result<(), VmmError> {
        let machine = self.machine()?;
        if machine == Machine::Microvm {
            return Err(VmmError::Unsupported {
                kind: HypervisorKind::Qemu,
                operation: "attach_block on microvm (virtio-mmio has no hotplug; use q35 or pc)",
            });
        }
        if !valid_device_id(&device.id) {
            return Err(Error::InvalidDeviceId {
                id: device.id.clone(),
            }
            .into());
        }
        if self.record.drives.iter().any(|(id, _)| id == &device.id) {
            return Err(Error::DriveAttached {
                id: device.id.clone(),
            }
            .into());
        }
        let mut qmp = self.session_any("attach_block")?;
        let in_jail = Path::new(layout::DRIVES_DIR).join(&device.id);
        let how = if device.read_only {
            Placement::ReadOnlyBind
        } else {
            Placement::ReadWriteBind
        };
        let mut jail = self.jail();
        {
            let mut chain = Chain {
                record: &mut self.record,
                outer: &mut *recorder,
            };
            jail.place(&mut chain, &device.host_path, &in_jail, how)
                .map_err(|source| Error::Place {
                    what: "drive",
                    path: device.host_path.clone(),
                    source: Box::new(source),
                })?;
        }
        self.record.jail = jail.record().clone();
        self.record
            .drives
            .push((device.id.clone(), in_jail.clone()));
        let node = format!("drive-{}", device.id);
        let added = self
            .command(
                &mut qmp,
                "blockdev-add",
                Some(json!({
                    "driver": "raw",
                    "node-name": node,
                    "read-only": device.read_only,
                    "file": {"driver": "file", "filename": in_jail, "read-only": device.read_only},
                })),
            )
            .and_then(|_| {
                self.command(
                    &mut qmp,
                    "device_add",
                    Some(json!({
                        "driver": format!("virtio-blk-{}", machine.virtio_suffix()),
                        "id": device.id,
                        "drive": node,
                    })),
                )
                .inspect_err(|_| {
                    let _ = qmp.execute("blockdev-del", Some(json!({"node-name": node})));
                })
            });
        if let Err(e) = added {
            self.forget_drive(&mut jail, &device.id, &in_jail, "attach", recorder)?;
            return Err(e.into());
        }
        recorder_after(recorder, &self.record, "attaching a drive")?;
        Ok(())
    }

    fn detach_block(&mut self, id: &str, recorder: &mut dyn VmmRecorder) -> Result<(), VmmError> {
        let Some((_, in_jail)) = self.record.drives.iter().find(|(d, _)| d == id).cloned() else {
            return Err(Error::UnknownDrive { id: id.to_owned() }.into());
        };
        let mut qmp = self.session_any("detach_block")?;
        self.command(&mut qmp, "device_del", Some(json!({ "id": id })))?;
        // The guest acknowledges the unplug; a guest that never does leaves
        // the device in place and the error says so.
        qmp.wait_event("DEVICE_DELETED", QMP_COMMAND_TIMEOUT)
            .map_err(|source| Error::Qmp {
                command: "device_del (waiting for DEVICE_DELETED)",
                socket: self.record.api_socket.clone(),
                source,
            })?;
        self.command(
            &mut qmp,
            "blockdev-del",
            Some(json!({ "node-name": format!("drive-{id}") })),
        )?;
        let mut jail = self.jail();
        self.forget_drive(&mut jail, id, &in_jail, "detach", recorder)?;
        Ok(())
    }

    fn add_network_interface(
        &mut self,
        _iface: &NetInterface,
        _recorder: &mut dyn VmmRecorder,
    ) -> Result<(), VmmError> {
        Err(VmmError::Unsupported {
            kind: HypervisorKind::Qemu,
            operation: "add_network_interface (vmjail's QEMU backend wires no network yet)",
        })
    }

    fn set_boot_network(&mut self, network: BootNetwork) -> Result<(), VmmError> {
        if self.created {
            return Err(Error::AlreadyCreated {
                id: self.record.id.clone(),
            }
            .into());
        }
        self.network = network;
        Ok(())
    }

    fn set_shared_dir(&mut self, shared: SharedDir) -> Result<(), VmmError> {
        if self.created {
            return Err(Error::AlreadyCreated {
                id: self.record.id.clone(),
            }
            .into());
        }
        if self.config.hypervisor.shared_fs != vmjail_config::SharedFs::VirtioFs {
            return Err(Error::SharedFsNotConfigured.into());
        }
        virtiofsd::check(&self.config)?;
        self.shared = Some(shared);
        Ok(())
    }

    fn add_shared(
        &mut self,
        shared: &SharedDir,
        recorder: &mut dyn VmmRecorder,
    ) -> Result<(), VmmError> {
        self.require_created("add_shared")?;
        virtiofsd::add_entries(
            &mut self.record,
            recorder,
            &self.config,
            &self.jailer_exe,
            shared,
        )?;
        Ok(())
    }

    fn remove_shared(
        &mut self,
        dir: &Path,
        recorder: &mut dyn VmmRecorder,
    ) -> Result<(), VmmError> {
        self.require_created("remove_shared")?;
        virtiofsd::remove_dir(
            &mut self.record,
            recorder,
            &self.config,
            &self.jailer_exe,
            dir,
        )?;
        Ok(())
    }

    fn set_boot_drives(&mut self, drives: Vec<BlockDevice>) -> Result<(), VmmError> {
        if self.created {
            return Err(Error::AlreadyCreated {
                id: self.record.id.clone(),
            }
            .into());
        }
        for (i, drive) in drives.iter().enumerate() {
            if !valid_device_id(&drive.id)
                || drive.id.len() > crate::hypervisor::MAX_BOOT_DRIVE_ID
                || drives[..i].iter().any(|d| d.id == drive.id)
            {
                return Err(Error::InvalidDeviceId {
                    id: drive.id.clone(),
                }
                .into());
            }
        }
        self.boot_drives = drives;
        Ok(())
    }

    fn hot_plug_nic(&mut self, nic: &GuestNic) -> Result<(), VmmError> {
        let machine = self.machine()?;
        if machine == Machine::Microvm {
            return Err(VmmError::Unsupported {
                kind: HypervisorKind::Qemu,
                operation: "hot_plug_nic on microvm (virtio-mmio has no hotplug; use q35 or pc)",
            });
        }
        let _step = tracing::debug_span!("qemu_hot_plug_nic").entered();
        let mut qmp = self.session_any("hot_plug_nic")?;
        nics::hot_plug(&mut qmp, machine, nic, &self.record.netns)?;
        Ok(())
    }

    fn add_vsock(
        &mut self,
        _vsock: &VsockDevice,
        _recorder: &mut dyn VmmRecorder,
    ) -> Result<(), VmmError> {
        Err(VmmError::Unsupported {
            kind: HypervisorKind::Qemu,
            operation: "add_vsock (QEMU's vsock is set up at create by use_vsock = true)",
        })
    }

    fn pid(&self) -> Option<i32> {
        self.record.jail.vmm_pid
    }

    fn record(&self) -> &VmmRecord {
        &self.record
    }
}

impl Qemu {
    /// A session with a live QEMU in any state.
    fn session_any(&self, operation: &'static str) -> Result<Qmp, Error> {
        self.require_created(operation)?;
        if !self.alive() {
            return Err(Error::WrongState {
                operation,
                state: VmState::Stopped,
                expected: "created, running or paused",
            });
        }
        self.qmp(QMP_COMMAND_TIMEOUT)
    }

    fn forget_drive(
        &mut self,
        jail: &mut Jail,
        id: &str,
        in_jail: &Path,
        operation: &'static str,
        recorder: &mut dyn VmmRecorder,
    ) -> Result<(), Error> {
        {
            let mut chain = Chain {
                record: &mut self.record,
                outer: &mut *recorder,
            };
            jail.unplace(&mut chain, in_jail)
                .map_err(|source| Error::Unplace {
                    operation,
                    id: id.to_owned(),
                    path: in_jail.to_path_buf(),
                    source: Box::new(source),
                })?;
        }
        self.record.jail = jail.record().clone();
        self.record.drives.retain(|(d, _)| d != id);
        recorder_after(recorder, &self.record, operation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_run_states_map_to_vm_states() {
        assert_eq!(vm_state("prelaunch").unwrap(), VmState::Created);
        assert_eq!(vm_state("running").unwrap(), VmState::Running);
        assert_eq!(vm_state("paused").unwrap(), VmState::Paused);
        assert_eq!(vm_state("shutdown").unwrap(), VmState::Stopped);
        assert!(matches!(
            vm_state("no-such-state"),
            Err(Error::UnknownStatus { .. })
        ));
    }

    #[test]
    fn device_ids_are_checked() {
        assert!(valid_device_id("drive_1"));
        assert!(!valid_device_id("a/b"));
    }
}
