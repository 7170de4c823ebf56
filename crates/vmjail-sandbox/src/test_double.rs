//! A test double `Hypervisor` for the lifecycle's unit tests: its "VMM" is
//! a real `sleep` process (so liveness, pause via SIGSTOP and kills are
//! real) and its "jail" a real directory; it records every call and can be
//! told to fail at a named step.

// `VmmError`, the seam's error type, is large (it carries each backend's
// error); shrinking it is the vmm crate's call, so closures and factories
// returning it here are allowed to.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use vmjail_config::*;
use vmjail_jail::JailRecord;
use vmjail_vmm::*;

use crate::process;
use crate::HypervisorFactory;

/// Shared between the factory and every double it hands out.
#[derive(Debug, Default)]
pub struct Script {
    pub calls: Vec<String>,
    /// Fail the call whose name is given here (e.g. `create-after-spawn`).
    pub fail_at: Option<&'static str>,
}

#[derive(Clone)]
pub struct TestDoubleFactory {
    pub script: Arc<Mutex<Script>>,
    /// Jails are made under here.
    pub jail_base: PathBuf,
}

impl TestDoubleFactory {
    pub fn new(jail_base: &Path) -> Self {
        Self {
            script: Arc::default(),
            jail_base: jail_base.to_owned(),
        }
    }

    pub fn calls(&self) -> Vec<String> {
        self.script.lock().unwrap().calls.clone()
    }

    pub fn fail_at(&self, step: &'static str) {
        self.script.lock().unwrap().fail_at = Some(step);
    }
}

impl HypervisorFactory for TestDoubleFactory {
    fn new_hypervisor(&self, _config: &RuntimeConfig) -> Result<Box<dyn Hypervisor>, VmmError> {
        self.script.lock().unwrap().calls.push("new".into());
        Ok(Box::new(TestDoubleHypervisor {
            script: self.script.clone(),
            jail_base: self.jail_base.clone(),
            record: None,
        }))
    }

    fn reattach(&self, record: VmmRecord, _config: &RuntimeConfig) -> Box<dyn Hypervisor> {
        self.script.lock().unwrap().calls.push("reattach".into());
        Box::new(TestDoubleHypervisor {
            script: self.script.clone(),
            jail_base: self.jail_base.clone(),
            record: Some(record),
        })
    }

    /// `cat` appending to the log: the lifecycle's pump, without the
    /// bound (the real pump's rotation is tested in `console`).
    fn console_pump(&self, dir: &Path) -> std::process::Command {
        let mut command = std::process::Command::new("sh");
        command
            .args(["-c", "exec cat >> \"$1\"", "pump"])
            .arg(dir.join(crate::console::LOG));
        command
    }
}

pub struct TestDoubleHypervisor {
    script: Arc<Mutex<Script>>,
    jail_base: PathBuf,
    record: Option<VmmRecord>,
}

impl TestDoubleHypervisor {
    fn step(&self, name: &'static str) -> Result<(), VmmError> {
        let mut script = self.script.lock().unwrap();
        script.calls.push(name.into());
        if script.fail_at == Some(name) {
            return Err(VmmError::Unsupported {
                kind: HypervisorKind::Qemu,
                operation: name,
            });
        }
        Ok(())
    }

    fn pid(&self) -> Option<(Pid, Option<u64>)> {
        let jail = &self.record.as_ref()?.jail;
        jail.vmm_pid
            .filter(|&pid| process::is_alive(pid, jail.vmm_start_time))
            .map(|pid| (Pid::from_raw(pid), jail.vmm_start_time))
    }
}

