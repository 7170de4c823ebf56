//! The agent's processes, by the id the host knows them by, and the reaper
//! that records how each ended.
//!
//! The reaper sees an exit with `waitid(WNOWAIT)`, records it under the
//! table lock, and only then reaps the zombie, still under the lock: a
//! signal sent under the same lock therefore never reaches a recycled pid.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use vmjail_agent_protocol::MAX_PROCESSES;

use super::request::Launch;
use super::spawn::{spawn, Spawned};

/// How a process ended: an exit code, or the signal that killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signaled(i32),
}

/// A started process: its stdio, each behind its own lock so reads,
/// writes and resizes of different streams do not wait for each other.
pub struct Process {
    pub pid: Pid,
    pub argv: Vec<String>,
    pub stdin: Mutex<Option<OwnedFd>>,
    pub stdout: Mutex<Option<OwnedFd>>,
    pub stderr: Mutex<Option<OwnedFd>>,
    pub pty: Option<OwnedFd>,
}

impl Process {
    pub fn tty(&self) -> bool {
        self.pty.is_some()
    }
}

struct Entry {
    process: Arc<Process>,
    ended: Option<Ended>,
}

#[derive(Default)]
struct Inner {
    entries: BTreeMap<u64, Entry>,
    next_id: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("no process {0}")]
    NotFound(u64),
    #[error("{MAX_PROCESSES} processes are kept already; delete ended ones first")]
    Full,
    #[error("{0}")]
    Spawn(String),
    #[error("process {id}: {what}: {source}")]
    Sys {
        id: u64,
        what: &'static str,
        source: Errno,
    },
}

pub struct ProcessTable {
    inner: Mutex<Inner>,
    /// Notified on every recorded exit and every spawn (the reaper waits on
    /// it while the agent has no children).
    changed: Condvar,
}

impl ProcessTable {
    /// A table with its reaper thread running.
    pub fn start() -> std::io::Result<Arc<ProcessTable>> {
        let table = Arc::new(ProcessTable {
            inner: Mutex::new(Inner {
                next_id: 1,
                ..Default::default()
            }),
            changed: Condvar::new(),
        });
        let reaper = table.clone();
        std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || reaper.reap_forever())?;
        Ok(table)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not stop process bookkeeping.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn create(&self, launch: &Launch) -> Result<(u64, Pid), TableError> {
        let mut inner = self.lock();
        if inner.entries.len() >= MAX_PROCESSES {
            return Err(TableError::Full);
        }
        let Spawned {
            pid,
            stdin,
            stdout,
            stderr,
            pty,
        } = spawn(launch).map_err(TableError::Spawn)?;
        if let Some(fd) = &stdin {
            // Writes wait with poll and a deadline, never in write itself.
            let _ = fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let process = Process {
            pid,
            argv: launch.argv_text.clone(),
            stdin: Mutex::new(stdin),
            stdout: Mutex::new(Some(stdout)),
            stderr: Mutex::new(stderr),
            pty,
        };
        inner.entries.insert(
            id,
            Entry {
                process: Arc::new(process),
                ended: None,
            },
        );
        self.changed.notify_all();
        Ok((id, pid))
    }

    pub fn get(&self, id: u64) -> Result<Arc<Process>, TableError> {
        self.lock()
            .entries
            .get(&id)
            .map(|e| e.process.clone())
            .ok_or(TableError::NotFound(id))
    }

    /// Signals the process unless it has ended.
    pub fn signal(&self, id: u64, signal: Signal) -> Result<(), TableError> {
        let inner = self.lock();
        let entry = inner.entries.get(&id).ok_or(TableError::NotFound(id))?;
        if entry.ended.is_none() {
            kill(entry.process.pid, signal).map_err(|source| TableError::Sys {
                id,
                what: "kill",
                source,
            })?;
        }
        Ok(())
    }

    /// How the process ended, waiting at most `wait`.
    pub fn wait(&self, id: u64, wait: Duration) -> Result<Option<Ended>, TableError> {
        let deadline = Instant::now() + wait;
        let mut inner = self.lock();
        loop {
            let entry = inner.entries.get(&id).ok_or(TableError::NotFound(id))?;
            let left = deadline.saturating_duration_since(Instant::now());
            if entry.ended.is_some() || left.is_zero() {
                return Ok(entry.ended);
            }
            inner = self
                .changed
                .wait_timeout(inner, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Every process kept, by id.
    pub fn list(&self) -> Vec<(u64, Arc<Process>, Option<Ended>)> {
        self.lock()
            .entries
            .iter()
            .map(|(id, e)| (*id, e.process.clone(), e.ended))
            .collect()
    }

    /// Forgets the process, killing it first if it still runs; its streams
    /// close when the last call using them returns.
    pub fn delete(&self, id: u64) -> Result<(), TableError> {
        let mut inner = self.lock();
        let entry = inner.entries.remove(&id).ok_or(TableError::NotFound(id))?;
        if entry.ended.is_none() {
            // The reaper collects it as a pid it no longer knows.
            let _ = kill(entry.process.pid, Signal::SIGKILL);
        }
        Ok(())
    }

    fn reap_forever(&self) {
        loop {
            let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
            match waitid(Id::All, flags) {
                Ok(status) => self.record(status),
                Err(Errno::EINTR) => {}
                // No children: wait until a spawn (or a second, for
                // orphans handed to this subreaper).
                Err(Errno::ECHILD) => {
                    let inner = self.lock();
                    let _ = self.changed.wait_timeout(inner, Duration::from_secs(1));
                }
                Err(e) => {
                    tracing::error!("waitid: {e}");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }

    fn record(&self, status: WaitStatus) {
        // Only exits are asked for (WEXITED); anything else is just reaped.
        let ended = match status {
            WaitStatus::Exited(_, code) => Some(Ended::Exited(code)),
            WaitStatus::Signaled(_, signal, _) => Some(Ended::Signaled(signal as i32)),
            _ => None,
        };
        let Some(pid) = status.pid() else { return };
        let mut inner = self.lock();
        if let Some(entry) = inner
            .entries
            .values_mut()
            .find(|e| e.process.pid == pid && e.ended.is_none())
        {
            entry.ended = ended;
        }
        // Reaped under the lock: see the module comment.
        if let Err(e) = waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            tracing::warn!("reaping {pid}: {e}");
        }
        self.changed.notify_all();
    }
}
