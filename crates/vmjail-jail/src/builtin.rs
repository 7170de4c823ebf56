//! The built-in jailer: `vmjail jailer <Firecracker jailer args> [vmjail
//! additions] -- <vmm args>`. A fresh single-threaded process that does every
//! step in order, then execs the VMM; nothing runs between fork and exec but
//! the steps below in this process of our own.

use std::convert::Infallible;
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::signal::{signal, sigprocmask, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::stat::Mode;
use nix::unistd::{dup2, execve, fork, setsid, ForkResult};

use crate::args::{JailerArgs, DEFAULT_DEVICES};
use crate::cgroup::{self, CgroupMounts, CgroupPlan};
use crate::error::JailError;
use crate::fsat::{self, Owner};
use crate::{chroot, devices, exec_only, mounts, privileges, rlimits, sys, validate};

/// For the `vmjail jailer` subcommand: parse Firecracker's jailer CLI (+
/// vmjail additions), run the jail, exec the VMM. Never returns on success;
/// on failure prints the error, writes it to `--status-fd`, returns 1.
/// `--help` prints the usage and returns 0.
pub fn builtin_jailer_main(args: Vec<OsString>) -> i32 {
    if crate::args::wants_help(&args) {
        print!("{}", crate::args::USAGE);
        return 0;
    }
    let parsed = JailerArgs::parse(&args);
    let status_fd = parsed.as_ref().ok().and_then(|a| a.status_fd);
    let error = match parsed.and_then(run) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let message = format!("vmjail jailer: {error}");
    // With a status fd the caller reports the error; on stderr too (the
    // VMM's output file) it would be reported twice.
    if status_fd.is_none() {
        let _ = writeln!(std::io::stderr(), "{message}");
    }
    if let Some(fd) = status_fd {
        // SAFETY: the status fd was handed to us for exactly this; we are
        // about to exit and nothing else owns it.
        let mut status = unsafe { File::from_raw_fd(fd) };
        let _ = status.write_all(message.as_bytes());
    }
    1
}

/// For a jailer binary started without the Rust runtime (`no_main`): what
/// of the runtime's start-up the jailer relies on. Descriptors 0–2 open
/// (any closed one on /dev/null, so that no file we open lands there and
/// is later handed to the VMM as its stdio or closed by a redirection),
/// and SIGPIPE ignored (a write to a caller that went away is an error
/// we report, not our death; the VMM gets it back at its default).
pub fn prepare_jailer_process() -> Result<(), JailError> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    // SAFETY: only polled, never closed or read through these handles.
    let stdio = [0, 1, 2].map(|fd| unsafe { BorrowedFd::borrow_raw(fd) });
    let mut fds = stdio.map(|fd| PollFd::new(fd, PollFlags::empty()));
    loop {
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(_) => break,
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(JailError::sys("checking stdio", e)),
        }
    }
    let closed: Vec<RawFd> = fds
        .iter()
        .zip(0..)
        .filter(|(fd, _)| {
            fd.revents()
                .is_some_and(|r| r.contains(PollFlags::POLLNVAL))
        })
        .map(|(_, n)| n)
        .collect();
    for fd in closed {
        // Not close-on-exec: it is stdio for the VMM too. Opens take the
        // lowest free number, which (going up from 0) is this one.
        let null = nix::fcntl::open("/dev/null", OFlag::O_RDWR, Mode::empty())
            .map_err(|e| JailError::fs("opening", "/dev/null", e))?;
        if null != fd {
            dup2(null, fd).map_err(|e| JailError::sys("reopening stdio", e))?;
            let _ = nix::unistd::close(null);
        }
    }
    // SAFETY: ignoring a signal, no handler code runs.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) }
        .map_err(|e| JailError::sys("ignoring SIGPIPE", e))?;
    Ok(())
}

