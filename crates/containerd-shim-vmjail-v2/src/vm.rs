//! The VM a task's container runs in: created by the task that owns it (a
//! `ctr` task, or a CRI pod's sandbox container) and shared with the
//! pod's later containers. Every sandbox step goes through its [`Worker`]
//! (the one `Sandboxes` object, as in `vmjail run --bundle`).

use std::path::PathBuf;
use std::sync::Arc;

use vmjail_sandbox::agent::AgentClient;
use vmjail_sandbox::{SandboxError, SandboxId, Sandboxes, SelectFactory};

use crate::vm_step;
use crate::worker::Worker;

/// The sandbox thread ended (it panicked): nothing more can be done.
pub const GONE: &str = "the sandbox thread is gone";

pub struct Vm {
    pub sandbox: SandboxId,
    /// The configuration file it was created from (`None`: vmjail's
    /// discovery), recorded in the bundle of each of its tasks.
    pub config_path: Option<PathBuf>,
    /// The VMM's host pid: containerd's task pid for each container in it
    /// (the processes' own pids live in the guest).
    pub pid: u32,
    worker: Worker,
    client: Arc<AgentClient>,
}

impl Vm {
    pub fn new(
        sandbox: SandboxId,
        config_path: Option<PathBuf>,
        pid: u32,
        worker: Worker,
        client: Arc<AgentClient>,
    ) -> Vm {
        Vm {
            sandbox,
            config_path,
            pid,
            worker,
            client,
        }
    }

    /// Runs a heavy step on the VM in a short-lived child (see
    /// [`vm_step`]), from the sandbox thread (the child's death signal
    /// follows the thread that spawned it).
    pub fn run_step(&self, step: vm_step::Step) -> Result<(), String> {
        self.worker.run(move |_| vm_step::run(&step)).ok_or(GONE)?
    }

    /// Runs `f` on the sandbox thread with the sandbox and its agent.
    pub fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(
                &Sandboxes<SelectFactory>,
                &SandboxId,
                &Arc<AgentClient>,
            ) -> Result<R, SandboxError>
            + Send
            + 'static,
    ) -> Result<R, String> {
        let (sandbox, client) = (self.sandbox.clone(), self.client.clone());
        self.worker
            .run(move |s| f(s, &sandbox, &client))
            .ok_or(GONE)?
            .map_err(|e| e.to_string())
    }
}
