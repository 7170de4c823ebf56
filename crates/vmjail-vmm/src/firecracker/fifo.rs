//! Firecracker's log and metrics FIFOs (created in the jail by the jail's
//! `make_fifo`), read by vmjail into its own log (`tracing`, target
//! `firecracker`).

use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::Error;

/// Threads forwarding each FIFO's lines to `tracing` until stopped.
#[derive(Default)]
pub struct LogPump {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl LogPump {
    /// Forward lines of FIFO `path` as `what` (e.g. "log", "metrics").
    pub fn watch(&mut self, id: &str, what: &'static str, path: &Path) -> Result<(), Error> {
        // Opened read-write: a FIFO with a writer of our own never reports
        // hang-up, so the reader neither spins before Firecracker opens it
        // nor after it closes it. O_NOFOLLOW: the jail is the VMM's.
        let file = std::fs::File::options()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
            .open(path)
            .map_err(|source| Error::OpenFifo {
                path: path.to_path_buf(),
                source,
            })?;
        let stop = Arc::clone(&self.stop);
        let id = id.to_owned();
        let path: PathBuf = path.to_path_buf();
        self.threads.push(std::thread::spawn(move || {
            pump(file, &stop, &id, what, &path)
        }));
        Ok(())
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for LogPump {
    fn drop(&mut self) {
        self.stop();
    }
}

fn pump(mut file: std::fs::File, stop: &AtomicBool, id: &str, what: &str, path: &Path) {
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                tracing::warn!(id, fifo = %path.display(), "polling the {what} FIFO failed: {e}");
                return;
            }
        }
        match file.read(&mut buf) {
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => {
                tracing::warn!(id, fifo = %path.display(), "reading the {what} FIFO failed: {e}");
                return;
            }
        }
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..end]);
            tracing::info!(target: "firecracker", id, what, "{}", line.trim_end());
        }
        // A VMM that never ends its line cannot make us buffer forever.
        if pending.len() > 64 * 1024 {
            pending.clear();
        }
    }
}
