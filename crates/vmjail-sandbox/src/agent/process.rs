//! [`ProcessHandle`]: one process in the guest, and the pumps that move its
//! stdio between the agent and local readers and writers.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use vmjail_agent_protocol::{MAX_IO_CHUNK, MAX_WAIT_MS};

use super::client::AgentClient;
use super::error::AgentError;
use super::types::{ExitStatus, Output, ProcessSpec};

/// How long one read or wait call asks the agent to block.
const POLL: Duration = Duration::from_millis(MAX_WAIT_MS as u64);

/// Which output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A process started through an [`AgentClient`]. Its methods may be called
/// from several threads at once (e.g. one pump per stream).
#[derive(Clone)]
pub struct ProcessHandle {
    client: Arc<AgentClient>,
    id: u64,
}

impl ProcessHandle {
    pub fn start(client: Arc<AgentClient>, spec: &ProcessSpec) -> Result<Self, AgentError> {
        let id = client.create_process(spec)?;
        Ok(ProcessHandle { client, id })
    }

    /// The process of a new OCI container (see
    /// [`AgentClient::create_container`]), set up and not yet started.
    pub fn create_container(
        client: Arc<AgentClient>,
        container_id: &str,
        bundle: &str,
        tty: Option<(u16, u16)>,
        stdin: bool,
    ) -> Result<Self, AgentError> {
        let id = client.create_container(container_id, bundle, tty, stdin)?;
        Ok(ProcessHandle { client, id })
    }

    /// As [`ProcessHandle::create_container`], from the bundle disk with
    /// `disk_serial` (see [`AgentClient::create_container_from_disk`]).
    pub fn create_container_from_disk(
        client: Arc<AgentClient>,
        container_id: &str,
        disk_serial: &str,
        tty: Option<(u16, u16)>,
        stdin: bool,
    ) -> Result<Self, AgentError> {
        let id = client.create_container_from_disk(container_id, disk_serial, tty, stdin)?;
        Ok(ProcessHandle { client, id })
    }

    /// `spec` started inside started container `container_id` (see
    /// [`AgentClient::exec_process`]).
    pub fn exec_in_container(
        client: Arc<AgentClient>,
        container_id: &str,
        spec: &ProcessSpec,
    ) -> Result<Self, AgentError> {
        let id = client.exec_process(container_id, spec)?;
        Ok(ProcessHandle { client, id })
    }

    /// The process the agent knows by `id` (e.g. a container's, as
    /// recorded at its create).
    pub fn from_id(client: Arc<AgentClient>, id: u64) -> Self {
        ProcessHandle { client, id }
    }

    /// As [`ProcessHandle::create_container`], from directory `share` of
    /// the sandbox's virtio-fs share (see
    /// [`AgentClient::create_container_from_share`]).
    pub fn create_container_from_share(
        client: Arc<AgentClient>,
        container_id: &str,
        share: &str,
        tty: Option<(u16, u16)>,
        stdin: bool,
    ) -> Result<Self, AgentError> {
        let id = client.create_container_from_share(container_id, share, tty, stdin)?;
        Ok(ProcessHandle { client, id })
    }

    /// The agent's id for the process.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Writes all of `data` to the process's stdin, in chunks the protocol
    /// allows, waiting as long as the process keeps reading.
    pub fn write_stdin(&self, mut data: &[u8]) -> Result<(), AgentError> {
        while !data.is_empty() {
            let written = self.client.write_stdin(self.id, data)?;
            data = &data[written..];
        }
        Ok(())
    }

    pub fn close_stdin(&self) -> Result<(), AgentError> {
        self.client.close_stdin(self.id)
    }

    /// One chunk of output, waiting at most `wait` for it.
    pub fn read(&self, stream: Stream, wait: Duration) -> Result<Output, AgentError> {
        match stream {
            Stream::Stdout => self.client.read_stdout(self.id, MAX_IO_CHUNK, wait),
            Stream::Stderr => self.client.read_stderr(self.id, MAX_IO_CHUNK, wait),
        }
    }

    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), AgentError> {
        self.client.resize_tty(self.id, rows, cols)
    }

    pub fn signal(&self, signal: i32) -> Result<(), AgentError> {
        self.client.signal(self.id, signal)
    }

    /// The exit status, or `None` if it still runs after `wait`.
    pub fn wait_timeout(&self, wait: Duration) -> Result<Option<ExitStatus>, AgentError> {
        self.client.wait(self.id, wait)
    }

    /// Waits for the process to end, however long it runs (each call to the
    /// agent is still bounded).
    pub fn wait(&self) -> Result<ExitStatus, AgentError> {
        loop {
            if let Some(status) = self.client.wait(self.id, POLL)? {
                return Ok(status);
            }
        }
    }

    /// Makes the agent forget the process (killing it if it runs).
    pub fn delete(&self) -> Result<(), AgentError> {
        self.client.delete_process(self.id)
    }

    /// Copies `stream` into `out` until its end; returns the byte count.
    pub fn pump_output(&self, stream: Stream, out: &mut dyn Write) -> Result<u64, AgentError> {
        let mut total = 0u64;
        loop {
            match self.read(stream, POLL)? {
                Output::Eof => return Ok(total),
                Output::Data(data) if data.is_empty() => {}
                Output::Data(data) => {
                    out.write_all(&data)
                        .and_then(|()| out.flush())
                        .map_err(|source| AgentError::LocalIo {
                            what: "writing the process's output",
                            source,
                        })?;
                    total += data.len() as u64;
                }
            }
        }
    }

    /// Copies `input` into the process's stdin until `input` ends, then
    /// closes it; returns the byte count.
    pub fn pump_stdin(&self, input: &mut dyn Read) -> Result<u64, AgentError> {
        let mut buf = vec![0u8; MAX_IO_CHUNK as usize];
        let mut total = 0u64;
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(AgentError::LocalIo {
                        what: "reading input for the process",
                        source,
                    })
                }
            };
            self.write_stdin(&buf[..n])?;
            total += n as u64;
        }
        self.close_stdin()?;
        Ok(total)
    }
}
