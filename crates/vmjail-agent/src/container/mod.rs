//! OCI containers in the guest. The agent starts each container's init
//! (`container-init`, see init.rs) as one of its processes and keeps, per
//! container id, that process and the pipe that lets it start. A create
//! reserves its id first and sets the container up without holding the
//! table's lock (setup may take seconds), so concurrent creates of one id
//! cannot both mount its disk, and other calls are not held up meanwhile.

mod binds;
mod caps;
pub mod cgroup;
mod cgroup_stats;
mod console;
pub mod disk;
pub mod exec;
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
use nix::sys::signal::Signal;
use nix::unistd::pipe2;
use vmjail_agent_protocol::agent::CreateProcessRequest;
use vmjail_agent_protocol::{valid_container_id, MAX_PROCESSES};

use crate::process::{Launch, ProcessTable, TableError};

pub use cgroup_stats::Stats;

/// Longest a container's setup may take before CreateContainer fails.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes of a setup error kept.
const MAX_REPORT: usize = 4096;

struct Container {
    process_id: u64,
    /// The bundle directory in the guest (its spec, for execs).
    bundle: String,
    /// Write end of the start pipe; `None` once started.
    start: Option<OwnedFd>,
}

enum Entry {
    /// Reserved by a create still setting it up.
    Creating,
    Created(Container),
}

pub struct Containers {
    processes: Arc<ProcessTable>,
    by_id: Mutex<HashMap<String, Entry>>,
}

/// A container id reserved in the table; forgotten again on drop unless
/// [`Reservation::fill`]ed.
struct Reservation<'a> {
    table: &'a Containers,
    id: String,
    filled: bool,
}

