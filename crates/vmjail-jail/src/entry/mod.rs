//! Entering the jail, in two halves.
//!
//! [`Entry::build`] does everything that needs memory, the host's view of
//! paths or more than a system call: validation, the jail's layout, the
//! exec file's place in the root and its exec-only copy, the cgroups (made
//! and written, not joined), the device numbers, the seccomp program and
//! the VMM's argv. The steps after it ([`Entry::enter`], [`Entry::confine`],
//! [`Entry::exec`]) allocate nothing and call nothing but system calls
//! (through `nix`'s plain wrappers or `sys.rs`), so they may run in a child
//! that shares its launcher's memory (`CLONE_VM`, see `in_process.rs`) as
//! well as in the `vmjail-jailer` process. A failed step is a [`Failed`]:
//! which step and its errno, which [`Entry::error`] turns into the error
//! reported, with the paths involved.

mod build;
mod error;

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::stat::{fstat, mkdirat, mknodat, Mode, SFlag};
use nix::unistd::{fchown, Gid, Uid};

use crate::fsat::{self, Owner};
use crate::sys;

/// A step of [`Entry::enter`], [`Entry::confine`] or [`Entry::exec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    JoinNetns,
    Unshare,
    MakeSlave,
    BindRoot,
    OpenRoot,
    OpenExecPlace,
    ExecPlaceChanged,
    OpenExecOnlyCopy,
    ExecOnlyCopyChanged,
    BindExecFile,
    RemountExecFile,
    JoinCgroup(usize),
    OpenDev,
    MountDev,
    MakeDevDir(usize),
    Mknod(usize),
    ChownDevice(usize),
    PivotRoot,
    DetachOldRoot,
    Chdir,
    Stdio,
    Session,
    PidFile,
    RlimitFsize,
    RlimitNoFile,
    Privileges,
    Keyring,
    Seccomp,
    Signals,
    CloseFds,
    Exec,
}

/// A failed step and its errno: `Copy`, built without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Failed {
    pub step: Step,
    pub errno: Errno,
}

type Done = Result<(), Failed>;

fn at(step: Step) -> impl Fn(Errno) -> Failed {
    move |errno| Failed { step, errno }
}

/// How the VMM's binary gets into the root.
enum ExecFile {
    /// Copied into the root by `build` (`--copy-exec-file`).
    Copied,
    /// The shared exec-only copy at `source` (its device and inode as
    /// checked), bound read-only onto the empty file `build` made.
    Bound {
        source: CString,
        source_shown: PathBuf,
        id: (u64, u64),
    },
}

/// A host device node to create in the jail's /dev.
struct Device {
    /// Directories below /dev, then the node's name.
    parents: Vec<CString>,
    name: CString,
    rdev: u64,
    shown: PathBuf,
}

/// Everything the steps need, made beforehand.
pub(crate) struct Entry {
    root: CString,
    root_shown: PathBuf,
    exec_name: CString,
    exec_shown: PathBuf,
    /// Device and inode of `<root>/<exec_name>` as `build` left it.
    exec_place: (u64, u64),
    exec_file: ExecFile,
    cgroup_joins: Vec<(File, PathBuf)>,
    /// Whether any device was asked for: then /dev is a tmpfs of root's,
    /// even if the host has none of them.
    dev_tmpfs: bool,
    devices: Vec<Device>,
    owner: Owner,
    netns: Option<(File, PathBuf)>,
    dev_null: OwnedFd,
    daemonize: bool,
    rlimit_fsize: u64,
    rlimit_no_file: u64,
    seccomp: Vec<libc::sock_filter>,
    pid_file: CString,
    exec_path: CString,
    /// Kept alive for `argv_ptrs`.
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
}

