//! Every table of the file and the keys it accepts (Kata's 2019 format plus
//! vmjail's `[jail]`), as written, before defaults and rules.

use super::section::raw_section;
use super::value::StrOrInt;

raw_section!(
    /// `[hypervisor.<type>]`.
    RawHypervisor {
        path: String,
        jailer_path: String,
        kernel: String,
        ctlpath: String,
        initrd: String,
        image: String,
        firmware: String,
        machine_accelerators: String,
        kernel_params: String,
        machine_type: String,
        block_device_driver: String,
        entropy_source: String,
        shared_fs: String,
        virtio_fs_daemon: String,
        virtio_fs_cache: String,
        virtio_fs_cache_size: u32,
        block_device_cache_set: bool,
        block_device_cache_direct: bool,
        block_device_cache_noflush: bool,
        default_vcpus: i32,
        default_maxvcpus: u32,
        default_memory: u32,
        memory_slots: u32,
        memory_offset: u32,
        default_bridges: u32,
        msize_9p: u32,
        disable_block_device_use: bool,
        enable_mem_prealloc: bool,
        enable_hugepages: bool,
        file_mem_backend: String,
        enable_swap: bool,
        enable_debug: bool,
        disable_nesting_checks: bool,
        enable_iothreads: bool,
        use_vsock: bool,
        hotplug_vfio_on_root_bus: bool,
        disable_vhost_net: bool,
        guest_hook_path: String,
    }
);

raw_section!(
    /// `[proxy.kata]`.
    RawProxy {
        path: String,
        enable_debug: bool,
    }
);

raw_section!(
    /// `[shim.kata]`.
    RawShim {
        path: String,
        enable_debug: bool,
        enable_tracing: bool,
    }
);

raw_section!(
    /// `[agent.kata]`.
    RawAgent {
        enable_debug: bool,
        enable_tracing: bool,
        trace_mode: String,
        trace_type: String,
        kernel_modules: Vec<String>,
    }
);

raw_section!(
    /// `[runtime]`.
    RawRuntime {
        enable_debug: bool,
        enable_tracing: bool,
        disable_new_netns: bool,
        disable_guest_seccomp: bool,
        sandbox_cgroup_only: bool,
        experimental: Vec<String>,
        internetworking_model: String,
    }
);

raw_section!(
    /// `[factory]`.
    RawFactory {
        enable_template: bool,
        template_path: String,
        vm_cache_number: u32,
        vm_cache_endpoint: String,
    }
);

raw_section!(
    /// `[netmon]`.
    RawNetmon {
        path: String,
        enable_debug: bool,
        enable_netmon: bool,
    }
);

raw_section!(
    /// vmjail's `[jail]`.
    RawJail {
        uid: u32,
        gid: u32,
        id_range_size: u32,
        allow_root: bool,
        chroot_base_dir: String,
        state_dir: String,
        cgroup_version: StrOrInt,
        cgroups: Vec<String>,
        parent_cgroup: String,
        rlimit_fsize: u64,
        rlimit_no_file: u64,
        new_pid_ns: bool,
        daemonize: bool,
    }
);
