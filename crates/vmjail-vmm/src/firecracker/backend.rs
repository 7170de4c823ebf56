//! [`Firecracker`]: the [`Hypervisor`] implementation.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vmjail_config::{HypervisorConfig, HypervisorKind, JailConfig, RuntimeConfig};
use vmjail_jail::{host_path, Jail, JailRecord, Jailer, LaunchStdio, Placement};

use super::api::{self, InstanceState};
use super::client::ApiClient;
use super::configure::{call, configure, BootPlan};
use super::fifo::LogPump;
use super::{drives, layout, Error};
use crate::hypervisor::{
    BlockDevice, BootNetwork, Capabilities, GuestNic, Hypervisor, NetInterface, VmState, VmmRecord,
    VmmRecorder, VsockDevice, VsockRecord,
};
use crate::process;
use crate::VmmError;

/// Default bound for one API call.
const API_TIMEOUT: Duration = Duration::from_secs(5);
/// Default bound for Firecracker's API socket to appear after launch.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the last `create` took to reach each milestone, from its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateTimings {
    /// The jail is made, Firecracker launched and its API answering.
    pub api_answering: Duration,
    /// Every configuration request accepted.
    pub configured: Duration,
}

/// A jailed Firecracker for one sandbox.
pub struct Firecracker {
    hypervisor: HypervisorConfig,
    jail_config: JailConfig,
    jailer_exe: PathBuf,
    placeholder_drives: usize,
    api_timeout: Duration,
    socket_timeout: Duration,
    use_vsock: bool,
    record: VmmRecord,
    jail: Option<Jail>,
    client: Option<ApiClient>,
    logs: LogPump,
    timings: Option<CreateTimings>,
    /// NICs (made by the network layer) the guest boots with.
    boot_nics: Vec<GuestNic>,
    /// Drives given at `create` (see `Hypervisor::set_boot_drives`).
    boot_drives: Vec<BlockDevice>,
}

fn empty_record() -> VmmRecord {
    VmmRecord {
        kind: HypervisorKind::Firecracker,
        id: String::new(),
        netns: PathBuf::new(),
        jail: JailRecord::default(),
        api_socket: PathBuf::new(),
        taps: Vec::new(),
        drives: Vec::new(),
        helpers: Vec::new(),
        vsock: None,
    }
}

impl Firecracker {
    pub fn new(config: &RuntimeConfig, jailer_exe: &Path) -> Result<Self, Error> {
        if config.hypervisor_kind != HypervisorKind::Firecracker {
            return Err(Error::WrongHypervisor(config.hypervisor_kind));
        }
        if config.hypervisor.initrd.is_none() && config.hypervisor.image.is_none() {
            return Err(Error::NoRootSource);
        }
        Ok(Self::with_record(empty_record(), config, jailer_exe))
    }

    /// Reattach from a record saved by another process (to stop, pause,
    /// query or delete it).
    pub fn from_record(record: VmmRecord, config: &RuntimeConfig, jailer_exe: &Path) -> Self {
        let mut this = Self::with_record(record, config, jailer_exe);
        if !this.record.jail.jail_dir.as_os_str().is_empty() {
            let spec = this.spec(&this.record.id, &this.record.netns);
            this.jail = Some(Jail::from_record(
                spec,
                this.jailer(),
                this.record.jail.clone(),
            ));
        }
        this
    }

    fn with_record(record: VmmRecord, config: &RuntimeConfig, jailer_exe: &Path) -> Self {
        Self {
            hypervisor: config.hypervisor.clone(),
            jail_config: config.jail.clone(),
            jailer_exe: jailer_exe.to_path_buf(),
            placeholder_drives: layout::DEFAULT_PLACEHOLDER_DRIVES,
            api_timeout: API_TIMEOUT,
            socket_timeout: SOCKET_TIMEOUT,
            use_vsock: config.hypervisor.use_vsock,
            record,
            jail: None,
            client: None,
            logs: LogPump::default(),
            timings: None,
            boot_nics: Vec::new(),
            boot_drives: Vec::new(),
        }
    }

    /// How many empty drives `create` registers for later attaches.
    pub fn with_placeholder_drives(mut self, count: usize) -> Self {
        self.placeholder_drives = count;
        self
    }