impl Entry {
    /// The jail's view: network namespace, new mount/IPC/UTS namespaces, the
    /// exec file bound in, the cgroups joined, /dev populated, then
    /// `pivot_root` and the host is gone.
    pub fn enter(&self) -> Done {
        if let Some((netns, _)) = &self.netns {
            nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(at(Step::JoinNetns))?;
        }
        // One unshare: the kernel builds one set of namespaces, not one per
        // call. No host SysV object is reachable, a hostname change stays in.
        nix::sched::unshare(
            nix::sched::CloneFlags::CLONE_NEWNS
                | nix::sched::CloneFlags::CLONE_NEWIPC
                | nix::sched::CloneFlags::CLONE_NEWUTS,
        )
        .map_err(at(Step::Unshare))?;
        // Host mounts propagate in, nothing leaks out.
        mount(
            None::<&CStr>,
            c"/",
            None::<&CStr>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&CStr>,
        )
        .map_err(at(Step::MakeSlave))?;
        // A mount point, which `pivot_root` needs.
        let root = self.root.as_c_str();
        mount(
            Some(root),
            root,
            None::<&CStr>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&CStr>,
        )
        .map_err(at(Step::BindRoot))?;
        let root_fd =
            open(root, OFlag::O_DIRECTORY | OFlag::O_RDONLY).map_err(at(Step::OpenRoot))?;
        if let ExecFile::Bound { source, id, .. } = &self.exec_file {
            self.bind_exec_file(&root_fd, source, *id)?;
        }
        for (n, (join, _)) in self.cgroup_joins.iter().enumerate() {
            // `0` is the writer: a single-threaded process (see cgroup.rs).
            (&*join)
                .write_all(b"0")
                .map_err(|e| at(Step::JoinCgroup(n))(fsat::errno_of(&e)))?;
        }
        if self.dev_tmpfs {
            self.populate_dev(&root_fd)?;
        }
        nix::unistd::fchdir(root_fd.as_raw_fd()).map_err(at(Step::PivotRoot))?;
        drop(root_fd);
        // pivot_root(".", ".") stacks the old root on the new one; detaching
        // it leaves only the jail, with no directory to create or remove.
        nix::unistd::pivot_root(c".", c".").map_err(at(Step::PivotRoot))?;
        umount2(c".", MntFlags::MNT_DETACH).map_err(at(Step::DetachOldRoot))?;
        nix::unistd::chdir(c"/").map_err(at(Step::Chdir))
    }

    /// The exec-only copy, read-only on the file `build` placed: both
    /// opened again in this mount namespace (a bind's source must be in
    /// it) and checked to be the very inodes `build` looked at.
    fn bind_exec_file(&self, root: &OwnedFd, source: &CStr, id: (u64, u64)) -> Done {
        let name = self.exec_name.as_c_str();
        let place = open_at_nofollow(root, name).map_err(at(Step::OpenExecPlace))?;
        same_inode(&place, self.exec_place).map_err(at(Step::ExecPlaceChanged))?;
        let copy =
            open(source, OFlag::O_PATH | OFlag::O_NOFOLLOW).map_err(at(Step::OpenExecOnlyCopy))?;
        same_inode(&copy, id).map_err(at(Step::ExecOnlyCopyChanged))?;
        let (copy_path, place_path) = (ProcFd::of(&copy), ProcFd::of(&place));
        mount(
            Some(copy_path.as_c_str()),
            place_path.as_c_str(),
            None::<&CStr>,
            MsFlags::MS_BIND,
            None::<&CStr>,
        )
        .map_err(at(Step::BindExecFile))?;
        // A handle opened after the bind resolves to the new mount.
        let mounted = open_at_nofollow(root, name).map_err(at(Step::RemountExecFile))?;
        mount(
            None::<&CStr>,
            ProcFd::of(&mounted).as_c_str(),
            None::<&CStr>,
            MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV,
            None::<&CStr>,
        )
        .map_err(at(Step::RemountExecFile))
    }

