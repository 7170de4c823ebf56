//! The `Agent` ttrpc service: checks each request's sizes, then hands it to
//! the part of the agent that does the work.

use std::sync::Arc;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use vmjail_agent_protocol::agent::{
    ContainerPidsResponse, ContainerRequest, ContainerStatsResponse, CreateContainerRequest,
    CreateProcessRequest, CreateProcessResponse, Empty, ExecProcessRequest, ExitStatus,
    GuestInfoRequest, GuestInfoResponse, ListProcessesResponse, ProcessInfo, ProcessRequest,
    ReadOutputRequest, ReadOutputResponse, ResizeTtyRequest, SignalContainerRequest,
    SignalProcessRequest, UpdateContainerRequest, VersionRequest, VersionResponse,
    WaitProcessRequest, WaitProcessResponse, WriteStdinRequest, WriteStdinResponse,
};
use vmjail_agent_protocol::agent_ttrpc::Agent;
use vmjail_agent_protocol::ttrpc::error::get_rpc_status;
use vmjail_agent_protocol::ttrpc::{self, Code, TtrpcContext};
use vmjail_agent_protocol::{MAX_IO_CHUNK, MAX_WAIT_MS, PROTOCOL_VERSION};

use crate::container::{ContainerError, Containers};
use crate::process::{self, Ended, ProcessTable, Read, TableError};
use crate::{info, shutdown};

/// What a tty's line discipline reads as end-of-file (VEOF, ^D).
const TTY_EOF: u8 = 0x04;

pub struct AgentService {
    processes: Arc<ProcessTable>,
    containers: Containers,
}

impl AgentService {
    pub fn new() -> std::io::Result<Arc<Self>> {
        let processes = ProcessTable::start()?;
        Ok(Arc::new(AgentService {
            containers: Containers::new(processes.clone()),
            processes,
        }))
    }
}

impl From<ContainerError> for ttrpc::Error {
    fn from(e: ContainerError) -> Self {
        let code = match &e {
            ContainerError::BadId(_) | ContainerError::BadBundle(_) => Code::INVALID_ARGUMENT,
            ContainerError::Exists(_) => Code::ALREADY_EXISTS,
            ContainerError::NotFound(_) => Code::NOT_FOUND,
            ContainerError::Creating(_)
            | ContainerError::Started(_)
            | ContainerError::NotRunning(_)
            | ContainerError::Setup { .. } => Code::FAILED_PRECONDITION,
            ContainerError::Process(e) => return status(Code::FAILED_PRECONDITION, e),
        };
        status(code, e)
    }
}

fn status(code: Code, message: impl ToString) -> ttrpc::Error {
    get_rpc_status(code, message)
}

impl From<TableError> for ttrpc::Error {
    fn from(e: TableError) -> Self {
        let code = match &e {
            TableError::NotFound(_) => Code::NOT_FOUND,
            TableError::Full => Code::RESOURCE_EXHAUSTED,
            TableError::Spawn(_) => Code::FAILED_PRECONDITION,
            TableError::Sys { .. } => Code::INTERNAL,
        };
        status(code, e)
    }
}

fn io_error(id: u64, what: &str, e: Errno) -> ttrpc::Error {
    status(Code::INTERNAL, format!("process {id}: {what}: {e}"))
}

fn wait_of(wait_ms: u32) -> Duration {
    Duration::from_millis(u64::from(wait_ms.min(MAX_WAIT_MS)))
}

fn exit_status(ended: Ended) -> ExitStatus {
    let (exit_code, signal) = match ended {
        Ended::Exited(code) => (code, 0),
        Ended::Signaled(signal) => (0, signal),
    };
    ExitStatus {
        exit_code,
        signal,
        ..Default::default()
    }
}

