//! OCI containers in the guest. The agent starts each container's init
//! (`container-init`, see init.rs) as one of its processes and keeps, per
//! container id, that process and the pipe that lets it start.

mod binds;
mod caps;
mod cgroup;
pub mod disk;
mod in_root;
pub mod init;
mod rootfs;
pub mod share;
mod spec;

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::pipe2;
use vmjail_agent_protocol::MAX_PROCESSES;

use crate::process::{Launch, ProcessTable, TableError};

/// Longest a container's setup may take before CreateContainer fails.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes of a setup error kept.
const MAX_REPORT: usize = 4096;

struct Container {
    process_id: u64,
    /// Write end of the start pipe; `None` once started.
    start: Option<OwnedFd>,
}

pub struct Containers {
    processes: Arc<ProcessTable>,
    by_id: Mutex<HashMap<String, Container>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("container id {0:?}: expected 1 to 64 of [A-Za-z0-9_.-]")]
    BadId(String),
    #[error("bundle {0:?}: expected an absolute path")]
    BadBundle(String),
    #[error("container {0:?} exists already")]
    Exists(String),
    #[error("no container {0:?}")]
    NotFound(String),
    #[error("container {0:?} was started already")]
    Started(String),
    #[error("container {id:?}: {message}")]
    Setup { id: String, message: String },
    #[error(transparent)]
    Process(#[from] TableError),
}

