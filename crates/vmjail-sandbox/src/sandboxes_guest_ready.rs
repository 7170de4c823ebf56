//! Waiting for a freshly started guest before its agent is first dialled.
//!
//! Hybrid-vsock connections tried while the guest's vsock driver is still
//! coming up were seen to wedge `vhost-device-vsock` on a loaded host: it
//! answered no later connection either, and the agent was never reached.
//! So the host dials only once the guest has printed [`GUEST_READY`] on
//! the console (its agent does so once it accepts connections).

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use super::Sandboxes;
use crate::console::{self, ConsoleTail};
use crate::state::Status;
use crate::store::Stored;
use crate::{HypervisorFactory, SandboxId};

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
        let mut scan = LogScan::new(&log);
        let mut status_read = Instant::now();
        while Instant::now() < deadline {
            if rotated.exists() || scan.found() {
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
        dir.join(console::ROTATED).exists() || LogScan::new(&dir.join(console::LOG)).found()
    }
}

/// A search of the (bounded, growing) console log for the ready marker,
/// through [`ConsoleTail`] (which reads each byte once, across rotations,
/// never through a symlink).
struct LogScan {
    log: ConsoleTail,
    marker: MarkerSearch,
}

impl LogScan {
    fn new(log: &Path) -> Self {
        Self {
            log: ConsoleTail::new(log),
            marker: MarkerSearch::default(),
        }
    }

    /// Whether the marker is in the log as it now is (an unreadable log
    /// only means "not yet").
    fn found(&mut self) -> bool {
        let _ = self.log.pump(&mut self.marker);
        self.marker.found
    }
}

/// Looks for the marker in the bytes written to it, keeping those at the
/// end that could start a marker split across two writes.
#[derive(Default)]
struct MarkerSearch {
    tail: Vec<u8>,
    found: bool,
}

impl Write for MarkerSearch {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if !self.found {
            self.tail.extend_from_slice(bytes);
            self.found = self
                .tail
                .windows(GUEST_READY.len())
                .any(|window| window == GUEST_READY);
            let cut = self.tail.len().saturating_sub(GUEST_READY.len() - 1);
            self.tail.drain(..cut);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_is_found_anywhere_in_the_log_even_split_across_looks() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("console.log");
        let mut scan = LogScan::new(&log);
        assert!(!scan.found(), "no log yet");
        std::fs::write(&log, "booting\nACPI: ...\nVMJAIL-GUEST-").unwrap();
        assert!(!scan.found());
        std::fs::write(&log, "booting\nACPI: ...\nVMJAIL-GUEST-READY uptime=1.2s\n").unwrap();
        assert!(scan.found(), "split across two looks");
        assert!(LogScan::new(&log).found(), "in one look");
        // Truncated and written again: found again from the start.
        let mut scan = LogScan::new(&log);
        std::fs::write(&log, "x".repeat(100)).unwrap();
        assert!(!scan.found());
        std::fs::write(&log, "VMJAIL-GUEST-READY\n").unwrap();
        assert!(scan.found());
    }
}
