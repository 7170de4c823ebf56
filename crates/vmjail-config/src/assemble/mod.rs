//! Raw tables → [`RuntimeConfig`]: defaults, path resolution and every
//! rule, in Kata's order (hypervisor, proxy, agent, shim, factory, netmon,
//! kernel parameters, vsock ⇒ no proxy, experimental, checks), then
//! vmjail's `[jail]`.

mod context;

use std::path::PathBuf;

use crate::error::ConfigError;
use crate::host::HostFacts;
use crate::model::*;
use crate::raw::{kind_name, RawConfig};
use crate::rules::assets::RootFs;
use crate::rules::{
    accelerators, agent_trace, block_driver, bridges, experimental, factory, internetworking, jail,
    kernel_params, memory, msize, netns, shared_fs, vcpus, vsock,
};
use crate::source::SourceText;
use context::{flag, non_empty, val, Assembler};

/// Kata's default shim/proxy/netmon binaries (used when their table is
/// present but `path` is empty).
const DEFAULT_SHIM_PATH: &str = "/usr/libexec/kata-containers/kata-shim";
const DEFAULT_PROXY_PATH: &str = "/usr/libexec/kata-containers/kata-proxy";
const DEFAULT_NETMON_PATH: &str = "/usr/libexec/kata-containers/kata-netmon";
/// vmjail's guest kernel when `kernel` is empty.
const DEFAULT_KERNEL_PATH: &str = "/usr/share/vmjail/guest/vmlinux";
const DEFAULT_MACHINE_TYPE: &str = "pc";
const DEFAULT_ENTROPY_SOURCE: &str = "/dev/urandom";
const DEFAULT_ACRN_CTL_PATH: &str = "/usr/bin/acrnctl";

/// The VMM binary when `path` is empty (per hypervisor; Kata had one
/// build-time default for all).
fn default_hypervisor_path(kind: HypervisorKind) -> &'static str {
    match kind {
        HypervisorKind::Qemu => "/usr/bin/qemu-system-x86_64",
        HypervisorKind::Firecracker => "/usr/bin/firecracker",
        HypervisorKind::Acrn => "/usr/bin/acrn-dm",
    }
}

