//! One task: a container from `Create` to `Delete`, and the processes
//! run in it (`ctr task exec`). The container is in a [`Vm`]: its own
//! (a `ctr` task, a CRI pod's sandbox container), which its delete tears
//! down, or its pod's (a CRI pod's other containers), which goes on
//! without it. Processes are [`ProcessHandle`]s on the VM's agent.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use vmjail_sandbox::agent::{AgentClient, ContainerStats, ProcessHandle, ProcessSpec};
use vmjail_sandbox::{reaper, ErrorKind, SandboxId, Status};

use crate::process::{Phase, Process};
use crate::stdio::Paths;
use crate::vm::{Vm, GONE};
use crate::vm_step;
use crate::worker::Worker;

/// How long the VMM has to confirm the guest runs.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the guest may take to boot and answer on its agent's port
/// (TCG guests on a loaded host take long).
const AGENT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long each shutdown step of the sandbox's delete may take.
pub const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Most processes run in one task at once (`ctr task exec`).
const MAX_EXECS: usize = 64;

/// What `Create` of a task with a VM of its own needs.
pub struct TaskSpec {
    pub id: String,
    pub bundle: PathBuf,
    pub sandbox: SandboxId,
    pub config_path: Option<PathBuf>,
    /// The network namespace the spec names (a CRI pod's), else a new one.
    pub netns: Option<PathBuf>,
    /// A CRI pod's sandbox container (see `vmjail_sandbox::bundle_pod`).
    pub pod: bool,
    pub stdio: Paths,
}

pub struct Task {
    pub id: String,
    pub bundle: PathBuf,
    pub vm: Arc<Vm>,
    /// The VM is this task's own: its delete tears it down.
    owns_vm: bool,
    /// The container's own process.
    pub init: Arc<Process>,
    execs: Mutex<HashMap<String, Arc<Process>>>,
}

impl Task {
    /// Creates the sandbox with the bundle's container, boots it and sets
    /// the container up, its process waiting for [`Task::start`]; its
    /// stdio copies and waiter run from here on (`exited` is told the task
    /// pid, the exit status, when, and whether the OOM killer took a
    /// process of the container). On failure nothing is left.
    pub fn create(
        worker: Worker,
        spec: TaskSpec,
        exited: impl FnOnce(u32, u32, SystemTime, bool) + Send + 'static,
    ) -> Result<Arc<Task>, String> {
        let TaskSpec {
            id,
            bundle,
            sandbox,
            config_path,
            netns,
            pod,
            stdio,
        } = spec;
        let made = {
            let step = vm_step::Step::Create {
                sandbox: sandbox.to_string(),
                config: config_path.clone(),
                netns,
                container: id.clone(),
                bundle: bundle.clone(),
                pod,
            };
            let (id, sandbox, config_path) = (id.clone(), sandbox.clone(), config_path.clone());
            let (tty, stdin) = (stdio.terminal, !stdio.stdin.is_empty());
            worker.run(move |s| {
                // The VM is made (and started) by a short-lived child; the
                // agent and the container are this shim's.
                let ready = || {
                    let client = s.agent_client(&sandbox, AGENT_TIMEOUT)?;
                    let tty = tty.then_some(vmjail_sandbox::agent::DEFAULT_TTY_SIZE);
                    let process = s.create_container(&sandbox, client.clone(), &id, tty, stdin)?;
                    let pid = s.state(&sandbox)?.vmm_pid;
                    Ok::<_, vmjail_sandbox::SandboxError>((client, process, pid))
                };
                vm_step::run(&step)
                    .and_then(|()| ready().map_err(|e| e.to_string()))
                    .inspect_err(|_| {
                        // Whatever failed (the child, even killed midway, or
                        // the container in the guest): one forced delete.
                        if let Err(cleanup) = delete_vm(&sandbox, config_path) {
                            log::error!(
                                "sandbox {sandbox}: deleting after a failed create: {cleanup}"
                            );
                        }
                    })
            })
        };
        let (client, handle, pid) = made.ok_or(GONE)??;
        let pid = pid
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or_else(std::process::id);
        let vm = Arc::new(Vm::new(sandbox, config_path, pid, worker, client));
        Ok(Task::with_init(id, bundle, vm, true, stdio, handle, exited))
    }

