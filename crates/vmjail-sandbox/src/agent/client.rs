//! [`AgentClient`]: the host's side of the agent protocol over one connected
//! stream. Every call has a deadline and every answer is checked against
//! what was asked before it is believed.

use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::time::{Duration, Instant};

use vmjail_agent_protocol::agent::{
    ContainerRequest, CreateContainerRequest, CreateProcessRequest, Empty, ExecProcessRequest,
    GuestInfoRequest, ProcessRequest, ReadOutputRequest, ResizeTtyRequest, SignalContainerRequest,
    SignalProcessRequest, VersionRequest, WaitProcessRequest, WindowSize, WriteStdinRequest,
};
use vmjail_agent_protocol::agent_ttrpc;
use vmjail_agent_protocol::ttrpc::{self, context};
use vmjail_agent_protocol::{MAX_IO_CHUNK, MAX_WAIT_MS, PROTOCOL_VERSION};

use super::error::AgentError;
use super::types::{ContainerStats, ExitStatus, GuestInfo, Output, ProcessInfo, ProcessSpec};

/// How long one call may take unless the caller says otherwise.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Most processes a `ListProcesses` answer may name (the agent keeps at
/// most this many).
const MAX_LISTED: usize = vmjail_agent_protocol::MAX_PROCESSES;

/// A connection to one guest agent, checked to speak [`PROTOCOL_VERSION`].
/// Calls from several threads share it.
pub struct AgentClient {
    inner: agent_ttrpc::AgentClient,
    /// A second handle on the socket, to wake ttrpc's reader thread on drop
    /// (closing its descriptor would not interrupt a blocked read).
    socket: OwnedFd,
    timeout: Duration,
}

impl AgentClient {
    /// Takes a stream socket already connected to the agent (a
    /// `UnixStream` past the hybrid-vsock handshake, or an `AF_VSOCK`
    /// socket), and checks the agent's protocol version.
    pub fn new(stream: impl Into<OwnedFd>) -> Result<Self, AgentError> {
        Self::with_timeout(stream, DEFAULT_CALL_TIMEOUT)
    }

    /// As [`AgentClient::new`], with `timeout` for each call instead of
    /// [`DEFAULT_CALL_TIMEOUT`].
    pub fn with_timeout(stream: impl Into<OwnedFd>, timeout: Duration) -> Result<Self, AgentError> {
        let stream: OwnedFd = stream.into();
        let socket = stream.try_clone().map_err(AgentError::Setup)?;
        // ttrpc owns the descriptor from here and closes it on drop.
        let client = ttrpc::Client::new(stream.into_raw_fd())
            .map_err(|e| AgentError::Setup(std::io::Error::other(e.to_string())))?;
        let agent = AgentClient {
            inner: agent_ttrpc::AgentClient::new(client),
            socket,
            timeout,
        };
        agent.check_version()?;
        Ok(agent)
    }

    fn check_version(&self) -> Result<(), AgentError> {
        let req = VersionRequest {
            protocol_version: PROTOCOL_VERSION,
            ..Default::default()
        };
        let answer = self.call("Version", Duration::ZERO, |c, ctx| c.version(ctx, &req))?;
        if answer.protocol_version != PROTOCOL_VERSION {
            return Err(AgentError::VersionMismatch {
                host: PROTOCOL_VERSION,
                agent: answer.protocol_version,
                agent_version: answer.agent_version.chars().take(64).collect(),
            });
        }
        Ok(())
    }

    /// Runs one call with a deadline of the call timeout plus `guest_wait`
    /// (the time the agent was asked to block).
    fn call<T>(
        &self,
        name: &'static str,
        guest_wait: Duration,
        f: impl FnOnce(&agent_ttrpc::AgentClient, context::Context) -> ttrpc::Result<T>,
    ) -> Result<T, AgentError> {
        let timeout = self.timeout + guest_wait;
        let nanos = i64::try_from(timeout.as_nanos()).unwrap_or(i64::MAX);
        let start = Instant::now();
        f(&self.inner, context::with_timeout(nanos))
            .map_err(|e| AgentError::from_ttrpc(name, e, start.elapsed(), timeout))
    }