    /// Bounds for one API call and for the API socket to appear.
    pub fn with_timeouts(mut self, api_call: Duration, api_socket: Duration) -> Self {
        self.api_timeout = api_call;
        self.socket_timeout = api_socket;
        self
    }

    /// Milestones of the last successful `create` (for benchmarks and logs).
    pub fn create_timings(&self) -> Option<CreateTimings> {
        self.timings
    }

    /// Ask Firecracker to write its metrics now (it does so once a minute
    /// otherwise); they arrive through the metrics FIFO in vmjail's log.
    pub fn flush_metrics(&mut self) -> Result<(), VmmError> {
        self.require_created("flush_metrics")?;
        Ok(self.call(&api::put_action(api::ActionType::FlushMetrics))?)
    }

    fn jailer(&self) -> Jailer {
        match &self.hypervisor.jailer_path {
            Some(jailer_path) => Jailer::Firecracker {
                jailer_path: jailer_path.clone(),
            },
            None => Jailer::BuiltIn {
                jailer_exe: self.jailer_exe.clone(),
            },
        }
    }

    fn spec(&self, id: &str, netns: &Path) -> vmjail_jail::JailSpec {
        let mut spec = crate::jail_spec::jail_spec(
            id,
            &self.hypervisor.path,
            netns,
            &self.jail_config,
            vec![PathBuf::from("/dev/kvm"), PathBuf::from("/dev/net/tun")],
            vec![
                OsString::from("--api-sock"),
                OsString::from(layout::API_SOCKET),
            ],
        );
        // The jail checks that its host path fits a socket address.
        spec.api_socket_in_jail = Some(PathBuf::from(layout::API_SOCKET));
        spec
    }

    /// The boot configuration sent after launch.
    pub fn boot_plan(&self) -> BootPlan {
        let (initrd_path, root_drive) = match (&self.hypervisor.initrd, &self.hypervisor.image) {
            (Some(_), _) => (Some(layout::INITRD.to_owned()), None),
            (None, _) => (
                None,
                Some(api::Drive {
                    drive_id: layout::ROOT_DRIVE_ID.into(),
                    path_on_host: layout::ROOTFS.into(),
                    is_root_device: true,
                    is_read_only: true,
                }),
            ),
        };
        BootPlan {
            machine: api::MachineConfiguration {
                vcpu_count: self.hypervisor.default_vcpus,
                mem_size_mib: self.hypervisor.default_memory,
                smt: false,
            },
            boot_source: api::BootSource {
                kernel_image_path: layout::KERNEL.into(),
                initrd_path,
                boot_args: layout::boot_args(&crate::with_agent_param(
                    &self.hypervisor.kernel_params,
                    self.use_vsock,
                )),
            },
            logger: api::Logger {
                log_path: layout::LOG_FIFO.into(),
                level: Some(if self.hypervisor.enable_debug {
                    api::LogLevel::Debug
                } else {
                    api::LogLevel::Warning
                }),
                show_level: Some(true),
                show_log_origin: Some(self.hypervisor.enable_debug),
            },
            metrics: api::Metrics {
                metrics_path: layout::METRICS_FIFO.into(),
            },
            root_drive,
            boot_drives: self
                .boot_drives
                .iter()
                .map(|d| api::Drive {
                    drive_id: d.id.clone(),
                    path_on_host: layout::boot_drive_path(&d.id),
                    is_root_device: false,
                    is_read_only: d.read_only,
                })
                .collect(),
            placeholders: (0..self.placeholder_drives)
                .map(drives::placeholder)
                .collect(),
            vsock: self.use_vsock.then(|| api::Vsock {
                guest_cid: crate::GUEST_CID,
                uds_path: layout::VSOCK_SOCKET.into(),
            }),
        }
    }

    fn client(&mut self) -> Result<&ApiClient, Error> {
        if self.client.is_none() {
            let client =
                ApiClient::in_jail(&self.record.jail.root(), Path::new(layout::API_SOCKET))
                    .map_err(Error::Runtime)?;
            self.client = Some(client);
        }
        self.client
            .as_ref()
            .ok_or(Error::NotCreated { operation: "api" })
    }

    fn call(&mut self, request: &api::ApiRequest) -> Result<(), Error> {
        let timeout = self.api_timeout;
        call(self.client()?, request, timeout).map(drop)
    }

