//! Before a booting guest's agent is first dialled, wait for the guest to
//! say it is up: hybrid-vsock connections tried (every 20 ms) while the
//! guest's vsock driver was still coming up were seen to wedge
//! `vhost-device-vsock` on a loaded host, so that no later connection was
//! answered and the agent's wait timed out (two TCG guests booting at
//! once were enough).

use std::time::{Duration, Instant};

use super::Sandboxes;
use crate::{HypervisorFactory, SandboxId, Stored};

/// What vmjail's guest init prints on its console once the agent runs.
const GUEST_READY: &[u8] = b"VMJAIL-GUEST-READY";
/// A VMM running longer than this is past its boot: its console is not
/// waited for (its log may have rotated the marker away).
const BOOT_WINDOW: Duration = Duration::from_secs(120);
/// How often the console log is looked at.
const POLL: Duration = Duration::from_millis(25);

impl<F: HypervisorFactory> Sandboxes<F> {
    /// Waits until `deadline` at most for sandbox `id`'s console to show
    /// [`GUEST_READY`], while its VMM is young and alive. A guest that
    /// never prints it (another image) is dialled once the wait ends.
    pub(super) fn wait_for_boot(&self, id: &SandboxId, deadline: Instant) {
        let Ok(Stored::State(state)) = self.store.load(id) else {
            return;
        };
        let Some(log) = state.console.as_ref().map(|c| c.log.clone()) else {
            return;
        };
        let Some((_, start_ticks)) = state.vmm_process() else {
            return;
        };
        if age(start_ticks).map_or(true, |age| age > BOOT_WINDOW) {
            return;
        }
        while Instant::now() < deadline && state.vmm_alive() {
            let seen = std::fs::read(&log)
                .is_ok_and(|text| text.windows(GUEST_READY.len()).any(|w| w == GUEST_READY));
            if seen {
                return;
            }
            std::thread::sleep(POLL);
        }
    }
}

/// How long ago a process started `start_ticks` (clock ticks after boot,
/// `/proc/<pid>/stat` field 22) did.
fn age(start_ticks: u64) -> Option<Duration> {
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|hz| *hz > 0)? as f64;
    Some(Duration::from_secs_f64(
        (uptime - start_ticks as f64 / hz).max(0.0),
    ))
}
