//! Starting a jailer for a prepared [`Jail`] and finding the VMM's real
//! host pid — never the jailer's once it forks into a new pid namespace.

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::args::JailerArgs;
use crate::cgroup::{CgroupMounts, CgroupPlan};
use crate::error::JailError;
use crate::jail::Jail;
use crate::process;
use crate::spec::{Jailer, Recorder};

/// How long a jailer may take to exec the VMM.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);
/// The fd number the built-in jailer's status pipe gets in the child.
const STATUS_FD: i32 = 3;

/// Where the launched process's stdio goes (inherited by the VMM unless it
/// daemonizes).
pub struct LaunchStdio {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

impl Default for LaunchStdio {
    fn default() -> Self {
        LaunchStdio {
            stdin: Stdio::null(),
            stdout: Stdio::inherit(),
            stderr: Stdio::inherit(),
        }
    }
}

impl Jail {
    fn builtin(&self) -> bool {
        matches!(self.jailer, Jailer::BuiltIn { .. })
    }

    fn args(&self) -> JailerArgs {
        let mut args = JailerArgs::from_spec(&self.spec);
        args.copy_exec_file = self.copy_exec_file;
        args
    }

    /// The argv used for either jailer, program first (Firecracker-compatible;
    /// vmjail additions only for `BuiltIn`).
    pub fn jailer_argv(&self) -> Vec<OsString> {
        let mut argv = match &self.jailer {
            Jailer::BuiltIn { vmjail_exe } => vec![vmjail_exe.clone().into(), "jailer".into()],
            Jailer::Firecracker { jailer_path } => vec![jailer_path.clone().into()],
        };
        argv.extend(self.args().to_args(self.builtin()));
        argv
    }

    /// Start the jailer with stdin from /dev/null and stdout/stderr inherited.
    pub fn launch(&mut self, recorder: &mut dyn Recorder) -> Result<i32, JailError> {
        self.launch_with(recorder, LaunchStdio::default())
    }

    /// Start the jailer and return the VMM's real host pid, recorded with its
    /// start time. Cgroup directories the jailer will create are recorded first.
    pub fn launch_with(
        &mut self,
        recorder: &mut dyn Recorder,
        stdio: LaunchStdio,
    ) -> Result<i32, JailError> {
        let parent = self
            .spec
            .parent_cgroup
            .clone()
            .unwrap_or_else(|| self.exec_name.clone());
        let plan = CgroupPlan::new(
            &CgroupMounts::discover(),
            self.spec.cgroup_version,
            &self.spec.cgroups,
            &parent,
            &self.spec.id,
        )?;
        for dir in plan.dirs_to_create() {
            if !self.record.cgroups.contains(&dir) {
                self.record.cgroups.push(dir);
            }
        }
        self.save(recorder, "launching the jailer")?;
        self.share_root(recorder)?;

        let mut args = self.args();
        let program: PathBuf = match &self.jailer {
            Jailer::BuiltIn { vmjail_exe } => vmjail_exe.clone(),
            Jailer::Firecracker { jailer_path } => jailer_path.clone(),
        };
        let mut command = Command::new(&program);
        command
            .stdin(stdio.stdin)
            .stdout(stdio.stdout)
            .stderr(stdio.stderr);
        let status_pipe = if self.builtin() {
            args.status_fd = Some(STATUS_FD);
            let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(|e| JailError::sys("creating the status pipe", e))?;
            let raw = write.as_raw_fd();
            // SAFETY: dup2 is async-signal-safe; it is the only call made
            // between fork and exec, and it clears close-on-exec on fd 3.
            unsafe {
                command.pre_exec(move || {
                    if libc::dup2(raw, STATUS_FD) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            command.arg("jailer");
            Some((read, write))
        } else {
            None
        };
        command.args(args.to_args(self.builtin()));
        let mut child = command.spawn().map_err(|source| JailError::Spawn {
            path: program.clone(),
            source,
        })?;
        let jailer_pid = child.id() as i32;

        if let Some((read, write)) = status_pipe {
            drop(write);
            // EOF once every jailer process has exec'd or exited; a message means failure.
            let message = match read_status(read) {
                Ok(message) => message,
                Err(e) => {
                    // A hung jailer is not left behind.
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(e);
                }
            };
            if !message.is_empty() {
                let _ = child.wait();
                return Err(JailError::JailerFailed { message });
            }
        }

        let vmm_pid = if self.spec.new_pid_ns {
            // The jailer exits after writing the pid file of its child.
            let status = wait_with_timeout(&mut child)?;
            if !status.success() {
                return Err(JailError::JailerFailed {
                    message: format!("{} exited with {status}", program.display()),
                });
            }
            read_pid_file(&self.pid_file())?
        } else {
            if !self.builtin() {
                wait_for_exec(jailer_pid, &program)?;
            }
            jailer_pid
        };
        self.record.vmm_pid = Some(vmm_pid);
        self.record.vmm_start_time = process::start_time(vmm_pid);
        self.save(recorder, "recording the VMM pid")?;
        Ok(vmm_pid)
    }
}

/// Read the status pipe to EOF (bounded by [`LAUNCH_TIMEOUT`]).
fn read_status(read: std::os::fd::OwnedFd) -> Result<String, JailError> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let deadline = Instant::now() + LAUNCH_TIMEOUT;
    let mut file = std::fs::File::from(read);
    let mut message = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout =
            PollTimeout::try_from(left.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) => {
                return Err(JailError::JailerTimeout {
                    seconds: LAUNCH_TIMEOUT.as_secs(),
                })
            }
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(JailError::sys("waiting on the status pipe", e)),
        }
        let mut chunk = [0u8; 4096];
        match file.read(&mut chunk) {
            Ok(0) => return Ok(String::from_utf8_lossy(&message).into_owned()),
            Ok(n) => message.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(JailError::sys(
                    "reading the status pipe",
                    crate::fsat::errno_of(&e),
                ))
            }
        }
    }
}