    fn instance_info(&mut self, timeout: Duration) -> Result<api::InstanceInfo, Error> {
        let response = call(self.client()?, &api::get_instance_info(), timeout)?;
        serde_json::from_slice(&response.body).map_err(Error::BadInstanceInfo)
    }

    fn require_created(&self, operation: &'static str) -> Result<(), Error> {
        if self.record.jail.vmm_pid.is_none() {
            return Err(Error::NotCreated { operation });
        }
        Ok(())
    }

    /// Whether the guest was started (Firecracker refuses pre-boot-only
    /// requests after that, and post-boot-only ones before).
    fn booted(&mut self) -> Result<bool, Error> {
        let timeout = self.api_timeout;
        Ok(self.instance_info(timeout)?.state != InstanceState::NotStarted)
    }

    fn vmm_alive(&self) -> bool {
        process::is_alive(&self.record.jail)
    }

    fn create_inner(
        &mut self,
        id: &str,
        netns: &Path,
        console: OwnedFd,
        recorder: &mut dyn VmmRecorder,
    ) -> Result<(), Error> {
        let started = Instant::now();
        vmjail_jail::validate_id(id).map_err(Error::InvalidId)?;
        let spec = self.spec(id, netns);
        let jailer = self.jailer();
        self.record.id = id.to_owned();
        self.record.netns = netns.to_path_buf();

        let Self { record, jail, .. } = self;
        let mut jail_recorder = |jail_record: &JailRecord| {
            record.jail = jail_record.clone();
            recorder.record(record)
        };
        let prepared = {
            let _step = tracing::debug_span!("prepare_jail").entered();
            Jail::prepare(spec, jailer, &mut jail_recorder).map_err(Error::JailPrepare)?
        };
        *jail = Some(prepared);
        let root = self.record.jail.root();

        let api_socket = host_path(&root, Path::new(layout::API_SOCKET));
        self.record.api_socket = api_socket;
        // Firecracker makes the hybrid-vsock socket in the jail, which
        // teardown removes with it: recorded for the host side to find.
        self.record.vsock = self.use_vsock.then(|| VsockRecord {
            guest_cid: crate::GUEST_CID,
            uds_path: layout::VSOCK_SOCKET.into(),
        });
        self.save(recorder, "placing assets")?;
        {
            let _step = tracing::debug_span!("place_assets").entered();
            self.populate_jail(recorder)?;
        }
        self.launch(recorder, console)?;
        let api_answering = started.elapsed();
        let timeout = self.api_timeout;
        let plan = self.boot_plan();
        let _step = tracing::debug_span!("configure").entered();
        configure(self.client()?, &plan, timeout)?;
        for nic in self.boot_nics.clone() {
            self.put_nic(&nic)?;
        }
        self.timings = Some(CreateTimings {
            api_answering,
            configured: started.elapsed(),
        });
        tracing::debug!(id, ?api_answering, configured = ?started.elapsed(), "firecracker created");
        Ok(())
    }

