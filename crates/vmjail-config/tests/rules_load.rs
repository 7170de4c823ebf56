//! Every rule through the whole loader: table-driven, valid and invalid.

mod common;

use common::{acrn, firecracker, qemu, Assets, HOST};
use vmjail_config::*;

enum Want {
    /// Loads, and the check holds.
    Ok(fn(&RuntimeConfig) -> bool),
    /// Loads with a warning containing this text.
    Warns(&'static str),
    /// Fails with a message containing every one of these.
    Fails(&'static [&'static str]),
}

fn run(cases: Vec<(&str, String, Want)>) {
    let a = Assets::new();
    for (name, text, want) in cases {
        let got = a.load(&text);
        match (want, got) {
            (Want::Ok(check), Ok(cfg)) => assert!(check(&cfg), "{name}: check failed on {cfg:#?}"),
            (Want::Warns(w), Ok(cfg)) => assert!(
                cfg.warnings.iter().any(|x| x.message.contains(w)),
                "{name}: no warning containing {w:?} in {:?}",
                cfg.warnings
            ),
            (Want::Fails(parts), Err(e)) => {
                let msg = e.to_string();
                for part in parts {
                    assert!(msg.contains(part), "{name}: {msg:?} lacks {part:?}");
                }
            }
            (Want::Fails(_), Ok(cfg)) => panic!("{name}: loaded but should fail: {cfg:#?}"),
            (_, Err(e)) => panic!("{name}: failed: {e}"),
        }
    }
}

#[test]
fn hypervisor_sizes() {
    run(vec![
        (
            "vcpus default",
            qemu("", ""),
            Want::Ok(|c| c.hypervisor.default_vcpus == 1),
        ),
        (
            "vcpus 2",
            qemu("default_vcpus = 2", ""),
            Want::Ok(|c| c.hypervisor.default_vcpus == 2),
        ),
        (
            "vcpus negative",
            qemu("default_vcpus = -1", ""),
            Want::Ok(|c| c.hypervisor.default_vcpus == HOST.cpus),
        ),
        (
            "vcpus too many",
            qemu("default_vcpus = 99", ""),
            Want::Ok(|c| c.hypervisor.default_vcpus == HOST.cpus),
        ),
        (
            "maxvcpus 0",
            qemu("default_maxvcpus = 0", ""),
            Want::Ok(|c| c.hypervisor.default_maxvcpus == HOST.cpus),
        ),
        (
            "maxvcpus 2",
            qemu("default_maxvcpus = 2", ""),
            Want::Ok(|c| c.hypervisor.default_maxvcpus == 2),
        ),
        (
            "maxvcpus negative",
            qemu("default_maxvcpus = -2", ""),
            Want::Fails(&["default_maxvcpus", "4294967295"]),
        ),
        (
            "memory small",
            qemu("default_memory = 7", ""),
            Want::Ok(|c| c.hypervisor.default_memory == 2048),
        ),
        (
            "memory 512",
            qemu("default_memory = 512", ""),
            Want::Ok(|c| c.hypervisor.default_memory == 512),
        ),
        (
            "slots 0",
            qemu("memory_slots = 0", ""),
            Want::Ok(|c| c.hypervisor.memory_slots == 10),
        ),
        (
            "bridges 9",
            qemu("default_bridges = 9", ""),
            Want::Ok(|c| c.hypervisor.default_bridges == 5),
        ),
        (
            "bridges 0",
            qemu("default_bridges = 0", ""),
            Want::Ok(|c| c.hypervisor.default_bridges == 1),
        ),
        (
            "msize 0",
            qemu("msize_9p = 0", ""),
            Want::Ok(|c| c.hypervisor.msize_9p == 8192),
        ),
        (
            "accelerators",
            qemu("machine_accelerators = \" nofw, ,nosmm \"", ""),
            Want::Ok(|c| c.hypervisor.machine_accelerators == ["nofw", "nosmm"]),
        ),
        (
            "machine type default",
            qemu("", ""),
            Want::Ok(|c| c.hypervisor.machine_type == "pc"),
        ),
        (
            "machine type",
            qemu("machine_type = \"microvm\"", ""),
            Want::Ok(|c| c.hypervisor.machine_type == "microvm"),
        ),
    ]);
}

