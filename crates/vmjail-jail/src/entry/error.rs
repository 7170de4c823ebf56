//! A failed step as the error reported: [`Entry::error`].

use std::ffi::{CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::{Entry, ExecFile, Failed, Step};
use crate::error::JailError;

impl Entry {
    /// The error a failed step reports, naming what it worked on.
    pub fn error(&self, failed: Failed) -> JailError {
        let Failed { step, errno } = failed;
        let root = || self.root_shown.clone();
        let exec = || self.exec_shown.clone();
        let copy = || match &self.exec_file {
            ExecFile::Bound { source_shown, .. } => source_shown.clone(),
            ExecFile::Copied => PathBuf::new(),
        };
        let device = |n: usize| {
            self.devices
                .get(n)
                .map(|d| d.shown.clone())
                .unwrap_or_default()
        };
        match step {
            Step::JoinNetns => JailError::JoinNetns {
                path: self
                    .netns
                    .as_ref()
                    .map(|(_, p)| p.clone())
                    .unwrap_or_default(),
                source: errno,
            },
            Step::Unshare => {
                JailError::sys("unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS)", errno)
            }
            Step::MakeSlave => JailError::sys("making / a recursive slave", errno),
            Step::BindRoot => JailError::fs("bind-mounting the jail root on itself", root(), errno),
            Step::OpenRoot => JailError::fs("opening directory", root(), errno),
            Step::OpenExecPlace if errno == Errno::ELOOP => JailError::UnexpectedFileType {
                path: exec(),
                expected: "regular file",
            },
            Step::OpenExecPlace => JailError::fs("opening", exec(), errno),
            Step::ExecPlaceChanged => JailError::UnexpectedFileType {
                path: exec(),
                expected: "regular file (it was replaced while the jail was entered)",
            },
            Step::OpenExecOnlyCopy if errno == Errno::ELOOP => JailError::UnexpectedFileType {
                path: copy(),
                expected: "regular file",
            },
            Step::OpenExecOnlyCopy => JailError::fs("opening the exec-only copy", copy(), errno),
            Step::ExecOnlyCopyChanged => {
                JailError::fs("the exec-only copy was replaced:", copy(), errno)
            }
            Step::BindExecFile => JailError::Mount {
                source_path: copy(),
                target: exec(),
                source: errno,
            },
            Step::RemountExecFile => JailError::Mount {
                source_path: "(read-only remount)".into(),
                target: exec(),
                source: errno,
            },
            Step::JoinCgroup(n) => JailError::Cgroup {
                step: "attaching to",
                path: self
                    .cgroup_joins
                    .get(n)
                    .map(|(_, p)| p.clone())
                    .unwrap_or_default(),
                source: std::io::Error::from_raw_os_error(errno as i32),
            },
            Step::OpenDev | Step::MountDev => JailError::Mount {
                source_path: "tmpfs".into(),
                target: self.root_shown.join("dev"),
                source: errno,
            },
            Step::MakeDevDir(n) => JailError::fs("creating the directory of", device(n), errno),
            Step::Mknod(n) => JailError::fs("mknod", device(n), errno),
            Step::ChownDevice(n) => JailError::fs("chown", device(n), errno),
            Step::PivotRoot => JailError::fs("pivot_root into", root(), errno),
            Step::DetachOldRoot => JailError::sys("detaching the old root", errno),
            Step::Chdir => JailError::sys("chdir / in the jail", errno),
            Step::Stdio => JailError::sys("redirecting stdio to /dev/null", errno),
            Step::Session => JailError::sys("setsid", errno),
            Step::PidFile => JailError::fs(
                "writing pid file",
                Path::new(OsStr::from_bytes(self.pid_file.as_bytes())),
                errno,
            ),
            Step::RlimitFsize => JailError::SetRlimit {
                resource: "fsize",
                source: errno,
            },
            Step::RlimitNoFile => JailError::SetRlimit {
                resource: "no-file",
                source: errno,
            },
            Step::Privileges => {
                JailError::sys("dropping privileges (capabilities, groups, ids)", errno)
            }
            Step::Keyring => JailError::sys("joining a new session keyring", errno),
            Step::Seccomp => JailError::Seccomp {
                step: "installing the filter",
                reason: errno.to_string(),
            },
            Step::Signals => JailError::sys("resetting signals", errno),
            Step::CloseFds => JailError::sys("close_range", errno),
            Step::Exec => JailError::fs("exec", exec_path_shown(&self.exec_path), errno),
        }
    }
}

fn exec_path_shown(path: &CStr) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(path.to_bytes()))
}