    /// Adds the bundle's container to `vm` (its pod's, already running)
    /// and sets it up there, its process waiting for [`Task::start`]. On
    /// failure the VM is as it was.
    pub fn add(
        vm: Arc<Vm>,
        id: String,
        bundle: PathBuf,
        stdio: Paths,
        exited: impl FnOnce(u32, u32, SystemTime, bool) + Send + 'static,
    ) -> Result<Arc<Task>, String> {
        let (tty, stdin) = (stdio.terminal, !stdio.stdin.is_empty());
        vm.run_step(vm_step::Step::AddContainer {
            sandbox: vm.sandbox.to_string(),
            config: vm.config_path.clone(),
            container: id.clone(),
            bundle: bundle.clone(),
        })?;
        let container = id.clone();
        let handle = vm
            .run(move |s, sandbox, client| {
                let tty = tty.then_some(vmjail_sandbox::agent::DEFAULT_TTY_SIZE);
                s.create_container(sandbox, client.clone(), &container, tty, stdin)
            })
            .inspect_err(|_| {
                if let Err(undo) = vm.run_step(remove_step(&vm, &id)) {
                    log::error!(
                        "sandbox {}: removing a failed container: {undo}",
                        vm.sandbox
                    );
                }
            })?;
        Ok(Task::with_init(
            id, bundle, vm, false, stdio, handle, exited,
        ))
    }

    fn with_init(
        id: String,
        bundle: PathBuf,
        vm: Arc<Vm>,
        owns_vm: bool,
        stdio: Paths,
        handle: ProcessHandle,
        exited: impl FnOnce(u32, u32, SystemTime, bool) + Send + 'static,
    ) -> Arc<Task> {
        let init = Process::new(stdio, None);
        let pid = vm.pid;
        let (in_vm, container) = (vm.clone(), id.clone());
        init.attach(handle, move |status, at| {
            // Read before the exit is reported: containerd's CRI keeps
            // "OOMKilled" as the reason when TaskOOM comes first.
            let oom_killed = in_vm
                .run(move |s, sandbox, client| s.container_stats(sandbox, client, &container))
                .is_ok_and(|stats| stats.oom_kills > 0);
            exited(pid, status, at, oom_killed)
        });
        Arc::new(Task {
            id,
            bundle,
            vm,
            owns_vm,
            init,
            execs: Mutex::new(HashMap::new()),
        })
    }

    /// containerd's task pid: the VMM's.
    pub fn pid(&self) -> u32 {
        self.vm.pid
    }

    fn execs(&self) -> MutexGuard<'_, HashMap<String, Arc<Process>>> {
        self.execs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The process `exec_id` names: the init for "".
    pub fn process(&self, exec_id: &str) -> Option<Arc<Process>> {
        match exec_id {
            "" => Some(self.init.clone()),
            id => self.execs().get(id).cloned(),
        }
    }