#[test]
fn drivers_and_shared_fs() {
    run(vec![
        (
            "driver default",
            qemu("", ""),
            Want::Ok(|c| c.hypervisor.block_device_driver == BlockDeviceDriver::VirtioScsi),
        ),
        (
            "driver nvdimm",
            qemu("block_device_driver = \"nvdimm\"", ""),
            Want::Ok(|c| c.hypervisor.block_device_driver == BlockDeviceDriver::Nvdimm),
        ),
        (
            "driver bad",
            qemu("block_device_driver = \"ide\"", ""),
            Want::Fails(&[
                "block_device_driver",
                "\"ide\"",
                "virtio-scsi",
                "virtio-blk",
                "virtio-mmio",
                "nvdimm",
                ":5:",
            ]),
        ),
        (
            "fs default",
            qemu("", ""),
            Want::Ok(|c| c.hypervisor.shared_fs == SharedFs::Virtio9p),
        ),
        (
            "fs bad",
            qemu("shared_fs = \"nfs\"", ""),
            Want::Fails(&["shared_fs", "virtio-9p", "virtio-fs"]),
        ),
        (
            "virtio-fs without daemon",
            qemu("shared_fs = \"virtio-fs\"", ""),
            Want::Fails(&["virtio_fs_daemon"]),
        ),
        (
            "virtio-fs with daemon",
            qemu(
                "shared_fs = \"virtio-fs\"\nvirtio_fs_daemon = \"virtiofsd\"",
                "",
            ),
            Want::Ok(|c| {
                c.hypervisor
                    .virtio_fs_daemon
                    .as_ref()
                    .is_some_and(|p| p.ends_with("virtiofsd"))
            }),
        ),
        (
            "virtio-fs with missing daemon",
            qemu("shared_fs = \"virtio-fs\"\nvirtio_fs_daemon = \"nope\"", ""),
            Want::Fails(&["hypervisor.qemu.virtio_fs_daemon", "\"nope\""]),
        ),
    ]);
}

#[test]
fn initrd_and_image() {
    let base = "[hypervisor.qemu]\npath = \"qemu\"\nkernel = \"vmlinux\"\n";
    let t = |extra: &str| format!("{base}{extra}\n");
    run(vec![
        (
            "initrd",
            t("initrd = \"initrd.img\""),
            Want::Ok(|c| c.hypervisor.initrd.is_some() && c.hypervisor.image.is_none()),
        ),
        (
            "image",
            t("image = \"image.img\""),
            Want::Ok(|c| c.hypervisor.image.is_some() && c.hypervisor.initrd.is_none()),
        ),
        (
            "both",
            t("initrd = \"initrd.img\"\nimage = \"image.img\""),
            Want::Fails(&["both initrd", "set exactly one"]),
        ),
        (
            "neither",
            t(""),
            Want::Fails(&["either initrd or image", "not set"]),
        ),
        (
            "both empty strings",
            t("initrd = \"\"\nimage = \"\""),
            Want::Fails(&["either initrd or image"]),
        ),
        (
            "missing initrd, image",
            t("initrd = \"gone.img\"\nimage = \"image.img\""),
            Want::Warns("gone.img"),
        ),
        (
            "missing initrd, image used",
            t("initrd = \"gone.img\"\nimage = \"image.img\""),
            Want::Ok(|c| c.hypervisor.image.is_some() && c.hypervisor.initrd.is_none()),
        ),
        (
            "both missing",
            t("initrd = \"gone1\"\nimage = \"gone2\""),
            Want::Fails(&["gone1", "gone2", "No such file"]),
        ),
        (
            "empty initrd",
            t("initrd = \"empty.img\""),
            Want::Fails(&["initrd", "empty.img", "is empty"]),
        ),
        (
            "empty image",
            t("image = \"empty.img\""),
            Want::Fails(&["image", "is empty"]),
        ),
        (
            "memory zero stays defaulted",
            t("initrd = \"initrd.img\"\ndefault_memory = 0"),
            Want::Ok(|c| c.hypervisor.default_memory == 2048),
        ),
    ]);
}

