//! Firecracker's own `jailer`, driven by vmjail: what it lacks is prepared
//! before it runs, its argv adjusted to that, and the VMM it starts found.
//!
//! What upstream's jailer lacks (read in its `src/jailer/src/cgroup.rs` and
//! `env.rs`):
//! - cgroup v1: it copies from parent to child only the files it is told to
//!   write. A nested parent's `cpuset.mems` (or `cpuset.cpus`, when not
//!   given) stays empty, and a cpuset with an empty `cpuset.mems` refuses
//!   tasks (ENOSPC writing `tasks`). vmjail creates the cpuset path, parents
//!   and leaf, with both inherited from the nearest ancestor first.
//! - cgroup v2: it takes the part of every setting before the first '.' for
//!   a controller, so a core file (`cgroup.max.descendants`) fails with
//!   "Controller cgroup is unavailable". vmjail writes the core files into
//!   the leaf itself and hands the jailer only the controller settings;
//!   without any, the jailer joins `<unified>/<parent-cgroup>` if it exists
//!   (its documented v2 rule), so it is given the prepared leaf as parent.
//! - no status channel: it execs in place (the VMM keeps its pid), or exits
//!   after handing over to a child in a new pid namespace (`--new-pid-ns`)
//!   or after its first fork (`--daemonize`), and the VMM's host pid is in
//!   `<root>/<exec_name>.pid`, written by whichever process runs the VMM
//!   next — possibly after the jailer has exited.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::args::JailerArgs;
use crate::cgroup::{self, CgroupPlan};
use crate::error::JailError;
use crate::jail::Jail;
use crate::launch::wait_with_timeout;
use crate::pid_file;
use crate::process;
use crate::spec::{CgroupVersion, Recorder};
use crate::status::LAUNCH_TIMEOUT;

/// Whether `file` (a setting's file name) is a v2 core file, not a
/// controller's.
fn is_core_file(file: &Path) -> bool {
    file.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| cgroup::controller_of(name).is_none())
}

/// Make in advance what Firecracker's jailer would get wrong. Every
/// directory made here is in the plan's `dirs_to_create`, which the caller
/// has recorded.
pub(crate) fn prepare_cgroups(plan: &CgroupPlan) -> Result<(), JailError> {
    match plan.version {
        CgroupVersion::V1 => {
            for leaf in plan.leaves.iter().filter(|leaf| leaf.cpuset) {
                cgroup::create_path(&leaf.hierarchy, &leaf.path)?;
                cgroup::inherit_cpuset(&leaf.hierarchy, &leaf.path)?;
            }
        }
        CgroupVersion::V2 => {
            let core: Vec<_> = plan
                .writes
                .iter()
                .filter(|(file, _)| is_core_file(file))
                .collect();
            if core.is_empty() {
                return Ok(());
            }
            for leaf in &plan.leaves {
                cgroup::create_path(&leaf.hierarchy, &leaf.path)?;
            }
            for (file, value) in core {
                cgroup::write(file, value, "writing")?;
            }
        }
    }
    Ok(())
}

/// The argv for Firecracker's jailer once [`prepare_cgroups`] has run: v2
/// core files are left out (already written); with no setting left, the
/// prepared leaf `<parent>/<id>` is given as the parent to join.
pub(crate) fn adjust_args(args: &mut JailerArgs, parent: &str) {
    if args.cgroup_version != CgroupVersion::V2 || args.cgroups.is_empty() {
        return;
    }
    args.cgroups
        .retain(|(file, _)| !is_core_file(Path::new(file)));
    if args.cgroups.is_empty() {
        args.parent_cgroup = Some(format!("{parent}/{}", args.id));
    }
}