    pub fn guest_info(&self) -> Result<GuestInfo, AgentError> {
        let req = GuestInfoRequest::default();
        let a = self.call("GuestInfo", Duration::ZERO, |c, ctx| {
            c.guest_info(ctx, &req)
        })?;
        Ok(GuestInfo {
            kernel_release: a.kernel_release.chars().take(256).collect(),
            uptime: Duration::from_millis(a.uptime_ms),
            memory_total_bytes: a.memory_total_bytes,
            memory_free_bytes: a.memory_free_bytes,
            cpus: a.cpus,
        })
    }

    /// Starts a process in the guest; returns the agent's id for it.
    pub fn create_process(&self, spec: &ProcessSpec) -> Result<u64, AgentError> {
        let req = process_create_request(spec);
        let a = self.call("CreateProcess", Duration::ZERO, |c, ctx| {
            c.create_process(ctx, &req)
        })?;
        Ok(a.process_id)
    }

    /// Writes at most [`MAX_IO_CHUNK`] bytes of `data` to the process's
    /// stdin; returns how many the agent wrote (fewer when the process does
    /// not read in time).
    pub fn write_stdin(&self, process: u64, data: &[u8]) -> Result<usize, AgentError> {
        let chunk = &data[..data.len().min(MAX_IO_CHUNK as usize)];
        let req = WriteStdinRequest {
            process_id: process,
            data: chunk.to_vec(),
            ..Default::default()
        };
        let wait = Duration::from_millis(u64::from(MAX_WAIT_MS));
        let a = self.call("WriteStdin", wait, |c, ctx| c.write_stdin(ctx, &req))?;
        let written = a.written as usize;
        if written > chunk.len() {
            return Err(AgentError::BadAnswer {
                call: "WriteStdin",
                reason: format!("wrote {written} bytes of {}", chunk.len()),
            });
        }
        Ok(written)
    }

    /// Closes the process's stdin (on a tty: sends end-of-file).
    pub fn close_stdin(&self, process: u64) -> Result<(), AgentError> {
        let req = process_request(process);
        self.call("CloseStdin", Duration::ZERO, |c, ctx| {
            c.close_stdin(ctx, &req)
        })?;
        Ok(())
    }

    /// Up to `max_bytes` (capped to [`MAX_IO_CHUNK`]) of the process's
    /// stdout (its tty, with a tty), waiting at most `wait` for some.
    pub fn read_stdout(
        &self,
        process: u64,
        max_bytes: u32,
        wait: Duration,
    ) -> Result<Output, AgentError> {
        self.read_output("ReadStdout", process, max_bytes, wait, |c, ctx, r| {
            c.read_stdout(ctx, r)
        })
    }

    /// As [`AgentClient::read_stdout`], for stderr (at its end at once with
    /// a tty).
    pub fn read_stderr(
        &self,
        process: u64,
        max_bytes: u32,
        wait: Duration,
    ) -> Result<Output, AgentError> {
        self.read_output("ReadStderr", process, max_bytes, wait, |c, ctx, r| {
            c.read_stderr(ctx, r)
        })
    }

    fn read_output(
        &self,
        call: &'static str,
        process: u64,
        max_bytes: u32,
        wait: Duration,
        f: impl FnOnce(
            &agent_ttrpc::AgentClient,
            context::Context,
            &ReadOutputRequest,
        ) -> ttrpc::Result<vmjail_agent_protocol::agent::ReadOutputResponse>,
    ) -> Result<Output, AgentError> {
        let max_bytes = max_bytes.clamp(1, MAX_IO_CHUNK);
        let wait_ms = wait_ms(wait);
        let req = ReadOutputRequest {
            process_id: process,
            max_bytes,
            wait_ms,
            ..Default::default()
        };
        let a = self.call(call, Duration::from_millis(u64::from(wait_ms)), |c, ctx| {
            f(c, ctx, &req)
        })?;
        if a.data.len() > max_bytes as usize {
            return Err(AgentError::BadAnswer {
                call,
                reason: format!(
                    "{} bytes where at most {max_bytes} were asked for",
                    a.data.len()
                ),
            });
        }
        Ok(match (a.data.is_empty(), a.eof) {
            (true, true) => Output::Eof,
            (false, false) => Output::Data(a.data),
            (true, false) => Output::Data(Vec::new()),
            (false, true) => {
                return Err(AgentError::BadAnswer {
                    call,
                    reason: "data and end-of-stream in one answer".into(),
                })
            }
        })
    }

