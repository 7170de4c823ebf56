//! One process of a task as containerd sees it — the container's own
//! (the init) or one run in it (`ctr task exec`): its FIFOs, where it is
//! in its life, and the agent's handle on it once it exists in the guest.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use vmjail_sandbox::agent::{ExitStatus, ProcessHandle, ProcessSpec};

use crate::stdio::{self, Paths};

/// The exit status reported when the guest went away under the process.
const LOST: u32 = 255;
/// How long CloseIO waits for the stdin copy to reach the FIFO's end.
const STDIN_GRACE: Duration = Duration::from_secs(5);

/// Where a process is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Created,
    Running,
    Paused,
    Stopped { status: u32, at: SystemTime },
}

pub struct Process {
    pub stdio: Paths,
    /// What an exec runs, from `Exec` until its `Start` (`None`: the
    /// container's own process).
    pub spec: Option<ProcessSpec>,
    handle: Mutex<Option<ProcessHandle>>,
    stdin_copy: Mutex<Option<Arc<stdio::StdinDone>>>,
    phase: Mutex<Phase>,
    changed: Condvar,
}

impl Process {
    pub fn new(stdio: Paths, spec: Option<ProcessSpec>) -> Arc<Process> {
        Arc::new(Process {
            stdio,
            spec,
            handle: Mutex::new(None),
            stdin_copy: Mutex::new(None),
            phase: Mutex::new(Phase::Created),
            changed: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn phase(&self) -> Phase {
        *self.lock()
    }

    /// Moves from `from` to `to` if `act` succeeds (under the phase's lock,
    /// so two requests cannot both make the move).
    pub fn transition(
        &self,
        from: Phase,
        to: Phase,
        act: impl FnOnce() -> Result<(), String>,
    ) -> Result<(), String> {
        let mut phase = self.lock();
        if *phase != from {
            return Err(format!("the process is {:?}, not {from:?}", *phase));
        }
        act()?;
        *phase = to;
        Ok(())
    }

    /// Takes the guest process: copies its stdio and waits for its end
    /// in a thread; `exited` is told the status once all output is copied
    /// (so containerd's client has it all when it learns of the exit).
    pub fn attach(
        self: &Arc<Self>,
        handle: ProcessHandle,
        exited: impl FnOnce(u32, SystemTime) + Send + 'static,
    ) {
        let copies = stdio::connect(&handle, &self.stdio);
        let outputs = copies.outputs;
        *self.stdin_copy.lock().unwrap_or_else(|p| p.into_inner()) = copies.stdin;
        *self.handle.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle.clone());
        let process = self.clone();
        let wait = move || {
            let status = match handle.wait() {
                Ok(status) => code(status),
                Err(e) => {
                    log::warn!("waiting for a process in the guest: {e}");
                    LOST
                }
            };
            for output in outputs {
                let _ = output.join();
            }
            let at = SystemTime::now();
            *process.lock() = Phase::Stopped { status, at };
            process.changed.notify_all();
            exited(status, at);
        };
        if let Err(e) = std::thread::Builder::new().name("wait".into()).spawn(wait) {
            log::error!("starting a process's waiter: {e}");
        }
    }

    /// The guest process, once it exists.
    pub fn handle(&self) -> Result<ProcessHandle, String> {
        self.handle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| "the process is not started".to_string())
    }

    /// Blocks until the process has ended; its status and when.
    pub fn wait(&self) -> (u32, SystemTime) {
        let mut phase = self.lock();
        loop {
            if let Phase::Stopped { status, at } = *phase {
                return (status, at);
            }
            phase = self.changed.wait(phase).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// [`Process::wait`] for at most `timeout`.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<(u32, SystemTime)> {
        let phase = self.lock();
        let (phase, _) = self
            .changed
            .wait_timeout_while(phase, timeout, |p| !matches!(p, Phase::Stopped { .. }))
            .unwrap_or_else(|p| p.into_inner());
        match *phase {
            Phase::Stopped { status, at } => Some((status, at)),
            _ => None,
        }
    }

    /// containerd's CloseIO. With a stdin FIFO, its copy closes the
    /// process's stdin at the FIFO's end, after the last byte (closing it
    /// at once lost what was still in the FIFO); a FIFO whose writer stays
    /// open is given [`STDIN_GRACE`], then stdin is closed anyway.
    pub fn close_stdin(&self) -> Result<(), String> {
        let handle = self.handle()?;
        let copy = self
            .stdin_copy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(copy) = copy else {
            return handle.close_stdin().map_err(|e| e.to_string());
        };
        let closer = move || {
            if !copy.wait(STDIN_GRACE) {
                if let Err(e) = handle.close_stdin() {
                    log::debug!("closing stdin: {e}");
                }
            }
        };
        std::thread::Builder::new()
            .name("close-stdin".into())
            .spawn(closer)
            .map(drop)
            .map_err(|e| format!("closing stdin: {e}"))
    }

    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), String> {
        self.handle()?.resize(rows, cols).map_err(|e| e.to_string())
    }
}

fn code(status: ExitStatus) -> u32 {
    status.code().unsigned_abs()
}