impl AgentService {
    fn read(
        &self,
        req: &ReadOutputRequest,
        stream: fn(&process::Process) -> &std::sync::Mutex<Option<std::os::fd::OwnedFd>>,
    ) -> ttrpc::Result<ReadOutputResponse> {
        let id = req.process_id;
        let process = self.processes.get(id)?;
        let max = req.max_bytes.clamp(1, MAX_IO_CHUNK) as usize;
        let mut guard = stream(&process).lock().unwrap_or_else(|p| p.into_inner());
        let Some(fd) = guard.as_ref() else {
            return Ok(ReadOutputResponse {
                eof: true,
                ..Default::default()
            });
        };
        match process::read_chunk(fd, max, wait_of(req.wait_ms)) {
            Ok(Read::Data(data)) => Ok(ReadOutputResponse {
                data,
                ..Default::default()
            }),
            Ok(Read::Eof) => {
                *guard = None;
                Ok(ReadOutputResponse {
                    eof: true,
                    ..Default::default()
                })
            }
            Err(e) => Err(io_error(id, "read", e)),
        }
    }
}

impl Agent for AgentService {
    fn version(&self, _: &TtrpcContext, req: VersionRequest) -> ttrpc::Result<VersionResponse> {
        if req.protocol_version != PROTOCOL_VERSION {
            tracing::warn!(
                "host speaks protocol {}, this agent {PROTOCOL_VERSION}",
                req.protocol_version
            );
        }
        Ok(VersionResponse {
            protocol_version: PROTOCOL_VERSION,
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        })
    }

    fn guest_info(
        &self,
        _: &TtrpcContext,
        _: GuestInfoRequest,
    ) -> ttrpc::Result<GuestInfoResponse> {
        info::guest_info().map_err(|e| status(Code::INTERNAL, format!("guest info: {e}")))
    }

    fn create_process(
        &self,
        _: &TtrpcContext,
        req: CreateProcessRequest,
    ) -> ttrpc::Result<CreateProcessResponse> {
        let launch = process::launch(&req).map_err(|e| status(Code::INVALID_ARGUMENT, e))?;
        let (id, pid) = self.processes.create(&launch)?;
        tracing::debug!("process {id} (pid {pid}): {:?}", launch.argv_text);
        Ok(CreateProcessResponse {
            process_id: id,
            pid: pid.as_raw().unsigned_abs(),
            ..Default::default()
        })
    }

    fn write_stdin(
        &self,
        _: &TtrpcContext,
        req: WriteStdinRequest,
    ) -> ttrpc::Result<WriteStdinResponse> {
        let id = req.process_id;
        if req.data.len() > MAX_IO_CHUNK as usize {
            return Err(status(
                Code::INVALID_ARGUMENT,
                format!("{} bytes, more than {MAX_IO_CHUNK}", req.data.len()),
            ));
        }
        let process = self.processes.get(id)?;
        let guard = process.stdin.lock().unwrap_or_else(|p| p.into_inner());
        let fd = guard.as_ref().ok_or_else(|| {
            status(
                Code::FAILED_PRECONDITION,
                format!("process {id}: stdin is closed"),
            )
        })?;
        let written = match process::write_some(fd, &req.data, wait_of(MAX_WAIT_MS)) {
            Ok(n) => n,
            Err(Errno::EPIPE) => {
                return Err(status(
                    Code::FAILED_PRECONDITION,
                    format!("process {id}: the process closed its stdin"),
                ))
            }
            Err(e) => return Err(io_error(id, "write", e)),
        };
        Ok(WriteStdinResponse {
            written: u32::try_from(written).unwrap_or(u32::MAX),
            ..Default::default()
        })
    }

    fn close_stdin(&self, _: &TtrpcContext, req: ProcessRequest) -> ttrpc::Result<Empty> {
        let id = req.process_id;
        let process = self.processes.get(id)?;
        let mut guard = process.stdin.lock().unwrap_or_else(|p| p.into_inner());
        if let (true, Some(fd)) = (process.tty(), guard.as_ref()) {
            // The pty master also carries the output: end-of-file is a
            // character to the line discipline, not a close.
            process::write_some(fd, &[TTY_EOF], wait_of(MAX_WAIT_MS))
                .map_err(|e| io_error(id, "writing end-of-file to the tty", e))?;
        }
        *guard = None;
        Ok(Empty::default())
    }