    /// Sets the window size of the process's tty.
    pub fn resize_tty(&self, process: u64, rows: u16, cols: u16) -> Result<(), AgentError> {
        let req = ResizeTtyRequest {
            process_id: process,
            size: Some(window_size(rows, cols)).into(),
            ..Default::default()
        };
        self.call("ResizeTty", Duration::ZERO, |c, ctx| {
            c.resize_tty(ctx, &req)
        })?;
        Ok(())
    }

    /// Sends signal number `signal` to the process.
    pub fn signal(&self, process: u64, signal: i32) -> Result<(), AgentError> {
        let req = SignalProcessRequest {
            process_id: process,
            signal,
            ..Default::default()
        };
        self.call("SignalProcess", Duration::ZERO, |c, ctx| {
            c.signal_process(ctx, &req)
        })?;
        Ok(())
    }

    /// The process's exit status, waiting at most `wait` (capped to the
    /// protocol's [`MAX_WAIT_MS`]); `None` while it runs.
    pub fn wait(&self, process: u64, wait: Duration) -> Result<Option<ExitStatus>, AgentError> {
        let wait_ms = wait_ms(wait);
        let req = WaitProcessRequest {
            process_id: process,
            wait_ms,
            ..Default::default()
        };
        let a = self.call(
            "WaitProcess",
            Duration::from_millis(u64::from(wait_ms)),
            |c, ctx| c.wait_process(ctx, &req),
        )?;
        a.status
            .as_ref()
            .map(|s| ExitStatus::from_wire(s.exit_code, s.signal))
            .transpose()
            .map_err(|reason| AgentError::BadAnswer {
                call: "WaitProcess",
                reason,
            })
    }

    /// The processes the agent keeps (running, or ended and not deleted).
    pub fn list_processes(&self) -> Result<Vec<ProcessInfo>, AgentError> {
        let req = Empty::default();
        let a = self.call("ListProcesses", Duration::ZERO, |c, ctx| {
            c.list_processes(ctx, &req)
        })?;
        if a.processes.len() > MAX_LISTED {
            return Err(AgentError::BadAnswer {
                call: "ListProcesses",
                reason: format!("{} processes, more than {MAX_LISTED}", a.processes.len()),
            });
        }
        a.processes
            .into_iter()
            .map(|p| {
                let status = p
                    .status
                    .as_ref()
                    .map(|s| ExitStatus::from_wire(s.exit_code, s.signal))
                    .transpose()
                    .map_err(|reason| AgentError::BadAnswer {
                        call: "ListProcesses",
                        reason,
                    })?;
                Ok(ProcessInfo {
                    id: p.process_id,
                    pid: p.pid,
                    argv: p.argv,
                    tty: p.tty,
                    status,
                })
            })
            .collect()
    }

    /// Makes the agent forget the process (killing it if it still runs).
    pub fn delete_process(&self, process: u64) -> Result<(), AgentError> {
        let req = process_request(process);
        self.call("DeleteProcess", Duration::ZERO, |c, ctx| {
            c.delete_process(ctx, &req)
        })?;
        Ok(())
    }

    /// Sets up the OCI container of the bundle at `bundle` (a path in the
    /// guest) as `container_id`, waiting to start; returns the process id
    /// of its process, for the process calls. `tty` and `stdin` as in
    /// [`ProcessSpec`].
    pub fn create_container(
        &self,
        container_id: &str,
        bundle: &str,
        tty: Option<(u16, u16)>,
        stdin: bool,
    ) -> Result<u64, AgentError> {
        self.create_container_request(CreateContainerRequest {
            container_id: container_id.into(),
            bundle: bundle.into(),
            tty: tty.map(|(rows, cols)| window_size(rows, cols)).into(),
            stdin,
            ..Default::default()
        })
    }

