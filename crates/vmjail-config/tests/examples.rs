//! The shipped `examples/*.toml` load. Each is copied into a temp tree
//! shaped like the repository (`examples/`, `build/guest/`) with fake
//! guest assets, and its absolute binary paths pointed at fake binaries, so
//! the test does not depend on the guest build or installed VMMs.

mod common;

use std::path::{Path, PathBuf};

use common::HOST;
use vmjail_config::*;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// Copy `name` into a fake repository tree; returns (tree, config path).
fn staged(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path().canonicalize().unwrap();
    std::fs::create_dir_all(root.join("examples")).unwrap();
    std::fs::create_dir_all(root.join("build/guest")).unwrap();
    std::fs::create_dir_all(root.join("bin")).unwrap();
    for asset in ["vmlinux", "initramfs.cpio.gz", "rootfs.img"] {
        std::fs::write(root.join("build/guest").join(asset), vec![1u8; 4096]).unwrap();
    }
    let mut text = std::fs::read_to_string(examples_dir().join(name)).unwrap();
    for bin in [
        "/usr/bin/qemu-system-x86_64",
        "/usr/local/bin/firecracker",
        "/usr/bin/acrn-dm",
        "/usr/bin/acrnctl",
    ] {
        let fake = root.join("bin").join(Path::new(bin).file_name().unwrap());
        std::fs::write(&fake, "fake").unwrap();
        text = text.replace(
            &format!("\"{bin}\""),
            &format!("{:?}", fake.to_str().unwrap()),
        );
    }
    let config = root.join("examples").join(name);
    std::fs::write(&config, text).unwrap();
    (tree, config)
}

#[test]
fn qemu_example_loads() {
    let (tree, config) = staged("qemu.toml");
    let root = tree.path().canonicalize().unwrap();
    let cfg = load_file(&config, &HOST).unwrap();
    assert_eq!(cfg.hypervisor_kind, HypervisorKind::Qemu);
    assert_eq!(cfg.hypervisor.kernel, root.join("build/guest/vmlinux"));
    assert_eq!(
        cfg.hypervisor.initrd,
        Some(root.join("build/guest/initramfs.cpio.gz"))
    );
    assert_eq!(cfg.hypervisor.machine_type, "microvm");
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
}

#[test]
fn firecracker_example_loads() {
    let (_tree, config) = staged("firecracker.toml");
    let cfg = load_file(&config, &HOST).unwrap();
    assert_eq!(cfg.hypervisor_kind, HypervisorKind::Firecracker);
    assert_eq!(cfg.hypervisor.jailer_path, None);
    assert!(cfg.hypervisor.use_vsock);
    assert_eq!(cfg.proxy.kind, ProxyKind::None);
    assert_eq!(
        cfg.jail.cgroups,
        [("pids.max".to_string(), "128".to_string())]
    );
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
}

#[test]
fn acrn_example_loads() {
    let (tree, config) = staged("acrn.toml");
    let root = tree.path().canonicalize().unwrap();
    let cfg = load_file(&config, &HOST).unwrap();
    assert_eq!(cfg.hypervisor_kind, HypervisorKind::Acrn);
    assert_eq!(
        cfg.hypervisor.image,
        Some(root.join("build/guest/rootfs.img"))
    );
    assert_eq!(cfg.hypervisor.ctlpath, Some(root.join("bin/acrnctl")));
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
}

#[test]
fn the_three_examples_exist() {
    for name in ["acrn.toml", "firecracker.toml", "qemu.toml"] {
        assert!(
            examples_dir().join(name).is_file(),
            "examples/{name} is missing"
        );
    }
}