    /// Place the boot assets, make the directories and FIFOs Firecracker
    /// writes to, and the placeholder drives.
    fn populate_jail(&mut self, recorder: &mut dyn VmmRecorder) -> Result<(), Error> {
        let Self {
            record,
            jail,
            hypervisor,
            placeholder_drives,
            logs,
            boot_drives,
            ..
        } = self;
        let jail = jail.as_mut().ok_or(Error::NotCreated {
            operation: "create",
        })?;
        let id = record.id.clone();
        // Recorded now, saved with the first placement below: before any
        // drive is placed.
        for drive in boot_drives.iter() {
            if !record.drives.iter().any(|(d, _)| *d == drive.id) {
                let in_jail = PathBuf::from(layout::boot_drive_path(&drive.id));
                record.drives.push((drive.id.clone(), in_jail));
            }
        }
        let mut jail_recorder = |jail_record: &JailRecord| {
            record.jail = jail_record.clone();
            recorder.record(record)
        };
        let mut assets = vec![("kernel", hypervisor.kernel.clone(), layout::KERNEL)];
        match (&hypervisor.initrd, &hypervisor.image) {
            (Some(initrd), _) => assets.push(("initrd", initrd.clone(), layout::INITRD)),
            (None, Some(image)) => assets.push(("rootfs image", image.clone(), layout::ROOTFS)),
            (None, None) => return Err(Error::NoRootSource),
        }
        for dir in [
            layout::BOOT_DIR,
            layout::RUN_DIR,
            layout::LOGS_DIR,
            layout::DRIVES_DIR,
        ] {
            jail.make_dir(Path::new(dir))
                .map_err(|source| Error::MakeDir {
                    path: PathBuf::from(dir),
                    source,
                })?;
        }
        for (what, source_path, in_jail) in assets {
            jail.place(
                &mut jail_recorder,
                &source_path,
                Path::new(in_jail),
                Placement::ReadOnlyBind,
            )
            .map_err(|source| Error::Place {
                what,
                path: source_path.clone(),
                source,
            })?;
        }
        for (what, fifo_path) in [("log", layout::LOG_FIFO), ("metrics", layout::METRICS_FIFO)] {
            let host = jail
                .make_fifo(Path::new(fifo_path))
                .map_err(|source| Error::MakeFile {
                    what: "FIFO",
                    path: PathBuf::from(fifo_path),
                    source,
                })?;
            logs.watch(&id, what, &host)?;
        }
        if !boot_drives.is_empty() {
            jail.make_dir(Path::new(layout::BOOT_DRIVES_DIR))
                .map_err(|source| Error::MakeDir {
                    path: PathBuf::from(layout::BOOT_DRIVES_DIR),
                    source,
                })?;
        }
        for drive in boot_drives.iter() {
            let in_jail = layout::boot_drive_path(&drive.id);
            let how = if drive.read_only {
                Placement::ReadOnlyBind
            } else {
                Placement::ReadWriteBind
            };
            jail.place(
                &mut jail_recorder,
                &drive.host_path,
                Path::new(&in_jail),
                how,
            )
            .map_err(|source| Error::Place {
                what: "drive",
                path: drive.host_path.clone(),
                source,
            })?;
        }
        for slot in 0..*placeholder_drives {
            let path = layout::placeholder_path(slot);
            jail.make_file(Path::new(&path))
                .map_err(|source| Error::MakeFile {
                    what: "placeholder drive",
                    path: PathBuf::from(&path),
                    source,
                })?;
        }
        jail.place_shared_libraries(&mut jail_recorder)
            .map_err(|source| Error::Place {
                what: "shared libraries of",
                path: hypervisor.path.clone(),
                source,
            })
    }

    /// The guest console is Firecracker's stdout; its stderr (its own
    /// messages before the logger is configured) goes there too.
    fn console(console: OwnedFd) -> Result<LaunchStdio, Error> {
        let stderr = console.try_clone().map_err(Error::ConsoleDup)?;
        Ok(LaunchStdio {
            stdin: vmjail_jail::ChildIo::Null,
            stdout: console.into(),
            stderr: stderr.into(),
        })
    }

    /// Start the VMM through the jail and wait for its API socket.
    fn launch(&mut self, recorder: &mut dyn VmmRecorder, console: OwnedFd) -> Result<(), Error> {
        let launching = tracing::debug_span!("launch").entered();
        let stdio = Self::console(console)?;
        let Self { record, jail, .. } = self;
        let jail = jail.as_mut().ok_or(Error::NotCreated {
            operation: "create",
        })?;
        let mut jail_recorder = |jail_record: &JailRecord| {
            record.jail = jail_record.clone();
            recorder.record(record)
        };
        jail.launch_with(&mut jail_recorder, stdio)
            .map_err(Error::Launch)?;
        self.record.jail = jail.record().clone();
        self.save(recorder, "configuring firecracker")?;
        drop(launching);
        let _step = tracing::debug_span!("api_ready").entered();
        let vmm = self.record.jail.clone();
        let timeout = self.socket_timeout;
        let path = self.record.api_socket.clone();
        self.client()?
            .wait_for_socket(timeout, || process::is_alive(&vmm))
            .map(drop)
            .map_err(|source| Error::ApiSocket { path, source })
    }

    /// Persist the record through the caller's recorder.
    fn save(&self, recorder: &mut dyn VmmRecorder, step: &'static str) -> Result<(), Error> {
        recorder
            .record(&self.record)
            .map_err(|source| Error::Record { step, source })
    }