#[test]
fn initrd_bigger_than_memory() {
    let a = Assets::new();
    let big = a.path("big.img");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(64 * 1024 * 1024).unwrap(); // sparse 64 MiB
    let base = "[hypervisor.qemu]\npath = \"qemu\"\nkernel = \"vmlinux\"\n";
    let err = a
        .load(&format!(
            "{base}initrd = \"big.img\"\ndefault_memory = 64\n"
        ))
        .unwrap_err();
    assert!(
        matches!(
            *err.error,
            ConfigError::InitrdTooLarge {
                size_mib: 64,
                memory_mib: 64,
                ..
            }
        ),
        "{err}"
    );
    assert!(a
        .load(&format!(
            "{base}initrd = \"big.img\"\ndefault_memory = 65\n"
        ))
        .is_ok());
    let cfg = a
        .load(&format!("{base}image = \"big.img\"\ndefault_memory = 64\n"))
        .unwrap();
    assert!(
        cfg.warnings
            .iter()
            .any(|w| w.message.contains("not smaller than VM memory")),
        "{:?}",
        cfg.warnings
    );
}

#[test]
fn acrn_rules() {
    run(vec![
        ("acrn ok", acrn("", ""), Want::Ok(|c| c.hypervisor.ctlpath.is_some() && c.hypervisor.image.is_some())),
        ("acrn vcpus capped", acrn("default_maxvcpus = 0", ""), Want::Ok(|c| c.hypervisor.default_maxvcpus == 4)),
        (
            "acrn without image",
            "[hypervisor.acrn]\npath = \"acrn-dm\"\nctlpath = \"acrnctl\"\nkernel = \"vmlinux\"\ninitrd = \"initrd.img\"\n".into(),
            Want::Fails(&["hypervisor.acrn needs image"]),
        ),
        (
            "acrn initrd ignored",
            acrn("initrd = \"initrd.img\"", ""),
            Want::Warns("ACRN boots from image only"),
        ),
        (
            "acrn missing ctl",
            "[hypervisor.acrn]\npath = \"acrn-dm\"\nctlpath = \"nope\"\nkernel = \"vmlinux\"\nimage = \"image.img\"\n".into(),
            Want::Fails(&["hypervisor.acrn.ctlpath", "nope"]),
        ),
        ("ctlpath ignored on qemu", qemu("ctlpath = \"acrnctl\"", ""), Want::Warns("only used by ACRN")),
        ("acrn no vsock", acrn("use_vsock = true", ""), Want::Ok(|c| !c.hypervisor.use_vsock && c.proxy.kind == ProxyKind::Kata)),
    ]);
}

#[test]
fn vsock_and_proxy() {
    run(vec![
        (
            // No fallback to serial without /dev/vhost-vsock: vmjail serves
            // QEMU a hybrid vsock through vhost-device-vsock.
            "qemu vsock without vhost-vsock",
            qemu("use_vsock = true", ""),
            Want::Ok(|c| {
                c.hypervisor.use_vsock && c.proxy.kind == ProxyKind::None && c.warnings.is_empty()
            }),
        ),
        (
            "qemu without vsock",
            qemu("", ""),
            Want::Ok(|c| !c.hypervisor.use_vsock && c.proxy.kind == ProxyKind::Kata),
        ),
        (
            "fc always vsock",
            firecracker("use_vsock = false", ""),
            Want::Ok(|c| c.hypervisor.use_vsock && c.proxy.kind == ProxyKind::None),
        ),
        (
            "qemu proxy resolved",
            qemu(
                "",
                "[proxy.kata]\npath = \"kata-proxy\"\nenable_debug = true",
            ),
            Want::Ok(|c| {
                c.proxy
                    .path
                    .as_ref()
                    .is_some_and(|p| p.ends_with("kata-proxy"))
                    && c.proxy.enable_debug
            }),
        ),
        (
            "qemu proxy missing",
            qemu("", "[proxy.kata]\npath = \"nope\""),
            Want::Fails(&["proxy.kata.path", "nope"]),
        ),
        (
            "fc proxy ignored",
            firecracker("", "[proxy.kata]\npath = \"nope\"\nenable_debug = true"),
            Want::Ok(|c| c.proxy.path.is_none() && !c.proxy.enable_debug),
        ),
    ]);
    let a = Assets::new();
    let with_vsock = HostFacts {
        cpus: 2,
        has_vhost_vsock: true,
    };
    let cfg = a
        .load_with(&qemu("use_vsock = true", ""), &with_vsock)
        .unwrap();
    assert!(cfg.hypervisor.use_vsock && cfg.agent.use_vsock);
    assert_eq!(cfg.proxy.kind, ProxyKind::None);
    assert!(cfg.warnings.is_empty());
}