/// Find the VMM Firecracker's jailer started, record it, and wait for its
/// exec. The jailer's pid was recorded at spawn.
pub(crate) fn follow(
    jail: &mut Jail,
    recorder: &mut dyn Recorder,
    child: &mut std::process::Child,
    jailer_pid: i32,
    program: &Path,
) -> Result<i32, JailError> {
    let (new_pid_ns, daemonize) = (jail.spec().new_pid_ns, jail.spec().daemonize);
    if !new_pid_ns && !daemonize {
        // It execs the VMM in place: same pid, same start time.
        wait_for_exec(jailer_pid, program)?;
        return Ok(jailer_pid);
    }
    let status = wait_with_timeout(child)?;
    if !status.success() {
        return Err(JailError::JailerFailed {
            message: format!("{} exited with {status}", program.display()),
        });
    }
    // With --daemonize the jailer exits right after its first fork; its
    // grandchild writes the pid file later. Until then nothing names the
    // VMM (Firecracker's jailer has no handshake): cgroups are what a crash
    // in this window leaves to teardown.
    let pid = wait_for_pid_file(&jail.pid_file())?;
    jail.record_vmm(recorder, pid)?;
    wait_for_exec(pid, program)?;
    Ok(pid)
}

/// Wait (bounded by [`LAUNCH_TIMEOUT`]) until process `pid` no longer runs
/// the jailer binary; it exiting first is a failure.
fn wait_for_exec(pid: i32, jailer: &Path) -> Result<(), JailError> {
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

/// Read the pid file once it is there and written (the jailer creates it,
/// then writes it: empty in between), bounded by [`LAUNCH_TIMEOUT`].
fn wait_for_pid_file(path: &Path) -> Result<i32, JailError> {
    let deadline = Instant::now() + LAUNCH_TIMEOUT;
    loop {
        if let Some(pid) = pid_file::read(path)? {
            return Ok(pid);
        }
        if Instant::now() >= deadline {
            return Err(JailError::PidFileTimeout {
                path: path.to_path_buf(),
                seconds: LAUNCH_TIMEOUT.as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::JailSpec;

    fn args(version: CgroupVersion, settings: &[(&str, &str)]) -> JailerArgs {
        let spec = JailSpec {
            id: "vm1".into(),
            exec_file: "/usr/bin/firecracker".into(),
            uid: 1,
            gid: 1,
            chroot_base_dir: "/srv/jail".into(),
            netns: None,
            cgroup_version: version,
            cgroups: settings
                .iter()
                .map(|(f, v)| (f.to_string(), v.to_string()))
                .collect(),
            parent_cgroup: Some("fc".into()),
            rlimit_fsize: None,
            rlimit_no_file: 2048,
            new_pid_ns: false,
            daemonize: false,
            devices: Vec::new(),
            vmm_args: Vec::new(),
            api_socket_in_jail: None,
        };
        JailerArgs::from_spec(&spec)
    }

    #[test]
    fn v2_core_files_are_left_to_vmjail() {
        let mut mixed = args(
            CgroupVersion::V2,
            &[("cgroup.max.descendants", "3"), ("hugetlb.2MB.max", "0")],
        );
        adjust_args(&mut mixed, "fc");
        assert_eq!(mixed.cgroups, [("hugetlb.2MB.max".into(), "0".into())]);
        assert_eq!(mixed.parent_cgroup.as_deref(), Some("fc"));

        // Only core files: the jailer joins the prepared leaf as its parent.
        let mut core = args(CgroupVersion::V2, &[("cgroup.max.depth", "2")]);
        adjust_args(&mut core, "fc");
        assert!(core.cgroups.is_empty());
        assert_eq!(core.parent_cgroup.as_deref(), Some("fc/vm1"));

        // v1, or nothing to set: unchanged.
        for version in [CgroupVersion::V1, CgroupVersion::V2] {
            let mut none = args(version, &[]);
            adjust_args(&mut none, "fc");
            assert_eq!(none.parent_cgroup.as_deref(), Some("fc"));
        }
        let mut v1 = args(CgroupVersion::V1, &[("cpu.shares", "2")]);
        adjust_args(&mut v1, "fc");
        assert_eq!(v1.cgroups.len(), 1);
    }
}