    fn attach_inner(
        &mut self,
        device: &BlockDevice,
        recorder: &mut dyn VmmRecorder,
    ) -> Result<(), Error> {
        self.require_created("attach_block")?;
        if !api::valid_resource_id(&device.id) {
            return Err(Error::InvalidDeviceId {
                id: device.id.clone(),
            });
        }
        if self.record.drives.iter().any(|(id, _)| *id == device.id) {
            return Err(Error::DriveAttached {
                id: device.id.clone(),
            });
        }
        let slot = drives::free_slot(&self.record.drives, self.placeholder_drives).ok_or(
            Error::NoFreeDriveSlot {
                id: device.id.clone(),
                slots: self.placeholder_drives,
            },
        )?;
        let booted = self.booted()?;
        if booted && device.read_only {
            return Err(Error::ReadOnlyAfterBoot {
                id: device.id.clone(),
            });
        }
        let in_jail = layout::attached_path(slot, &device.id);
        self.record
            .drives
            .push((device.id.clone(), PathBuf::from(&in_jail)));
        let placement = if device.read_only {
            Placement::ReadOnlyBind
        } else {
            Placement::ReadWriteBind
        };
        if let Err(e) = self.place_drive(slot, device, &in_jail, placement, recorder) {
            self.record.drives.retain(|(id, _)| *id != device.id);
            return Err(e);
        }
        let request = if booted {
            api::patch_drive(&api::PartialDrive {
                drive_id: layout::slot_id(slot),
                path_on_host: in_jail.clone(),
            })
        } else {
            api::put_drive(&api::Drive {
                drive_id: layout::slot_id(slot),
                path_on_host: in_jail.clone(),
                is_root_device: false,
                is_read_only: device.read_only,
            })
        };
        if let Err(e) = self.call(&request) {
            // Firecracker kept the placeholder: take the asset back out.
            if self.unplace_drive(&device.id, &in_jail, recorder).is_ok() {
                self.record.drives.retain(|(id, _)| *id != device.id);
                self.save(recorder, "undoing a failed attach")?;
            }
            return Err(e);
        }
        Ok(())
    }

    fn place_drive(
        &mut self,
        slot: usize,
        device: &BlockDevice,
        in_jail: &str,
        placement: Placement,
        recorder: &mut dyn VmmRecorder,
    ) -> Result<(), Error> {
        let Self { record, jail, .. } = self;
        let jail = jail.as_mut().ok_or(Error::NotCreated {
            operation: "attach_block",
        })?;
        let dir = layout::attached_dir(slot);
        jail.make_dir(Path::new(&dir))
            .map_err(|source| Error::MakeDir {
                path: PathBuf::from(&dir),
                source,
            })?;
        let mut jail_recorder = |jail_record: &JailRecord| {
            record.jail = jail_record.clone();
            recorder.record(record)
        };
        jail.place(
            &mut jail_recorder,
            &device.host_path,
            Path::new(in_jail),
            placement,
        )
        .map_err(|source| Error::Place {
            what: "drive",
            path: device.host_path.clone(),
            source,
        })?;
        Ok(())
    }

    fn unplace_drive(
        &mut self,
        id: &str,
        in_jail: &str,
        recorder: &mut dyn VmmRecorder,
    ) -> Result<(), Error> {
        let Self { record, jail, .. } = self;
        let jail = jail.as_mut().ok_or(Error::NotCreated {
            operation: "detach_block",
        })?;
        let mut jail_recorder = |jail_record: &JailRecord| {
            record.jail = jail_record.clone();
            recorder.record(record)
        };
        jail.unplace(&mut jail_recorder, Path::new(in_jail))
            .map_err(|source| Error::Unplace {
                id: id.to_owned(),
                path: PathBuf::from(in_jail),
                source,
            })?;
        self.record.jail = jail.record().clone();
        Ok(())
    }

    fn detach_inner(&mut self, id: &str, recorder: &mut dyn VmmRecorder) -> Result<(), Error> {
        self.require_created("detach_block")?;
        let (_, in_jail) = self
            .record
            .drives
            .iter()
            .find(|(attached, _)| attached == id)
            .cloned()
            .ok_or_else(|| Error::UnknownDrive { id: id.to_owned() })?;
        let slot = layout::slot_of_attached(&in_jail)
            .ok_or_else(|| Error::UnknownDrive { id: id.to_owned() })?;
        // Point the slot back at its placeholder first, so Firecracker lets
        // go of the asset before it is unmounted.
        let request = if self.booted()? {
            api::patch_drive(&api::PartialDrive {
                drive_id: layout::slot_id(slot),
                path_on_host: layout::placeholder_path(slot),
            })
        } else {
            api::put_drive(&drives::placeholder(slot))
        };
        self.call(&request)?;
        let in_jail = in_jail.to_string_lossy().into_owned();
        self.unplace_drive(id, &in_jail, recorder)?;
        self.record.drives.retain(|(attached, _)| attached != id);
        self.save(recorder, "detaching a drive")
    }