#[test]
fn kernel_params_merge() {
    run(vec![
        (
            "defaults, no console",
            qemu("", ""),
            Want::Ok(|c| {
                c.hypervisor.kernel_params.iter().any(|p| p.key == "panic")
                    && c.hypervisor
                        .kernel_params
                        .iter()
                        .all(|p| p.key != "console")
            }),
        ),
        (
            "user replaces default",
            qemu("kernel_params = \"panic=5 quiet\"", ""),
            Want::Ok(|c| {
                let p = &c.hypervisor.kernel_params;
                p.iter().filter(|p| p.key == "panic").count() == 1
                    && p.iter()
                        .any(|p| p.key == "panic" && p.value.as_deref() == Some("5"))
                    && p.last().is_some_and(|p| p.key == "quiet")
            }),
        ),
        (
            "agent debug",
            qemu("", "[agent.kata]\nenable_debug = true"),
            Want::Ok(|c| {
                c.hypervisor
                    .kernel_params
                    .iter()
                    .any(|p| p.key == "agent.log" && p.value.as_deref() == Some("debug"))
            }),
        ),
        (
            "user replaces agent",
            qemu(
                "kernel_params = \"agent.log=info\"",
                "[agent.kata]\nenable_debug = true",
            ),
            Want::Ok(|c| {
                let p: Vec<_> = c
                    .hypervisor
                    .kernel_params
                    .iter()
                    .filter(|p| p.key == "agent.log")
                    .collect();
                p.len() == 1 && p[0].value.as_deref() == Some("info")
            }),
        ),
        (
            "static trace",
            qemu(
                "",
                "[agent.kata]\nenable_tracing = true\ntrace_mode = \"static\"",
            ),
            Want::Ok(|c| {
                c.agent.trace_type == "isolated"
                    && c.hypervisor
                        .kernel_params
                        .iter()
                        .any(|p| p.key == "agent.trace" && p.value.as_deref() == Some("isolated"))
            }),
        ),
        (
            "dynamic trace default",
            qemu("", "[agent.kata]\nenable_tracing = true"),
            Want::Ok(|c| {
                c.agent.trace_mode == "dynamic"
                    && c.hypervisor
                        .kernel_params
                        .iter()
                        .all(|p| p.key != "agent.trace")
            }),
        ),
        (
            "bad trace mode",
            qemu(
                "",
                "[agent.kata]\nenable_tracing = true\ntrace_mode = \"x\"",
            ),
            Want::Fails(&["agent.kata.trace_mode", "dynamic", "static"]),
        ),
        (
            "bad trace type",
            qemu(
                "",
                "[agent.kata]\nenable_tracing = true\ntrace_type = \"x\"",
            ),
            Want::Fails(&["agent.kata.trace_type", "isolated", "collated"]),
        ),
        (
            "empty param name",
            qemu("kernel_params = \"a=1 =2\"", ""),
            Want::Fails(&["kernel_params", "\"=2\""]),
        ),
    ]);
}

