//! containerd's task API (`containerd.task.v2.Task`) over the shim's
//! tasks. Each request is checked, handed to its [`Task`], and the events
//! containerd expects are sent in order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use containerd_shim::api::{self, Status};
use containerd_shim::{ExitSignal, TtrpcContext, TtrpcResult};
use containerd_shim_protos::api::ProcessInfo;
use containerd_shim_protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::MessageField;
use containerd_shim_protos::ttrpc::error::get_rpc_status;
use containerd_shim_protos::ttrpc::{self, Code};

use crate::cri::Role;
use crate::events::Events;
use crate::process::{Phase, Process};
use crate::stdio::Paths;
use crate::task::{Task, TaskSpec};
use crate::vm::Vm;
use crate::worker::Worker;
use crate::{config, exec_spec, metrics, record, rootfs};

pub struct Service {
    namespace: String,
    events: Arc<Events>,
    tasks: Mutex<HashMap<String, Arc<Task>>>,
    /// The VMs of the CRI pods this shim serves, by sandbox container id.
    pods: Mutex<HashMap<String, Arc<Vm>>>,
    exit: Arc<ExitSignal>,
}

fn error(code: Code, message: impl ToString) -> ttrpc::Error {
    get_rpc_status(code, message)
}

fn failed(message: impl ToString) -> ttrpc::Error {
    error(Code::FAILED_PRECONDITION, message)
}

fn timestamp(at: SystemTime) -> MessageField<Timestamp> {
    MessageField::some(Timestamp::from(at))
}

impl Service {
    pub fn new(namespace: String, events: Events, exit: Arc<ExitSignal>) -> Service {
        Service {
            namespace,
            events: Arc::new(events),
            tasks: Mutex::new(HashMap::new()),
            pods: Mutex::new(HashMap::new()),
            exit,
        }
    }

    fn tasks(&self) -> MutexGuard<'_, HashMap<String, Arc<Task>>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pods(&self) -> MutexGuard<'_, HashMap<String, Arc<Vm>>> {
        self.pods.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn task(&self, id: &str) -> TtrpcResult<Arc<Task>> {
        self.tasks()
            .get(id)
            .cloned()
            .ok_or_else(|| error(Code::NOT_FOUND, format!("task {id:?} not found")))
    }

    /// Task `id`'s process `exec_id` ("": the container's own).
    fn process(&self, id: &str, exec_id: &str) -> TtrpcResult<(Arc<Task>, Arc<Process>)> {
        let task = self.task(id)?;
        let process = task.process(exec_id).ok_or_else(|| {
            error(
                Code::NOT_FOUND,
                format!("task {id:?} has no exec {exec_id:?}"),
            )
        })?;
        Ok((task, process))
    }

    /// Sends containerd the exit of task `id`'s process `exec_id`.
    fn exit_reporter(
        &self,
        id: &str,
        exec_id: &str,
    ) -> impl FnOnce(u32, u32, SystemTime) + Send + 'static {
        let events = self.events.clone();
        let (container_id, id) = (id.to_owned(), exec_id.to_owned());
        let id = if id.is_empty() {
            container_id.clone()
        } else {
            id
        };
        move |pid, status, at| {
            events.send(TaskExit {
                container_id,
                id,
                pid,
                exit_status: status,
                exited_at: timestamp(at),
                ..Default::default()
            })
        }
    }