fn run(args: JailerArgs) -> Result<Infallible, JailError> {
    // 1. Nothing inherited but stdio (and the status fd), no environment.
    close_inherited_fds(args.status_fd)?;
    for (key, _) in std::env::vars_os() {
        std::env::remove_var(key);
    }

    // 2. Validate, each check with its own error.
    validate::validate_id(&args.id)?;
    let (exec_file, exec_name) = validate::validate_exec_file(&args.exec_file)?;
    let base = validate::validate_chroot_base(&args.chroot_base_dir)?;
    let root = base.join(&exec_name).join(&args.id).join("root");
    if let Some(sock) = &args.api_sock {
        validate::validate_socket_path(&root, sock)?;
    }
    let parent_cgroup = args
        .parent_cgroup
        .clone()
        .unwrap_or_else(|| exec_name.clone());
    // Looked up only when there is cgroup work: `mountinfo` is costly on a
    // host with many mounts, and this is the start-up path of every VMM.
    let joins_v2_parent =
        args.cgroup_version == crate::CgroupVersion::V2 && args.parent_cgroup.is_some();
    let cgroup_mounts = if args.cgroups.is_empty() && !joins_v2_parent {
        CgroupMounts::default()
    } else {
        CgroupMounts::discover()
    };
    let plan = CgroupPlan::new(
        &cgroup_mounts,
        args.cgroup_version,
        &args.cgroups,
        &parent_cgroup,
        &args.id,
    )?;
    let owner = Owner {
        uid: args.uid,
        gid: args.gid,
    };

    // 3. Layout (kept as is when `Jail::prepare` made it).
    make_layout(&base, &exec_name, &args.id, owner)?;

    // 4. Network namespace (needs the host's view).
    if let Some(netns) = &args.netns {
        join_netns(netns)?;
    }
    // For stdio the VMM must not keep (see step 6); the jail has no /dev/null.
    let dev_null = open_dev_null()?;

    // 5. Mount namespace (with IPC and UTS namespaces of its own): the exec
    //    file and device nodes go in while the host is still visible; then
    //    pivot_root and the host is gone.
    chroot::enter_namespaces(&root)?;
    place_exec_file(&exec_file, &base, &root, &exec_name, args.copy_exec_file)?;
    // Cgroups only now, with the host's /sys still visible: copying the exec
    // file (its page cache) from inside a small memory cgroup would charge
    // it there, and the OOM killer would end the jailer.
    let me = std::process::id();
    if plan.leaves.is_empty() && args.cgroup_version == crate::CgroupVersion::V2 {
        if let Some(parent) = &args.parent_cgroup {
            cgroup::join_existing_v2_parent(&cgroup_mounts, parent, me)?;
        }
    }
    plan.apply_to_self()?;
    let wanted: Vec<PathBuf> = match &args.devices {
        Some(devices) => devices.clone(),
        None => DEFAULT_DEVICES.iter().map(PathBuf::from).collect(),
    };
    let root_fd = fsat::open_dir(&root)?;
    for dir in ["/dev", "/run"] {
        let parts: Vec<&OsStr> = Path::new(dir).iter().skip(1).collect();
        fsat::walk_create(&root_fd, &root, &parts, Some(owner))?;
    }
    if !wanted.is_empty() {
        // The root is `nodev`: device nodes live on a /dev of their own,
        // which is root's (the VMM cannot add entries) and vanishes with
        // this mount namespace.
        let dev = fsat::open_path_nofollow(&root_fd, OsStr::new("dev"), &root.join("dev"))?;
        mounts::mount_dev_tmpfs(&fsat::proc_fd_path(&dev))?;
        let wanted: Vec<&Path> = wanted.iter().map(PathBuf::as_path).collect();
        devices::create(&root, &wanted, owner)?;
    }
    chroot::pivot_into(&root)?;

    // 6. Stdio, pid namespace, session, pid file. The VMM never keeps a
    //    terminal: with the caller's tty as stdio (and in its session) it
    //    could read the keystrokes or inject input with TIOCSTI into a root
    //    shell, and it would die with the terminal (SIGHUP). With
    //    --daemonize every stdio fd goes to /dev/null, else each that is a
    //    terminal does. setsid comes after the fork so that in a new pid
    //    namespace the VMM itself leads its session.
    for fd in 0..=2 {
        if args.daemonize || nix::unistd::isatty(fd).unwrap_or(false) {
            dup2(dev_null.as_raw_fd(), fd)
                .map_err(|e| JailError::sys("redirecting stdio to /dev/null", e))?;
        }
    }
    let pid_file = PathBuf::from(format!("/{exec_name}.pid"));
    let mut go = None;
    if args.new_pid_ns {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWPID)
            .map_err(|e| JailError::sys("unshare(CLONE_NEWPID)", e))?;
        // The child waits for one byte on `go` before it execs the VMM: if
        // this parent fails or dies before handing the pid over, the child
        // sees EOF and exits instead of running a VMM nobody recorded. Its
        // own remaining steps (session, limits, privileges, seccomp) run
        // meanwhile, beside the hand-over's round trip to the caller.
        let (go_read, go_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
            .map_err(|e| JailError::sys("creating the go pipe", e))?;
        // SAFETY: this process is single-threaded; the child continues with
        // the same sequential code and ends in exec.
        match unsafe { fork() }.map_err(|e| JailError::sys("fork into the new pid namespace", e))? {
            ForkResult::Parent { child } => {
                drop(go_read);
                let handed_over = write_pid_file(&pid_file, child.as_raw())
                    .and_then(|()| report(args.status_fd, &format!("pid {child}")))
                    .and_then(|()| wait_for_pid_recorded(args.status_fd))
                    .and_then(|()| {
                        nix::unistd::write(&go_write, b"g")
                            .map(drop)
                            .map_err(|e| JailError::sys("releasing the VMM process", e))
                    });
                if let Err(e) = handed_over {
                    let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
                    // Reap it here: an orphaned zombie would wait on init.
                    let _ = nix::sys::wait::waitpid(child, None);
                    return Err(e);
                }
                std::process::exit(0);
            }
            ForkResult::Child => {
                drop(go_write);
                go = Some(go_read);
            }
        }
    } else {
        own_session(&dev_null)?;
        write_pid_file(&pid_file, std::process::id() as i32)?;
    }
    if args.new_pid_ns {
        own_session(&dev_null)?;
    }
    drop(dev_null);

    // 7. Limits, privileges, keyring, seccomp, signals, exec. RLIMIT_FSIZE
    //    comes this late so that no earlier step of ours (the exec file
    //    copy) can exceed it. The session keyring is joined as the jail's
    //    user, so it is that user's alone; the seccomp filter needs
    //    no_new_privs, set by `drop_all`.
    rlimits::install(args.rlimit_fsize, args.rlimit_no_file)?;
    privileges::drop_all(args.uid, args.gid)?;
    crate::sys::join_new_session_keyring()
        .map_err(|e| JailError::sys("joining a new session keyring", e))?;
    crate::seccomp::refuse_user_namespaces()?;
    reset_signals()?;
    if let Some(go) = go {
        wait_for_go(go)?;
    }
    exec(&exec_name, &args.vmm_args, args.status_fd)
}