    /// As [`AgentClient::create_container`], the bundle being the ext4
    /// disk whose virtio-blk serial is `disk_serial` (the agent mounts it).
    pub fn create_container_from_disk(
        &self,
        container_id: &str,
        disk_serial: &str,
        tty: Option<(u16, u16)>,
        stdin: bool,
    ) -> Result<u64, AgentError> {
        self.create_container_request(CreateContainerRequest {
            container_id: container_id.into(),
            disk_serial: disk_serial.into(),
            tty: tty.map(|(rows, cols)| window_size(rows, cols)).into(),
            stdin,
            ..Default::default()
        })
    }

    /// As [`AgentClient::create_container`], the bundle being directory
    /// `share` (1 to 3 digits) of the sandbox's virtio-fs share.
    pub fn create_container_from_share(
        &self,
        container_id: &str,
        share: &str,
        tty: Option<(u16, u16)>,
        stdin: bool,
    ) -> Result<u64, AgentError> {
        self.create_container_request(CreateContainerRequest {
            container_id: container_id.into(),
            share: share.into(),
            tty: tty.map(|(rows, cols)| window_size(rows, cols)).into(),
            stdin,
            ..Default::default()
        })
    }

    fn create_container_request(&self, req: CreateContainerRequest) -> Result<u64, AgentError> {
        // The agent waits up to 10 s for the container's setup.
        let a = self.call("CreateContainer", Duration::from_secs(10), |c, ctx| {
            c.create_container(ctx, &req)
        })?;
        Ok(a.process_id)
    }

    /// Lets the container's process exec its command.
    pub fn start_container(&self, container_id: &str) -> Result<(), AgentError> {
        let req = container_request(container_id);
        self.call("StartContainer", Duration::ZERO, |c, ctx| {
            c.start_container(ctx, &req)
        })?;
        Ok(())
    }

    /// Kills the container's process if it runs and forgets the container.
    pub fn delete_container(&self, container_id: &str) -> Result<(), AgentError> {
        let req = container_request(container_id);
        self.call("DeleteContainer", Duration::ZERO, |c, ctx| {
            c.delete_container(ctx, &req)
        })?;
        Ok(())
    }

    /// Starts `spec` inside started container `container_id` (`runc
    /// exec`: its namespaces, cgroup, root, capabilities; argv[0] looked
    /// up in the container); returns the agent's process id for it. Fails
    /// when the command cannot be run there.
    pub fn exec_process(&self, container_id: &str, spec: &ProcessSpec) -> Result<u64, AgentError> {
        let req = ExecProcessRequest {
            container_id: container_id.into(),
            process: Some(process_create_request(spec)).into(),
            ..Default::default()
        };
        // The agent waits up to 10 s for the helper's report.
        let a = self.call("ExecProcess", Duration::from_secs(10), |c, ctx| {
            c.exec_process(ctx, &req)
        })?;
        Ok(a.process_id)
    }

    /// Sends `signal` to the container's process, or with `all` to every
    /// process in the container's cgroup.
    pub fn signal_container(
        &self,
        container_id: &str,
        signal: i32,
        all: bool,
    ) -> Result<(), AgentError> {
        let req = SignalContainerRequest {
            container_id: container_id.into(),
            signal,
            all,
            ..Default::default()
        };
        self.call("SignalContainer", Duration::ZERO, |c, ctx| {
            c.signal_container(ctx, &req)
        })?;
        Ok(())
    }

    /// Applies `resources_json` (an OCI LinuxResources JSON, at most
    /// [`vmjail_agent_protocol::MAX_RESOURCES_JSON`] bytes) to the
    /// container's cgroup: memory, pids and cpu limits.
    pub fn update_container(
        &self,
        container_id: &str,
        resources_json: &str,
    ) -> Result<(), AgentError> {
        let req = vmjail_agent_protocol::agent::UpdateContainerRequest {
            container_id: container_id.into(),
            resources_json: resources_json.into(),
            ..Default::default()
        };
        self.call("UpdateContainer", Duration::ZERO, |c, ctx| {
            c.update_container(ctx, &req)
        })?;
        Ok(())
    }