    /// `Create` up to a created task; the rootfs is mounted only around
    /// the step that takes it (the copy into the container's disk, or its
    /// bind into the VM's share).
    fn create_task(&self, req: &api::CreateTaskRequest) -> Result<Arc<Task>, String> {
        if !req.checkpoint.is_empty() {
            return Err("restoring from a checkpoint is not supported by vmjail".into());
        }
        let bundle = PathBuf::from(&req.bundle);
        let spec = read_spec(&bundle)?;
        let role = Role::of(&spec)?;
        let stdio = Paths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let exited = {
            let report = self.exit_reporter(&req.id, "");
            let (events, id) = (self.events.clone(), req.id.clone());
            move |pid, status, at, oom_killed: bool| {
                if oom_killed {
                    events.send(TaskOOM {
                        container_id: id,
                        ..Default::default()
                    });
                }
                report(pid, status, at)
            }
        };
        let target = bundle.join("rootfs");
        if let Role::PodMember { sandbox } = &role {
            let vm = self.pods().get(sandbox).cloned().ok_or_else(|| {
                format!(
                    "pod sandbox {sandbox:?} has no VM in this shim: its sandbox container \
                     must be created first"
                )
            })?;
            record::write(
                &bundle,
                &record::Record {
                    sandbox: vm.sandbox.to_string(),
                    config: vm.config_path.clone(),
                },
            )?;
            rootfs::mount(&req.rootfs, &target).inspect_err(|_| {
                let _ = rootfs::unmount(&target);
            })?;
            let added = Task::add(vm, req.id.clone(), bundle.clone(), stdio, exited);
            // The VM's share holds a bind of the rootfs from here on.
            if let Err(e) = rootfs::unmount(&target) {
                log::warn!("{e}");
            }
            return added;
        }
        let config_path = config::config_path(req.options.as_ref())?;
        let sandbox = record::sandbox_id(&self.namespace, &req.id)?;
        record::write(
            &bundle,
            &record::Record {
                sandbox: sandbox.to_string(),
                config: config_path.clone(),
            },
        )?;
        // Only its [jail] section (the state dir) here: the child that
        // makes the VM reads the whole of it.
        let jail = vmjail_config::load_jail(config_path.as_deref())
            .map_err(|e| format!("vmjail configuration: {e}"))?;
        let worker = Worker::start(jail, config::vmjail_exe()?)
            .map_err(|e| format!("starting the sandbox thread: {e}"))?;
        rootfs::mount(&req.rootfs, &target).inspect_err(|_| {
            let _ = rootfs::unmount(&target);
        })?;
        let spec = TaskSpec {
            id: req.id.clone(),
            bundle: bundle.clone(),
            sandbox,
            config_path,
            netns: netns_path(&spec),
            pod: role.in_pod(),
            stdio,
        };
        let created = Task::create(worker, spec, exited);
        // The container's disk is a copy, or the VM's share holds a bind
        // of it: the snapshot's mount is not needed here now.
        if let Err(e) = rootfs::unmount(&target) {
            log::warn!("{e}");
        }
        let task = created?;
        if role == Role::PodSandbox {
            self.pods().insert(req.id.clone(), task.vm.clone());
        }
        Ok(task)
    }
}

