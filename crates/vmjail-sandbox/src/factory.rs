//! How the lifecycle gets hypervisors: a fresh one for `create`, a
//! reattached one (from the on-disk record) for every later command.

// `VmmError`, the seam's error type, is large (it carries each backend's
// error); shrinking it is the vmm crate's call, so closures and factories
// returning it here are allowed to.

use std::path::Path;
use std::process::Command;

use vmjail_config::RuntimeConfig;
use vmjail_vmm::{Hypervisor, VmmError, VmmRecord};

pub trait HypervisorFactory {
    /// A backend for `config`, nothing launched yet.
    fn new_hypervisor(&self, config: &RuntimeConfig) -> Result<Box<dyn Hypervisor>, VmmError>;
    /// A backend driving the VMM `record` describes (possibly started by
    /// another, possibly dead, vmjail process).
    fn reattach(&self, record: VmmRecord, config: &RuntimeConfig) -> Box<dyn Hypervisor>;
    /// The console pump for a sandbox whose state directory is `dir`: a
    /// process that copies its stdin into `dir`'s console log (see
    /// [`crate::console`]); the caller sets its stdio.
    fn console_pump(&self, dir: &Path) -> Command;
}

/// The real backends, chosen by [`vmjail_vmm::select`].
#[derive(Debug, Clone)]
pub struct SelectFactory {
    /// The vmjail binary: its `console-pump` subcommand, and the
    /// `vmjail-jailer` binary beside it.
    pub vmjail_exe: std::path::PathBuf,
}

impl SelectFactory {
    /// The built-in jailer: `vmjail-jailer`, installed beside `vmjail`.
    fn jailer_exe(&self) -> std::path::PathBuf {
        self.vmjail_exe.with_file_name("vmjail-jailer")
    }
}

impl HypervisorFactory for SelectFactory {
    fn new_hypervisor(&self, config: &RuntimeConfig) -> Result<Box<dyn Hypervisor>, VmmError> {
        vmjail_vmm::select::new_hypervisor(config, &self.jailer_exe())
    }

    fn reattach(&self, record: VmmRecord, config: &RuntimeConfig) -> Box<dyn Hypervisor> {
        vmjail_vmm::select::reattach(record, config, &self.jailer_exe())
    }

    /// vmjail's hidden `console-pump` subcommand.
    fn console_pump(&self, dir: &Path) -> Command {
        let mut command = Command::new(&self.vmjail_exe);
        command.arg("console-pump").arg(dir);
        command
    }
}