impl Reservation<'_> {
    fn fill(mut self, container: Container) {
        self.table
            .lock()
            .insert(self.id.clone(), Entry::Created(container));
        self.filled = true;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.filled {
            self.table.lock().remove(&self.id);
        }
    }
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
    #[error("container {0:?} is still being created")]
    Creating(String),
    #[error("container {0:?} was started already")]
    Started(String),
    #[error("container {0:?} is not running")]
    NotRunning(String),
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `id` in the table for a create, or says why not.
    fn reserve(&self, id: &str) -> Result<Reservation<'_>, ContainerError> {
        if !valid_container_id(id) {
            return Err(ContainerError::BadId(id.chars().take(80).collect()));
        }
        let mut by_id = self.lock();
        if by_id.contains_key(id) {
            return Err(ContainerError::Exists(id.into()));
        }
        if by_id.len() >= MAX_PROCESSES {
            return Err(TableError::Full.into());
        }
        by_id.insert(id.into(), Entry::Creating);
        Ok(Reservation {
            table: self,
            id: id.into(),
            filled: false,
        })
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
        let reservation = self.reserve(id)?;
        let bundle =
            disk::mount_bundle(id, disk_serial).map_err(|message| ContainerError::Setup {
                id: id.into(),
                message,
            })?;
        let bundle = bundle.to_string_lossy().into_owned();
        self.set_up(reservation, &bundle, tty, stdin)
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
        let reservation = self.reserve(id)?;
        let bundle = share::bundle(name).map_err(|message| ContainerError::Setup {
            id: id.into(),
            message,
        })?;
        let bundle = bundle.to_string_lossy().into_owned();
        self.set_up(reservation, &bundle, tty, stdin)
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
        if !Path::new(bundle).is_absolute() {
            return Err(ContainerError::BadBundle(
                bundle.chars().take(4096).collect(),
            ));
        }
        let reservation = self.reserve(id)?;
        self.set_up(reservation, bundle, tty, stdin)
    }

    fn set_up(
        &self,
        reservation: Reservation<'_>,
        bundle: &str,
        tty: Option<(u16, u16)>,
        stdin: bool,
    ) -> Result<u64, ContainerError> {
        let id = reservation.id.clone();
        let id = id.as_str();
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
        reservation.fill(Container {
            process_id,
            bundle: bundle.into(),
            start: Some(start_write),
        });
        Ok(process_id)
    }

    pub fn start(&self, id: &str) -> Result<(), ContainerError> {
        let mut by_id = self.lock();
        let container = match by_id.get_mut(id) {
            Some(Entry::Created(c)) => c,
            Some(Entry::Creating) => return Err(ContainerError::Creating(id.into())),
            None => return Err(ContainerError::NotFound(id.into())),
        };
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

    /// The cgroup of known container `id`.
    fn cgroup_of(&self, id: &str) -> Result<std::path::PathBuf, ContainerError> {
        created(&self.lock(), id)?;
        Ok(cgroup::path(Path::new(cgroup::ROOT), id))
    }

    /// Container `id`'s CPU, memory and pids figures.
    pub fn stats(&self, id: &str) -> Result<Stats, ContainerError> {
        let dir = self.cgroup_of(id)?;
        cgroup_stats::stats(&dir).map_err(|message| ContainerError::Setup {
            id: id.into(),
            message,
        })
    }

    /// Applies `resources_json` (an OCI LinuxResources) to container
    /// `id`'s cgroup: what maps onto memory.max, pids.max, cpu.max.
    pub fn update(&self, id: &str, resources_json: &str) -> Result<(), ContainerError> {
        created(&self.lock(), id)?;
        let setup = |message: String| ContainerError::Setup {
            id: id.into(),
            message,
        };
        if resources_json.len() > vmjail_agent_protocol::MAX_RESOURCES_JSON {
            return Err(setup(format!(
                "resources: {} bytes, more than {}",
                resources_json.len(),
                vmjail_agent_protocol::MAX_RESOURCES_JSON
            )));
        }
        let resources: oci_spec::runtime::LinuxResources =
            serde_json::from_str(resources_json).map_err(|e| setup(format!("resources: {e}")))?;
        let limits = cgroup::Limits::from_resources(&resources).map_err(setup)?;
        if limits.is_empty() {
            return Err(setup(
                "resources: nothing vmjail applies (memory.limit, pids.limit, cpu.quota/period)"
                    .into(),
            ));
        }
        cgroup::update(Path::new(cgroup::ROOT), id, &limits).map_err(setup)
    }

    /// Freezes (`true`) or thaws every process of container `id`.
    pub fn freeze(&self, id: &str, frozen: bool) -> Result<(), ContainerError> {
        let dir = self.cgroup_of(id)?;
        cgroup_stats::freeze(&dir, frozen).map_err(|message| ContainerError::Setup {
            id: id.into(),
            message,
        })
    }

    /// Kills the container's process if it runs (a container never started
    /// ends as its start pipe closes) and forgets it.
    pub fn delete(&self, id: &str) -> Result<(), ContainerError> {
        let container = {
            let mut by_id = self.lock();
            match by_id.remove(id) {
                Some(Entry::Created(c)) => c,
                Some(Entry::Creating) => {
                    // Its create owns it until it ends.
                    by_id.insert(id.into(), Entry::Creating);
                    return Err(ContainerError::Creating(id.into()));
                }
                None => return Err(ContainerError::NotFound(id.into())),
            }
        };
        let deleted = match self.processes.delete(container.process_id) {
            Ok(()) | Err(TableError::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        };
        cgroup::remove(Path::new(cgroup::ROOT), id);
        disk::unmount_bundle(id);
        deleted
    }
}

impl Containers {
    /// The process id and guest pid of started container `id`'s process,
    /// and its bundle, while that process runs.
    fn running(&self, id: &str) -> Result<(u64, nix::unistd::Pid, String), ContainerError> {
        let (process_id, bundle) = {
            let by_id = self.lock();
            let c = created(&by_id, id)?;
            if c.start.is_some() {
                return Err(ContainerError::NotRunning(id.into()));
            }
            (c.process_id, c.bundle.clone())
        };
        if self.processes.wait(process_id, Duration::ZERO)?.is_some() {
            return Err(ContainerError::NotRunning(id.into()));
        }
        Ok((process_id, self.processes.get(process_id)?.pid, bundle))
    }

    /// Starts `req`'s process inside running container `id` (see
    /// exec.rs); returns its process id once its command runs.
    pub fn exec(&self, id: &str, req: &CreateProcessRequest) -> Result<u64, ContainerError> {
        let (_, pid, bundle) = self.running(id)?;
        let setup = |message: String| ContainerError::Setup {
            id: id.into(),
            message,
        };
        let args = exec::ExecArgs {
            pid: pid.as_raw(),
            bundle: bundle.into(),
            id: id.into(),
            uid: req.uid,
            gid: req.gid,
            groups: req.additional_gids.clone(),
            cwd: if req.cwd.is_empty() { "/" } else { &req.cwd }.into(),
            argv: req.argv.clone(),
        };
        let mut launch =
            crate::process::launch_through(req, &args.helper_words()).map_err(setup)?;
        let (report_read, report_write) =
            pipe2(OFlag::O_CLOEXEC).map_err(|e| setup(format!("creating a pipe: {e}")))?;
        launch.extra_fds.push(report_write);
        launch.argv_text = req.argv.clone();
        let (process_id, _) = self.processes.create(&launch)?;
        drop(launch);
        match read_report(report_read) {
            Ok(report) if report.is_empty() => Ok(process_id),
            outcome => {
                let _ = self.processes.delete(process_id);
                Err(setup(outcome.unwrap_or_else(|e| e)))
            }
        }
    }

    /// Signals container `id`'s process, or with `all` every process in
    /// its cgroup (the process alone when there is no cgroup).
    pub fn signal(&self, id: &str, signal: Signal, all: bool) -> Result<(), ContainerError> {
        let process_id = created(&self.lock(), id)?.process_id;
        if all {
            if let Ok(pids) = self.pids(id) {
                for pid in pids {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
                }
                return Ok(());
            }
        }
        Ok(self.processes.signal(process_id, signal)?)
    }

    /// The guest pids in container `id`'s cgroup.
    pub fn pids(&self, id: &str) -> Result<Vec<u32>, ContainerError> {
        created(&self.lock(), id)?;
        cgroup::pids(Path::new(cgroup::ROOT), id).map_err(|message| ContainerError::Setup {
            id: id.into(),
            message,
        })
    }
}

/// Container `id` once its create is done.
fn created<'a>(
    by_id: &'a HashMap<String, Entry>,
    id: &str,
) -> Result<&'a Container, ContainerError> {
    match by_id.get(id) {
        Some(Entry::Created(c)) => Ok(c),
        Some(Entry::Creating) => Err(ContainerError::Creating(id.into())),
        None => Err(ContainerError::NotFound(id.into())),
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

/// What a helper wrote on its report pipe before closing it (maybe
/// nothing), waiting at most [`SETUP_TIMEOUT`].
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
    Ok(String::from_utf8_lossy(&report).into_owned())
}