impl Hypervisor for TestDoubleHypervisor {
    fn kind(&self) -> HypervisorKind {
        HypervisorKind::Qemu
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            block_hotplug: false,
            network_hotplug: false,
            vsock: false,
            pause: true,
        }
    }

    fn create(
        &mut self,
        id: &str,
        netns: &Path,
        console: std::os::fd::OwnedFd,
        recorder: &mut dyn VmmRecorder,
    ) -> Result<(), VmmError> {
        self.step("create")?;
        let jail_dir = self.jail_base.join(id);
        let mut record = VmmRecord {
            kind: HypervisorKind::Qemu,
            id: id.to_owned(),
            netns: netns.to_owned(),
            jail: JailRecord {
                id: id.to_owned(),
                jail_dir: jail_dir.clone(),
                ..JailRecord::default()
            },
            api_socket: jail_dir.join("root/qmp.sock"),
            taps: Vec::new(),
            drives: Vec::new(),
            helpers: Vec::new(),
            vsock: None,
        };
        recorder.record(&record).unwrap();
        self.record = Some(record.clone());
        std::fs::create_dir_all(jail_dir.join("root")).unwrap();
        let mut console = std::fs::File::from(console);
        std::io::Write::write_all(&mut console, b"booting\n").unwrap();
        // Reaped by pid in `stop` (possibly by a reattached double). Like a
        // VMM, it holds the console until it ends.
        #[allow(clippy::zombie_processes)]
        let child = std::process::Command::new("sleep")
            .arg("600")
            .stdout(console)
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        record.jail.vmm_pid = Some(pid);
        record.jail.vmm_start_time = process::start_time(pid);
        recorder.record(&record).unwrap();
        self.record = Some(record);
        self.step("create-after-spawn")
    }

    fn start(&mut self, _timeout: Duration) -> Result<(), VmmError> {
        self.step("start")
    }

    fn state(&mut self) -> Result<VmState, VmmError> {
        self.step("state")?;
        Ok(if self.pid().is_some() {
            VmState::Running
        } else {
            VmState::Stopped
        })
    }

    fn pause(&mut self) -> Result<(), VmmError> {
        self.step("pause")?;
        if let Some((pid, _)) = self.pid() {
            kill(pid, Signal::SIGSTOP).unwrap();
        }
        Ok(())
    }

    fn resume(&mut self) -> Result<(), VmmError> {
        self.step("resume")?;
        if let Some((pid, _)) = self.pid() {
            kill(pid, Signal::SIGCONT).unwrap();
        }
        Ok(())
    }

    fn stop(&mut self, _timeout: Duration) -> Result<(), VmmError> {
        self.step("stop")?;
        if let Some((pid, _)) = self.pid() {
            let _ = kill(pid, Signal::SIGKILL);
        }
        if let Some(pid) = self.record.as_ref().and_then(|r| r.jail.vmm_pid) {
            // Reap our own child; a pid of another process gives ECHILD.
            let _ = waitpid(Pid::from_raw(pid), None);
        }
        if let Some(record) = &self.record {
            match std::fs::remove_dir_all(&record.jail.jail_dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("{e}"),
            }
        }
        Ok(())
    }

    fn attach_block(
        &mut self,
        _device: &BlockDevice,
        _recorder: &mut dyn VmmRecorder,
    ) -> Result<(), VmmError> {
        Err(VmmError::Unsupported {
            kind: HypervisorKind::Qemu,
            operation: "attach_block",
        })
    }

    fn detach_block(&mut self, _id: &str, _recorder: &mut dyn VmmRecorder) -> Result<(), VmmError> {
        Err(VmmError::Unsupported {
            kind: HypervisorKind::Qemu,
            operation: "detach_block",
        })
    }

    fn add_network_interface(
        &mut self,
        _iface: &NetInterface,
        _recorder: &mut dyn VmmRecorder,
    ) -> Result<(), VmmError> {
        Err(VmmError::Unsupported {
            kind: HypervisorKind::Qemu,
            operation: "add_network_interface",
        })
    }

    fn set_boot_network(&mut self, _network: BootNetwork) -> Result<(), VmmError> {
        Ok(())
    }

    fn set_boot_drives(&mut self, _drives: Vec<BlockDevice>) -> Result<(), VmmError> {
        Ok(())
    }

    fn set_shared_dir(&mut self, _shared: vmjail_vmm::SharedDir) -> Result<(), VmmError> {
        Ok(())
    }

    fn add_shared(
        &mut self,
        _shared: &vmjail_vmm::SharedDir,
        _recorder: &mut dyn VmmRecorder,
    ) -> Result<(), VmmError> {
        self.step("add_shared")
    }

    fn remove_shared(
        &mut self,
        _dir: &Path,
        _recorder: &mut dyn VmmRecorder,
    ) -> Result<(), VmmError> {
        self.step("remove_shared")
    }

    fn hot_plug_nic(&mut self, _nic: &GuestNic) -> Result<(), VmmError> {
        Err(VmmError::Unsupported {
            kind: HypervisorKind::Qemu,
            operation: "hot_plug_nic",
        })
    }

    fn add_vsock(
        &mut self,
        _vsock: &VsockDevice,
        _recorder: &mut dyn VmmRecorder,
    ) -> Result<(), VmmError> {
        Err(VmmError::Unsupported {
            kind: HypervisorKind::Qemu,
            operation: "add_vsock",
        })
    }

    fn pid(&self) -> Option<i32> {
        self.record.as_ref()?.jail.vmm_pid
    }

    fn record(&self) -> &VmmRecord {
        self.record.as_ref().expect("record() before create()")
    }
}

