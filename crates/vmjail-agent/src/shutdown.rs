//! `Shutdown`: sync the guest's filesystems and power the VM off.

use std::time::Duration;

use nix::sys::reboot::{reboot, RebootMode};

/// Powers off shortly after returning, so the answer reaches the host
/// first. Inside a PID namespace other than the first, the kernel ends that
/// namespace's init instead of the machine (how the host tests run it).
pub fn power_off_soon() {
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(100));
        let e = power_off();
        tracing::error!("power off: {e}");
    });
}

/// Syncs and powers off now; returns only on failure, with the reason.
pub fn power_off() -> nix::Error {
    nix::unistd::sync();
    match reboot(RebootMode::RB_POWER_OFF) {
        Err(e) => e,
    }
}
