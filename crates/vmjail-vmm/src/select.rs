//! Backend dispatch: the configured hypervisor kind → its backend.

use std::path::Path;

use vmjail_config::{HypervisorKind, RuntimeConfig};

use crate::firecracker::{self, Firecracker};
use crate::qemu::{self, Qemu};
use crate::{Hypervisor, VmmError, VmmRecord};

/// A fresh backend for `config`, nothing launched yet. `jailer_exe` is the
/// built-in jailer binary (`vmjail-jailer`).
///
/// ACRN configurations load, but no ACRN backend exists: this says so.
pub fn new_hypervisor(
    config: &RuntimeConfig,
    jailer_exe: &Path,
) -> Result<Box<dyn Hypervisor>, VmmError> {
    Ok(match config.hypervisor_kind {
        HypervisorKind::Firecracker => Box::new(Firecracker::new(config, jailer_exe)?),
        HypervisorKind::Qemu => Box::new(Qemu::new(config, jailer_exe)?),
        HypervisorKind::Acrn => return Err(qemu::Error::AcrnUnavailable.into()),
    })
}

/// A backend driving the VMM that `record` describes, launched by this or
/// another (possibly dead) vmjail process; used for every command after
/// `create`. The record's kind decides the backend.
pub fn reattach(
    record: VmmRecord,
    config: &RuntimeConfig,
    jailer_exe: &Path,
) -> Box<dyn Hypervisor> {
    match record.kind {
        HypervisorKind::Firecracker => {
            Box::new(Firecracker::from_record(record, config, jailer_exe))
        }
        // An ACRN record cannot exist (no ACRN VMM is ever launched); the
        // QEMU backend's teardown of its (jail-only) record is harmless.
        HypervisorKind::Qemu | HypervisorKind::Acrn => {
            Box::new(Qemu::from_record(record, config, jailer_exe))
        }
    }
}

/// The guest kernel command line the configured backend passes, exactly:
/// QEMU's (console, TSC hint under TCG) or Firecracker's (its defaults
/// first). ACRN has no backend: its configuration's own parameters.
pub fn kernel_cmdline(config: &RuntimeConfig) -> Result<String, VmmError> {
    let hv = &config.hypervisor;
    Ok(match config.hypervisor_kind {
        HypervisorKind::Qemu => qemu::kernel_cmdline(hv)?,
        HypervisorKind::Firecracker => firecracker::layout::boot_args(&hv.kernel_params),
        HypervisorKind::Acrn => vmjail_config::rules::kernel_params::render(&hv.kernel_params),
    })
}