    fn add_network_interface_inner(
        &mut self,
        iface: &NetInterface,
        recorder: &mut dyn VmmRecorder,
    ) -> Result<(), Error> {
        self.require_created("add_network_interface")?;
        if !api::valid_resource_id(&iface.id) {
            return Err(Error::InvalidDeviceId {
                id: iface.id.clone(),
            });
        }
        let netns = self.record.netns.clone();
        let tap_error = |source| Error::Tap {
            name: iface.tap_name.clone(),
            netns: netns.clone(),
            source,
        };
        crate::net::validate_tap_name(&iface.tap_name).map_err(tap_error)?;
        if self.booted()? {
            return Err(Error::AfterBoot {
                operation: "add_network_interface",
            });
        }
        let newly_recorded = !self.record.taps.contains(&iface.tap_name);
        if newly_recorded {
            self.record.taps.push(iface.tap_name.clone());
        }
        self.save(recorder, "creating a tap")?;
        if let Err(e) = crate::net::create_tap(
            &netns,
            &iface.tap_name,
            self.jail_config.uid,
            self.jail_config.gid,
        ) {
            // Not made (it may be someone else's): stop must not remove it.
            if newly_recorded {
                self.record.taps.retain(|tap| tap != &iface.tap_name);
                self.save(recorder, "forgetting a tap that was not created")?;
            }
            return Err(tap_error(e));
        }
        self.call(&api::put_network_interface(&api::NetworkInterface {
            iface_id: iface.id.clone(),
            host_dev_name: iface.tap_name.clone(),
            guest_mac: iface.guest_mac.clone(),
        }))
    }

    /// Register a NIC whose tap the network layer made (pre-boot only).
    fn put_nic(&mut self, nic: &GuestNic) -> Result<(), Error> {
        let tap = match &nic.device {
            crate::net::NicDevice::Tap { name } => name.clone(),
            crate::net::NicDevice::Macvtap { name, .. } => {
                return Err(Error::MacvtapUnsupported { name: name.clone() })
            }
        };
        if !api::valid_resource_id(&nic.id) {
            return Err(Error::InvalidDeviceId { id: nic.id.clone() });
        }
        let netns = self.record.netns.clone();
        crate::net::validate_tap_name(&tap).map_err(|source| Error::Tap {
            name: tap.clone(),
            netns,
            source,
        })?;
        self.call(&api::put_network_interface(&api::NetworkInterface {
            iface_id: nic.id.clone(),
            host_dev_name: tap,
            guest_mac: Some(nic.mac.to_string()),
        }))
    }

    fn add_vsock_inner(&mut self, vsock: &VsockDevice) -> Result<(), Error> {
        self.require_created("add_vsock")?;
        if vsock.guest_cid < 3 {
            return Err(Error::InvalidGuestCid {
                cid: vsock.guest_cid,
            });
        }
        if self.booted()? {
            return Err(Error::AfterBoot {
                operation: "add_vsock",
            });
        }
        self.call(&api::put_vsock(&api::Vsock {
            guest_cid: vsock.guest_cid,
            uds_path: layout::VSOCK_SOCKET.into(),
        }))
    }

    /// SendCtrlAltDel, SIGTERM, SIGKILL — each followed by a wait bounded by
    /// `timeout` — on the real VMM pid (checked against its start time).
    fn kill_vmm(&mut self, timeout: Duration) -> Result<(), Error> {
        let Some((pid, _)) = self.record.jail.vmm_process() else {
            return Ok(());
        };
        if !self.vmm_alive() {
            return Ok(());
        }
        let graceful = self.api_timeout.min(timeout);
        let asking = tracing::debug_span!("ctrl_alt_del").entered();
        let asked = match self.client() {
            Ok(client) => call(
                client,
                &api::put_action(api::ActionType::SendCtrlAltDel),
                graceful,
            )
            .map_err(|e| tracing::debug!(pid, "SendCtrlAltDel refused: {e}"))
            .is_ok(),
            Err(_) => false,
        };
        // Only wait for a guest that was actually asked to shut down.
        if asked && process::wait_gone(&self.record.jail, timeout) {
            return Ok(());
        }
        drop(asking);
        let _step = tracing::debug_span!("terminate").entered();
        Ok(process::terminate(&self.record.jail, timeout)?)
    }

