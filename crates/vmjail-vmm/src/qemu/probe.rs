//! What this host's QEMU can do: a usable KVM, a seccomp sandbox — found
//! without ever running QEMU outside its jail.
//!
//! KVM is usable when `/dev/kvm` creates a VM and a vCPU *and* the module
//! behind it is hardware virtualisation: the paravirtual `kvm_pvm` module
//! accepts both (and a recent QEMU even starts its firmware under it), but a
//! stock guest kernel never boots there, so QEMU must use TCG. Seccomp
//! (`-sandbox on`) is there when the binary links libseccomp, read from its
//! ELF headers. Both are cheap, so nothing is cached.

use std::path::Path;

use crate::kvm::{self, KvmKind};

/// The capabilities found for one QEMU binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub kvm: bool,
    pub seccomp: bool,
}

/// Probe the host's KVM and `qemu`'s headers. The module is looked at
/// first: where it rules KVM out, no VM is created (that costs
/// milliseconds on every `create`).
pub fn probe(qemu: &Path) -> Probe {
    let kind = kvm::kind_from_modules(Path::new("/sys/module"));
    Probe {
        kvm: kvm_boots_stock_guests(kind) && kvm::create_vm(Path::new("/dev/kvm")).is_ok(),
        seccomp: links_libseccomp(qemu),
    }
}

/// Only hardware KVM (or an unknown module that created a vCPU) runs a
/// stock guest kernel; PVM does not.
fn kvm_boots_stock_guests(kind: KvmKind) -> bool {
    !matches!(kind, KvmKind::Paravirtual)
}

/// Debian's QEMU is linked against `libseccomp.so.2`; a build without
/// seccomp support rejects `-sandbox`.
fn links_libseccomp(qemu: &Path) -> bool {
    vmjail_jail::libs::needed_libraries(qemu)
        .is_ok_and(|needed| needed.iter().any(|l| l.starts_with("libseccomp.so")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pvm_never_counts_as_usable_kvm() {
        assert!(!kvm_boots_stock_guests(KvmKind::Paravirtual));
        assert!(kvm_boots_stock_guests(KvmKind::Hardware("kvm_intel")));
    }

    #[test]
    fn seccomp_support_is_read_from_the_binary() {
        // A Rust test binary links no libseccomp; a missing file has none.
        let me = std::env::current_exe().unwrap();
        assert!(!links_libseccomp(&me));
        assert!(!links_libseccomp(Path::new("/nonexistent/qemu")));
        let qemu = Path::new("/usr/bin/qemu-system-x86_64");
        if qemu.exists() {
            // Debian's QEMU is built with seccomp.
            assert!(links_libseccomp(qemu));
        }
    }
}
