//! The seam: what callers (the VMM backends) hand the jail, and what the jail
//! hands back. Implementation lives in sibling modules.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Which cgroup hierarchy the jail uses (already resolved from "auto").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CgroupVersion {
    V1,
    V2,
}

/// Everything needed to confine one VMM process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JailSpec {
    /// `[A-Za-z0-9][A-Za-z0-9-]{0,63}` (see `validate_id`).
    pub id: String,
    /// The VMM binary on the host; its file name is the jail's `exec_name`.
    pub exec_file: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub chroot_base_dir: PathBuf,
    /// The network namespace the VMM joins (a `/var/run/netns/<name>` or
    /// `/proc/<pid>/ns/net` path); `None` keeps the caller's.
    pub netns: Option<PathBuf>,
    pub cgroup_version: CgroupVersion,
    /// `file=value` settings, e.g. `("cpu.shares", "1024")`.
    pub cgroups: Vec<(String, String)>,
    /// Relative path below each hierarchy's root; defaults to the exec name.
    pub parent_cgroup: Option<String>,
    /// `RLIMIT_FSIZE` bytes; `None` = unlimited.
    pub rlimit_fsize: Option<u64>,
    /// `RLIMIT_NOFILE` (Firecracker's jailer default: 2048).
    pub rlimit_no_file: u64,
    pub new_pid_ns: bool,
    pub daemonize: bool,
    /// Host device nodes to recreate inside `/dev` of the jail when the host
    /// has them (e.g. `/dev/kvm`, `/dev/net/tun`).
    pub devices: Vec<PathBuf>,
    /// Arguments handed to the VMM after `--`.
    pub vmm_args: Vec<OsString>,
    /// The VMM's API socket inside the jail, when it has one: its host path
    /// must fit a Unix socket address (checked by `Jail::prepare`).
    #[serde(default)]
    pub api_socket_in_jail: Option<PathBuf>,
}

/// How an asset reaches the jail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Placement {
    ReadOnlyBind,
    /// A drive, handed to the jail's user (chowned, restored at teardown).
    ReadWriteBind,
    /// A file or directory bound read-write with its owner left alone:
    /// for a helper that runs as root and serves the tree to the guest
    /// (virtiofsd), never for a VMM running as the jail's user.
    ReadWriteShare,
    Copy,
}

/// Which jailer launches the VMM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Jailer {
    /// vmjail's own jailer: `<jailer_exe> <firecracker-compatible args>`,
    /// `jailer_exe` being the `vmjail-jailer` binary.
    BuiltIn { jailer_exe: PathBuf },
    /// Firecracker's `jailer` binary.
    Firecracker { jailer_path: PathBuf },
}

/// What was (or is about to be) created for a jail, persisted by the caller
/// before each step so that [`teardown`] can undo it from another process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JailRecord {
    pub id: String,
    /// `<chroot_base>/<exec_name>/<id>`: removed whole on teardown.
    pub jail_dir: PathBuf,
    /// Mount points on the host (under `jail_dir`), in creation order.
    pub mounts: Vec<PathBuf>,
    /// cgroup directories created, in creation order.
    pub cgroups: Vec<PathBuf>,
    /// The VMM's real host pid, once known.
    pub vmm_pid: Option<i32>,
    /// The VMM process's start time (`/proc/<pid>/stat` field 22), so a
    /// recycled pid is never killed.
    pub vmm_start_time: Option<u64>,
    /// Set before `jail_dir` is created and cleared once `mkdir` succeeded:
    /// a crash in between leaves a dir that may not be ours, so teardown
    /// unmounts what is recorded but does not remove it.
    #[serde(default)]
    pub jail_dir_pending: bool,
    /// Host assets whose owner was changed for the jail (read-write binds),
    /// recorded before the change, restored on unplace/teardown.
    #[serde(default)]
    pub chowned: Vec<ChownedAsset>,
    /// Cgroup ancestors of the jail's leaves below the configured parent,
    /// possibly shared with other jails: teardown removes each that is
    /// empty, leaves a busy one alone.
    #[serde(default)]
    pub cgroup_parents: Vec<PathBuf>,
}

/// One host asset handed to the jail uid, with what to restore.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChownedAsset {
    pub path: PathBuf,
    /// Its host path inside the jail (what `unplace` is given).
    pub placed_at: PathBuf,
    /// Device and inode of the asset: a path since replaced is not touched.
    pub dev: u64,
    pub ino: u64,
    /// The owner before the jail's.
    pub uid: u32,
    pub gid: u32,
    /// The owner given (restored only when still this one).
    pub jail_uid: u32,
    pub jail_gid: u32,
}

impl JailRecord {
    /// The host path of the jail's root directory.
    pub fn root(&self) -> PathBuf {
        self.jail_dir.join("root")
    }

    /// Whether the record names any host resource (a jail dir, mount,
    /// cgroup or changed owner) that teardown would act on.
    pub fn names_anything(&self) -> bool {
        !self.jail_dir.as_os_str().is_empty()
            || !self.mounts.is_empty()
            || !self.cgroups.is_empty()
            || !self.cgroup_parents.is_empty()
            || !self.chowned.is_empty()
    }

    /// The VMM's pid and start time — only when both are recorded: a pid
    /// without its start time could name any process, and is never acted
    /// on (nor reported as the VMM).
    pub fn vmm_process(&self) -> Option<(i32, u64)> {
        Some((self.vmm_pid?, self.vmm_start_time?))
    }
}

/// Called with the updated record *before* each resource is created.
pub trait Recorder {
    fn record(&mut self, record: &JailRecord) -> std::io::Result<()>;
}

impl<F: FnMut(&JailRecord) -> std::io::Result<()>> Recorder for F {
    fn record(&mut self, record: &JailRecord) -> std::io::Result<()> {
        self(record)
    }
}

/// Translate an in-jail absolute path to its host path under `root`.
pub fn host_path(root: &Path, path_in_jail: &Path) -> PathBuf {
    root.join(path_in_jail.strip_prefix("/").unwrap_or(path_in_jail))
}