/// Lead a new session, without a controlling terminal. `setsid` fails only
/// for a process-group leader, which a jailer is when a shell started it by
/// hand (vmjail never does): then a child goes on and this process waits
/// for it and passes its exit status on, holding nothing of the jail.
fn own_session(dev_null: &OwnedFd) -> Result<(), JailError> {
    match setsid() {
        Ok(_) => return Ok(()),
        Err(nix::Error::EPERM) => {}
        Err(e) => return Err(JailError::sys("setsid", e)),
    }
    // SAFETY: this process is single-threaded; the child continues with the
    // same sequential code and ends in exec.
    match unsafe { fork() }.map_err(|e| JailError::sys("fork to leave the process group", e))? {
        ForkResult::Child => setsid().map(drop).map_err(|e| JailError::sys("setsid", e)),
        ForkResult::Parent { child } => {
            let _ = sys::close_range(3, u32::MAX);
            for fd in 0..=2 {
                let _ = dup2(dev_null.as_raw_fd(), fd);
            }
            let code = match nix::sys::wait::waitpid(child, None) {
                Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => code,
                Ok(nix::sys::wait::WaitStatus::Signaled(_, signal, _)) => 128 + signal as i32,
                _ => 1,
            };
            std::process::exit(code)
        }
    }
}

/// One line on the status pipe (when there is one).
fn report(status_fd: Option<RawFd>, line: &str) -> Result<(), JailError> {
    let Some(fd) = status_fd else {
        return Ok(());
    };
    // SAFETY: the status fd stays open in this process until exec or exit.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let mut bytes = line.as_bytes().to_vec();
    bytes.push(b'\n');
    let mut done = 0;
    while done < bytes.len() {
        match nix::unistd::write(fd, &bytes[done..]) {
            Ok(n) => done += n,
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(JailError::sys("writing to --status-fd", e)),
        }
    }
    Ok(())
}

