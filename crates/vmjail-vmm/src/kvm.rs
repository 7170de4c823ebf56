//! Is `/dev/kvm` usable, and which kind of KVM is it? (Shared by `vmjail
//! check` and the QEMU backend's accelerator choice.)
//!
//! Usable means: the device opens read-write, `KVM_GET_API_VERSION` answers
//! 12 (the only stable API), `KVM_CREATE_VM` returns a VM and
//! `KVM_CREATE_VCPU` a vCPU in it. The kind comes from the loaded module:
//! `/sys/module/kvm_pvm` is the paravirtual PVM module (a stock guest
//! kernel does not boot under it), `kvm_intel`/`kvm_amd` are hardware
//! virtualisation (VT-x/AMD-V). `/proc/cpuinfo`'s `hypervisor` flag says
//! whether this host itself is a VM (nested virtualisation).

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::{ioctl_write_int_bad, request_code_none};

const KVM_IO: u8 = 0xAE;
/// The stable KVM API version every kernel since 2.6.22 reports.
pub const KVM_API_VERSION: i32 = 12;

// KVM_GET_API_VERSION is `_IO` but the kernel rejects a non-zero argument
// with EINVAL, so it is declared with an explicit (zero) int argument rather
// than with `ioctl_none!`, which leaves the third register undefined.
ioctl_write_int_bad!(kvm_get_api_version, request_code_none!(KVM_IO, 0x00));
ioctl_write_int_bad!(kvm_create_vm, request_code_none!(KVM_IO, 0x01));
ioctl_write_int_bad!(kvm_create_vcpu, request_code_none!(KVM_IO, 0x41));

/// Which KVM this host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvmKind {
    /// Hardware virtualisation through the named module.
    Hardware(&'static str),
    /// The paravirtual PVM module.
    Paravirtual,
    /// No known vendor module is loaded.
    Unknown,
}

impl KvmKind {
    pub fn describe(self) -> String {
        match self {
            KvmKind::Hardware(module) => format!("hardware ({module})"),
            KvmKind::Paravirtual => {
                "paravirtual (kvm_pvm: stock guest kernels do not boot under it; QEMU uses TCG)"
                    .into()
            }
            KvmKind::Unknown => "unknown (no kvm_intel, kvm_amd or kvm_pvm module)".into(),
        }
    }
}

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvmFacts {
    /// `Ok(api version)` when a VM and a vCPU could be created.
    pub usable: Result<i32, String>,
    pub kind: KvmKind,
    /// This host is itself a guest (`hypervisor` CPU flag).
    pub nested: bool,
}

/// Probe `/dev/kvm` and the loaded modules.
pub fn probe() -> KvmFacts {
    KvmFacts {
        usable: create_vm(Path::new("/dev/kvm")),
        kind: kind_from_modules(Path::new("/sys/module")),
        nested: std::fs::read_to_string("/proc/cpuinfo")
            .is_ok_and(|c| cpuinfo_has_flag(&c, "hypervisor")),
    }
}

/// Open `dev`, check the API version, create a VM and one vCPU.
pub fn create_vm(dev: &Path) -> Result<i32, String> {
    let kvm = OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev)
        .map_err(|e| format!("cannot open {}: {e}", dev.display()))?;
    // SAFETY: KVM_GET_API_VERSION takes a zero argument and only returns a value.
    let version = unsafe { kvm_get_api_version(kvm.as_raw_fd(), 0) }
        .map_err(|e| format!("KVM_GET_API_VERSION failed: {e}"))?;
    if version != KVM_API_VERSION {
        return Err(format!(
            "KVM API version {version}, expected {KVM_API_VERSION}"
        ));
    }
    // SAFETY: KVM_CREATE_VM takes the machine type (0: default) by value and
    // returns a new fd, which OwnedFd closes.
    let vm = unsafe { kvm_create_vm(kvm.as_raw_fd(), 0) }
        .map_err(|e| format!("KVM_CREATE_VM failed: {e}"))?;
    // SAFETY: `vm` is a fresh fd owned by nobody else.
    let vm = unsafe { OwnedFd::from_raw_fd(vm) };
    // SAFETY: KVM_CREATE_VCPU takes the vCPU id by value and returns an fd.
    let vcpu = unsafe { kvm_create_vcpu(vm.as_raw_fd(), 0) }
        .map_err(|e| format!("KVM_CREATE_VCPU failed: {e}"))?;
    // SAFETY: as above; dropping closes it.
    drop(unsafe { OwnedFd::from_raw_fd(vcpu) });
    Ok(version)
}

/// The KVM kind from the modules under `sys_module` (`/sys/module`).
pub fn kind_from_modules(sys_module: &Path) -> KvmKind {
    if sys_module.join("kvm_pvm").exists() {
        KvmKind::Paravirtual
    } else if sys_module.join("kvm_intel").exists() {
        KvmKind::Hardware("Intel VT-x, kvm_intel")
    } else if sys_module.join("kvm_amd").exists() {
        KvmKind::Hardware("AMD-V, kvm_amd")
    } else {
        KvmKind::Unknown
    }
}

/// Whether any `flags` line of `/proc/cpuinfo` text lists `flag`.
pub fn cpuinfo_has_flag(cpuinfo: &str, flag: &str) -> bool {
    cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .filter_map(|l| l.split_once(':'))
        .any(|(_, flags)| flags.split_whitespace().any(|f| f == flag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_table() {
        let cases: [(&[&str], KvmKind); 5] = [
            (&[], KvmKind::Unknown),
            (&["kvm"], KvmKind::Unknown),
            (
                &["kvm", "kvm_intel"],
                KvmKind::Hardware("Intel VT-x, kvm_intel"),
            ),
            (&["kvm", "kvm_amd"], KvmKind::Hardware("AMD-V, kvm_amd")),
            (&["kvm", "kvm_pvm", "kvm_intel"], KvmKind::Paravirtual),
        ];
        for (modules, want) in cases {
            let dir = tempfile::tempdir().unwrap();
            for m in modules {
                std::fs::create_dir(dir.path().join(m)).unwrap();
            }
            assert_eq!(kind_from_modules(dir.path()), want, "{modules:?}");
        }
    }

    #[test]
    fn cpuinfo_table() {
        let info = "processor\t: 0\nflags\t\t: fpu vme hypervisor lahf_lm\nbugs\t\t: x\n";
        assert!(cpuinfo_has_flag(info, "hypervisor"));
        assert!(cpuinfo_has_flag(info, "fpu"));
        assert!(!cpuinfo_has_flag(info, "vmx"));
        assert!(!cpuinfo_has_flag(info, "hyper"));
        assert!(!cpuinfo_has_flag("", "fpu"));
    }

    #[test]
    fn create_vm_on_a_non_kvm_file_fails_clearly() {
        let err = create_vm(Path::new("/dev/null")).unwrap_err();
        assert!(err.contains("KVM_GET_API_VERSION failed"), "{err}");
        let err = create_vm(Path::new("/nonexistent/kvm")).unwrap_err();
        assert!(err.contains("cannot open /nonexistent/kvm"), "{err}");
    }

    /// The real device: on a KVM host this creates a VM.
    #[test]
    fn real_dev_kvm() {
        if !Path::new("/dev/kvm").exists() {
            assert!(std::env::var_os("CI").is_none(), "CI hosts have /dev/kvm");
            println!("skipped: no /dev/kvm");
            return;
        }
        let facts = probe();
        assert_eq!(facts.usable, Ok(KVM_API_VERSION), "{facts:?}");
    }
}