    /// Runs `f` on the sandbox thread with what container calls need.
    fn on_sandbox<R: Send + 'static>(
        &self,
        f: impl FnOnce(
                &vmjail_sandbox::Sandboxes<vmjail_sandbox::SelectFactory>,
                &SandboxId,
                &Arc<AgentClient>,
                &str,
            ) -> Result<R, vmjail_sandbox::SandboxError>
            + Send
            + 'static,
    ) -> Result<R, String> {
        let id = self.id.clone();
        self.vm
            .run(move |s, sandbox, client| f(s, sandbox, client, &id))
    }

    /// Lets the container's process run.
    pub fn start(&self) -> Result<(), String> {
        self.init.transition(Phase::Created, Phase::Running, || {
            self.on_sandbox(|s, sandbox, client, id| s.start_container(sandbox, client, id))
        })
    }

    /// Sends `signal` to the container's process (with `all`, to every
    /// process of the container) or to exec `exec_id`.
    pub fn signal(&self, exec_id: &str, signal: u32, all: bool) -> Result<(), String> {
        let process = self
            .process(exec_id)
            .ok_or_else(|| format!("no process {exec_id:?}"))?;
        if matches!(process.phase(), Phase::Stopped { .. }) {
            return Err("process already finished".into());
        }
        let signal = i32::try_from(signal).map_err(|_| format!("signal {signal}"))?;
        if !exec_id.is_empty() {
            return process.handle()?.signal(signal).map_err(|e| e.to_string());
        }
        self.on_sandbox(move |s, sandbox, client, id| {
            s.signal_container(sandbox, client, id, signal, all)
        })
    }

    /// Freezes (`true`) or thaws the container in the guest.
    pub fn freeze(&self, frozen: bool) -> Result<(), String> {
        let (from, to) = match frozen {
            true => (Phase::Running, Phase::Paused),
            false => (Phase::Paused, Phase::Running),
        };
        self.init.transition(from, to, || {
            self.on_sandbox(move |s, sandbox, client, id| match frozen {
                true => s.pause_container(sandbox, client, id),
                false => s.resume_container(sandbox, client, id),
            })
        })
    }

    pub fn stats(&self) -> Result<ContainerStats, String> {
        self.on_sandbox(|s, sandbox, client, id| s.container_stats(sandbox, client, id))
    }

    /// Records exec `exec_id` (its process starts with [`Task::start_exec`]).
    pub fn add_exec(&self, exec_id: &str, stdio: Paths, spec: ProcessSpec) -> Result<(), String> {
        let mut execs = self.execs();
        if execs.contains_key(exec_id) {
            return Err(format!("exec {exec_id:?} exists already"));
        }
        if execs.len() >= MAX_EXECS {
            return Err(format!("at most {MAX_EXECS} execs per task"));
        }
        execs.insert(exec_id.to_owned(), Process::new(stdio, Some(spec)));
        Ok(())
    }

    /// Runs exec `exec_id`'s process `spec` in the container.
    pub fn start_exec(
        &self,
        exec_id: &str,
        spec: ProcessSpec,
        exited: impl FnOnce(u32, u32, SystemTime) + Send + 'static,
    ) -> Result<(), String> {
        let process = self
            .process(exec_id)
            .ok_or_else(|| format!("no exec {exec_id:?}"))?;
        process.transition(Phase::Created, Phase::Running, || {
            let handle: ProcessHandle = self.on_sandbox(move |s, sandbox, client, id| {
                s.exec_in_container(sandbox, client.clone(), id, &spec)
            })?;
            let pid = self.pid();
            process.attach(handle, move |status, at| exited(pid, status, at));
            Ok(())
        })
    }

    /// Forgets ended exec `exec_id` (the agent too); its exit.
    pub fn delete_exec(&self, exec_id: &str) -> Result<(u32, SystemTime), String> {
        let process = self
            .process(exec_id)
            .ok_or_else(|| format!("no exec {exec_id:?}"))?;
        let ended = match process.phase() {
            Phase::Stopped { status, at } => (status, at),
            Phase::Created => (0, SystemTime::now()),
            _ => return Err(format!("exec {exec_id:?} still runs: kill it first")),
        };
        if let Ok(handle) = process.handle() {
            if let Err(e) = handle.delete() {
                log::debug!("forgetting exec {exec_id} in the agent: {e}");
            }
        }
        self.execs().remove(exec_id);
        Ok(ended)
    }

    /// Removes the container (with its own VM and everything that made,
    /// or from its pod's VM); a process that never started is killed
    /// first. Returns the exit.
    pub fn delete(&self) -> Result<(u32, SystemTime), String> {
        match self.init.phase() {
            Phase::Running | Phase::Paused => {
                return Err(format!("task {} still runs: kill it first", self.id))
            }
            Phase::Created => {
                // Its waiter reports the exit before the sandbox goes.
                if let Ok(handle) = self.init.handle() {
                    let _ = handle.signal(nix::libc::SIGKILL);
                }
                self.init.wait_timeout(CLEANUP_TIMEOUT);
            }
            Phase::Stopped { .. } => {}
        }
        if self.owns_vm {
            let config_path = self.vm.config_path.clone();
            self.on_sandbox(|s, sandbox, client, id| {
                if let Err(e) = s.delete_container(sandbox, client, id) {
                    log::debug!("deleting container {id} in the guest: {e}");
                }
                Ok(delete_vm(sandbox, config_path))
            })??;
        } else {
            let deleted = self.on_sandbox(|s, sandbox, client, id| {
                match s.delete_container(sandbox, client, id) {
                    Ok(()) => Ok(true),
                    // The pod's VM went first, taking everything with it.
                    Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
                    Err(e) => match s.state(sandbox) {
                        Ok(vm) if vm.status == Status::Running => Err(e),
                        _ => Ok(false),
                    },
                }
            })?;
            if deleted {
                self.vm.run_step(remove_step(&self.vm, &self.id))?;
            }
        }
        Ok(match self.init.phase() {
            Phase::Stopped { status, at } => (status, at),
            _ => (128 + nix::libc::SIGKILL as u32, SystemTime::now()),
        })
    }
}

/// Tears sandbox `sandbox` down in a short-lived child (see [`vm_step`]),
/// then reaps its VMM and helpers, which were orphaned to this shim.
fn delete_vm(sandbox: &SandboxId, config: Option<PathBuf>) -> Result<(), String> {
    let deleted = vm_step::run(&vm_step::Step::Delete {
        sandbox: sandbox.to_string(),
        config,
    });
    reaper::reap_exited();
    deleted
}

/// The step taking container `id` of a pod back from its VM.
fn remove_step(vm: &Vm, id: &str) -> vm_step::Step {
    vm_step::Step::RemoveContainer {
        sandbox: vm.sandbox.to_string(),
        config: vm.config_path.clone(),
        container: id.to_owned(),
    }
}