    /// The root is `nodev`: device nodes live on a /dev of their own, a
    /// small tmpfs of root's (the VMM cannot add entries) that vanishes
    /// with this mount namespace; nodes 0600, the jail user's.
    fn populate_dev(&self, root: &OwnedFd) -> Done {
        let dev = open_at_nofollow(root, c"dev").map_err(at(Step::OpenDev))?;
        mount(
            Some(c"tmpfs"),
            ProcFd::of(&dev).as_c_str(),
            Some(c"tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some(c"size=64k,mode=0755"),
        )
        .map_err(at(Step::MountDev))?;
        drop(dev);
        // With umask 077, mknod's and mkdir's 0600/0700 are exact.
        let umask = nix::sys::stat::umask(Mode::from_bits_truncate(0o077));
        let made = self.make_nodes(root);
        nix::sys::stat::umask(umask);
        made
    }

    fn make_nodes(&self, root: &OwnedFd) -> Done {
        let owner = (
            Some(Uid::from_raw(self.owner.uid)),
            Some(Gid::from_raw(self.owner.gid)),
        );
        for (n, device) in self.devices.iter().enumerate() {
            let mut dir = open_at_dir(root, c"dev").map_err(at(Step::OpenDev))?;
            for parent in &device.parents {
                dir = open_or_make_dir(&dir, parent, owner).map_err(at(Step::MakeDevDir(n)))?;
            }
            match mknodat(
                Some(dir.as_raw_fd()),
                device.name.as_c_str(),
                SFlag::S_IFCHR,
                Mode::from_bits_truncate(0o600),
                device.rdev,
            ) {
                Ok(()) => {}
                // Named twice: the first one stands.
                Err(Errno::EEXIST) => continue,
                Err(e) => return Err(at(Step::Mknod(n))(e)),
            }
            nix::unistd::fchownat(
                Some(dir.as_raw_fd()),
                device.name.as_c_str(),
                owner.0,
                owner.1,
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(at(Step::ChownDevice(n)))?;
        }
        Ok(())
    }

    /// The VMM never keeps a terminal: with the caller's tty as stdio it
    /// could read keystrokes or inject input with TIOCSTI, and it would die
    /// with the terminal (SIGHUP). With `--daemonize` every stdio fd goes to
    /// /dev/null, else each that is a terminal does.
    pub fn detach_stdio(&self) -> Done {
        for fd in 0..=2 {
            if self.daemonize || nix::unistd::isatty(fd).unwrap_or(false) {
                nix::unistd::dup2(self.dev_null.as_raw_fd(), fd).map_err(at(Step::Stdio))?;
            }
        }
        Ok(())
    }

    /// /dev/null, opened before the jail was entered (it has none).
    pub fn dev_null(&self) -> RawFd {
        self.dev_null.as_raw_fd()
    }

    /// A session of its own, without a controlling terminal.
    pub fn own_session() -> Done {
        nix::unistd::setsid().map(drop).map_err(at(Step::Session))
    }

    /// `/<exec_name>.pid` in the jail (after `enter`), holding `pid`.
    pub fn write_pid_file(&self, pid: i32) -> Done {
        let mut file = nix::fcntl::open(
            self.pid_file.as_c_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .map(|fd| File::from(fsat::own(fd)))
        .map_err(at(Step::PidFile))?;
        // std's formatting into a file writes from the stack: no allocation.
        write!(file, "{pid}").map_err(|e| at(Step::PidFile)(fsat::errno_of(&e)))
    }

    /// Limits, privileges, keyring, seccomp, signals. RLIMIT_FSIZE comes
    /// this late so that no earlier step (the exec file copy) can exceed it.
    /// The session keyring is joined as the jail's user, so it is that
    /// user's alone; the seccomp filter needs no_new_privs, set before it.
    pub fn confine(&self) -> Done {
        use nix::sys::resource::{setrlimit, Resource};
        let (fsize, no_file) = (self.rlimit_fsize, self.rlimit_no_file);
        setrlimit(Resource::RLIMIT_FSIZE, fsize, fsize).map_err(at(Step::RlimitFsize))?;
        setrlimit(Resource::RLIMIT_NOFILE, no_file, no_file).map_err(at(Step::RlimitNoFile))?;
        sys::drop_privileges(self.owner.uid, self.owner.gid).map_err(at(Step::Privileges))?;
        sys::join_new_session_keyring().map_err(at(Step::Keyring))?;
        sys::install_seccomp(&self.seccomp).map_err(at(Step::Seccomp))?;
        reset_signals().map_err(at(Step::Signals))
    }

    /// Exec `/<exec_name>` with an empty environment; returns only on failure.
    pub fn exec(&self) -> Failed {
        let envp: [*const libc::c_char; 1] = [std::ptr::null()];
        // SAFETY: a NUL-terminated path, and NULL-terminated arrays of
        // pointers to NUL-terminated strings that `self` keeps alive.
        unsafe {
            libc::execve(
                self.exec_path.as_ptr(),
                self.argv_ptrs.as_ptr(),
                envp.as_ptr(),
            )
        };
        Failed {
            step: Step::Exec,
            errno: Errno::last(),
        }
    }
}

/// Rust ignores SIGPIPE, and whoever started us may have ignored or blocked
/// others; ignored signals stay ignored across exec, and a launcher's
/// handlers must never run here. Every standard signal to its default,
/// then an empty mask.
fn reset_signals() -> Result<(), Errno> {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in Signal::iterator().filter(|s| !matches!(s, Signal::SIGKILL | Signal::SIGSTOP)) {
        // SAFETY: installing SIG_DFL, no handler code runs.
        unsafe { sigaction(sig, &default) }?;
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
}

fn open(path: &CStr, flags: OFlag) -> Result<OwnedFd, Errno> {
    nix::fcntl::open(
        path,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(fsat::own)
}

/// Directory `name` below `dir`, made (0700 under the caller's umask,
/// `owner`'s) if missing.
fn open_or_make_dir(
    dir: &OwnedFd,
    name: &CStr,
    owner: (Option<Uid>, Option<Gid>),
) -> Result<OwnedFd, Errno> {
    match open_at_dir(dir, name) {
        Err(Errno::ENOENT) => {}
        opened => return opened,
    }
    mkdirat(Some(dir.as_raw_fd()), name, Mode::from_bits_truncate(0o700))?;
    let made = open_at_dir(dir, name)?;
    fchown(made.as_raw_fd(), owner.0, owner.1)?;
    Ok(made)
}

/// `name` below `dir` with `flags`, never through a symlink.
fn open_at(dir: &OwnedFd, name: &CStr, flags: OFlag) -> Result<OwnedFd, Errno> {
    openat(
        Some(dir.as_raw_fd()),
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(fsat::own)
}

fn open_at_nofollow(dir: &OwnedFd, name: &CStr) -> Result<OwnedFd, Errno> {
    open_at(dir, name, OFlag::O_PATH)
}

fn open_at_dir(dir: &OwnedFd, name: &CStr) -> Result<OwnedFd, Errno> {
    open_at(dir, name, OFlag::O_DIRECTORY | OFlag::O_RDONLY)
}

/// `fd` is the inode `id` (device, inode) names, not a symlink: else EXDEV.
fn same_inode(fd: &OwnedFd, id: (u64, u64)) -> Result<(), Errno> {
    let st = fstat(fd.as_raw_fd())?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG
        && (st.st_dev, st.st_ino) == id
    {
        Ok(())
    } else {
        Err(Errno::EXDEV)
    }
}

/// `/proc/self/fd/<n>` on the stack: mounting onto it mounts onto exactly
/// the inode held open, whatever happens to the path meanwhile.
struct ProcFd([u8; 32]);

impl ProcFd {
    fn of(fd: &OwnedFd) -> ProcFd {
        let mut path = [0u8; 32];
        // At most 24 bytes ("/proc/self/fd/" and 10 digits): it fits, and
        // the zeroes after it end the string.
        let _ = write!(&mut path[..], "/proc/self/fd/{}", fd.as_raw_fd());
        ProcFd(path)
    }

    fn as_c_str(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.0).unwrap_or(c"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;

    #[test]
    fn fd_paths_are_written_on_the_stack() {
        let path = |n| {
            // SAFETY: a number only shown, never used as a descriptor.
            let fd = std::mem::ManuallyDrop::new(unsafe { OwnedFd::from_raw_fd(n) });
            ProcFd::of(&fd).as_c_str().to_owned()
        };
        assert_eq!(path(0).as_c_str(), c"/proc/self/fd/0");
        assert_eq!(path(4_194_304).as_c_str(), c"/proc/self/fd/4194304");
        assert_eq!(path(i32::MAX).as_c_str(), c"/proc/self/fd/2147483647");
        assert_eq!(path(1_048_575).as_c_str(), c"/proc/self/fd/1048575");
    }
}
