//! vCPU defaults and clamping (Kata's `defaultVCPUs`/`defaultMaxVCPUs`).

use crate::model::HypervisorKind;

/// vCPUs when `default_vcpus` is unset or 0.
pub const DEFAULT_VCPUS: u32 = 1;

/// The most vCPUs each hypervisor supports.
///
/// QEMU: Kata's `MaxQemuVCPUs()` on amd64 (240). Firecracker: 32, its API's
/// `vcpu_count` limit. ACRN: Kata's `MaxAcrnVCPUs()` (8).
pub fn hypervisor_max_vcpus(kind: HypervisorKind) -> u32 {
    match kind {
        HypervisorKind::Qemu => 240,
        HypervisorKind::Firecracker => 32,
        HypervisorKind::Acrn => 8,
    }
}

/// `default_vcpus`: unset/0 → 1; negative or above the host's CPUs → the
/// host's CPUs; then capped at the hypervisor's maximum (vmjail addition:
/// a VMM refuses more vCPUs than it supports).
pub fn default_vcpus(requested: Option<i32>, host_cpus: u32, hypervisor_max: u32) -> u32 {
    let host_cpus = host_cpus.max(1);
    let vcpus = match requested {
        None | Some(0) => DEFAULT_VCPUS,
        Some(n) if n < 0 => host_cpus,
        Some(n) => u32::try_from(n).map_or(host_cpus, |n| n.min(host_cpus)),
    };
    vcpus.min(hypervisor_max)
}

/// `default_maxvcpus`: 0 or ≥ the host's CPUs → the host's CPUs, capped at
/// the hypervisor's maximum.
pub fn default_maxvcpus(requested: Option<u32>, host_cpus: u32, hypervisor_max: u32) -> u32 {
    let host_cpus = host_cpus.max(1);
    let wanted = match requested {
        None | Some(0) => host_cpus,
        Some(n) if n >= host_cpus => host_cpus,
        Some(n) => n,
    };
    wanted.min(hypervisor_max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_vcpus_table() {
        // (requested, host cpus, hypervisor max, expected)
        let cases = [
            (None, 4, 240, 1),
            (Some(0), 4, 240, 1),
            (Some(2), 4, 240, 2),
            (Some(4), 4, 240, 4),
            (Some(5), 4, 240, 4),
            (Some(-1), 4, 240, 4),
            (Some(i32::MIN), 4, 240, 4),
            (Some(64), 64, 32, 32),
            (Some(-1), 300, 240, 240),
            (Some(1), 0, 240, 1),
        ];
        for (requested, cpus, max, want) in cases {
            assert_eq!(
                default_vcpus(requested, cpus, max),
                want,
                "{requested:?} on {cpus} cpus, max {max}"
            );
        }
    }

    #[test]
    fn default_maxvcpus_table() {
        let cases = [
            (None, 4, 240, 4),
            (Some(0), 4, 240, 4),
            (Some(2), 4, 240, 2),
            (Some(4), 4, 240, 4),
            (Some(100), 4, 240, 4),
            (Some(0), 300, 240, 240),
            (Some(48), 64, 32, 32),
            (Some(8), 16, 8, 8),
        ];
        for (requested, cpus, max, want) in cases {
            assert_eq!(
                default_maxvcpus(requested, cpus, max),
                want,
                "{requested:?} on {cpus} cpus, max {max}"
            );
        }
    }

    #[test]
    fn hypervisor_maxima() {
        assert_eq!(hypervisor_max_vcpus(HypervisorKind::Qemu), 240);
        assert_eq!(hypervisor_max_vcpus(HypervisorKind::Firecracker), 32);
        assert_eq!(hypervisor_max_vcpus(HypervisorKind::Acrn), 8);
    }
}