/// Build the resolved configuration from the raw tables. Warnings are
/// added to `warnings` as they are found, so they outlive a failure.
pub(crate) fn assemble(
    src: &SourceText<'_>,
    raw: RawConfig,
    host: &HostFacts,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<RuntimeConfig, ConfigError> {
    let mut a = Assembler { src, warnings };
    let kind = raw.hypervisor_kind;
    let h = &raw.hypervisor;
    let section = format!("hypervisor.{}", kind_name(kind));
    let rt = &raw.runtime;

    let model = match non_empty(&rt.internetworking_model) {
        None => internetworking::default_for(kind),
        given => internetworking::internetworking_model(given).map_err(|valid| {
            a.invalid(
                "runtime.internetworking_model",
                &rt.internetworking_model,
                &rt.span,
                valid,
            )
        })?,
    };
    if !internetworking::supported(kind, model) {
        return Err(ConfigError::ModelUnsupported {
            location: a.at(&rt.internetworking_model, &rt.span),
            model: internetworking::name(model).to_string(),
            hypervisor: kind_name(kind),
        });
    }

    // --- hypervisor ---
    let path = a.path(&section, "path", &h.path, default_hypervisor_path(kind))?;
    let jailer_path = a.optional_path(&section, "jailer_path", &h.jailer_path)?;
    let ctlpath = match kind {
        HypervisorKind::Acrn => {
            Some(a.path(&section, "ctlpath", &h.ctlpath, DEFAULT_ACRN_CTL_PATH)?)
        }
        _ => {
            if non_empty(&h.ctlpath).is_some() {
                a.warn(
                    a.at(&h.ctlpath, &h.span),
                    format!("{section}.ctlpath is only used by ACRN and is ignored"),
                );
            }
            None
        }
    };
    let kernel = a.path(&section, "kernel", &h.kernel, DEFAULT_KERNEL_PATH)?;
    let root_fs = a.root_fs(&section, kind, h)?;
    let firmware = a.optional_path(&section, "firmware", &h.firmware)?;
    let user_params = kernel_params::parse(val(&h.kernel_params).map_or("", String::as_str))
        .map_err(|param| ConfigError::EmptyKernelParam {
            location: a.at(&h.kernel_params, &h.span),
            param,
        })?;
    let block_device_driver = block_driver::block_device_driver(non_empty(&h.block_device_driver))
        .map_err(|valid| {
            a.invalid(
                &format!("{section}.block_device_driver"),
                &h.block_device_driver,
                &h.span,
                valid,
            )
        })?;
    let shared_fs = shared_fs::shared_fs(non_empty(&h.shared_fs)).map_err(|valid| {
        a.invalid(
            &format!("{section}.shared_fs"),
            &h.shared_fs,
            &h.span,
            valid,
        )
    })?;
    if !shared_fs::daemon_requirement_met(shared_fs, non_empty(&h.virtio_fs_daemon)) {
        return Err(ConfigError::VirtioFsNeedsDaemon {
            location: a.at(&h.shared_fs, &h.span),
        });
    }
    // The daemon is only started for virtio-fs; Kata's shipped files name
    // one even with virtio-9p, so it is resolved only when it is used.
    let virtio_fs_daemon = match shared_fs {
        SharedFs::VirtioFs => a.optional_path(&section, "virtio_fs_daemon", &h.virtio_fs_daemon)?,
        SharedFs::Virtio9p => None,
    };
    let vsock = vsock::effective_vsock(kind, flag(&h.use_vsock));
    if let Some(message) = vsock.warning {
        a.warn(a.at(&h.use_vsock, &h.span), format!("{section}: {message}"));
    }
    let hv_max = vcpus::hypervisor_max_vcpus(kind);
    let default_memory = memory::default_memory(val(&h.default_memory).copied());
    let machine_type = match (kind, non_empty(&h.machine_type)) {
        (_, Some(t)) => t.to_string(),
        (HypervisorKind::Qemu, None) => DEFAULT_MACHINE_TYPE.to_string(),
        (_, None) => String::new(),
    };

    // --- proxy, agent, shim ---
    let proxy_path = match &raw.proxy {
        Some(p) if !vsock.use_vsock => {
            Some(a.path("proxy.kata", "path", &p.path, DEFAULT_PROXY_PATH)?)
        }
        _ => None,
    };
    let agent = raw.agent.clone().unwrap_or_default();
    let agent_tracing = flag(&agent.enable_tracing);
    let (trace_mode, trace_type) = agent_trace::trace_options(
        agent_tracing,
        val(&agent.trace_mode).map_or("", String::as_str),
        val(&agent.trace_type).map_or("", String::as_str),
    )
    .map_err(|e| match e {
        agent_trace::TraceError::Mode => a.invalid(
            "agent.kata.trace_mode",
            &agent.trace_mode,
            &agent.span,
            agent_trace::VALID_MODES,
        ),
        agent_trace::TraceError::Type => a.invalid(
            "agent.kata.trace_type",
            &agent.trace_type,
            &agent.span,
            agent_trace::VALID_TYPES,
        ),
    })?;
    // vmjail runs no shim: without a [shim.kata] table the path stays empty.
    let shim = match &raw.shim {
        Some(s) => ShimConfig {
            path: a.path("shim.kata", "path", &s.path, DEFAULT_SHIM_PATH)?,
            enable_debug: flag(&s.enable_debug),
            enable_tracing: flag(&s.enable_tracing),
        },
        None => ShimConfig {
            path: PathBuf::new(),
            enable_debug: false,
            enable_tracing: false,
        },
    };

    // --- factory, netmon ---
    let f = &raw.factory;
    let factory_config = FactoryConfig {
        enable_template: flag(&f.enable_template),
        template_path: PathBuf::from(
            non_empty(&f.template_path).unwrap_or(factory::DEFAULT_TEMPLATE_PATH),
        ),
        vm_cache_number: val(&f.vm_cache_number).copied().unwrap_or(0),
        vm_cache_endpoint: PathBuf::from(
            non_empty(&f.vm_cache_endpoint).unwrap_or(factory::DEFAULT_VM_CACHE_ENDPOINT),
        ),
    };
    let n = &raw.netmon;
    let netmon = NetmonConfig {
        path: PathBuf::from(non_empty(&n.path).unwrap_or(DEFAULT_NETMON_PATH)),
        enable_debug: flag(&n.enable_debug),
        enable_netmon: flag(&n.enable_netmon),
    };

    // --- kernel parameters: defaults, agent, user ---
    let defaults =
        kernel_params::parse(kernel_params::VMJAIL_DEFAULT_KERNEL_PARAMS).unwrap_or_default();
    let agent_params = kernel_params::agent_params(
        flag(&agent.enable_debug),
        agent_tracing,
        &trace_mode,
        &trace_type,
    );
    let kernel_params = kernel_params::merge(&[defaults, agent_params, user_params]);

    // --- experimental ---
    let experimental_names = val(&rt.experimental).cloned().unwrap_or_default();
    if let Some(name) = experimental::first_unknown(&experimental_names) {
        return Err(ConfigError::UnknownExperimental {
            location: a.at(&rt.experimental, &rt.span),
            name: name.to_string(),
            known: experimental::KNOWN_EXPERIMENTAL.join(", "),
        });
    }

    // --- checks ---
    let disable_new_netns = flag(&rt.disable_new_netns);
    netns::check_netns(
        disable_new_netns,
        netmon.enable_netmon,
        model,
        shim.enable_tracing,
    )
    .map_err(|v| {
        let location = a.at(&rt.disable_new_netns, &rt.span);
        match v {
            netns::NetnsViolation::ConflictsNetmon => {
                ConfigError::NetnsConflictsNetmon { location }
            }
            netns::NetnsViolation::NeedsNoneModel => ConfigError::NetnsNeedsNoneModel {
                location,
                model: internetworking::name(model).to_string(),
            },
            netns::NetnsViolation::ShimTracingNeedsHostNetns => {
                ConfigError::ShimTracingNeedsHostNetns {
                    location: raw
                        .shim
                        .as_ref()
                        .map_or_else(|| a.src.name(), |s| a.at(&s.enable_tracing, &s.span)),
                }
            }
        }
    })?;
    if !memory::memory_is_nonzero(default_memory) {
        return Err(ConfigError::ZeroMemory {
            location: a.at(&h.default_memory, &h.span),
        });
    }
    a.check_root_fs_size(&section, h, &root_fs, default_memory)?;
    let has_initrd = matches!(root_fs, RootFs::Initrd(_));
    factory::check_factory(
        factory_config.enable_template,
        has_initrd,
        factory_config.vm_cache_number,
        kind,
    )
    .map_err(|v| match v {
        factory::FactoryViolation::TemplateNeedsInitrd => ConfigError::TemplateNeedsInitrd {
            location: a.at(&f.enable_template, &f.span),
        },
        factory::FactoryViolation::VmCacheNeedsQemu => ConfigError::VmCacheNeedsQemu {
            location: a.at(&f.vm_cache_number, &f.span),
            hypervisor: kind_name(kind),
        },
    })?;

    let jail = jail::jail_config(src, &raw.jail)?;

    let (initrd, image) = match root_fs {
        RootFs::Initrd(p) => (Some(p), None),
        RootFs::Image(p) => (None, Some(p)),
    };
    let hypervisor = HypervisorConfig {
        path,
        jailer_path,
        kernel,
        ctlpath,
        initrd,
        image,
        firmware,
        machine_accelerators: accelerators::machine_accelerators(
            val(&h.machine_accelerators).map(String::as_str),
        ),
        kernel_params,
        machine_type,
        block_device_driver,
        entropy_source: PathBuf::from(
            non_empty(&h.entropy_source).unwrap_or(DEFAULT_ENTROPY_SOURCE),
        ),
        shared_fs,
        virtio_fs_daemon,
        virtio_fs_cache: val(&h.virtio_fs_cache).cloned().unwrap_or_default(),
        virtio_fs_cache_size: val(&h.virtio_fs_cache_size).copied().unwrap_or(0),
        block_device_cache_set: flag(&h.block_device_cache_set),
        block_device_cache_direct: flag(&h.block_device_cache_direct),
        block_device_cache_noflush: flag(&h.block_device_cache_noflush),
        default_vcpus: vcpus::default_vcpus(val(&h.default_vcpus).copied(), host.cpus, hv_max),
        default_maxvcpus: vcpus::default_maxvcpus(
            val(&h.default_maxvcpus).copied(),
            host.cpus,
            hv_max,
        ),
        default_memory,
        memory_slots: memory::memory_slots(val(&h.memory_slots).copied()),
        memory_offset: memory::memory_offset(val(&h.memory_offset).copied()),
        default_bridges: bridges::default_bridges(val(&h.default_bridges).copied()),
        msize_9p: msize::msize_9p(val(&h.msize_9p).copied()),
        disable_block_device_use: flag(&h.disable_block_device_use),
        enable_mem_prealloc: flag(&h.enable_mem_prealloc),
        enable_hugepages: flag(&h.enable_hugepages),
        file_mem_backend: val(&h.file_mem_backend).cloned().unwrap_or_default(),
        enable_swap: flag(&h.enable_swap),
        enable_debug: flag(&h.enable_debug),
        disable_nesting_checks: flag(&h.disable_nesting_checks),
        enable_iothreads: flag(&h.enable_iothreads),
        use_vsock: vsock.use_vsock,
        hotplug_vfio_on_root_bus: flag(&h.hotplug_vfio_on_root_bus),
        disable_vhost_net: flag(&h.disable_vhost_net),
        guest_hook_path: val(&h.guest_hook_path).cloned().unwrap_or_default(),
    };
    // With vsock the agent is reached directly: no proxy (Kata's rule).
    let proxy = ProxyConfig {
        kind: vsock::proxy_kind(vsock.use_vsock),
        path: proxy_path,
        enable_debug: !vsock.use_vsock && raw.proxy.as_ref().is_some_and(|p| flag(&p.enable_debug)),
    };

    Ok(RuntimeConfig {
        source: src.origin.clone(),
        hypervisor_kind: kind,
        hypervisor,
        proxy,
        shim,
        agent: AgentConfig {
            enable_debug: flag(&agent.enable_debug),
            enable_tracing: agent_tracing,
            trace_mode,
            trace_type,
            kernel_modules: val(&agent.kernel_modules).cloned().unwrap_or_default(),
            use_vsock: vsock.use_vsock,
        },
        runtime: RuntimeSection {
            enable_debug: flag(&rt.enable_debug),
            enable_tracing: flag(&rt.enable_tracing),
            disable_new_netns,
            disable_guest_seccomp: flag(&rt.disable_guest_seccomp),
            sandbox_cgroup_only: flag(&rt.sandbox_cgroup_only),
            experimental: experimental_names,
            internetworking_model: model,
        },
        factory: factory_config,
        netmon,
        jail,
        warnings: std::mem::take(a.warnings),
    })
}
