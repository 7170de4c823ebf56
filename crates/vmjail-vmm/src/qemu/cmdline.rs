//! The QEMU command line for one sandbox, from the resolved configuration.
//!
//! Every path on it is an in-jail path (see [`layout`](super::layout)); the
//! same arguments run bare QEMU in benchmarks, with host paths.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use vmjail_config::{HypervisorConfig, KernelParam};

use super::Error;

/// Which accelerator QEMU uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    /// QEMU's software emulation (the only one that boots a stock kernel
    /// on hosts whose `/dev/kvm` is not a usable KVM).
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// The machine families vmjail drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    /// `microvm`: direct kernel boot (an uncompressed vmlinux via PVH), no
    /// PCI, virtio-mmio devices.
    Microvm,
    /// `q35` or `pc`: PC firmware, PCI devices.
    Pc(&'static str),
}

impl Machine {
    /// `machine_type` from the config; empty means `microvm`.
    pub fn parse(machine_type: &str) -> Result<Machine, Error> {
        match machine_type {
            "" | "microvm" => Ok(Machine::Microvm),
            "q35" => Ok(Machine::Pc("q35")),
            "pc" => Ok(Machine::Pc("pc")),
            other => Err(Error::UnsupportedMachine {
                machine: other.to_owned(),
            }),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Machine::Microvm => "microvm",
            Machine::Pc(name) => name,
        }
    }

    /// The firmware and option ROM files QEMU loads for this machine from
    /// its data directory (`-L`).
    pub fn firmware_files(self) -> &'static [&'static str] {
        match self {
            Machine::Microvm => &["bios-microvm.bin", "pvh.bin", "linuxboot_dma.bin"],
            Machine::Pc(_) => &[
                "bios-256k.bin",
                "kvmvapic.bin",
                "linuxboot_dma.bin",
                "pvh.bin",
                "multiboot_dma.bin",
            ],
        }
    }

    /// The virtio transport's device suffix on this machine.
    pub fn virtio_suffix(self) -> &'static str {
        match self {
            Machine::Microvm => "device",
            Machine::Pc(_) => "pci",
        }
    }
}

/// Where QEMU finds what it needs (in-jail paths when jailed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub image: Option<PathBuf>,
    pub firmware: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub qmp_socket: PathBuf,
    /// The vhost-user-vsock helper's socket, when the VM has a vsock.
    pub vhost_vsock_socket: Option<PathBuf>,
    /// virtiofsd's vhost-user socket, when the VM has a shared directory.
    pub virtiofs_socket: Option<PathBuf>,
}

/// `-drive`/`-device` of a boot drive: virtio-blk with `serial=<id>`,
/// so the guest finds it by id whatever its `vdX` name.
pub fn boot_drive_args(
    machine: Machine,
    id: &str,
    in_jail: &Path,
    read_only: bool,
) -> Result<Vec<String>, Error> {
    let read_only = if read_only { ",readonly=on" } else { "" };
    Ok(vec![
        "-drive".into(),
        format!(
            "file={},if=none,id=drive-{id},format=raw{read_only}",
            option_path(in_jail)?
        ),
        "-device".into(),
        format!(
            "virtio-blk-{},drive=drive-{id},serial={id}",
            machine.virtio_suffix()
        ),
    ])
}

/// Everything the command line depends on besides the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub accel: Accel,
    /// Add `-sandbox on,...` (QEMU built with seccomp).
    pub seccomp: bool,
    /// Start with the guest stopped (`-S`); `cont` starts it.
    pub stopped: bool,
    /// Under TCG, the guest's TSC frequency (kHz) for `tsc_early_khz=`:
    /// on a busy host the kernel's PIT calibration fails and the boot
    /// stalls; TCG's TSC ticks at the host's rate.
    pub tsc_khz: Option<u32>,
}

/// The host's TSC frequency in kHz, from `/proc/cpuinfo`'s `cpu MHz`.
pub fn host_tsc_khz() -> Option<u32> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mhz: f64 = text
        .lines()
        .find(|l| l.starts_with("cpu MHz"))?
        .split(':')
        .nth(1)?
        .trim()
        .parse()
        .ok()?;
    let khz = (mhz * 1000.0).round();
    (khz >= 1.0 && khz < f64::from(u32::MAX)).then_some(khz as u32)
}