    fn read_stdout(
        &self,
        _: &TtrpcContext,
        req: ReadOutputRequest,
    ) -> ttrpc::Result<ReadOutputResponse> {
        self.read(&req, |p| &p.stdout)
    }

    fn read_stderr(
        &self,
        _: &TtrpcContext,
        req: ReadOutputRequest,
    ) -> ttrpc::Result<ReadOutputResponse> {
        self.read(&req, |p| &p.stderr)
    }

    fn resize_tty(&self, _: &TtrpcContext, req: ResizeTtyRequest) -> ttrpc::Result<Empty> {
        let id = req.process_id;
        let process = self.processes.get(id)?;
        let pty = process.pty.as_ref().ok_or_else(|| {
            status(
                Code::FAILED_PRECONDITION,
                format!("process {id} has no tty"),
            )
        })?;
        let size = req
            .size
            .as_ref()
            .ok_or_else(|| status(Code::INVALID_ARGUMENT, "ResizeTty without a size"))?;
        let dimension = |n: u32| {
            u16::try_from(n).map_err(|_| {
                status(
                    Code::INVALID_ARGUMENT,
                    format!("tty size {n} is more than {}", u16::MAX),
                )
            })
        };
        process::resize(pty, dimension(size.rows)?, dimension(size.cols)?)
            .map_err(|e| io_error(id, "resizing the tty", e))?;
        Ok(Empty::default())
    }

    fn signal_process(&self, _: &TtrpcContext, req: SignalProcessRequest) -> ttrpc::Result<Empty> {
        let signal = Signal::try_from(req.signal).map_err(|_| {
            status(
                Code::INVALID_ARGUMENT,
                format!("{} is not a signal", req.signal),
            )
        })?;
        self.processes.signal(req.process_id, signal)?;
        Ok(Empty::default())
    }

    fn wait_process(
        &self,
        _: &TtrpcContext,
        req: WaitProcessRequest,
    ) -> ttrpc::Result<WaitProcessResponse> {
        let ended = self.processes.wait(req.process_id, wait_of(req.wait_ms))?;
        Ok(WaitProcessResponse {
            status: ended.map(exit_status).into(),
            ..Default::default()
        })
    }

    fn list_processes(&self, _: &TtrpcContext, _: Empty) -> ttrpc::Result<ListProcessesResponse> {
        let processes = self
            .processes
            .list()
            .into_iter()
            .map(|(id, process, ended)| ProcessInfo {
                process_id: id,
                pid: process.pid.as_raw().unsigned_abs(),
                argv: process.argv.clone(),
                tty: process.tty(),
                status: ended.map(exit_status).into(),
                ..Default::default()
            })
            .collect();
        Ok(ListProcessesResponse {
            processes,
            ..Default::default()
        })
    }

    fn delete_process(&self, _: &TtrpcContext, req: ProcessRequest) -> ttrpc::Result<Empty> {
        self.processes.delete(req.process_id)?;
        Ok(Empty::default())
    }

    fn create_container(
        &self,
        _: &TtrpcContext,
        req: CreateContainerRequest,
    ) -> ttrpc::Result<CreateProcessResponse> {
        let tty = match req.tty.as_ref() {
            None => None,
            Some(size) => {
                let dimension = |n: u32| {
                    u16::try_from(n).map_err(|_| {
                        status(
                            Code::INVALID_ARGUMENT,
                            format!("tty size {n} is more than {}", u16::MAX),
                        )
                    })
                };
                Some((dimension(size.rows)?, dimension(size.cols)?))
            }
        };
        let given = [&req.bundle, &req.disk_serial, &req.share];
        if given.iter().filter(|s| !s.is_empty()).count() > 1 {
            return Err(status(
                Code::INVALID_ARGUMENT,
                "a bundle path, a disk serial or a share directory: give one",
            ));
        }
        let process_id = if !req.disk_serial.is_empty() {
            self.containers
                .create_from_disk(&req.container_id, &req.disk_serial, tty, req.stdin)?
        } else if !req.share.is_empty() {
            self.containers
                .create_from_share(&req.container_id, &req.share, tty, req.stdin)?
        } else {
            self.containers
                .create(&req.container_id, &req.bundle, tty, req.stdin)?
        };
        let pid = self.processes.get(process_id)?.pid.as_raw().unsigned_abs();
        Ok(CreateProcessResponse {
            process_id,
            pid,
            ..Default::default()
        })
    }

