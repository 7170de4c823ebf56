//! `[factory]`: VM templating and the VM cache.

use crate::model::HypervisorKind;

/// Kata's default `template_path`.
pub const DEFAULT_TEMPLATE_PATH: &str = "/run/vc/vm/template";
/// Kata's default `vm_cache_endpoint`.
pub const DEFAULT_VM_CACHE_ENDPOINT: &str = "/var/run/kata-containers/cache.sock";

/// Which factory rule a configuration breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactoryViolation {
    /// `enable_template` needs an initrd.
    TemplateNeedsInitrd,
    /// `vm_cache_number > 0` works with QEMU only.
    VmCacheNeedsQemu,
}

/// Kata's `checkFactoryConfig`. (Its "VM cache just support kata agent"
/// check cannot fail here: an agent other than `[agent.kata]` is already a
/// load error.)
pub fn check_factory(
    enable_template: bool,
    has_initrd: bool,
    vm_cache_number: u32,
    kind: HypervisorKind,
) -> Result<(), FactoryViolation> {
    if enable_template && !has_initrd {
        return Err(FactoryViolation::TemplateNeedsInitrd);
    }
    if vm_cache_number > 0 && kind != HypervisorKind::Qemu {
        return Err(FactoryViolation::VmCacheNeedsQemu);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use FactoryViolation::*;
    use HypervisorKind::*;

    #[test]
    fn factory_table() {
        // (enable_template, has initrd, vm_cache_number, kind, result)
        let cases = [
            (false, false, 0, Qemu, Ok(())),
            (true, true, 0, Qemu, Ok(())),
            (true, false, 0, Qemu, Err(TemplateNeedsInitrd)),
            (false, false, 3, Qemu, Ok(())),
            (false, true, 3, Firecracker, Err(VmCacheNeedsQemu)),
            (false, false, 1, Acrn, Err(VmCacheNeedsQemu)),
            (false, true, 0, Firecracker, Ok(())),
        ];
        for (template, initrd, cache, kind, want) in cases {
            assert_eq!(
                check_factory(template, initrd, cache, kind),
                want,
                "{template} {initrd} {cache} {kind:?}"
            );
        }
    }
}
