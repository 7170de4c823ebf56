//! `vmjail-agent container-exec PID BUNDLE ID UID GID GROUPS CWD -- ARGV…`:
//! a process inside a running container (`runc exec`). Like the
//! container's init it is a single-threaded process of its own: joining a
//! mount namespace needs that (the agent is multi-threaded). The agent
//! starts it as root with the process's stdio, env and one more
//! descriptor:
//! - 3: the reason it could not exec the command, if it could not;
//!   end-of-file (close-on-exec) when the command runs.
//!
//! It joins the cgroup and the namespaces of the container's process
//! `PID` (a new PID namespace through `pid_for_children`), forks the
//! process proper (the only way into a PID namespace), stays as the
//! agent's handle on it, passes signals on and ends as it ended.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sched::{setns, CloneFlags};
use nix::unistd::{fork, pipe2, ForkResult};

use super::console;
use super::init::{become_process, exec, relay};
use super::spec::{self, Plan};

/// Descriptor the helper reports a failure on.
pub const REPORT_FD: i32 = 3;

/// The namespaces joined, in order: the mount namespace last (the
/// others' files are opened before it anyway, see [`join_namespaces`]).
const NAMESPACES: [&str; 6] = ["cgroup", "ipc", "uts", "net", "pid_for_children", "mnt"];

/// The helper's arguments before `--`, as the agent passes them.
#[derive(Debug, PartialEq, Eq)]
pub struct ExecArgs {
    pub pid: i32,
    pub bundle: PathBuf,
    pub id: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub cwd: PathBuf,
    pub argv: Vec<String>,
}

impl ExecArgs {
    /// The words after `vmjail-agent container-exec`, up to `--`.
    pub fn helper_words(&self) -> Vec<String> {
        let groups = self
            .groups
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        vec![
            "container-exec".into(),
            self.pid.to_string(),
            self.bundle.to_string_lossy().into_owned(),
            self.id.clone(),
            self.uid.to_string(),
            self.gid.to_string(),
            if groups.is_empty() {
                "-".into()
            } else {
                groups
            },
            self.cwd.to_string_lossy().into_owned(),
        ]
    }

    /// Parses what follows `container-exec` (the agent wrote it; anything
    /// else is refused).
    pub fn parse(words: &[String]) -> Result<ExecArgs, String> {
        let [pid, bundle, id, uid, gid, groups, cwd, dashes, argv @ ..] = words else {
            return Err("usage: container-exec PID BUNDLE ID UID GID GROUPS CWD -- ARGV…".into());
        };
        if dashes != "--" || argv.is_empty() {
            return Err("container-exec: expected -- and a command".into());
        }
        let number = |what: &str, s: &str| s.parse().map_err(|_| format!("{what} {s:?}"));
        let groups = match groups.as_str() {
            "-" => Vec::new(),
            list => list
                .split(',')
                .map(|g| number("group", g))
                .collect::<Result<_, _>>()?,
        };
        Ok(ExecArgs {
            pid: pid.parse().map_err(|_| format!("pid {pid:?}"))?,
            bundle: bundle.into(),
            id: id.clone(),
            uid: number("uid", uid)?,
            gid: number("gid", gid)?,
            groups,
            cwd: cwd.into(),
            argv: argv.to_vec(),
        })
    }
}

