//! Waiting for a freshly started guest before its agent is first dialled.
//!
//! Hybrid-vsock connections tried while the guest's vsock driver is still
//! coming up were seen to wedge `vhost-device-vsock` on a loaded host: it
//! answered no later connection either, and the agent was never reached.
//! So the host dials only once the guest has printed [`GUEST_READY`] on
//! the console (its agent does so once it accepts connections).

use std::path::Path;
use std::time::{Duration, Instant};

use super::Sandboxes;
use crate::state::Status;
use crate::store::Stored;
use crate::{console, HypervisorFactory, SandboxId};

/// What vmjail's guest prints on its console once its agent accepts
/// connections (the agent prints it; see
/// [`vmjail_agent_protocol::GUEST_READY_MARKER`]).
pub const GUEST_READY: &[u8] = vmjail_agent_protocol::GUEST_READY_MARKER.as_bytes();

/// How often the console log is looked at.
const POLL: Duration = Duration::from_millis(10);

impl<F: HypervisorFactory> Sandboxes<F> {
    /// Returns once sandbox `id`'s guest has said it is up, its log has
    /// rotated (a guest that wrote a whole log segment is up), the
    /// sandbox is no longer running, or `deadline` passed — whichever is
    /// first; the caller dials then and reports what it finds.
    pub(super) fn wait_guest_ready(&self, id: &SandboxId, deadline: Instant) {
        while Instant::now() < deadline {
            if self.guest_said_ready(id) {
                return;
            }
            match self.store.load(id) {
                Ok(Stored::State(state)) if state.status() == Status::Running => {}
                _ => return,
            }
            std::thread::sleep(POLL);
        }
    }

    /// Whether sandbox `id`'s guest has said it is up (its log holds the
    /// marker, or rotated).
    pub(super) fn guest_said_ready(&self, id: &SandboxId) -> bool {
        let dir = self.store.dir(id);
        dir.join(console::ROTATED).exists() || shows_ready(&dir.join(console::LOG))
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