/// With a status channel, wait (bounded) for the caller's word that the
/// VMM's pid is recorded; its death or silence keeps the VMM from running.
fn wait_for_pid_recorded(status_fd: Option<RawFd>) -> Result<(), JailError> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let Some(fd) = status_fd else {
        return Ok(());
    };
    // SAFETY: the status fd stays open in this process until exec or exit.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let deadline = std::time::Instant::now() + crate::status::LAUNCH_TIMEOUT;
    let not_recorded = |why: String| JailError::JailerFailed {
        message: format!("the caller did not record the VMM's pid ({why}); not starting it"),
    };
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let timeout =
            PollTimeout::try_from(left.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::MAX);
        match poll(&mut [PollFd::new(fd, PollFlags::POLLIN)], timeout) {
            Ok(0) => return Err(not_recorded("timed out".into())),
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(JailError::sys("waiting for the pid acknowledgement", e)),
        }
        let mut byte = [0u8; 1];
        match nix::unistd::read(fd.as_raw_fd(), &mut byte) {
            Ok(1) if byte[0] == crate::status::PID_RECORDED => return Ok(()),
            Ok(0) => return Err(not_recorded("it went away".into())),
            Ok(_) => return Err(not_recorded(format!("it answered {:?}", byte[0]))),
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(JailError::sys("reading the pid acknowledgement", e)),
        }
    }
}

/// Block until the parent jailer has handed our pid over.
fn wait_for_go(go: OwnedFd) -> Result<(), JailError> {
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(go.as_raw_fd(), &mut byte) {
            Ok(1) => return Ok(()),
            Ok(_) => {
                return Err(JailError::JailerFailed {
                    message: "the parent jailer ended before handing over the VMM's pid".into(),
                })
            }
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(JailError::sys("waiting for the parent jailer", e)),
        }
    }
}

fn close_inherited_fds(keep: Option<RawFd>) -> Result<(), JailError> {
    let close = |first: u32, last: u32| {
        sys::close_range(first, last).map_err(|e| JailError::sys("close_range", e))
    };
    match keep.and_then(|fd| u32::try_from(fd).ok()) {
        Some(fd) => {
            // Keep the status fd until exec (or until we exit on error).
            fcntl(fd as RawFd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
                .map_err(|e| JailError::sys("marking --status-fd close-on-exec", e))?;
            if fd > 3 {
                close(3, fd - 1)?;
            }
            close(fd + 1, u32::MAX)
        }
        None => close(3, u32::MAX),
    }
}

fn make_layout(base: &Path, exec_name: &str, id: &str, owner: Owner) -> Result<(), JailError> {
    let base_fd = fsat::open_dir(base)?;
    let exec_dir_path = base.join(exec_name);
    let exec_dir = fsat::ensure_subdir(
        &base_fd,
        OsStr::new(exec_name),
        &exec_dir_path,
        crate::jail::JAIL_DIR_MODE,
        None,
    )?;
    fsat::check_root_only(&exec_dir, &exec_dir_path)?;
    let id_path = exec_dir_path.join(id);
    // root:root like `Jail::prepare` makes it; only `root` is the jail user's.
    let id_dir = fsat::ensure_subdir(
        &exec_dir,
        OsStr::new(id),
        &id_path,
        crate::jail::JAIL_DIR_MODE,
        None,
    )?;
    fsat::ensure_subdir(
        &id_dir,
        OsStr::new("root"),
        &id_path.join("root"),
        0o700,
        Some(owner),
    )?;
    Ok(())
}

fn join_netns(path: &Path) -> Result<(), JailError> {
    let ns = File::open(path).map_err(|e| JailError::JoinNetns {
        path: path.to_path_buf(),
        source: fsat::errno_of(&e),
    })?;
    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|source| {
        JailError::JoinNetns {
            path: path.to_path_buf(),
            source,
        }
    })
}

fn open_dev_null() -> Result<OwnedFd, JailError> {
    let fd = nix::fcntl::open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| JailError::fs("opening", "/dev/null", e))?;
    // SAFETY: freshly opened, owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Put the exec file at `/<exec_name>` in the jail: never through a symlink