pub fn main(words: &[String]) -> ExitCode {
    // SAFETY: the agent hands this number over, open, to this process only.
    let mut report = unsafe { File::from_raw_fd(REPORT_FD) };
    // Closed by the exec of the command: end-of-file says it runs.
    let _ = fcntl(report.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
    let fail = |mut report: File, message: String| {
        let _ = report.write_all(message.as_bytes());
        ExitCode::from(127)
    };
    let args = match ExecArgs::parse(words) {
        Ok(args) => args,
        Err(e) => return fail(report, e),
    };
    let mut plan = match enter(&args) {
        Ok(plan) => plan,
        Err(e) => return fail(report, e),
    };
    let (alive_read, alive_write) = match pipe2(OFlag::O_CLOEXEC) {
        Ok(pipe) => pipe,
        Err(e) => return fail(report, format!("creating a pipe: {e}")),
    };
    // On a terminal: the process's own from the container's devpts, as
    // the container's pid 1 gets one (see console.rs).
    let console = match console::on_terminal() {
        true => match console::channel() {
            Ok(pair) => Some(pair),
            Err(e) => return fail(report, e),
        },
        false => None,
    };
    // SAFETY: this process is single-threaded.
    match unsafe { fork() } {
        Err(e) => fail(report, format!("fork: {e}")),
        Ok(ForkResult::Parent { child }) => {
            drop(report);
            // Held open until this process dies: see rearm_parent_death.
            std::mem::forget(alive_write);
            relay(child, console.map(|(ours, _)| ours))
        }
        Ok(ForkResult::Child) => {
            drop(alive_write);
            // Set (again after the change of user) by become_process: the
            // process dies with this helper, the agent's handle on it.
            plan.parent_alive = Some(alive_read);
            let taken = match console {
                Some((_, its)) => console::take_own(its, plan.uid),
                None => Ok(()),
            };
            let error = match taken.and_then(|()| become_process(&plan)) {
                Ok(()) => exec(&plan),
                Err(e) => e,
            };
            let _ = report.write_all(format!("exec {:?}: {error}", plan.args[0]).as_bytes());
            ExitCode::from(127)
        }
    }
}

/// Loads the container's spec, joins its cgroup and namespaces; returns
/// the plan of the process (the spec's capabilities, rlimits and
/// no_new_privs; the exec's user, cwd, argv and env).
fn enter(args: &ExecArgs) -> Result<Plan, String> {
    let mut plan = spec::load(&args.bundle)?;
    plan.args = args.argv.clone();
    plan.env = std::env::vars_os()
        .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
        .collect();
    plan.cwd = args.cwd.clone();
    (plan.uid, plan.gid) = (args.uid, args.gid);
    plan.additional_gids = args.groups.clone();
    join_cgroup(&args.id)?;
    join_namespaces(args.pid)?;
    Ok(plan)
}

/// Moves this process into the container's cgroup, when it has one.
fn join_cgroup(id: &str) -> Result<(), String> {
    let dir = super::cgroup::path(Path::new(super::cgroup::ROOT), id);
    if !dir.is_dir() {
        return Ok(());
    }
    let procs = dir.join("cgroup.procs");
    std::fs::write(&procs, std::process::id().to_string())
        .map_err(|e| format!("joining {}: {e}", procs.display()))
}

/// Joins every namespace of process `pid` (those it shares with the agent
/// are joined too, which changes nothing). Each file is opened before any
/// is joined: `/proc` is the agent's until the mount namespace changes.
fn join_namespaces(pid: i32) -> Result<(), String> {
    let files = NAMESPACES
        .iter()
        .map(|ns| {
            let path = format!("/proc/{pid}/ns/{ns}");
            File::open(&path)
                .map(|f| (*ns, f))
                .map_err(|e| format!("{path}: {e} (has the container's process ended?)"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (ns, file) in files {
        // Joining the mount namespace also makes its root (the
        // container's rootfs, moved onto "/") this process's root.
        setns(&file, CloneFlags::empty())
            .map_err(|e| format!("joining the {ns} namespace: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_round_trip_and_bad_ones_are_refused() {
        let args = ExecArgs {
            pid: 42,
            bundle: "/run/b".into(),
            id: "c1".into(),
            uid: 1000,
            gid: 50,
            groups: vec![1, 2],
            cwd: "/tmp".into(),
            argv: vec!["sh".into(), "-c".into(), "echo".into()],
        };
        let mut words = args.helper_words();
        words.push("--".into());
        words.extend(args.argv.iter().cloned());
        assert_eq!(ExecArgs::parse(&words[1..]), Ok(args));
        let words: Vec<String> = ["1", "/b", "c", "0", "0", "-", "/", "--", "true"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(ExecArgs::parse(&words).map(|a| a.groups), Ok(Vec::new()));
        assert!(ExecArgs::parse(&words[..8]).is_err());
        let mut bad = words.clone();
        bad[3] = "root".into();
        assert!(ExecArgs::parse(&bad).is_err());
    }
}
