//! Waiting for a freshly started guest before its agent is first dialled.
//!
//! Hybrid-vsock connections tried while the guest's vsock driver is still
//! coming up were seen to wedge `vhost-device-vsock` on a loaded host: it
//! answered no later connection either, and the agent was never reached.
//! So the host dials only once vmjail's guest init has printed
//! [`GUEST_READY`] on the console (it does so after starting the agent).

use std::path::Path;
use std::time::{Duration, Instant};

use super::Sandboxes;
use crate::state::Status;
use crate::store::Stored;
use crate::{console, HypervisorFactory, SandboxId};

/// What vmjail's guest init prints on its console once its agent runs.
pub const GUEST_READY: &[u8] = b"VMJAIL-GUEST-READY";

/// How often the console log is looked at.
const POLL: Duration = Duration::from_millis(10);

impl<F: HypervisorFactory> Sandboxes<F> {
    /// Returns once sandbox `id`'s guest has said it is up, its log has
    /// rotated (a guest that wrote a whole log segment is up), the
    /// sandbox is no longer running, or `deadline` passed — whichever is
    /// first; the caller dials then and reports what it finds.
    pub(super) fn wait_guest_ready(&self, id: &SandboxId, deadline: Instant) {
        let dir = self.store.dir(id);
        let (log, rotated) = (dir.join(console::LOG), dir.join(console::ROTATED));
        while Instant::now() < deadline {
            if rotated.exists() || shows_ready(&log) {
                return;
            }
            match self.store.load(id) {
                Ok(Stored::State(state)) if state.status() == Status::Running => {}
                _ => return,
            }
            std::thread::sleep(POLL);
        }
    }
}

/// Whether the (bounded) console log holds the ready marker.
fn shows_ready(log: &Path) -> bool {
    std::fs::read(log).is_ok_and(|text| {
        text.windows(GUEST_READY.len())
            .any(|window| window == GUEST_READY)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_is_found_anywhere_in_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("console.log");
        assert!(!shows_ready(&log), "no log yet");
        std::fs::write(&log, "booting\nACPI: ...\n").unwrap();
        assert!(!shows_ready(&log));
        std::fs::write(&log, "booting\nVMJAIL-GUEST-READY uptime=1.2s\nmore\n").unwrap();
        assert!(shows_ready(&log));
    }
}