fn read_spec(bundle: &Path) -> Result<oci_spec::runtime::Spec, String> {
    let path = bundle.join("config.json");
    oci_spec::runtime::Spec::load(&path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The network namespace the spec joins (a CRI pod's); `None`: the
/// sandbox gets a new one.
fn netns_path(spec: &oci_spec::runtime::Spec) -> Option<PathBuf> {
    use oci_spec::runtime::LinuxNamespaceType;
    spec.linux()
        .as_ref()?
        .namespaces()
        .as_ref()?
        .iter()
        .find(|ns| ns.typ() == LinuxNamespaceType::Network)?
        .path()
        .clone()
}

impl containerd_shim::Task for Service {
    fn create(
        &self,
        _: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        if self.tasks().contains_key(&req.id) {
            return Err(error(Code::ALREADY_EXISTS, format!("task {:?}", req.id)));
        }
        let begun = std::time::Instant::now();
        let task = self.create_task(&req).map_err(failed)?;
        log::info!(
            "task {}: created sandbox {} in {:?}",
            req.id,
            task.vm.sandbox,
            begun.elapsed()
        );
        self.tasks().insert(req.id.clone(), task.clone());
        self.events.send(TaskCreate {
            container_id: req.id.clone(),
            bundle: req.bundle.clone(),
            rootfs: req.rootfs.clone(),
            io: MessageField::some(TaskIO {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
                ..Default::default()
            }),
            pid: task.pid(),
            ..Default::default()
        });
        Ok(api::CreateTaskResponse {
            pid: task.pid(),
            ..Default::default()
        })
    }

    fn start(&self, _: &TtrpcContext, req: api::StartRequest) -> TtrpcResult<api::StartResponse> {
        let task = self.task(&req.id)?;
        if req.exec_id.is_empty() {
            task.start().map_err(failed)?;
            self.events.send(TaskStart {
                container_id: task.id.clone(),
                pid: task.pid(),
                ..Default::default()
            });
        } else {
            let (_, process) = self.process(&req.id, &req.exec_id)?;
            let spec = process
                .spec
                .clone()
                .ok_or_else(|| failed("the exec has no process spec"))?;
            let exited = self.exit_reporter(&req.id, &req.exec_id);
            task.start_exec(&req.exec_id, spec, exited)
                .map_err(failed)?;
            self.events.send(TaskExecStarted {
                container_id: task.id.clone(),
                exec_id: req.exec_id.clone(),
                pid: task.pid(),
                ..Default::default()
            });
        }
        Ok(api::StartResponse {
            pid: task.pid(),
            ..Default::default()
        })
    }

    fn exec(&self, _: &TtrpcContext, req: api::ExecProcessRequest) -> TtrpcResult<api::Empty> {
        let task = self.task(&req.id)?;
        if req.exec_id.is_empty() {
            return Err(error(Code::INVALID_ARGUMENT, "an exec needs an exec id"));
        }
        let spec = req
            .spec
            .as_ref()
            .ok_or_else(|| error(Code::INVALID_ARGUMENT, "an exec needs a process spec"))?;
        let spec = exec_spec::from_any(spec, !req.stdin.is_empty())
            .map_err(|e| error(Code::INVALID_ARGUMENT, e))?;
        let stdio = Paths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        task.add_exec(&req.exec_id, stdio, spec)
            .map_err(|e| error(Code::ALREADY_EXISTS, e))?;
        self.events.send(TaskExecAdded {
            container_id: task.id.clone(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        });
        Ok(api::Empty::default())
    }

    fn state(&self, _: &TtrpcContext, req: api::StateRequest) -> TtrpcResult<api::StateResponse> {
        let (task, process) = self.process(&req.id, &req.exec_id)?;
        let mut state = api::StateResponse {
            id: task.id.clone(),
            exec_id: req.exec_id.clone(),
            bundle: task.bundle.to_string_lossy().into_owned(),
            pid: task.pid(),
            stdin: process.stdio.stdin.clone(),
            stdout: process.stdio.stdout.clone(),
            stderr: process.stdio.stderr.clone(),
            terminal: process.stdio.terminal,
            ..Default::default()
        };
        let status = match process.phase() {
            Phase::Created => Status::CREATED,
            Phase::Running => Status::RUNNING,
            Phase::Paused => Status::PAUSED,
            Phase::Stopped { status, at } => {
                state.exit_status = status;
                state.exited_at = timestamp(at);
                Status::STOPPED
            }
        };
        state.status = status.into();
        Ok(state)
    }

    fn wait(&self, _: &TtrpcContext, req: api::WaitRequest) -> TtrpcResult<api::WaitResponse> {
        let (_, process) = self.process(&req.id, &req.exec_id)?;
        let (status, at) = process.wait();
        Ok(api::WaitResponse {
            exit_status: status,
            exited_at: timestamp(at),
            ..Default::default()
        })
    }

    fn kill(&self, _: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<api::Empty> {
        self.task(&req.id)?
            .signal(&req.exec_id, req.signal, req.all)
            .map_err(|e| error(Code::NOT_FOUND, e))?;
        Ok(api::Empty::default())
    }

    fn delete(
        &self,
        _: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> TtrpcResult<api::DeleteResponse> {
        let task = self.task(&req.id)?;
        let (status, at) = if req.exec_id.is_empty() {
            let begun = std::time::Instant::now();
            let ended = task.delete().map_err(failed)?;
            log::info!(
                "task {}: deleted sandbox {} in {:?}",
                req.id,
                task.vm.sandbox,
                begun.elapsed()
            );
            if let Err(e) = rootfs::unmount(&task.bundle.join("rootfs")) {
                log::warn!("{e}");
            }
            self.tasks().remove(&req.id);
            self.pods().remove(&req.id);
            ended
        } else {
            task.delete_exec(&req.exec_id).map_err(failed)?
        };
        self.events.send(TaskDelete {
            container_id: task.id.clone(),
            id: req.exec_id.clone(),
            pid: task.pid(),
            exit_status: status,
            exited_at: timestamp(at),
            ..Default::default()
        });
        Ok(api::DeleteResponse {
            pid: task.pid(),
            exit_status: status,
            exited_at: timestamp(at),
            ..Default::default()
        })
    }

    fn pids(&self, _: &TtrpcContext, req: api::PidsRequest) -> TtrpcResult<api::PidsResponse> {
        let task = self.task(&req.id)?;
        Ok(api::PidsResponse {
            processes: vec![ProcessInfo {
                pid: task.pid(),
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    fn pause(&self, _: &TtrpcContext, req: api::PauseRequest) -> TtrpcResult<api::Empty> {
        let task = self.task(&req.id)?;
        task.freeze(true).map_err(failed)?;
        self.events.send(TaskPaused {
            container_id: task.id.clone(),
            ..Default::default()
        });
        Ok(api::Empty::default())
    }

    fn resume(&self, _: &TtrpcContext, req: api::ResumeRequest) -> TtrpcResult<api::Empty> {
        let task = self.task(&req.id)?;
        task.freeze(false).map_err(failed)?;
        self.events.send(TaskResumed {
            container_id: task.id.clone(),
            ..Default::default()
        });
        Ok(api::Empty::default())
    }

    fn checkpoint(
        &self,
        _: &TtrpcContext,
        _: api::CheckpointTaskRequest,
    ) -> TtrpcResult<api::Empty> {
        Err(error(
            Code::UNIMPLEMENTED,
            "checkpoint is not supported by vmjail (a container's state lives in its VM)",
        ))
    }

    fn resize_pty(&self, _: &TtrpcContext, req: api::ResizePtyRequest) -> TtrpcResult<api::Empty> {
        let (_, process) = self.process(&req.id, &req.exec_id)?;
        let size = |n: u32| u16::try_from(n).map_err(|_| error(Code::INVALID_ARGUMENT, n));
        process
            .resize(size(req.height)?, size(req.width)?)
            .map_err(failed)?;
        Ok(api::Empty::default())
    }

    fn close_io(&self, _: &TtrpcContext, req: api::CloseIORequest) -> TtrpcResult<api::Empty> {
        let (task, process) = self.process(&req.id, &req.exec_id)?;
        if req.stdin {
            // The stdin copy may have closed it already at the FIFO's end.
            if let Err(e) = process.close_stdin() {
                log::debug!("closing stdin of {} {:?}: {e}", task.id, req.exec_id);
            }
        }
        Ok(api::Empty::default())
    }

    fn update(&self, _: &TtrpcContext, req: api::UpdateTaskRequest) -> TtrpcResult<api::Empty> {
        self.task(&req.id)?;
        Err(error(
            Code::UNIMPLEMENTED,
            "updating a running container's resources is not supported by vmjail yet \
             (limits are set from config.json at create)",
        ))
    }

    fn stats(&self, _: &TtrpcContext, req: api::StatsRequest) -> TtrpcResult<api::StatsResponse> {
        let stats = self.task(&req.id)?.stats().map_err(failed)?;
        Ok(api::StatsResponse {
            stats: MessageField::some(metrics::to_any(&stats).map_err(failed)?),
            ..Default::default()
        })
    }

    fn connect(
        &self,
        _: &TtrpcContext,
        req: api::ConnectRequest,
    ) -> TtrpcResult<api::ConnectResponse> {
        let task_pid = self.tasks().get(&req.id).map(|t| t.pid()).unwrap_or(0);
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        })
    }

    fn shutdown(&self, _: &TtrpcContext, _: api::ShutdownRequest) -> TtrpcResult<api::Empty> {
        // A shim serves its tasks until the last is deleted.
        if self.tasks().is_empty() {
            self.exit.signal();
        }
        Ok(api::Empty::default())
    }
}
