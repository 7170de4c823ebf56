//! Waiting for a freshly started guest before its agent is first dialled.
//!
//! Hybrid-vsock connections tried while the guest's vsock driver is still
//! coming up were seen to wedge `vhost-device-vsock` on a loaded host: it
//! answered no later connection either, and the agent was never reached.
//! So the host dials only once the guest has printed [`GUEST_READY`] on
//! the console (its agent does so once it accepts connections).

use std::io::{Read, Seek, SeekFrom};
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

/// How often the console log is looked at: the first container waits on
/// this, and a look reads only what was added since the last one.
const POLL: Duration = Duration::from_millis(2);

/// How often, meanwhile, the sandbox's state is read (is it still running?).
const STATUS_POLL: Duration = Duration::from_millis(50);

impl<F: HypervisorFactory> Sandboxes<F> {
    /// Returns once sandbox `id`'s guest has said it is up, its log has
    /// rotated (a guest that wrote a whole log segment is up), the
    /// sandbox is no longer running, or `deadline` passed — whichever is
    /// first; the caller dials then and reports what it finds.
    pub(super) fn wait_guest_ready(&self, id: &SandboxId, deadline: Instant) {
        let dir = self.store.dir(id);
        let (log, rotated) = (dir.join(console::LOG), dir.join(console::ROTATED));
        let mut scan = LogScan::default();
        let mut status_read = Instant::now();
        while Instant::now() < deadline {
            if rotated.exists() || scan.found(&log) {
                return;
            }
            if status_read.elapsed() >= STATUS_POLL {
                match self.store.load(id) {
                    Ok(Stored::State(state)) if state.status() == Status::Running => {}
                    _ => return,
                }
                status_read = Instant::now();
            }
            std::thread::sleep(POLL);
        }
    }

    /// Whether sandbox `id`'s guest has said it is up (its log holds the
    /// marker, or rotated).
    pub(super) fn guest_said_ready(&self, id: &SandboxId) -> bool {
        let dir = self.store.dir(id);
        dir.join(console::ROTATED).exists() || LogScan::default().found(&dir.join(console::LOG))
    }
}

/// A search of the (bounded, growing) console log for the ready marker
/// that reads each byte once: it keeps where it got to, and the bytes at
/// the end that could start a marker split across two looks.
#[derive(Default)]
struct LogScan {
    offset: u64,
    tail: Vec<u8>,
}

impl LogScan {
    /// Whether the marker is in the log as it now is.
    fn found(&mut self, log: &Path) -> bool {
        let Ok(mut file) = std::fs::File::open(log) else {
            return false;
        };
        if file.metadata().is_ok_and(|m| m.len() < self.offset) {
            // Truncated meanwhile: start over.
            *self = LogScan::default();
        }
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return false;
        }
        let mut added = Vec::new();
        let Ok(read) = file.read_to_end(&mut added) else {
            return false;
        };
        self.offset += read as u64;
        self.tail.extend_from_slice(&added);
        if self
            .tail
            .windows(GUEST_READY.len())
            .any(|window| window == GUEST_READY)
        {
            return true;
        }
        let keep = GUEST_READY.len() - 1;
        let cut = self.tail.len().saturating_sub(keep);
        self.tail.drain(..cut);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_is_found_anywhere_in_the_log_even_split_across_looks() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("console.log");
        let mut scan = LogScan::default();
        assert!(!scan.found(&log), "no log yet");
        std::fs::write(&log, "booting\nACPI: ...\nVMJAIL-GUEST-").unwrap();
        assert!(!scan.found(&log));
        std::fs::write(&log, "booting\nACPI: ...\nVMJAIL-GUEST-READY uptime=1.2s\n").unwrap();
        assert!(scan.found(&log), "split across two looks");
        assert!(LogScan::default().found(&log), "in one look");
        // Truncated and written again: found again from the start.
        let mut scan = LogScan::default();
        std::fs::write(&log, "x".repeat(100)).unwrap();
        assert!(!scan.found(&log));
        std::fs::write(&log, "VMJAIL-GUEST-READY\n").unwrap();
        assert!(scan.found(&log));
    }
}