    fn remove_taps(&mut self) -> Result<(), Error> {
        let netns = self.record.netns.clone();
        let mut failures = Vec::new();
        self.record
            .taps
            .retain(|tap| match crate::net::remove_tap(&netns, tap) {
                Ok(()) => false,
                Err(e) => {
                    failures.push(format!("{tap}: {e}"));
                    true
                }
            });
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Error::RemoveTaps(failures.join("; ")))
        }
    }

    /// The VMM first (its whole thread group), then the jail — whose
    /// teardown also ends whatever is left in the jail's cgroups — and only
    /// then the taps: a tap is removable once no process holds it.
    fn stop_inner(&mut self, timeout: Duration) -> Result<(), Error> {
        let _stop = tracing::debug_span!("firecracker_stop").entered();
        self.kill_vmm(timeout)?;
        self.logs.stop();
        self.client = None;
        let teardown = if self.record.jail.jail_dir.as_os_str().is_empty() {
            Ok(())
        } else {
            let _step = tracing::debug_span!("teardown").entered();
            vmjail_jail::teardown(&self.record.jail, timeout).map_err(Error::Teardown)
        };
        // Removed even after a failed teardown: a tap nobody holds goes
        // now, one still held is reported (and kept in the record).
        let taps = {
            let _step = tracing::debug_span!("remove_taps").entered();
            self.remove_taps()
        };
        teardown?;
        self.record.drives.clear();
        taps
    }
}

impl Hypervisor for Firecracker {
    fn kind(&self) -> HypervisorKind {
        HypervisorKind::Firecracker
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            block_hotplug: self.placeholder_drives > 0,
            network_hotplug: false,
            vsock: true,
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
        if self.jail.is_some() || self.record.jail.vmm_pid.is_some() {
            return Err(Error::AlreadyCreated {
                id: self.record.id.clone(),
            }
            .into());
        }
        let result = {
            let _create = tracing::debug_span!("firecracker_create").entered();
            self.create_inner(id, netns, console, recorder)
        };
        if let Err(error) = result {
            // Leave nothing half-made (whatever the record says was made,
            // even by a `prepare` that failed half-way); the create error is
            // what matters.
            if !self.record.jail.jail_dir.as_os_str().is_empty() {
                if let Err(cleanup) = self.stop_inner(self.api_timeout) {
                    tracing::warn!(id, "cleaning up after a failed create: {cleanup}");
                }
                let _ = recorder.record(&self.record);
            }
            return Err(error.into());
        }
        Ok(())
    }

    fn start(&mut self, timeout: Duration) -> Result<(), VmmError> {
        let _step = tracing::debug_span!("firecracker_start").entered();
        self.require_created("start")?;
        let client = self.client()?;
        call(
            client,
            &api::put_action(api::ActionType::InstanceStart),
            timeout,
        )?;
        let info = self.instance_info(timeout)?;
        if info.state != InstanceState::Running {
            return Err(Error::NotRunning { state: info.state }.into());
        }
        Ok(())
    }

    fn state(&mut self) -> Result<VmState, VmmError> {
        if !self.vmm_alive() {
            return Ok(VmState::Stopped);
        }
        let timeout = self.api_timeout;
        Ok(match self.instance_info(timeout)?.state {
            InstanceState::NotStarted => VmState::Created,
            InstanceState::Running => VmState::Running,
            InstanceState::Paused => VmState::Paused,
        })
    }

    fn pause(&mut self) -> Result<(), VmmError> {
        let _step = tracing::debug_span!("firecracker_pause").entered();
        self.require_created("pause")?;
        Ok(self.call(&api::patch_vm(api::VmRunState::Paused))?)
    }

    fn resume(&mut self) -> Result<(), VmmError> {
        let _step = tracing::debug_span!("firecracker_resume").entered();
        self.require_created("resume")?;
        Ok(self.call(&api::patch_vm(api::VmRunState::Resumed))?)
    }

