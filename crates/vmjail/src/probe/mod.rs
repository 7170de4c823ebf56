//! Host probes for `vmjail check`: each module finds one fact about this
//! host by trying the real thing (opening the device, creating the VM,
//! entering the namespace, running the binary). They report facts; `check`
//! decides what the facts mean for the configured sandbox.

pub mod binaries;
pub mod cgroups;
pub mod devices;
pub mod dirs;
pub mod namespaces;
