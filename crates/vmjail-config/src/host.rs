//! The few host facts Kata's rules depend on. Injected into the loader so
//! tests can pin them; [`HostFacts::detect`] reads the real host.

use std::path::Path;

/// Host facts the configuration rules need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostFacts {
    /// Online CPUs (vCPU defaults are clamped to it).
    pub cpus: u32,
    /// Whether `/dev/vhost-vsock` exists (reported by `vmjail env`/`check`).
    pub has_vhost_vsock: bool,
}

impl HostFacts {
    /// Read the facts from this host.
    pub fn detect() -> Self {
        let cpus = std::thread::available_parallelism()
            .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
            .unwrap_or(1);
        HostFacts {
            cpus,
            has_vhost_vsock: Path::new("/dev/vhost-vsock").exists(),
        }
    }
}