    fn stop(&mut self, timeout: Duration) -> Result<(), VmmError> {
        Ok(self.stop_inner(timeout)?)
    }

    fn attach_block(
        &mut self,
        device: &BlockDevice,
        recorder: &mut dyn VmmRecorder,
    ) -> Result<(), VmmError> {
        Ok(self.attach_inner(device, recorder)?)
    }

    fn detach_block(&mut self, id: &str, recorder: &mut dyn VmmRecorder) -> Result<(), VmmError> {
        Ok(self.detach_inner(id, recorder)?)
    }

    fn add_network_interface(
        &mut self,
        iface: &NetInterface,
        recorder: &mut dyn VmmRecorder,
    ) -> Result<(), VmmError> {
        Ok(self.add_network_interface_inner(iface, recorder)?)
    }

    /// Firecracker creates the hybrid-vsock socket inside the jail, which
    /// teardown removes with it: nothing new to record.
    fn set_boot_drives(&mut self, drives: Vec<BlockDevice>) -> Result<(), VmmError> {
        if self.record.jail.vmm_pid.is_some() {
            return Err(Error::AlreadyCreated {
                id: self.record.id.clone(),
            }
            .into());
        }
        for (i, drive) in drives.iter().enumerate() {
            // Not a placeholder's or the root drive's id: those are taken.
            let taken = drive.id == layout::ROOT_DRIVE_ID
                || (0..self.placeholder_drives).any(|slot| layout::slot_id(slot) == drive.id)
                || drives[..i].iter().any(|d| d.id == drive.id);
            if !api::valid_resource_id(&drive.id)
                || drive.id.len() > crate::hypervisor::MAX_BOOT_DRIVE_ID
                || taken
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

    fn set_boot_network(&mut self, network: BootNetwork) -> Result<(), VmmError> {
        if self.record.jail.vmm_pid.is_some() {
            return Err(Error::AlreadyCreated {
                id: self.record.id.clone(),
            }
            .into());
        }
        if let Some(name) = network.nics.iter().find_map(|n| match &n.device {
            crate::net::NicDevice::Macvtap { name, .. } => Some(name.clone()),
            crate::net::NicDevice::Tap { .. } => None,
        }) {
            return Err(Error::MacvtapUnsupported { name }.into());
        }
        self.hypervisor.kernel_params.extend(network.kernel_params);
        self.boot_nics = network.nics;
        Ok(())
    }

    /// Firecracker has no shared filesystem: its bundles are disk images.
    fn set_shared_dir(&mut self, _shared: crate::SharedDir) -> Result<(), VmmError> {
        Err(VmmError::Unsupported {
            kind: HypervisorKind::Firecracker,
            operation: "a virtio-fs shared directory",
        })
    }

    fn add_shared(
        &mut self,
        _shared: &crate::SharedDir,
        _recorder: &mut dyn crate::VmmRecorder,
    ) -> Result<(), VmmError> {
        Err(VmmError::Unsupported {
            kind: HypervisorKind::Firecracker,
            operation: "a virtio-fs shared directory",
        })
    }

    fn remove_shared(
        &mut self,
        _dir: &Path,
        _recorder: &mut dyn crate::VmmRecorder,
    ) -> Result<(), VmmError> {
        Err(VmmError::Unsupported {
            kind: HypervisorKind::Firecracker,
            operation: "a virtio-fs shared directory",
        })
    }

    /// Firecracker takes network interfaces only before InstanceStart.
    fn hot_plug_nic(&mut self, nic: &GuestNic) -> Result<(), VmmError> {
        self.require_created("hot_plug_nic")?;
        if self.booted()? {
            return Err(Error::AfterBoot {
                operation: "hot_plug_nic (Firecracker has no network hotplug)",
            }
            .into());
        }
        Ok(self.put_nic(nic)?)
    }

    fn add_vsock(
        &mut self,
        vsock: &VsockDevice,
        _recorder: &mut dyn VmmRecorder,
    ) -> Result<(), VmmError> {
        Ok(self.add_vsock_inner(vsock)?)
    }

    fn pid(&self) -> Option<i32> {
        self.record.jail.vmm_pid
    }

    fn record(&self) -> &VmmRecord {
        &self.record
    }
}