impl Containers {
    pub fn new(processes: Arc<ProcessTable>) -> Containers {
        Containers {
            processes,
            by_id: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Container>> {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Like [`Containers::create`], the bundle being the disk with
    /// `disk_serial` (mounted first, unmounted again if the create fails).
    pub fn create_from_disk(
        &self,
        id: &str,
        disk_serial: &str,
        tty: Option<(u16, u16)>,
        stdin: bool,
    ) -> Result<u64, ContainerError> {
        check_id(id)?;
        if self.lock().contains_key(id) {
            return Err(ContainerError::Exists(id.into()));
        }
        let bundle =
            disk::mount_bundle(id, disk_serial).map_err(|message| ContainerError::Setup {
                id: id.into(),
                message,
            })?;
        let bundle = bundle.to_string_lossy().into_owned();
        self.create(id, &bundle, tty, stdin)
            .inspect_err(|_| disk::unmount_bundle(id))
    }

    /// Like [`Containers::create`], the bundle being directory `name` of
    /// the sandbox's virtio-fs share (mounted on first use).
    pub fn create_from_share(
        &self,
        id: &str,
        name: &str,
        tty: Option<(u16, u16)>,
        stdin: bool,
    ) -> Result<u64, ContainerError> {
        check_id(id)?;
        let bundle = share::bundle(name).map_err(|message| ContainerError::Setup {
            id: id.into(),
            message,
        })?;
        let bundle = bundle.to_string_lossy().into_owned();
        self.create(id, &bundle, tty, stdin)
    }

    /// Starts the container's init and waits until it is set up and
    /// waiting for [`Containers::start`]; returns its process id.
    pub fn create(
        &self,
        id: &str,
        bundle: &str,
        tty: Option<(u16, u16)>,
        stdin: bool,
    ) -> Result<u64, ContainerError> {
        check_id(id)?;
        if !Path::new(bundle).is_absolute() {
            return Err(ContainerError::BadBundle(
                bundle.chars().take(4096).collect(),
            ));
        }
        let mut by_id = self.lock();
        if by_id.contains_key(id) {
            return Err(ContainerError::Exists(id.into()));
        }
        if by_id.len() >= MAX_PROCESSES {
            return Err(TableError::Full.into());
        }
        let setup = |message: String| ContainerError::Setup {
            id: id.into(),
            message,
        };
        let pipe = || pipe2(OFlag::O_CLOEXEC).map_err(|e| setup(format!("creating a pipe: {e}")));
        let (ready_read, ready_write) = pipe()?;
        let (start_read, start_write) = pipe()?;
        let launch =
            init_launch(id, bundle, tty, stdin, vec![ready_write, start_read]).map_err(setup)?;
        let (process_id, _) = self.processes.create(&launch)?;
        drop(launch);
        match read_report(ready_read) {
            Ok(report) if report == "ok" => {}
            outcome => {
                let _ = self.processes.delete(process_id);
                cgroup::remove(Path::new(cgroup::ROOT), id);
                let message = outcome.unwrap_or_else(|e| e);
                let message = message
                    .strip_prefix("error: ")
                    .unwrap_or(&message)
                    .to_string();
                return Err(setup(message));
            }
        }
        by_id.insert(
            id.into(),
            Container {
                process_id,
                start: Some(start_write),
            },
        );
        Ok(process_id)
    }

    pub fn start(&self, id: &str) -> Result<(), ContainerError> {
        let mut by_id = self.lock();
        let container = by_id
            .get_mut(id)
            .ok_or_else(|| ContainerError::NotFound(id.into()))?;
        let start = container
            .start
            .take()
            .ok_or_else(|| ContainerError::Started(id.into()))?;
        File::from(start)
            .write_all(b"s")
            .map_err(|e| ContainerError::Setup {
                id: id.into(),
                message: format!("starting: {e}"),
            })
    }

    /// Kills the container's process if it runs (a container never started
    /// ends as its start pipe closes) and forgets it.
    pub fn delete(&self, id: &str) -> Result<(), ContainerError> {
        let container = self
            .lock()
            .remove(id)
            .ok_or_else(|| ContainerError::NotFound(id.into()))?;
        let deleted = match self.processes.delete(container.process_id) {
            Ok(()) | Err(TableError::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        };
        cgroup::remove(Path::new(cgroup::ROOT), id);
        disk::unmount_bundle(id);
        deleted
    }
}

/// A container id: 1 to 64 of `[A-Za-z0-9_.-]`, never `.` or `..` (it
/// names a mount point).
fn check_id(id: &str) -> Result<(), ContainerError> {
    let id_ok = !id.is_empty()
        && id.len() <= 64
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if id_ok {
        Ok(())
    } else {
        Err(ContainerError::BadId(id.chars().take(80).collect()))
    }
}

fn init_launch(
    id: &str,
    bundle: &str,
    tty: Option<(u16, u16)>,
    stdin: bool,
    extra_fds: Vec<OwnedFd>,
) -> Result<Launch, String> {
    let c = |s: &str| std::ffi::CString::new(s).map_err(|_| format!("{s:?} contains a NUL byte"));
    let argv_text = vec![
        "vmjail-agent".to_string(),
        "container-init".into(),
        bundle.into(),
        id.into(),
    ];
    Ok(Launch {
        // The agent's own binary, whatever its path.
        program: c("/proc/self/exe")?,
        argv: argv_text.iter().map(|a| c(a)).collect::<Result<_, _>>()?,
        env: Vec::new(),
        cwd: c("/")?,
        uid: 0,
        gid: 0,
        groups: Vec::new(),
        tty,
        stdin,
        argv_text,
        extra_fds,
    })
}

/// What the init wrote on its ready pipe before closing it, waiting at
/// most [`SETUP_TIMEOUT`].
fn read_report(pipe: OwnedFd) -> Result<String, String> {
    let mut file = File::from(pipe);
    let mut report = Vec::new();
    let mut buf = [0u8; 512];
    let deadline = std::time::Instant::now() + SETUP_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(
            std::os::fd::AsFd::as_fd(&file),
            PollFlags::POLLIN,
        )];
        match poll(&mut fds, timeout) {
            Ok(0) => return Err(format!("not set up within {}s", SETUP_TIMEOUT.as_secs())),
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("waiting for setup: {e}")),
        }
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) if report.len() + n <= MAX_REPORT => report.extend_from_slice(&buf[..n]),
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading the setup report: {e}")),
        }
    }
    if report.is_empty() {
        return Err("the container init ended without a report".into());
    }
    Ok(String::from_utf8_lossy(&report).into_owned())
}
