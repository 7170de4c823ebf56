//! One task: a container in its own sandbox, from `Create` to `Delete`.
//! Every sandbox step goes through the task's [`Worker`] (the one
//! `Sandboxes` object, as in `vmjail run --bundle`); the container's
//! process is a [`ProcessHandle`] on the sandbox's agent.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use vmjail_config::RuntimeConfig;
use vmjail_sandbox::agent::{AgentClient, ContainerStats, ExitStatus, ProcessHandle};
use vmjail_sandbox::{reaper, ContainerSpec, SandboxId};

use crate::stdio::{self, Paths};
use crate::worker::Worker;

/// How long the VMM has to confirm the guest runs.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the guest may take to boot and answer on its agent's port.
const AGENT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long each shutdown step of the sandbox's delete may take.
pub const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);
/// The exit status reported when the guest went away under the process.
const LOST: u32 = 255;

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Created,
    Running,
    Paused,
    Stopped { status: u32, at: SystemTime },
}

/// What `Create` needs.
pub struct TaskSpec {
    pub id: String,
    pub bundle: PathBuf,
    pub sandbox: SandboxId,
    pub config: RuntimeConfig,
    /// The network namespace the spec names (a CRI pod's), else a new one.
    pub netns: Option<PathBuf>,
    pub stdio: Paths,
}

pub struct Task {
    pub id: String,
    pub bundle: PathBuf,
    pub sandbox: SandboxId,
    pub stdio: Paths,
    /// The VMM's host pid (containerd's "task pid"; the process's own pid
    /// lives in the guest).
    pub pid: u32,
    worker: Worker,
    client: Arc<AgentClient>,
    process: ProcessHandle,
    phase: Mutex<Phase>,
    changed: Condvar,
}

impl Task {
    /// Creates the sandbox with the bundle's container, boots it and sets
    /// the container up, its process waiting for [`Task::start`]; the
    /// stdio copies run from here on. On failure nothing is left.
    pub fn create(worker: Worker, spec: TaskSpec) -> Result<Arc<Task>, String> {
        let TaskSpec {
            id,
            bundle,
            sandbox,
            config,
            netns,
            stdio,
        } = spec;
        let made = {
            let (id, bundle, sandbox) = (id.clone(), bundle.clone(), sandbox.clone());
            let (tty, stdin) = (stdio.terminal, !stdio.stdin.is_empty());
            worker.run(move |s| {
                let container = ContainerSpec { id, bundle };
                s.create_with_containers(
                    &sandbox,
                    &config,
                    netns.as_deref(),
                    std::slice::from_ref(&container),
                )
                .map_err(|e| e.to_string())?;
                let ready = (|| {
                    s.start(&sandbox, START_TIMEOUT)?;
                    let client = s.agent_client(&sandbox, AGENT_TIMEOUT)?;
                    let tty = tty.then_some(vmjail_sandbox::agent::DEFAULT_TTY_SIZE);
                    let process =
                        s.create_container(&sandbox, client.clone(), &container.id, tty, stdin)?;
                    let pid = s.state(&sandbox)?.vmm_pid;
                    Ok::<_, vmjail_sandbox::SandboxError>((client, process, pid))
                })();
                ready.map_err(|e| {
                    if let Err(cleanup) = s.delete(&sandbox, true, CLEANUP_TIMEOUT) {
                        log::error!("sandbox {sandbox}: deleting after a failed create: {cleanup}");
                    }
                    reaper::reap_exited();
                    e.to_string()
                })
            })
        };
        let (client, process, pid) = made.ok_or("the sandbox thread is gone")??;
        let task = Arc::new(Task {
            id,
            bundle,
            sandbox,
            pid: pid
                .and_then(|p| u32::try_from(p).ok())
                .unwrap_or_else(std::process::id),
            stdio,
            worker,
            client,
            process,
            phase: Mutex::new(Phase::Created),
            changed: Condvar::new(),
        });
        Ok(task)
    }