/// `machine_accelerators` entries are appended to `-machine` as they are
/// (Kata's meaning); each must be one QEMU property, so no `,`.
fn machine_property(value: &str) -> Result<&str, Error> {
    let valid = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.=".contains(&b));
    if valid {
        Ok(value)
    } else {
        Err(Error::BadMachineAccelerator {
            value: value.to_owned(),
        })
    }
}

/// The kernel command line: the config layer's parameters, plus
/// `console=ttyS0` (the serial port the console log is wired to) unless a
/// `console=ttyS0` is already there.
pub fn kernel_cmdline(params: &[KernelParam], tsc_khz: Option<u32>) -> String {
    let mut words: Vec<String> = Vec::with_capacity(params.len() + 1);
    let has_console = params
        .iter()
        .any(|p| p.key == "console" && p.value.as_deref() == Some("ttyS0"));
    if !has_console {
        words.push("console=ttyS0".into());
    }
    for p in params {
        match &p.value {
            Some(v) => words.push(format!("{}={}", p.key, v)),
            None => words.push(p.key.clone()),
        }
    }
    if let Some(khz) = tsc_khz {
        if !params.iter().any(|p| p.key == "tsc_early_khz") {
            words.push(format!("tsc_early_khz={khz}"));
        }
    }
    words.join(" ")
}

/// The `-append` argument for `config` run with `options`: the TSC hint
/// only under TCG (KVM gives the guest a calibrated TSC).
pub fn append(config: &HypervisorConfig, options: &Options) -> String {
    let tsc_khz = match options.accel {
        Accel::Tcg => options.tsc_khz,
        Accel::Kvm => None,
    };
    kernel_cmdline(&config.kernel_params, tsc_khz)
}

/// A path handed to QEMU inside a `key=value,...` option must not contain
/// `,` (QEMU's escape is `,,`; vmjail's own paths never need it).
fn option_path(path: &Path) -> Result<String, Error> {
    let text = path.to_str().ok_or_else(|| Error::UnusablePath {
        path: path.to_path_buf(),
    })?;
    if text.contains(',') || text.contains('\n') {
        return Err(Error::UnusablePath {
            path: path.to_path_buf(),
        });
    }
    Ok(text.to_owned())
}

