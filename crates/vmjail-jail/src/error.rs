//! One error variant per failing step; each names the path, id, key or
//! argument involved and, where useful, what would be valid.

use std::path::PathBuf;

/// Everything that can go wrong while preparing, launching or tearing down a
/// jail, in the caller (`Jail`) or in the built-in jailer process.
#[derive(Debug, thiserror::Error)]
pub enum JailError {
    #[error("invalid sandbox id {id:?}: {reason} (valid: 1 to 64 ASCII letters, digits or '-', the first a letter or digit)")]
    InvalidId { id: String, reason: &'static str },
    #[error("exec file {path}: {source}")]
    ExecFileAccess {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("exec file {path} is not a regular file")]
    ExecFileNotRegular { path: PathBuf },
    #[error("exec file {path} has no usable file name (UTF-8, not starting with '.')")]
    ExecFileName { path: PathBuf },
    #[error("chroot base dir {path}: {source}")]
    ChrootBaseAccess {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("chroot base dir {path} is not a directory")]
    ChrootBaseNotDir { path: PathBuf },
    #[error("chroot base dir {path} is owned by uid {uid} with mode {mode:o}: it must be root-owned and writable by root only")]
    ChrootBaseWorldWritable { path: PathBuf, uid: u32, mode: u32 },
    #[error("seccomp: {step}: {reason}")]
    Seccomp { step: &'static str, reason: String },
    #[error("{what} {path}: {source}")]
    DirAccess {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} is not safe from other users: {dir} is {reason}; it and every directory above it must be root-owned and writable by root only (sticky directories such as /tmp excepted above it)")]
    UntrustedDir {
        what: &'static str,
        dir: PathBuf,
        reason: String,
    },
    #[error("{path} (shared by every jail of this VMM) is owned by uid {uid} with mode {mode:o}: it must be root-owned and writable by root only")]
    UnsafeExecDir { path: PathBuf, uid: u32, mode: u32 },
    #[error("API socket {path} is {len} bytes long seen from the host; a Unix socket path holds at most 107")]
    SocketPathTooLong { path: PathBuf, len: usize },
    #[error("path in jail {path:?} is invalid: {reason} (must be absolute, without '..' or '.')")]
    InvalidPathInJail { path: PathBuf, reason: &'static str },
    #[error("jail dir {path} already exists: tear the old jail down first")]
    JailDirExists { path: PathBuf },
    #[error("recording the jail state before {step}: {source}")]
    Record {
        step: &'static str,
        source: std::io::Error,
    },
    #[error("{step} {path}: {source}")]
    Fs {
        step: &'static str,
        path: PathBuf,
        source: nix::Error,
    },
    #[error("{path} inside the jail is a symlink or not a {expected}: refusing to follow it")]
    UnexpectedFileType {
        path: PathBuf,
        expected: &'static str,
    },
    #[error("{path} cannot be placed writable: the jail's user would own it; only a regular file without other hard links, or a block device, can be a writable drive")]
    WritableAssetNotADrive { path: PathBuf },
    #[error("{path} inside the jail has {links} hard links: refusing to write through it")]
    HardLinkedDestination { path: PathBuf, links: u64 },
    #[error("{path} is already placed in the jail")]
    AlreadyPlaced { path: PathBuf },
    #[error("{path} is still mounted: unplace it before removing what holds it")]
    StillMounted { path: PathBuf },
    #[error("mounting {source_path} at {target}: {source}")]
    Mount {
        source_path: PathBuf,
        target: PathBuf,
        source: nix::Error,
    },
    #[error("copying {source_path} to {target}: {source}")]
    Copy {
        source_path: PathBuf,
        target: PathBuf,
        source: std::io::Error,
    },
    #[error("reading ELF {path}: {reason}")]
    Elf { path: PathBuf, reason: String },
    #[error("shared library {name} needed by {needed_by} not found in {searched}")]
    LibraryNotFound {
        name: String,
        needed_by: PathBuf,
        searched: String,
    },
    #[error("invalid --parent-cgroup {value:?}: must be a relative path without '..', '.' or a leading '/'")]
    InvalidParentCgroup { value: String },
    #[error("invalid cgroup setting {value:?}: expected <controller>.<file>=<value> with a plain file name")]
    InvalidCgroupSetting { value: String },
    #[error("cgroup controller {controller:?} is not available in cgroup {version}; available: {available}")]
    CgroupControllerUnavailable {
        controller: String,
        version: &'static str,
        available: String,
    },
    #[error("no cgroup2 (unified) hierarchy is mounted")]
    CgroupV2NotMounted,
    #[error("enabling controllers {controllers:?} in {path}: the cgroup is busy (it holds processes, and a cgroup v2 with processes cannot delegate controllers to children)")]
    CgroupBusy { path: PathBuf, controllers: String },
    #[error("cgroup {step} {path}: {source}")]
    Cgroup {
        step: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid --resource-limit {value:?}: expected fsize=<bytes> or no-file=<count>")]
    InvalidResourceLimit { value: String },
    #[error("setting resource limit {resource}: {source}")]
    SetRlimit {
        resource: &'static str,
        source: nix::Error,
    },
    #[error("jailer argument {arg}: {reason}")]
    Argument { arg: String, reason: String },
    #[error("{step}: {source}")]
    Sys {
        step: &'static str,
        source: nix::Error,
    },
    #[error("joining network namespace {path}: {source}")]
    JoinNetns { path: PathBuf, source: nix::Error },
    #[error("starting jailer {path}: {source}")]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("device {path} is not allowed in a jail: {reason} (allowed: {allowed})")]
    DeviceNotAllowed {
        path: PathBuf,
        reason: &'static str,
        allowed: String,
    },
    #[error("--{flag} 0 would run the VMM as root: refused unless --allow-root is given")]
    RootIdentity { flag: &'static str },
    #[error("socket path {path} is {len} bytes long; a Unix socket path holds at most 107")]
    SocketAddressTooLong { path: PathBuf, len: usize },
    #[error("connecting to {path}: {source}")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the VMM exited before {path} answered")]
    VmmExited { path: PathBuf },
    #[error("jailer failed: {message}")]
    JailerFailed { message: String },
    #[error("jailer did not exec the VMM within {seconds} s")]
    JailerTimeout { seconds: u64 },
    #[error("pid file {path}: {reason}")]
    PidFile { path: PathBuf, reason: String },
    #[error("Firecracker's jailer exited but wrote no pid file {path} within {seconds} s")]
    PidFileTimeout { path: PathBuf, seconds: u64 },
    #[error("process {pid} did not exit after SIGKILL")]
    KillTimeout { pid: i32 },
    #[error("refusing to tear down {path}: {reason}")]
    UnsafeRecord { path: PathBuf, reason: &'static str },
    #[error("teardown left {what} {path}: {source}")]
    Teardown {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl JailError {
    pub(crate) fn fs(step: &'static str, path: impl Into<PathBuf>, source: nix::Error) -> Self {
        JailError::Fs {
            step,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn sys(step: &'static str, source: nix::Error) -> Self {
        JailError::Sys { step, source }
    }
}