    /// Starts the copies of the process's stdio and the thread that waits
    /// for its end; `exited` is told the status once all output is copied.
    pub fn watch(self: &Arc<Self>, exited: impl FnOnce(&Task, u32, SystemTime) + Send + 'static) {
        let outputs = stdio::connect(&self.process, &self.stdio);
        let task = self.clone();
        let wait = move || {
            let status = match task.process.wait() {
                Ok(status) => status_code(status),
                Err(e) => {
                    log::warn!("task {}: waiting for its process: {e}", task.id);
                    LOST
                }
            };
            for output in outputs {
                let _ = output.join();
            }
            let at = SystemTime::now();
            *task.lock() = Phase::Stopped { status, at };
            task.changed.notify_all();
            exited(&task, status, at);
        };
        if let Err(e) = std::thread::Builder::new().name("wait".into()).spawn(wait) {
            log::error!("task {}: starting its waiter: {e}", self.id);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn phase(&self) -> Phase {
        *self.lock()
    }

    /// Lets the container's process run.
    pub fn start(&self) -> Result<(), String> {
        let mut phase = self.lock();
        if *phase != Phase::Created {
            return Err(format!("task {} is {:?}, not created", self.id, *phase));
        }
        let (sandbox, id, client) = (self.sandbox.clone(), self.id.clone(), self.client.clone());
        self.worker
            .run(move |s| s.start_container(&sandbox, &client, &id))
            .ok_or("the sandbox thread is gone")?
            .map_err(|e| e.to_string())?;
        *phase = Phase::Running;
        Ok(())
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

    /// [`Task::wait`] for at most `timeout`.
    fn wait_timeout(&self, timeout: Duration) -> Option<(u32, SystemTime)> {
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

    pub fn signal(&self, signal: u32) -> Result<(), String> {
        if matches!(self.phase(), Phase::Stopped { .. }) {
            return Err("process already finished".into());
        }
        let signal = i32::try_from(signal).map_err(|_| format!("signal {signal}"))?;
        self.process.signal(signal).map_err(|e| e.to_string())
    }

    pub fn close_stdin(&self) -> Result<(), String> {
        self.process.close_stdin().map_err(|e| e.to_string())
    }

    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), String> {
        self.process.resize(rows, cols).map_err(|e| e.to_string())
    }

    /// Freezes (`true`) or thaws the container in the guest.
    pub fn freeze(&self, frozen: bool) -> Result<(), String> {
        let mut phase = self.lock();
        let (from, to) = match frozen {
            true => (Phase::Running, Phase::Paused),
            false => (Phase::Paused, Phase::Running),
        };
        if *phase != from {
            return Err(format!("task {} is {:?}, not {from:?}", self.id, *phase));
        }
        let (sandbox, id, client) = (self.sandbox.clone(), self.id.clone(), self.client.clone());
        self.worker
            .run(move |s| s.freeze_container(&sandbox, &client, &id, frozen))
            .ok_or("the sandbox thread is gone")?
            .map_err(|e| e.to_string())?;
        *phase = to;
        Ok(())
    }

    pub fn stats(&self) -> Result<ContainerStats, String> {
        let (sandbox, id, client) = (self.sandbox.clone(), self.id.clone(), self.client.clone());
        self.worker
            .run(move |s| s.container_stats(&sandbox, &client, &id))
            .ok_or("the sandbox thread is gone")?
            .map_err(|e| e.to_string())
    }

    /// Removes the container and its sandbox with everything it made; a
    /// process that never started is killed first. Returns the exit.
    pub fn delete(&self) -> Result<(u32, SystemTime), String> {
        match self.phase() {
            Phase::Running | Phase::Paused => {
                return Err(format!("task {} still runs: kill it first", self.id))
            }
            Phase::Created => {
                // Its waiter reports the exit before the sandbox goes.
                let _ = self.process.signal(nix::libc::SIGKILL);
                self.wait_timeout(CLEANUP_TIMEOUT);
            }
            Phase::Stopped { .. } => {}
        }
        let (sandbox, id, client) = (self.sandbox.clone(), self.id.clone(), self.client.clone());
        self.worker
            .run(move |s| {
                if let Err(e) = s.delete_container(&sandbox, &client, &id) {
                    log::debug!("deleting container {id} in the guest: {e}");
                }
                let deleted = s.delete(&sandbox, true, CLEANUP_TIMEOUT);
                reaper::reap_exited();
                deleted
            })
            .ok_or("the sandbox thread is gone")?
            .map_err(|e| e.to_string())?;
        Ok(match self.phase() {
            Phase::Stopped { status, at } => (status, at),
            _ => (128 + nix::libc::SIGKILL as u32, SystemTime::now()),
        })
    }
}

fn status_code(status: ExitStatus) -> u32 {
    status.code().unsigned_abs()
}
