//! `GuestInfo`: what the guest kernel says about itself.

use nix::sys::{sysinfo, utsname};
use vmjail_agent_protocol::agent::GuestInfoResponse;

pub fn guest_info() -> nix::Result<GuestInfoResponse> {
    let uts = utsname::uname()?;
    let sys = sysinfo::sysinfo()?;
    Ok(GuestInfoResponse {
        kernel_release: uts.release().to_string_lossy().into_owned(),
        uptime_ms: u64::try_from(sys.uptime().as_millis()).unwrap_or(u64::MAX),
        memory_total_bytes: sys.ram_total(),
        memory_free_bytes: sys.ram_unused(),
        cpus: online_cpus(),
        ..Default::default()
    })
}

/// The CPUs this agent may run on (its affinity mask), at least 1.
fn online_cpus() -> u32 {
    std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
        .unwrap_or(1)
}
