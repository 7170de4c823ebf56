//! The container process's capability sets from the spec, as bit masks,
//! and the syscalls that apply them (no wrapper crate: prctl and capset).
//! No `capabilities` in the spec means none at all.

use nix::errno::Errno;
use nix::libc;
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

/// The kernel's capability numbers, in order (CAP_CHOWN = 0 …), by the
/// names oci-spec displays them with.
const NAMES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

impl CapSets {
    pub fn from_spec(caps: Option<&LinuxCapabilities>) -> Result<CapSets, String> {
        let Some(caps) = caps else {
            return Ok(CapSets::default());
        };
        Ok(CapSets {
            bounding: mask(caps.bounding().as_ref())?,
            effective: mask(caps.effective().as_ref())?,
            permitted: mask(caps.permitted().as_ref())?,
            inheritable: mask(caps.inheritable().as_ref())?,
            ambient: mask(caps.ambient().as_ref())?,
        })
    }
}

fn mask(set: Option<&Capabilities>) -> Result<u64, String> {
    let mut bits = 0u64;
    for cap in set.into_iter().flatten() {
        let name = cap.to_string();
        let n = NAMES
            .iter()
            .position(|known| *known == name)
            .ok_or_else(|| format!("capability CAP_{name} is not supported"))?;
        bits |= 1 << n;
    }
    Ok(bits)
}

/// Drops every capability outside `bounding` from the bounding set (while
/// still root, before the user changes).
pub fn limit_bounding(bounding: u64) -> Result<(), String> {
    for cap in 0..64u64 {
        if bounding & (1 << cap) != 0 {
            continue;
        }
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) } != 0 {
            match Errno::last() {
                // Past the kernel's last capability.
                Errno::EINVAL => break,
                e => {
                    return Err(format!(
                        "dropping capability {cap} from the bounding set: {e}"
                    ))
                }
            }
        }
    }
    Ok(())
}

/// Sets effective, permitted and inheritable, then raises the ambient
/// ones (after the user change, which kept the permitted set).
pub fn apply(sets: &CapSets) -> Result<(), String> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let half = |shift: u32| Data {
        effective: (sets.effective >> shift) as u32,
        permitted: (sets.permitted >> shift) as u32,
        inheritable: (sets.inheritable >> shift) as u32,
    };
    let data = [half(0), half(32)];
    // SAFETY: capset reads one header and two data structs, valid here.
    if unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) } != 0 {
        return Err(format!("capset: {}", Errno::last()));
    }
    for cap in (0..64u64).filter(|c| sets.ambient & (1 << c) != 0) {
        // SAFETY: prctl with integer arguments.
        let raised =
            unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE, cap, 0, 0) };
        if raised != 0 {
            return Err(format!(
                "raising ambient capability {cap}: {}",
                Errno::last()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::Capability;

    #[test]
    fn names_map_to_kernel_numbers() {
        let set: Capabilities = [
            Capability::Chown,
            Capability::NetBindService,
            Capability::CheckpointRestore,
        ]
        .into_iter()
        .collect();
        assert_eq!(mask(Some(&set)), Ok((1 << 0) | (1 << 10) | (1 << 40)));
        assert_eq!(CapSets::from_spec(None), Ok(CapSets::default()));
    }
}