/// at the destination, never onto a file with other hard links; root's and
/// exec-only for the jail user, which makes the VMM non-dumpable (see
/// `exec_only`) — a copy of its own, or a read-only bind of the exec-only
/// copy shared by every jail of this binary under the chroot `base`.
fn place_exec_file(
    exec_file: &Path,
    base: &Path,
    root: &Path,
    exec_name: &str,
    copy: bool,
) -> Result<(), JailError> {
    let root_fd = fsat::open_dir(root)?;
    let name = OsStr::new(exec_name);
    let shown = root.join(exec_name);
    let dest = nix::fcntl::openat(
        Some(root_fd.as_raw_fd()),
        name,
        // O_NONBLOCK: a FIFO left there must not hang us (ENXIO instead).
        OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_WRONLY,
        Mode::from_bits_truncate(0o700),
    )
    .map_err(|e| match e {
        nix::Error::ELOOP | nix::Error::ENXIO | nix::Error::EISDIR => {
            JailError::UnexpectedFileType {
                path: shown.clone(),
                expected: "regular file",
            }
        }
        e => JailError::fs("creating the exec file", &shown, e),
    })?;
    // SAFETY: freshly opened, owned here.
    let dest = unsafe { OwnedFd::from_raw_fd(dest) };
    let st = fsat::stat_fd(&dest, &shown)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(JailError::UnexpectedFileType {
            path: shown,
            expected: "regular file",
        });
    }
    if st.st_nlink > 1 {
        return Err(JailError::HardLinkedDestination {
            path: shown,
            links: st.st_nlink,
        });
    }
    if copy {
        nix::unistd::ftruncate(&dest, 0).map_err(|e| JailError::fs("truncating", &shown, e))?;
        let mut to = File::from(dest);
        let mut from = File::open(exec_file).map_err(|e| JailError::ExecFileAccess {
            path: exec_file.to_path_buf(),
            source: e,
        })?;
        std::io::copy(&mut from, &mut to).map_err(|e| JailError::Copy {
            source_path: exec_file.to_path_buf(),
            target: shown.clone(),
            source: e,
        })?;
        nix::sys::stat::fchmod(to.as_raw_fd(), Mode::from_bits_truncate(0o111))
            .map_err(|e| JailError::fs("chmod", &shown, e))
    } else {
        // A read-only bind in our private mount namespace: it vanishes with
        // the namespace, so there is nothing to record or undo.
        drop(dest);
        let target = fsat::open_path_nofollow(&root_fd, name, &shown)?;
        let (source, source_path) = exec_only::exec_only_copy(base, exec_file, exec_name)?;
        mounts::bind(&source, &target, &source_path, &shown)?;
        let mounted = fsat::open_path_nofollow(&root_fd, name, &shown)?;
        mounts::remount_read_only(&mounted, &shown)
    }
}

fn write_pid_file(path: &Path, pid: i32) -> Result<(), JailError> {
    let fd = nix::fcntl::open(
        path,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .map_err(|e| JailError::fs("creating pid file", path, e))?;
    // SAFETY: freshly opened, owned here.
    let mut file = unsafe { File::from_raw_fd(fd) };
    file.write_all(pid.to_string().as_bytes())
        .map_err(|e| JailError::fs("writing pid file", path, fsat::errno_of(&e)))
}

/// Rust ignores SIGPIPE, and whoever started us may have ignored or blocked
/// others; ignored signals stay ignored across exec. Give the VMM default
/// dispositions for every standard signal and an empty signal mask.
fn reset_signals() -> Result<(), JailError> {
    for sig in Signal::iterator().filter(|s| !matches!(s, Signal::SIGKILL | Signal::SIGSTOP)) {
        // SAFETY: installing SIG_DFL, no handler code runs.
        unsafe { signal(sig, SigHandler::SigDfl) }
            .map_err(|e| JailError::sys("resetting a signal", e))?;
    }
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(|e| JailError::sys("clearing the signal mask", e))
}

/// Exec `/<exec_name>`. `exec` goes on the status pipe just before: EOF
/// without it means this process died on the way.
fn exec(
    exec_name: &str,
    vmm_args: &[OsString],
    status_fd: Option<RawFd>,
) -> Result<Infallible, JailError> {
    let nul = |s: &OsStr| {
        CString::new(s.as_bytes()).map_err(|_| JailError::Argument {
            arg: s.to_string_lossy().into_owned(),
            reason: "contains a NUL byte".into(),
        })
    };
    let path = nul(OsStr::new(&format!("/{exec_name}")))?;
    let mut argv = vec![path.clone()];
    for arg in vmm_args {
        argv.push(nul(arg)?);
    }
    let env: [CString; 0] = [];
    report(status_fd, "exec")?;
    execve(&path, &argv, &env).map_err(|e| JailError::fs("exec", format!("/{exec_name}"), e))
}