fn wait_with_timeout(
    child: &mut std::process::Child,
) -> Result<std::process::ExitStatus, JailError> {
    let deadline = Instant::now() + LAUNCH_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            Ok(None) => {
                return Err(JailError::JailerTimeout {
                    seconds: LAUNCH_TIMEOUT.as_secs(),
                })
            }
            Err(e) => {
                return Err(JailError::JailerFailed {
                    message: format!("waiting for the jailer: {e}"),
                })
            }
        }
    }
}

/// Firecracker's jailer gives no signal when it execs: wait until the process
/// no longer runs the jailer binary (or has exited, which is a failure).
fn wait_for_exec(pid: i32, jailer: &std::path::Path) -> Result<(), JailError> {
    let jailer_comm: String = jailer
        .file_name()
        .map(|n| n.to_string_lossy().chars().take(15).collect())
        .unwrap_or_default();
    let deadline = Instant::now() + LAUNCH_TIMEOUT;
    while Instant::now() < deadline {
        if !process::is_running(pid) {
            return Err(JailError::JailerFailed {
                message: format!("{} exited before starting the VMM", jailer.display()),
            });
        }
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim_end() != jailer_comm {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Err(JailError::JailerTimeout {
        seconds: LAUNCH_TIMEOUT.as_secs(),
    })
}

/// `<root>/<exec_name>.pid`: written by the jailer as root; still refuse a symlink.
fn read_pid_file(path: &std::path::Path) -> Result<i32, JailError> {
    let error = |reason: String| JailError::PidFile {
        path: path.to_path_buf(),
        reason,
    };
    let mut file = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| error(e.to_string()))?;
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| error(e.to_string()))?;
    let pid: i32 = text
        .trim()
        .parse()
        .map_err(|_| error(format!("{text:?} is not a pid")))?;
    if pid <= 1 {
        return Err(error(format!("{pid} is not a VMM pid")));
    }
    Ok(pid)
}

use std::os::unix::fs::OpenOptionsExt;
