//! Test helpers: a temp directory with fake binaries and guest assets, and
//! a fixed set of host facts.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};

use vmjail_config::{load_file, HostFacts, LoadError, RuntimeConfig};

pub const HOST: HostFacts = HostFacts {
    cpus: 4,
    has_vhost_vsock: false,
};

/// A temp dir holding every file a config may point at.
pub struct Assets {
    pub dir: tempfile::TempDir,
}

impl Assets {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (name, size) in [
            ("qemu", 8),
            ("firecracker", 8),
            ("jailer", 8),
            ("acrn-dm", 8),
            ("acrnctl", 8),
            ("virtiofsd", 8),
            ("kata-shim", 8),
            ("kata-proxy", 8),
            ("vmlinux", 4096),
            ("initrd.img", 4096),
            ("image.img", 4096),
            ("empty.img", 0),
        ] {
            std::fs::write(dir.path().join(name), vec![7u8; size]).unwrap();
        }
        Assets { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().canonicalize().unwrap().join(name)
    }

    /// Write `text` as `configuration.toml` in the asset dir and load it.
    pub fn load(&self, text: &str) -> Result<RuntimeConfig, LoadError> {
        self.load_with(text, &HOST)
    }

    pub fn load_with(&self, text: &str, host: &HostFacts) -> Result<RuntimeConfig, LoadError> {
        let path = self.write("configuration.toml", text);
        load_file(&path, host)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn file(&self) -> PathBuf {
        self.path("configuration.toml")
    }
}

/// A minimal valid QEMU config (relative asset paths) plus `extra` lines
/// inside `[hypervisor.qemu]`, and `tail` after it.
pub fn qemu(extra: &str, tail: &str) -> String {
    format!(
        "[hypervisor.qemu]\npath = \"qemu\"\nkernel = \"vmlinux\"\ninitrd = \"initrd.img\"\n{extra}\n{tail}\n"
    )
}

pub fn firecracker(extra: &str, tail: &str) -> String {
    format!(
        "[hypervisor.firecracker]\npath = \"firecracker\"\nkernel = \"vmlinux\"\nimage = \"image.img\"\n{extra}\n{tail}\n"
    )
}

pub fn acrn(extra: &str, tail: &str) -> String {
    format!(
        "[hypervisor.acrn]\npath = \"acrn-dm\"\nctlpath = \"acrnctl\"\nkernel = \"vmlinux\"\nimage = \"image.img\"\n{extra}\n{tail}\n"
    )
}

pub fn assert_path_is(p: &Path, expected: &Path) {
    assert_eq!(p, expected);
}
