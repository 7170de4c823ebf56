//! `Shutdown`: sync the guest's filesystems and power the VM off.

use std::time::Duration;

use nix::sys::reboot::{reboot, RebootMode};

/// Powers off shortly after returning, so the answer reaches the host
/// first. Inside a PID namespace other than the first, the kernel ends that
/// namespace's init instead of the machine (how the host tests run it).
pub fn power_off_soon() {
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(100));
        nix::unistd::sync();
        // Returns only on failure.
        let Err(e) = reboot(RebootMode::RB_POWER_OFF);
        tracing::error!("power off: {e}");
    });
}