    /// Freezes every process of the container.
    pub fn pause_container(&self, container_id: &str) -> Result<(), AgentError> {
        let req = container_request(container_id);
        self.call("PauseContainer", Duration::ZERO, |c, ctx| {
            c.pause_container(ctx, &req)
        })?;
        Ok(())
    }

    /// Thaws the processes of a paused container.
    pub fn resume_container(&self, container_id: &str) -> Result<(), AgentError> {
        let req = container_request(container_id);
        self.call("ResumeContainer", Duration::ZERO, |c, ctx| {
            c.resume_container(ctx, &req)
        })?;
        Ok(())
    }

    /// The guest pids of the container's processes.
    pub fn container_pids(&self, container_id: &str) -> Result<Vec<u32>, AgentError> {
        let req = container_request(container_id);
        let a = self.call("ContainerPids", Duration::ZERO, |c, ctx| {
            c.container_pids(ctx, &req)
        })?;
        if a.pids.len() > MAX_LISTED {
            return Err(AgentError::BadAnswer {
                call: "ContainerPids",
                reason: format!("{} pids, more than {MAX_LISTED}", a.pids.len()),
            });
        }
        Ok(a.pids)
    }

    /// The container's cgroup figures (CPU, memory, pids) in the guest.
    pub fn container_stats(&self, container_id: &str) -> Result<ContainerStats, AgentError> {
        let req = container_request(container_id);
        let a = self.call("ContainerStats", Duration::ZERO, |c, ctx| {
            c.container_stats(ctx, &req)
        })?;
        Ok(ContainerStats {
            cpu_usage_usec: a.cpu_usage_usec,
            cpu_user_usec: a.cpu_user_usec,
            cpu_system_usec: a.cpu_system_usec,
            memory_usage_bytes: a.memory_usage_bytes,
            memory_limit_bytes: a.memory_limit_bytes,
            pids_current: a.pids_current,
            pids_limit: a.pids_limit,
            oom_kills: a.oom_kills,
        })
    }

    /// Asks the guest to sync its filesystems and power off.
    pub fn shutdown(&self) -> Result<(), AgentError> {
        let req = Empty::default();
        self.call("Shutdown", Duration::ZERO, |c, ctx| c.shutdown(ctx, &req))?;
        Ok(())
    }
}

impl Drop for AgentClient {
    fn drop(&mut self) {
        // Wakes ttrpc's reader thread, which may sit in a read the guest
        // never completes; it then ends instead of lingering.
        let _ =
            nix::sys::socket::shutdown(self.socket.as_raw_fd(), nix::sys::socket::Shutdown::Both);
    }
}

fn container_request(container_id: &str) -> ContainerRequest {
    ContainerRequest {
        container_id: container_id.into(),
        ..Default::default()
    }
}

fn process_create_request(spec: &ProcessSpec) -> CreateProcessRequest {
    CreateProcessRequest {
        argv: spec.argv.clone(),
        env: spec.env.clone(),
        cwd: spec.cwd.clone().unwrap_or_default(),
        uid: spec.uid,
        gid: spec.gid,
        additional_gids: spec.additional_gids.clone(),
        tty: spec.tty.map(|(rows, cols)| window_size(rows, cols)).into(),
        stdin: spec.stdin,
        ..Default::default()
    }
}

fn process_request(process: u64) -> ProcessRequest {
    ProcessRequest {
        process_id: process,
        ..Default::default()
    }
}

fn window_size(rows: u16, cols: u16) -> WindowSize {
    WindowSize {
        rows: u32::from(rows),
        cols: u32::from(cols),
        ..Default::default()
    }
}

fn wait_ms(wait: Duration) -> u32 {
    u32::try_from(wait.as_millis())
        .unwrap_or(u32::MAX)
        .min(MAX_WAIT_MS)
}