/// A complete `RuntimeConfig` for tests (the values do not matter to the
/// lifecycle; it only stores and hands them back).
pub fn config(state_dir: &Path) -> RuntimeConfig {
    RuntimeConfig {
        source: ConfigSource::Embedded,
        hypervisor_kind: HypervisorKind::Qemu,
        hypervisor: HypervisorConfig {
            path: "/usr/bin/qemu-system-x86_64".into(),
            jailer_path: None,
            kernel: "/nonexistent/vmlinux".into(),
            ctlpath: None,
            initrd: Some("/nonexistent/initrd".into()),
            image: None,
            firmware: None,
            machine_accelerators: Vec::new(),
            kernel_params: Vec::new(),
            machine_type: "microvm".into(),
            block_device_driver: BlockDeviceDriver::VirtioBlk,
            entropy_source: "/dev/urandom".into(),
            shared_fs: SharedFs::Virtio9p,
            virtio_fs_daemon: None,
            virtio_fs_cache: "auto".into(),
            virtio_fs_cache_size: 0,
            block_device_cache_set: false,
            block_device_cache_direct: false,
            block_device_cache_noflush: false,
            default_vcpus: 1,
            default_maxvcpus: 1,
            default_memory: 128,
            memory_slots: 10,
            memory_offset: 0,
            default_bridges: 1,
            msize_9p: 8192,
            disable_block_device_use: false,
            enable_mem_prealloc: false,
            enable_hugepages: false,
            file_mem_backend: String::new(),
            enable_swap: false,
            enable_debug: false,
            disable_nesting_checks: false,
            enable_iothreads: false,
            use_vsock: false,
            hotplug_vfio_on_root_bus: false,
            disable_vhost_net: false,
            guest_hook_path: String::new(),
        },
        proxy: ProxyConfig {
            kind: ProxyKind::None,
            path: None,
            enable_debug: false,
        },
        shim: ShimConfig {
            path: "/usr/bin/true".into(),
            enable_debug: false,
            enable_tracing: false,
        },
        agent: AgentConfig {
            enable_debug: false,
            enable_tracing: false,
            trace_mode: String::new(),
            trace_type: String::new(),
            kernel_modules: Vec::new(),
            use_vsock: false,
        },
        runtime: RuntimeSection {
            enable_debug: false,
            enable_tracing: false,
            disable_new_netns: false,
            disable_guest_seccomp: false,
            sandbox_cgroup_only: false,
            experimental: Vec::new(),
            internetworking_model: InterNetworkingModel::None,
        },
        factory: FactoryConfig {
            enable_template: false,
            template_path: PathBuf::new(),
            vm_cache_number: 0,
            vm_cache_endpoint: PathBuf::new(),
        },
        netmon: NetmonConfig {
            path: PathBuf::new(),
            enable_debug: false,
            enable_netmon: false,
        },
        jail: JailConfig {
            uid: 1234,
            gid: 1234,
            id_range_size: 1,
            // Beside the state dir, never in it: everything in the state
            // dir is taken for a sandbox.
            chroot_base_dir: state_dir.with_file_name("chroot-base"),
            state_dir: state_dir.to_owned(),
            cgroup_version: CgroupVersionSetting::Auto,
            cgroups: Vec::new(),
            parent_cgroup: "vmjail".into(),
            rlimit_fsize: None,
            rlimit_no_file: 2048,
            new_pid_ns: false,
            daemonize: true,
        },
        warnings: Vec::new(),
    }
}