/// Build QEMU's arguments (without the binary).
pub fn build(
    config: &HypervisorConfig,
    paths: &Paths,
    options: &Options,
) -> Result<Vec<OsString>, Error> {
    let machine = Machine::parse(&config.machine_type)?;
    let mut machine_opts = format!("{},accel={}", machine.name(), options.accel.name());
    for accelerator in &config.machine_accelerators {
        machine_opts.push(',');
        machine_opts.push_str(machine_property(accelerator)?);
    }
    // No legacy PIT on microvm (as in Firecracker) unless the configuration
    // says otherwise: with one, Debian's 6.1 kernel calibrates the CPU
    // clock against it and, when that measurement lands close to but not
    // on the `tsc_early_khz` vmjail passes (an idle host), dies with a
    // divide error early in `start_kernel`, before its console is up — and
    // then spins in a failed reboot. Seen in up to 8 of 10 TCG boots.
    let sets_pit = config
        .machine_accelerators
        .iter()
        .any(|a| a.starts_with("pit="));
    if machine == Machine::Microvm && !sets_pit {
        machine_opts.push_str(",pit=off");
    }
    // A vhost-user device's back-end (the vsock helper, virtiofsd: other
    // processes) maps guest memory: it must be a shared memfd, handed
    // over the socket.
    let vhost_user = paths.vhost_vsock_socket.is_some() || paths.virtiofs_socket.is_some();
    if vhost_user {
        machine_opts.push_str(",memory-backend=mem");
    }
    if config.default_vcpus == 0 || config.default_memory == 0 {
        return Err(Error::BadSize {
            vcpus: config.default_vcpus,
            memory_mib: config.default_memory,
        });
    }
    let cpu = match options.accel {
        // TCG's default CPU model gives the guest no usable TSC frequency
        // and a stock kernel stalls calibrating it; `max` has it.
        Accel::Tcg => "max",
        Accel::Kvm => "host",
    };

    let mut args: Vec<String> = vec![
        "-name".into(),
        "vmjail,debug-threads=on".into(),
        "-machine".into(),
        machine_opts,
        "-cpu".into(),
        cpu.into(),
        "-smp".into(),
        config.default_vcpus.to_string(),
        "-m".into(),
        format!("{}M", config.default_memory),
        "-nodefaults".into(),
        "-no-user-config".into(),
        "-nographic".into(),
        // A guest reboot (panic=1, reboot=k) ends the VM, as in Firecracker.
        "-no-reboot".into(),
        "-L".into(),
        option_path(&paths.data_dir)?,
        "-kernel".into(),
        option_path(&paths.kernel)?,
        "-append".into(),
        append(config, options),
        // The serial console is QEMU's stdout: whoever launches QEMU
        // decides where it goes, QEMU opens no path for it.
        "-serial".into(),
        "stdio".into(),
        "-qmp".into(),
        format!(
            "unix:{},server=on,wait=off",
            option_path(&paths.qmp_socket)?
        ),
    ];
    if let Some(initrd) = &paths.initrd {
        args.push("-initrd".into());
        args.push(option_path(initrd)?);
    }
    if let Some(image) = &paths.image {
        args.push("-drive".into());
        args.push(format!(
            "file={},if=none,id=rootfs,format=raw,readonly=on",
            option_path(image)?
        ));
        args.push("-device".into());
        args.push(format!(
            "virtio-blk-{},drive=rootfs",
            machine.virtio_suffix()
        ));
    }
    if vhost_user {
        args.extend([
            "-object".into(),
            format!(
                "memory-backend-memfd,id=mem,size={}M,share=on",
                config.default_memory
            ),
        ]);
    }
    if let Some(socket) = &paths.virtiofs_socket {
        args.extend([
            "-chardev".into(),
            format!("socket,id=virtiofs,path={}", option_path(socket)?),
            "-device".into(),
            format!(
                "vhost-user-fs-{},chardev=virtiofs,tag={}",
                machine.virtio_suffix(),
                super::virtiofsd::TAG
            ),
        ]);
    }
    if let Some(socket) = &paths.vhost_vsock_socket {
        args.extend([
            "-chardev".into(),
            format!("socket,id=vsock,path={}", option_path(socket)?),
            "-device".into(),
            format!("vhost-user-vsock-{},chardev=vsock", machine.virtio_suffix()),
        ]);
    }
    if let Some(firmware) = &paths.firmware {
        args.push("-bios".into());
        args.push(option_path(firmware)?);
    }
    if options.seccomp {
        args.push("-sandbox".into());
        args.push("on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny".into());
    }
    if options.stopped {
        args.push("-S".into());
    }
    Ok(args.into_iter().map(OsString::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// vmjail's embedded default configuration, with its kernel and
    /// initrd pointed at stand-in files.
    fn config() -> HypervisorConfig {
        let dir = tempfile::tempdir().unwrap();
        let kernel = dir.path().join("vmlinux");
        let initrd = dir.path().join("initrd");
        std::fs::write(&kernel, b"k").unwrap();
        std::fs::write(&initrd, b"i").unwrap();
        let text = vmjail_config::EMBEDDED_DEFAULT
            .replace("/usr/share/vmjail/guest/vmlinux", kernel.to_str().unwrap())
            .replace(
                "/usr/share/vmjail/guest/initramfs.cpio.gz",
                initrd.to_str().unwrap(),
            );
        let host = vmjail_config::HostFacts {
            cpus: 2,
            has_vhost_vsock: false,
        };
        match vmjail_config::load_str(&text, vmjail_config::ConfigSource::Embedded, &host) {
            Ok(c) => c.hypervisor,
            Err(e) => panic!("embedded default config: {e}"),
        }
    }

    fn paths() -> Paths {
        Paths {
            kernel: "/assets/vmlinux".into(),
            initrd: Some("/assets/initrd".into()),
            image: None,
            firmware: None,
            data_dir: "/usr/share/qemu".into(),
            qmp_socket: "/run/qmp.sock".into(),
            vhost_vsock_socket: None,
            virtiofs_socket: None,
        }
    }

    fn strings(args: Vec<OsString>) -> Vec<String> {
        args.into_iter().map(|a| a.into_string().unwrap()).collect()
    }

    fn after<'a>(args: &'a [String], flag: &str) -> &'a str {
        let i = args
            .iter()
            .position(|a| a == flag)
            .unwrap_or_else(|| panic!("no {flag} in {args:?}"));
        &args[i + 1]
    }

    /// A configured `pit=` wins over vmjail's `pit=off`; PC machines keep
    /// their PIT.
    #[test]
    fn microvm_gets_no_pit_unless_configured() {
        let mut config = config();
        config.machine_type = "microvm".into();
        config.machine_accelerators = vec!["pit=on".into()];
        let options = Options {
            accel: Accel::Tcg,
            seccomp: false,
            stopped: false,
            tsc_khz: None,
        };
        let args = strings(build(&config, &paths(), &options).unwrap());
        assert_eq!(after(&args, "-machine"), "microvm,accel=tcg,pit=on");
        config.machine_type = "q35".into();
        config.machine_accelerators.clear();
        let args = strings(build(&config, &paths(), &options).unwrap());
        assert!(!after(&args, "-machine").contains("pit"));
    }

    /// A vsock is a vhost-user device: guest memory a shared memfd of the
    /// configured size, the device on the machine's virtio transport.
    #[test]
    fn vsock_adds_a_shared_memfd_and_the_vhost_user_device() {
        let mut config = config();
        config.default_memory = 384;
        let options = Options {
            accel: Accel::Tcg,
            seccomp: false,
            stopped: true,
            tsc_khz: None,
        };
        let plain = strings(build(&config, &paths(), &options).unwrap());
        assert!(!plain.iter().any(|a| a.contains("vhost-user")));
        let mut with_vsock = paths();
        with_vsock.vhost_vsock_socket = Some("/vsock/vhost.sock".into());
        for (machine, device) in [
            ("microvm", "vhost-user-vsock-device,chardev=vsock"),
            ("q35", "vhost-user-vsock-pci,chardev=vsock"),
        ] {
            config.machine_type = machine.into();
            let args = strings(build(&config, &with_vsock, &options).unwrap());
            assert!(after(&args, "-machine").ends_with(",memory-backend=mem"));
            assert_eq!(
                after(&args, "-object"),
                "memory-backend-memfd,id=mem,size=384M,share=on"
            );
            assert_eq!(after(&args, "-m"), "384M");
            assert_eq!(
                after(&args, "-chardev"),
                "socket,id=vsock,path=/vsock/vhost.sock"
            );
            assert_eq!(after(&args, "-device"), device);
        }
    }

    /// A shared directory is a vhost-user-fs device with the tag the agent
    /// mounts, on the same shared memfd (one, with a vsock too).
    #[test]
    fn virtio_fs_adds_the_vhost_user_fs_device() {
        let mut config = config();
        let options = Options {
            accel: Accel::Tcg,
            seccomp: false,
            stopped: true,
            tsc_khz: None,
        };
        let mut both = paths();
        both.virtiofs_socket = Some("/virtiofs/vhost.sock".into());
        both.vhost_vsock_socket = Some("/vsock/vhost.sock".into());
        for (machine, device) in [
            (
                "microvm",
                "vhost-user-fs-device,chardev=virtiofs,tag=vmjail",
            ),
            ("q35", "vhost-user-fs-pci,chardev=virtiofs,tag=vmjail"),
        ] {
            config.machine_type = machine.into();
            let args = strings(build(&config, &both, &options).unwrap());
            assert!(after(&args, "-machine").ends_with(",memory-backend=mem"));
            assert_eq!(args.iter().filter(|a| *a == "-object").count(), 1);
            assert_eq!(
                after(&args, "-chardev"),
                "socket,id=virtiofs,path=/virtiofs/vhost.sock"
            );
            assert_eq!(after(&args, "-device"), device);
        }
    }

    #[test]
    fn microvm_tcg_line_has_every_piece() {
        let mut config = config();
        config.machine_type = "microvm".into();
        config.default_vcpus = 2;
        config.default_memory = 512;
        config.machine_accelerators = vec!["pic=off".into()];
        let options = Options {
            accel: Accel::Tcg,
            seccomp: true,
            stopped: true,
            tsc_khz: Some(2_000_000),
        };
        let args = strings(build(&config, &paths(), &options).unwrap());
        assert!(after(&args, "-append").ends_with(" tsc_early_khz=2000000"));
        assert_eq!(
            after(&args, "-machine"),
            "microvm,accel=tcg,pic=off,pit=off"
        );
        assert_eq!(after(&args, "-cpu"), "max");
        assert_eq!(after(&args, "-smp"), "2");
        assert_eq!(after(&args, "-m"), "512M");
        assert_eq!(after(&args, "-kernel"), "/assets/vmlinux");
        assert_eq!(after(&args, "-initrd"), "/assets/initrd");
        assert_eq!(after(&args, "-L"), "/usr/share/qemu");
        assert_eq!(after(&args, "-serial"), "stdio");
        assert_eq!(
            after(&args, "-qmp"),
            "unix:/run/qmp.sock,server=on,wait=off"
        );
        assert!(after(&args, "-append").starts_with("console=ttyS0 "));
        assert!(after(&args, "-sandbox").starts_with("on,"));
        for flag in [
            "-nodefaults",
            "-no-user-config",
            "-nographic",
            "-S",
            "-no-reboot",
        ] {
            assert!(
                args.iter().any(|a| a == flag),
                "{flag} missing from {args:?}"
            );
        }
    }

    #[test]
    fn kvm_image_q35_without_seccomp_or_stop() {
        let mut config = config();
        config.machine_type = "q35".into();
        let mut paths = paths();
        paths.initrd = None;
        paths.image = Some("/assets/image".into());
        let options = Options {
            accel: Accel::Kvm,
            seccomp: false,
            stopped: false,
            tsc_khz: Some(2_000_000),
        };
        let args = strings(build(&config, &paths, &options).unwrap());
        assert!(after(&args, "-machine").starts_with("q35,accel=kvm"));
        assert_eq!(after(&args, "-cpu"), "host");
        assert_eq!(
            after(&args, "-drive"),
            "file=/assets/image,if=none,id=rootfs,format=raw,readonly=on"
        );
        assert_eq!(after(&args, "-device"), "virtio-blk-pci,drive=rootfs");
        assert!(!args
            .iter()
            .any(|a| a == "-S" || a == "-sandbox" || a == "-initrd"));
        assert!(
            !after(&args, "-append").contains("tsc_early_khz"),
            "KVM needs no TSC hint"
        );
    }

    #[test]
    fn hostile_values_are_rejected() {
        let mut config = config();
        config.machine_accelerators = vec!["nvdimm,memory-backend=x".into()];
        let options = Options {
            accel: Accel::Tcg,
            seccomp: false,
            stopped: true,
            tsc_khz: None,
        };
        assert!(matches!(
            build(&config, &paths(), &options),
            Err(Error::BadMachineAccelerator { .. })
        ));
        let config2 = self::config();
        let mut paths = paths();
        paths.kernel = "/assets/a,b".into();
        assert!(matches!(
            build(&config2, &paths, &options),
            Err(Error::UnusablePath { .. })
        ));
        let mut config3 = self::config();
        config3.machine_type = "virt".into();
        assert!(matches!(
            build(&config3, &self::paths(), &options),
            Err(Error::UnsupportedMachine { .. })
        ));
    }

    #[test]
    fn console_is_added_once_and_the_tsc_hint_defers_to_the_config() {
        let p = |k: &str, v: Option<&str>| KernelParam {
            key: k.into(),
            value: v.map(str::to_owned),
        };
        assert_eq!(
            kernel_cmdline(&[p("quiet", None)], None),
            "console=ttyS0 quiet"
        );
        assert_eq!(
            kernel_cmdline(&[p("console", Some("ttyS0")), p("panic", Some("1"))], None),
            "console=ttyS0 panic=1"
        );
        assert_eq!(
            kernel_cmdline(&[p("tsc_early_khz", Some("5"))], Some(7)),
            "console=ttyS0 tsc_early_khz=5"
        );
    }

    #[test]
    fn boot_drives_carry_their_serial_on_both_machines() {
        let args = boot_drive_args(
            Machine::Microvm,
            "vmjail-c0",
            Path::new("/drives/vmjail-c0"),
            false,
        )
        .unwrap();
        assert_eq!(
            args,
            [
                "-drive",
                "file=/drives/vmjail-c0,if=none,id=drive-vmjail-c0,format=raw",
                "-device",
                "virtio-blk-device,drive=drive-vmjail-c0,serial=vmjail-c0",
            ]
        );
        let q35 = Machine::parse("q35").unwrap();
        let args = boot_drive_args(q35, "d", Path::new("/drives/d"), true).unwrap();
        assert_eq!(
            args[1],
            "file=/drives/d,if=none,id=drive-d,format=raw,readonly=on"
        );
        assert_eq!(args[3], "virtio-blk-pci,drive=drive-d,serial=d");
        assert!(boot_drive_args(q35, "d", Path::new("/a,b"), true).is_err());
    }
}