#[test]
fn runtime_rules() {
    run(vec![
        ("model default", qemu("", ""), Want::Ok(|c| c.runtime.internetworking_model == InterNetworkingModel::Macvtap)),
        ("model none", qemu("", "[runtime]\ninternetworking_model = \"none\""), Want::Ok(|c| c.runtime.internetworking_model == InterNetworkingModel::None)),
        ("model bad", qemu("", "[runtime]\ninternetworking_model = \"vxlan\""), Want::Fails(&["runtime.internetworking_model", "tcfilter", "macvtap"])),
        ("firecracker model default", firecracker("", ""), Want::Ok(|c| c.runtime.internetworking_model == InterNetworkingModel::Tcfilter)),
        ("firecracker bridged", firecracker("", "[runtime]\ninternetworking_model = \"bridged\""), Want::Ok(|c| c.runtime.internetworking_model == InterNetworkingModel::Bridged)),
        ("firecracker macvtap", firecracker("", "[runtime]\ninternetworking_model = \"macvtap\""), Want::Fails(&["runtime.internetworking_model", "\"macvtap\"", "hypervisor.firecracker", "tcfilter"])),
        ("firecracker default model", firecracker("", "[runtime]\ninternetworking_model = \"default\""), Want::Fails(&["\"default\"", "hypervisor.firecracker"])),
        (
            "netns ok",
            qemu("", "[runtime]\ndisable_new_netns = true\ninternetworking_model = \"none\""),
            Want::Ok(|c| c.runtime.disable_new_netns),
        ),
        ("netns with macvtap", qemu("", "[runtime]\ndisable_new_netns = true"), Want::Fails(&["disable_new_netns", "\"none\"", "macvtap"])),
        (
            "netns with netmon",
            qemu("", "[runtime]\ndisable_new_netns = true\ninternetworking_model = \"none\"\n[netmon]\nenable_netmon = true"),
            Want::Fails(&["conflicts with netmon.enable_netmon"]),
        ),
        (
            "shim tracing needs host netns",
            qemu("", "[shim.kata]\npath = \"kata-shim\"\nenable_tracing = true"),
            Want::Fails(&["shim tracing", "disable_new_netns"]),
        ),
        (
            "shim tracing with host netns",
            qemu("", "[shim.kata]\npath = \"kata-shim\"\nenable_tracing = true\n[runtime]\ndisable_new_netns = true\ninternetworking_model = \"none\""),
            Want::Ok(|c| c.shim.enable_tracing),
        ),
        ("experimental known", qemu("", "[runtime]\nexperimental = [\"newstore\"]"), Want::Ok(|c| c.runtime.experimental == ["newstore"])),
        ("experimental unknown", qemu("", "[runtime]\nexperimental = [\"warp\"]"), Want::Fails(&["\"warp\"", "newstore"])),
        ("experimental not array", qemu("", "[runtime]\nexperimental = \"warp\""), Want::Fails(&["runtime.experimental", "array of strings"])),
    ]);
}

#[test]
fn factory_rules() {
    run(vec![
        (
            "template with initrd",
            qemu("", "[factory]\nenable_template = true"),
            Want::Ok(|c| c.factory.enable_template),
        ),
        (
            "template with image",
            firecracker("", "[factory]\nenable_template = true"),
            Want::Fails(&["enable_template requires an initrd"]),
        ),
        (
            "vm cache qemu",
            qemu("", "[factory]\nvm_cache_number = 2"),
            Want::Ok(|c| c.factory.vm_cache_number == 2),
        ),
        (
            "vm cache fc",
            firecracker("", "[factory]\nvm_cache_number = 2"),
            Want::Fails(&["vm_cache_number", "firecracker"]),
        ),
        (
            "factory defaults",
            qemu("", ""),
            Want::Ok(|c| {
                c.factory.template_path.as_os_str() == "/run/vc/vm/template"
                    && c.factory.vm_cache_number == 0
            }),
        ),
    ]);
}

#[test]
fn paths() {
    run(vec![
        ("jailer empty", firecracker("jailer_path = \"\"", ""), Want::Ok(|c| c.hypervisor.jailer_path.is_none())),
        ("jailer set", firecracker("jailer_path = \"jailer\"", ""), Want::Ok(|c| c.hypervisor.jailer_path.as_ref().is_some_and(|p| p.is_absolute()))),
        ("jailer missing", firecracker("jailer_path = \"nope\"", ""), Want::Fails(&["hypervisor.firecracker.jailer_path", "\"nope\"", ":5:"])),
        (
            "kernel missing",
            "[hypervisor.qemu]\npath = \"qemu\"\nkernel = \"/nonexistent/vmlinux\"\ninitrd = \"initrd.img\"\n".into(),
            Want::Fails(&["hypervisor.qemu.kernel", "/nonexistent/vmlinux", ":3:10"]),
        ),
        ("kernel is a dir", "[hypervisor.qemu]\npath = \"qemu\"\nkernel = \".\"\ninitrd = \"initrd.img\"\n".into(), Want::Fails(&["not a regular file"])),
        ("firmware missing", qemu("firmware = \"nope.fd\"", ""), Want::Fails(&["hypervisor.qemu.firmware"])),
        ("firmware empty", qemu("firmware = \"\"", ""), Want::Ok(|c| c.hypervisor.firmware.is_none())),
        ("shim absent", qemu("", ""), Want::Ok(|c| c.shim.path.as_os_str().is_empty())),
        ("shim missing", qemu("", "[shim.kata]\npath = \"nope\""), Want::Fails(&["shim.kata.path"])),
    ]);
}

