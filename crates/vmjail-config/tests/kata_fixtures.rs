//! Kata's own configuration files of 2019 load unchanged (only the asset
//! paths point at temp files).

mod common;

use common::{Assets, HOST};
use vmjail_config::*;

fn fill(text: &str, a: &Assets) -> String {
    text.replace("@QEMU@", a.path("qemu").to_str().unwrap())
        .replace("@FIRECRACKER@", a.path("firecracker").to_str().unwrap())
        .replace("@JAILER@", a.path("jailer").to_str().unwrap())
        .replace("@KERNEL@", a.path("vmlinux").to_str().unwrap())
        .replace("@INITRD@", a.path("initrd.img").to_str().unwrap())
        .replace("@IMAGE@", a.path("image.img").to_str().unwrap())
        .replace("@SHIM@", a.path("kata-shim").to_str().unwrap())
        .replace("@PROXY@", a.path("kata-proxy").to_str().unwrap())
}

#[test]
fn kata_qemu_2019_loads() {
    let a = Assets::new();
    let text = fill(
        include_str!("fixtures/kata-configuration-qemu-2019.toml"),
        &a,
    );
    let cfg = a.load(&text).unwrap();
    assert_eq!(cfg.hypervisor_kind, HypervisorKind::Qemu);
    assert_eq!(cfg.hypervisor.path, a.path("qemu"));
    assert_eq!(cfg.hypervisor.initrd, Some(a.path("initrd.img")));
    assert_eq!(cfg.hypervisor.image, None);
    assert_eq!(cfg.hypervisor.machine_type, "pc");
    assert_eq!(cfg.hypervisor.default_vcpus, 1);
    assert_eq!(cfg.hypervisor.default_maxvcpus, HOST.cpus);
    assert_eq!(cfg.hypervisor.default_memory, 2048);
    assert_eq!(cfg.hypervisor.memory_slots, 10);
    assert_eq!(cfg.hypervisor.msize_9p, 8192);
    assert_eq!(
        cfg.hypervisor.block_device_driver,
        BlockDeviceDriver::VirtioScsi
    );
    assert_eq!(cfg.hypervisor.shared_fs, SharedFs::Virtio9p);
    // Kata's file names a virtiofsd that does not exist here; with
    // virtio-9p it is not used, so not resolved.
    assert_eq!(cfg.hypervisor.virtio_fs_daemon, None);
    assert!(!cfg.hypervisor.use_vsock);
    assert_eq!(cfg.proxy.kind, ProxyKind::Kata);
    assert_eq!(cfg.proxy.path, Some(a.path("kata-proxy")));
    assert_eq!(cfg.shim.path, a.path("kata-shim"));
    assert_eq!(
        cfg.runtime.internetworking_model,
        InterNetworkingModel::Tcfilter
    );
    assert!(cfg.runtime.disable_guest_seccomp);
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
}

#[test]
fn kata_firecracker_2019_loads() {
    let a = Assets::new();
    let text = fill(include_str!("fixtures/kata-configuration-fc-2019.toml"), &a);
    let cfg = a.load(&text).unwrap();
    assert_eq!(cfg.hypervisor_kind, HypervisorKind::Firecracker);
    assert_eq!(cfg.hypervisor.jailer_path, Some(a.path("jailer")));
    assert_eq!(cfg.hypervisor.image, Some(a.path("image.img")));
    assert_eq!(
        cfg.hypervisor.block_device_driver,
        BlockDeviceDriver::VirtioMmio
    );
    // Firecracker always uses (hybrid) vsock, even without /dev/vhost-vsock,
    // so no proxy: its path (absent on this host) is not resolved.
    assert!(cfg.hypervisor.use_vsock);
    assert!(cfg.agent.use_vsock);
    assert_eq!(cfg.proxy.kind, ProxyKind::None);
    assert_eq!(cfg.proxy.path, None);
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
}
