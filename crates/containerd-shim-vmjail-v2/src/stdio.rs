//! A task's stdio through the FIFOs containerd names: one thread per
//! stream copies between the FIFO and the process in the guest. Opening a
//! FIFO blocks until containerd's side opens it, so it happens on the
//! copying thread, not in the request.

use std::fs::{File, OpenOptions};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use vmjail_sandbox::agent::{ProcessHandle, Stream};

/// The FIFO paths of one process (empty: not connected).
#[derive(Debug, Clone, Default)]
pub struct Paths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    /// One pty in the guest: its output is all on stdout.
    pub terminal: bool,
}

/// Set once the stdin copy has reached the FIFO's end and closed the
/// process's stdin.
#[derive(Default)]
pub struct StdinDone {
    done: Mutex<bool>,
    changed: Condvar,
}

impl StdinDone {
    fn set(&self) {
        *self.done.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.changed.notify_all();
    }

    /// Whether the copy finished within `timeout`.
    pub fn wait(&self, timeout: Duration) -> bool {
        let done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        let (done, _) = self
            .changed
            .wait_timeout_while(done, timeout, |d| !*d)
            .unwrap_or_else(|p| p.into_inner());
        *done
    }
}

/// The running copies of one process.
pub struct Copies {
    /// The output threads: they end once the process's streams are
    /// drained (its exit is reported after them, so containerd's client
    /// has all the output when it learns of the exit).
    pub outputs: Vec<JoinHandle<()>>,
    /// `None` without a stdin FIFO.
    pub stdin: Option<Arc<StdinDone>>,
}

/// Starts the copies.
pub fn connect(process: &ProcessHandle, paths: &Paths) -> Copies {
    let mut outputs = Vec::new();
    let mut streams = vec![(Stream::Stdout, paths.stdout.clone())];
    if !paths.terminal {
        streams.push((Stream::Stderr, paths.stderr.clone()));
    }
    for (stream, path) in streams {
        if path.is_empty() {
            continue;
        }
        let process = process.clone();
        let copy = move || {
            let mut fifo = match OpenOptions::new().write(true).open(&path) {
                Ok(f) => f,
                Err(e) => return log::warn!("opening {path}: {e}"),
            };
            if let Err(e) = process.pump_output(stream, &mut fifo) {
                log::warn!("copying {stream:?} to {path}: {e}");
            }
        };
        match std::thread::Builder::new()
            .name("stdout".into())
            .spawn(copy)
        {
            Ok(handle) => outputs.push(handle),
            Err(e) => log::error!("starting an output copy: {e}"),
        }
    }
    let mut stdin = None;
    if !paths.stdin.is_empty() {
        let process = process.clone();
        let path = paths.stdin.clone();
        let done = Arc::new(StdinDone::default());
        stdin = Some(done.clone());
        let copy = move || {
            let _done = SetOnDrop(done);
            let mut fifo = match File::open(&path) {
                Ok(f) => f,
                Err(e) => return log::warn!("opening {path}: {e}"),
            };
            // Ends at the FIFO's EOF (containerd's client closed it) and
            // closes the process's stdin; after the process ended, its
            // stdin is gone: not worth more than a debug line.
            if let Err(e) = process.pump_stdin(&mut fifo) {
                log::debug!("copying {path} to stdin: {e}");
            }
        };
        if let Err(e) = std::thread::Builder::new().name("stdin".into()).spawn(copy) {
            log::error!("starting the stdin copy: {e}");
        }
    }
    Copies { outputs, stdin }
}

/// Marks the stdin copy done however its thread ends.
struct SetOnDrop(Arc<StdinDone>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}
