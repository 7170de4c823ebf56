//! Starting a jailer for a prepared [`Jail`] and finding the VMM's real
//! host pid — never the jailer's once it forks into a new pid namespace.

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::unistd::Pid;

use crate::args::JailerArgs;
use crate::cgroup::{CgroupMounts, CgroupPlan};
use crate::entry::Entry;
use crate::error::JailError;
use crate::firecracker_jailer;
use crate::in_process;
use crate::jail::Jail;
use crate::process;
use crate::spawn::{self, ChildIo};
use crate::spec::{Jailer, Recorder};
use crate::status::{JailerState, Status, StatusReader, LAUNCH_TIMEOUT};
/// The fd number the built-in jailer's status pipe gets in the child.
const STATUS_FD: i32 = 3;

/// Where the launched process's stdio goes (inherited by the VMM unless it
/// daemonizes).
pub struct LaunchStdio {
    pub stdin: ChildIo,
    pub stdout: ChildIo,
    pub stderr: ChildIo,
}

impl Default for LaunchStdio {
    fn default() -> Self {
        LaunchStdio {
            stdin: ChildIo::Null,
            stdout: ChildIo::Inherit,
            stderr: ChildIo::Inherit,
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
        if !self.builtin() {
            firecracker_jailer::adjust_args(&mut args, &self.cgroup_parent());
        }
        args
    }

    /// The parent cgroup path: as given, else the exec file's name (both
    /// jailers' default).
    fn cgroup_parent(&self) -> String {
        self.spec
            .parent_cgroup
            .clone()
            .unwrap_or_else(|| self.exec_name.clone())
    }

    /// The argv used for either jailer, program first (Firecracker-compatible;
    /// vmjail additions only for `BuiltIn`; for Firecracker's jailer, v2 core
    /// cgroup files are left out: vmjail writes them, see
    /// `firecracker_jailer.rs`).
    pub fn jailer_argv(&self) -> Vec<OsString> {
        let mut argv = match &self.jailer {
            Jailer::BuiltIn { jailer_exe } => vec![jailer_exe.clone().into()],
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
        let parent = self.cgroup_parent();
        // No settings, an empty plan: the host's mount table (costly to read
        // on a host with many mounts) is only looked at for cgroup work.
        let mounts = if self.spec.cgroups.is_empty() {
            CgroupMounts::default()
        } else {
            CgroupMounts::discover()
        };
        let plan = CgroupPlan::new(
            &mounts,
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
        // A leaf named after the id is this jail's even if a crashed launch
        // left it; parents that exist already may be shared: removed by
        // teardown only once empty.
        for leaf in &plan.leaves {
            if !self.record.cgroups.contains(&leaf.path) {
                self.record.cgroups.push(leaf.path.clone());
            }
            let mut dir = leaf.path.parent();
            while let Some(parent) = dir.filter(|d| *d != leaf.hierarchy) {
                let known = self.record.cgroups.iter().any(|c| c == parent)
                    || self.record.cgroup_parents.iter().any(|c| c == parent);
                if !known {
                    self.record.cgroup_parents.push(parent.to_path_buf());
                }
                dir = parent.parent();
            }
        }
        self.save(recorder, "launching the jailer")?;
        if !self.builtin() {
            // What Firecracker's jailer cannot do itself, in directories
            // recorded above.
            firecracker_jailer::prepare_cgroups(&plan)?;
        }

        let mut args = self.args();
        let program: PathBuf = match &self.jailer {
            Jailer::BuiltIn { jailer_exe } => jailer_exe.clone(),
            Jailer::Firecracker { jailer_path } => jailer_path.clone(),
        };
        if !self.builtin() {
            return self.launch_firecracker_jailer(recorder, stdio, &program, &args);
        }
        if !self.spec.new_pid_ns {
            return self.launch_in_process(recorder, stdio, &args);
        }
        // A new pid namespace takes a fork between the jail's steps and a
        // parent that hands the VMM's pid over: the `vmjail-jailer` program.
        args.status_fd = Some(STATUS_FD);
        // A socket pair, not a pipe: the caller answers `recorded` to a
        // `pid <n>` line (see status.rs).
        let (read, write) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| JailError::sys("creating the status socket", e))?;
        let mut argv: Vec<OsString> = vec![program.clone().into()];
        argv.extend(args.to_args(true));
        let jailer = spawn::spawn(
            &program,
            &argv,
            [stdio.stdin, stdio.stdout, stdio.stderr],
            &write,
            STATUS_FD,
        )
        .map_err(|source| JailError::Spawn {
            path: program.clone(),
            source,
        })?;
        drop(write);
        let jailer_pid = jailer.as_raw();
        // Recorded at once (exec keeps pid and start time): whatever happens
        // next, teardown can kill this process — the VMM itself unless it
        // forks into a new pid namespace, whose pid replaces it once known.
        let result = self
            .record_vmm(recorder, jailer_pid)
            .and_then(|()| self.follow_builtin(recorder, read, jailer));
        if result.is_err() {
            kill_and_reap_pid(jailer);
            self.kill_forked_vmm(jailer_pid);
        }
        result
    }

    /// The built-in jail entered by a child of this process (`in_process.rs`):
    /// when this returns, the child has exec'd the VMM under its own pid.
    fn launch_in_process(
        &mut self,
        recorder: &mut dyn Recorder,
        stdio: LaunchStdio,
        args: &JailerArgs,
    ) -> Result<i32, JailError> {
        let entry = Entry::build(args)?;
        let vmm = in_process::launch(&entry, [stdio.stdin, stdio.stdout, stdio.stderr])?;
        if let Err(e) = self.record_vmm(recorder, vmm.as_raw()) {
            kill_and_reap_pid(vmm);
            return Err(e);
        }
        Ok(vmm.as_raw())
    }

    /// Firecracker's jailer, through `Command` (it takes no status socket).
    fn launch_firecracker_jailer(
        &mut self,
        recorder: &mut dyn Recorder,
        stdio: LaunchStdio,
        program: &std::path::Path,
        args: &JailerArgs,
    ) -> Result<i32, JailError> {
        let mut command = Command::new(program);
        command
            .stdin(Stdio::from(stdio.stdin))
            .stdout(Stdio::from(stdio.stdout))
            .stderr(Stdio::from(stdio.stderr))
            .args(args.to_args(false));
        let mut child = command.spawn().map_err(|source| JailError::Spawn {
            path: program.to_path_buf(),
            source,
        })?;
        let jailer_pid = child.id() as i32;
        if let Err(e) = self.record_vmm(recorder, jailer_pid) {
            kill_and_reap(&mut child);
            return Err(e);
        }
        let result = firecracker_jailer::follow(self, recorder, &mut child, jailer_pid, program);
        if result.is_err() {
            kill_and_reap(&mut child);
            self.kill_forked_vmm(jailer_pid);
        }
        result
    }

    /// After a failed launch: a VMM already forked into its pid namespace
    /// goes too.
    fn kill_forked_vmm(&self, jailer_pid: i32) {
        if let (Some(pid), Some(start)) = (self.record.vmm_pid, self.record.vmm_start_time) {
            if pid != jailer_pid && process::start_time(pid) == Some(start) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }

    pub(crate) fn record_vmm(
        &mut self,
        recorder: &mut dyn Recorder,
        pid: i32,
    ) -> Result<(), JailError> {
        self.record.vmm_pid = Some(pid);
        self.record.vmm_start_time = process::start_time(pid);
        self.save(recorder, "recording the VMM pid")
    }

    /// The built-in jailer reports over the status pipe: `pid <n>` (the
    /// VMM's host pid, from the parent in a new pid namespace), `exec` (the
    /// last step before execve), anything else is an error message. EOF
    /// comes when every jailer process has exec'd or died.
    fn follow_builtin(
        &mut self,
        recorder: &mut dyn Recorder,
        read: OwnedFd,
        jailer: Pid,
    ) -> Result<i32, JailError> {
        let jailer_pid = jailer.as_raw();
        let mut reader = StatusReader::new(read);
        let mut status = Status::default();
        while let Some(line) = reader.next_line()? {
            let had_pid = status.pid.is_some();
            status.take(&line);
            if let (false, Some(pid)) = (had_pid, status.pid) {
                self.record_vmm(recorder, pid)?;
                // Only now may the jailer let the VMM run.
                reader.acknowledge_pid()?;
            }
        }
        let jailer = if self.spec.new_pid_ns {
            // The parent jailer exits once it has handed the pid over.
            wait_pid_with_timeout(jailer)?
        } else {
            JailerState::Running
        };
        // A pid from the status pipe was recorded as it arrived.
        status
            .outcome(self.spec.new_pid_ns, jailer_pid, &jailer)
            .map_err(|message| JailError::JailerFailed { message })
    }
}

fn kill_and_reap_pid(pid: Pid) {
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(pid, None);
}

/// Reap the jailer `pid` once it exits (bounded): woken by its pidfd, not
/// by polling, since the parent jailer exits right after handing the VMM's
/// pid over and this wait is on the launch path.
fn wait_pid_with_timeout(pid: Pid) -> Result<JailerState, JailError> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::wait::{waitpid, WaitStatus};
    let failed = |what: String| JailError::JailerFailed {
        message: format!("waiting for the jailer: {what}"),
    };
    let pidfd = crate::sys::pidfd_open(pid.as_raw()).map_err(|e| failed(e.to_string()))?;
    let deadline = Instant::now() + LAUNCH_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout =
            PollTimeout::try_from(left.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::MAX);
        match poll(
            &mut [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)],
            timeout,
        ) {
            Ok(0) => {
                return Err(JailError::JailerTimeout {
                    seconds: LAUNCH_TIMEOUT.as_secs(),
                })
            }
            Ok(_) => break,
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(failed(e.to_string())),
        }
    }
    let exited = |success: bool, description: String| JailerState::Exited {
        success,
        description,
    };
    match waitpid(pid, None) {
        Ok(WaitStatus::Exited(_, code)) => Ok(exited(code == 0, format!("exit status: {code}"))),
        Ok(WaitStatus::Signaled(_, signal, _)) => Ok(exited(
            false,
            format!("signal: {} ({signal})", signal as i32),
        )),
        Ok(other) => Err(failed(format!("{other:?}"))),
        Err(e) => Err(failed(e.to_string())),
    }
}

fn kill_and_reap(child: &mut std::process::Child) {
    let _ = child.kill();
    let _ = child.wait();
}

pub(crate) fn wait_with_timeout(
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