    fn start_container(&self, _: &TtrpcContext, req: ContainerRequest) -> ttrpc::Result<Empty> {
        self.containers.start(&req.container_id)?;
        Ok(Empty::default())
    }

    fn delete_container(&self, _: &TtrpcContext, req: ContainerRequest) -> ttrpc::Result<Empty> {
        self.containers.delete(&req.container_id)?;
        Ok(Empty::default())
    }

    fn exec_process(
        &self,
        _: &TtrpcContext,
        req: ExecProcessRequest,
    ) -> ttrpc::Result<CreateProcessResponse> {
        let process = req
            .process
            .as_ref()
            .ok_or_else(|| status(Code::INVALID_ARGUMENT, "ExecProcess without a process"))?;
        let process_id = self.containers.exec(&req.container_id, process)?;
        let pid = self.processes.get(process_id)?.pid;
        tracing::debug!(
            "process {process_id} (pid {pid}) in container {:?}: {:?}",
            req.container_id,
            process.argv
        );
        Ok(CreateProcessResponse {
            process_id,
            pid: pid.as_raw().unsigned_abs(),
            ..Default::default()
        })
    }

    fn signal_container(
        &self,
        _: &TtrpcContext,
        req: SignalContainerRequest,
    ) -> ttrpc::Result<Empty> {
        let signal = Signal::try_from(req.signal).map_err(|_| {
            status(
                Code::INVALID_ARGUMENT,
                format!("{} is not a signal", req.signal),
            )
        })?;
        self.containers.signal(&req.container_id, signal, req.all)?;
        Ok(Empty::default())
    }

    fn update_container(
        &self,
        _: &TtrpcContext,
        req: UpdateContainerRequest,
    ) -> ttrpc::Result<Empty> {
        self.containers
            .update(&req.container_id, &req.resources_json)?;
        Ok(Empty::default())
    }

    fn container_stats(
        &self,
        _: &TtrpcContext,
        req: ContainerRequest,
    ) -> ttrpc::Result<ContainerStatsResponse> {
        let s = self.containers.stats(&req.container_id)?;
        Ok(ContainerStatsResponse {
            cpu_usage_usec: s.cpu_usage_usec,
            cpu_user_usec: s.cpu_user_usec,
            cpu_system_usec: s.cpu_system_usec,
            memory_usage_bytes: s.memory_usage_bytes,
            memory_limit_bytes: s.memory_limit_bytes,
            pids_current: s.pids_current,
            pids_limit: s.pids_limit,
            oom_kills: s.oom_kills,
            ..Default::default()
        })
    }

    fn pause_container(&self, _: &TtrpcContext, req: ContainerRequest) -> ttrpc::Result<Empty> {
        self.containers.freeze(&req.container_id, true)?;
        Ok(Empty::default())
    }

    fn resume_container(&self, _: &TtrpcContext, req: ContainerRequest) -> ttrpc::Result<Empty> {
        self.containers.freeze(&req.container_id, false)?;
        Ok(Empty::default())
    }

    fn container_pids(
        &self,
        _: &TtrpcContext,
        req: ContainerRequest,
    ) -> ttrpc::Result<ContainerPidsResponse> {
        Ok(ContainerPidsResponse {
            pids: self.containers.pids(&req.container_id)?,
            ..Default::default()
        })
    }

    fn shutdown(&self, _: &TtrpcContext, _: Empty) -> ttrpc::Result<Empty> {
        tracing::info!("shutdown requested: syncing and powering off");
        shutdown::power_off_soon();
        Ok(Empty::default())
    }
}