#[test]
fn symlinked_asset_resolves_to_target() {
    let a = Assets::new();
    std::os::unix::fs::symlink(a.path("vmlinux"), a.path("kernel-link")).unwrap();
    let text =
        "[hypervisor.qemu]\npath = \"qemu\"\nkernel = \"kernel-link\"\ninitrd = \"initrd.img\"\n";
    let cfg = a.load(text).unwrap();
    assert_eq!(cfg.hypervisor.kernel, a.path("vmlinux"));
}

#[test]
fn jail_section() {
    run(vec![
        (
            "jail defaults",
            qemu("", ""),
            Want::Ok(|c| {
                let j = &c.jail;
                j.uid == 30000
                    && j.gid == 30000
                    && j.id_range_size == 10_000
                    && j.chroot_base_dir.as_os_str() == "/srv/vmjail"
                    && j.state_dir.as_os_str() == "/run/vmjail"
                    && j.cgroup_version == CgroupVersionSetting::Auto
                    && j.cgroups.is_empty()
                    && j.parent_cgroup == "vmjail"
                    && j.rlimit_fsize.is_none()
                    && j.rlimit_no_file == 2048
                    && j.new_pid_ns
                    && !j.daemonize
            }),
        ),
        (
            "jail set",
            qemu("", "[jail]\nuid = 1234\ngid = 1235\ncgroup_version = 2\ncgroups = [\"cpu.max=50000 100000\", \"memory.max=1G\"]\nrlimit_fsize = 1048576\nparent_cgroup = \"a/b\""),
            Want::Ok(|c| {
                let j = &c.jail;
                j.uid == 1234
                    && j.gid == 1235
                    && j.cgroup_version == CgroupVersionSetting::V2
                    && j.cgroups == [("cpu.max".to_string(), "50000 100000".to_string()), ("memory.max".to_string(), "1G".to_string())]
                    && j.rlimit_fsize == Some(1048576)
                    && j.parent_cgroup == "a/b"
            }),
        ),
        ("jail root uid", qemu("", "[jail]\nuid = 0"), Want::Fails(&["jail.uid", "root", "allow_root"])),
        ("jail root gid", qemu("", "[jail]\ngid = 0"), Want::Fails(&["jail.gid"])),
        ("jail root allowed", qemu("", "[jail]\nuid = 0\ngid = 0\nallow_root = true"), Want::Ok(|c| c.jail.uid == 0 && c.jail.id_range_size == 1)),
        ("jail range with root", qemu("", "[jail]\nuid = 0\ngid = 0\nallow_root = true\nid_range_size = 5"), Want::Fails(&["jail.id_range_size", "root"])),
        ("jail range over nobody", qemu("", "[jail]\nuid = 60000\nid_range_size = 10000"), Want::Fails(&["jail.id_range_size", "65534"])),
        ("jail range zero", qemu("", "[jail]\nid_range_size = 0"), Want::Fails(&["jail.id_range_size", "at least 1"])),
        ("jail range one", qemu("", "[jail]\nid_range_size = 1"), Want::Ok(|c| c.jail.id_range_size == 1)),
        ("jail relative chroot", qemu("", "[jail]\nchroot_base_dir = \"srv\""), Want::Fails(&["jail.chroot_base_dir", "absolute"])),
        ("jail dotdot state", qemu("", "[jail]\nstate_dir = \"/run/../etc\""), Want::Fails(&["jail.state_dir"])),
        ("jail parent escape", qemu("", "[jail]\nparent_cgroup = \"../x\""), Want::Fails(&["jail.parent_cgroup"])),
        ("jail bad cgroup", qemu("", "[jail]\ncgroups = [\"../../x=1\"]"), Want::Fails(&["jail.cgroups"])),
        ("jail bad version", qemu("", "[jail]\ncgroup_version = \"3\""), Want::Fails(&["jail.cgroup_version", "auto"])),
        ("jail no_file 0", qemu("", "[jail]\nrlimit_no_file = 0"), Want::Fails(&["jail.rlimit_no_file"])),
        ("jail uid negative", qemu("", "[jail]\nuid = -1"), Want::Fails(&["jail.uid", "integer"])),
    ]);
}
