//! `vmjail env [--json]`: the resolved configuration and host facts,
//! sectioned like Kata's `kata-env`. TOML by default. Warnings go to
//! stderr; the whole output is built before anything is printed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;
use vmjail_config::discovery::{self, Located};
use vmjail_config::rules::{internetworking, kernel_params};
use vmjail_config::*;

use crate::cli::JsonArgs;

/// Version of this output's layout; bumped when sections or keys change.
const FORMAT_VERSION: &str = "1";

pub fn run(config: Option<&Path>, args: &JsonArgs) -> anyhow::Result<ExitCode> {
    let host = HostFacts::detect();
    let cfg = load_config(config, &host)?;
    print_warnings(&cfg.warnings);
    let out = render(&cfg, &host, args.json)?;
    crate::out::out!("{out}");
    Ok(ExitCode::SUCCESS)
}

pub fn show_default_config_paths() -> anyhow::Result<ExitCode> {
    let out: String = default_config_paths()
        .iter()
        .map(|p| format!("{}\n", p.display()))
        .collect();
    crate::out::out!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// Discover and load the configuration. When the embedded default is in
/// use and does not load, the error shows it, so the user sees what it
/// expects. The warnings found before a failure are printed at once, so
/// they come before the error (often their consequence).
pub(crate) fn load_config(
    explicit: Option<&Path>,
    host: &HostFacts,
) -> anyhow::Result<RuntimeConfig> {
    let env = |name: &str| std::env::var_os(name);
    let (loaded, embedded) = match discovery::locate(explicit, &env, &default_config_paths())? {
        Located::File(path) => (load_file(&path, host), false),
        Located::Embedded => (
            load_str(EMBEDDED_DEFAULT, ConfigSource::Embedded, host),
            true,
        ),
    };
    let failure = match loaded {
        Ok(cfg) => return Ok(cfg),
        Err(failure) => failure,
    };
    print_warnings(&failure.warnings);
    if !embedded {
        return Err(anyhow::Error::new(*failure.error));
    }
    Err(anyhow::anyhow!(
        "{}\n\nno configuration file was found in {}; the embedded default configuration (docs/configuration.md) is:\n\n{EMBEDDED_DEFAULT}",
        failure.error,
        default_config_paths()
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// Each configuration warning on its own stderr line.
pub(crate) fn print_warnings(warnings: &[ConfigWarning]) {
    let text: String = warnings
        .iter()
        .map(|w| match &w.location {
            Some(at) => format!("vmjail: warning: {at}: {}\n", w.message),
            None => format!("vmjail: warning: {}\n", w.message),
        })
        .collect();
    crate::out::err!("{text}");
}

/// The whole `env` output.
pub(crate) fn render(cfg: &RuntimeConfig, host: &HostFacts, json: bool) -> anyhow::Result<String> {
    let report = EnvReport::new(cfg, host);
    if json {
        Ok(serde_json::to_string_pretty(&report).context("serialising env as JSON")? + "\n")
    } else {
        toml::to_string_pretty(&report).context("serialising env as TOML")
    }
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

fn opt_path(p: &Option<PathBuf>) -> String {
    p.as_deref().map(path).unwrap_or_default()
}

fn vsock_daemon(cfg: &RuntimeConfig) -> String {
    if cfg.hypervisor_kind != HypervisorKind::Qemu || !cfg.hypervisor.use_vsock {
        return String::new();
    }
    vmjail_vmm::qemu::vhost_vsock::find().map_or_else(|_| "<missing>".to_string(), |p| path(&p))
}

fn kind_name(kind: HypervisorKind) -> &'static str {
    match kind {
        HypervisorKind::Firecracker => "firecracker",
        HypervisorKind::Qemu => "qemu",
        HypervisorKind::Acrn => "acrn",
    }
}

/// The backend's own kernel command line. Should the backend refuse this
/// configuration on this host (`accel=kvm` without a usable KVM), `create`
/// fails the same way: say so and show the configuration's parameters.
fn kernel_cmdline(cfg: &RuntimeConfig) -> String {
    vmjail_vmm::select::kernel_cmdline(cfg).unwrap_or_else(|e| {
        crate::out::errln!("vmjail: warning: the kernel command line cannot be built on this host ({e}); showing the configuration's parameters");
        kernel_params::render(&cfg.hypervisor.kernel_params)
    })
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct EnvReport {
    meta: Meta,
    runtime: Runtime,
    hypervisor: Hypervisor,
    image: Asset,
    initrd: Asset,
    kernel: Kernel,
    proxy: Proxy,
    shim: Shim,
    agent: Agent,
    netmon: Netmon,
    factory: Factory,
    host: Host,
    jail: Jail,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Meta {
    version: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Runtime {
    version: &'static str,
    debug: bool,
    trace: bool,
    disable_guest_seccomp: bool,
    disable_new_net_ns: bool,
    sandbox_cgroup_only: bool,
    experimental: Vec<String>,
    internetworking_model: &'static str,
    config: ConfigInfo,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ConfigInfo {
    /// The file, or `<embedded default>`.
    path: String,
    source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    embedded_default: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Hypervisor {
    kind: &'static str,
    path: String,
    jailer_path: String,
    ctl_path: String,
    firmware: String,
    machine_type: String,
    machine_accelerators: Vec<String>,
    block_device_driver: BlockDeviceDriver,
    block_device_cache_set: bool,
    block_device_cache_direct: bool,
    block_device_cache_noflush: bool,
    disable_block_device_use: bool,
    shared_fs: SharedFs,
    virtio_fs_daemon: String,
    virtio_fs_cache: String,
    virtio_fs_cache_size: u32,
    msize_9p: u32,
    default_vcpus: u32,
    default_max_vcpus: u32,
    default_memory_mib: u32,
    memory_slots: u32,
    memory_offset: u32,
    default_bridges: u32,
    entropy_source: String,
    enable_mem_prealloc: bool,
    enable_hugepages: bool,
    file_mem_backend: String,
    enable_swap: bool,
    enable_iothreads: bool,
    use_vsock: bool,
    /// The helper serving QEMU's vsock when `use_vsock` is on (vmjail
    /// finds it itself, see `vhost_vsock::HELPER_SEARCH`): its path, or
    /// `<missing>`; empty when not used (Firecracker serves its own).
    vsock_daemon: String,
    hotplug_vfio_on_root_bus: bool,
    disable_vhost_net: bool,
    disable_nesting_checks: bool,
    guest_hook_path: String,
    debug: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Asset {
    path: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Kernel {
    path: String,
    /// The final command line, exactly as the backend passes it: vmjail's
    /// defaults, the agent's and the user's parameters, plus what the
    /// backend adds (QEMU: `console=ttyS0`, `tsc_early_khz=` under TCG;
    /// Firecracker: its own defaults first).
    parameters: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Proxy {
    #[serde(rename = "Type")]
    kind: ProxyKind,
    path: String,
    debug: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Shim {
    path: String,
    debug: bool,
    trace: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Agent {
    #[serde(rename = "Type")]
    kind: &'static str,
    debug: bool,
    trace: bool,
    trace_mode: String,
    trace_type: String,
    use_vsock: bool,
    kernel_modules: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Netmon {
    path: String,
    debug: bool,
    enable: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Factory {
    template: bool,
    template_path: String,
    vm_cache_number: u32,
    vm_cache_endpoint: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Host {
    architecture: &'static str,
    cpus: u32,
    vhost_vsock: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Jail {
    uid: u32,
    gid: u32,
    chroot_base_dir: String,
    state_dir: String,
    cgroup_version: CgroupVersionSetting,
    /// `file=value` as written in `[jail] cgroups`.
    cgroups: Vec<String>,
    parent_cgroup: String,
    /// Bytes; absent when unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    rlimit_fsize: Option<u64>,
    rlimit_no_file: u64,
    new_pid_ns: bool,
    daemonize: bool,
}

impl EnvReport {
    fn new(cfg: &RuntimeConfig, host: &HostFacts) -> Self {
        let h = &cfg.hypervisor;
        let (config_path, source, embedded_default) = match &cfg.source {
            ConfigSource::File(p) => (path(p), "file", None),
            ConfigSource::Embedded => {
                (origin_name(&cfg.source), "embedded", Some(EMBEDDED_DEFAULT))
            }
        };
        EnvReport {
            meta: Meta {
                version: FORMAT_VERSION,
            },
            runtime: Runtime {
                version: env!("CARGO_PKG_VERSION"),
                debug: cfg.runtime.enable_debug,
                trace: cfg.runtime.enable_tracing,
                disable_guest_seccomp: cfg.runtime.disable_guest_seccomp,
                disable_new_net_ns: cfg.runtime.disable_new_netns,
                sandbox_cgroup_only: cfg.runtime.sandbox_cgroup_only,
                experimental: cfg.runtime.experimental.clone(),
                internetworking_model: internetworking::name(cfg.runtime.internetworking_model),
                config: ConfigInfo {
                    path: config_path,
                    source,
                    embedded_default,
                },
            },
            hypervisor: Hypervisor {
                kind: kind_name(cfg.hypervisor_kind),
                path: path(&h.path),
                jailer_path: opt_path(&h.jailer_path),
                ctl_path: opt_path(&h.ctlpath),
                firmware: opt_path(&h.firmware),
                machine_type: h.machine_type.clone(),
                machine_accelerators: h.machine_accelerators.clone(),
                block_device_driver: h.block_device_driver,
                block_device_cache_set: h.block_device_cache_set,
                block_device_cache_direct: h.block_device_cache_direct,
                block_device_cache_noflush: h.block_device_cache_noflush,
                disable_block_device_use: h.disable_block_device_use,
                shared_fs: h.shared_fs,
                virtio_fs_daemon: opt_path(&h.virtio_fs_daemon),
                virtio_fs_cache: h.virtio_fs_cache.clone(),
                virtio_fs_cache_size: h.virtio_fs_cache_size,
                msize_9p: h.msize_9p,
                default_vcpus: h.default_vcpus,
                default_max_vcpus: h.default_maxvcpus,
                default_memory_mib: h.default_memory,
                memory_slots: h.memory_slots,
                memory_offset: h.memory_offset,
                default_bridges: h.default_bridges,
                entropy_source: path(&h.entropy_source),
                enable_mem_prealloc: h.enable_mem_prealloc,
                enable_hugepages: h.enable_hugepages,
                file_mem_backend: h.file_mem_backend.clone(),
                enable_swap: h.enable_swap,
                enable_iothreads: h.enable_iothreads,
                use_vsock: h.use_vsock,
                vsock_daemon: vsock_daemon(cfg),
                hotplug_vfio_on_root_bus: h.hotplug_vfio_on_root_bus,
                disable_vhost_net: h.disable_vhost_net,
                disable_nesting_checks: h.disable_nesting_checks,
                guest_hook_path: h.guest_hook_path.clone(),
                debug: h.enable_debug,
            },
            image: Asset {
                path: opt_path(&h.image),
            },
            initrd: Asset {
                path: opt_path(&h.initrd),
            },
            kernel: Kernel {
                path: path(&h.kernel),
                parameters: kernel_cmdline(cfg),
            },
            proxy: Proxy {
                kind: cfg.proxy.kind,
                path: opt_path(&cfg.proxy.path),
                debug: cfg.proxy.enable_debug,
            },
            shim: Shim {
                path: path(&cfg.shim.path),
                debug: cfg.shim.enable_debug,
                trace: cfg.shim.enable_tracing,
            },
            agent: Agent {
                kind: "kata",
                debug: cfg.agent.enable_debug,
                trace: cfg.agent.enable_tracing,
                trace_mode: cfg.agent.trace_mode.clone(),
                trace_type: cfg.agent.trace_type.clone(),
                use_vsock: cfg.agent.use_vsock,
                kernel_modules: cfg.agent.kernel_modules.clone(),
            },
            netmon: Netmon {
                path: path(&cfg.netmon.path),
                debug: cfg.netmon.enable_debug,
                enable: cfg.netmon.enable_netmon,
            },
            factory: Factory {
                template: cfg.factory.enable_template,
                template_path: path(&cfg.factory.template_path),
                vm_cache_number: cfg.factory.vm_cache_number,
                vm_cache_endpoint: path(&cfg.factory.vm_cache_endpoint),
            },
            host: Host {
                architecture: std::env::consts::ARCH,
                cpus: host.cpus,
                vhost_vsock: host.has_vhost_vsock,
            },
            jail: Jail {
                uid: cfg.jail.uid,
                gid: cfg.jail.gid,
                chroot_base_dir: path(&cfg.jail.chroot_base_dir),
                state_dir: path(&cfg.jail.state_dir),
                cgroup_version: cfg.jail.cgroup_version,
                cgroups: cfg
                    .jail
                    .cgroups
                    .iter()
                    .map(|(f, v)| format!("{f}={v}"))
                    .collect(),
                parent_cgroup: cfg.jail.parent_cgroup.clone(),
                rlimit_fsize: cfg.jail.rlimit_fsize,
                rlimit_no_file: cfg.jail.rlimit_no_file,
                new_pid_ns: cfg.jail.new_pid_ns,
                daemonize: cfg.jail.daemonize,
            },
        }
    }
}
