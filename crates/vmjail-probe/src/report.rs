//! What the probe reports: identity, privileges, environment, descriptors,
//! file-system view, device nodes, limits and how they bite.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use nix::sys::resource::{getrlimit, Resource, RLIM_INFINITY};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use serde_json::{json, Value};

/// Descriptors open at start, found without `/proc` by probing each number.
pub fn open_fds() -> Vec<i32> {
    (0..4096)
        .filter(|&fd| nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_ok())
        .collect()
}

fn limit(resource: Resource) -> Value {
    match getrlimit(resource) {
        Ok((soft, hard)) => {
            let show = |v: u64| {
                if v == RLIM_INFINITY {
                    Value::Null
                } else {
                    json!(v)
                }
            };
            json!({ "soft": show(soft), "hard": show(hard) })
        }
        Err(e) => json!({ "error": e.to_string() }),
    }
}

/// Capability sets via capget(2), v3: 64-bit masks.
fn capabilities() -> Value {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut header = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget v3 writes two Data structs.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut Header,
            data.as_mut_ptr(),
        )
    };
    let join = |lo: u32, hi: u32| (u64::from(hi) << 32) | u64::from(lo);
    let mut bounding = 0u64;
    let mut ambient = 0u64;
    for cap in 0..64u64 {
        // SAFETY: prctl with integer arguments only.
        let in_bounding =
            unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) };
        if in_bounding < 0 {
            break;
        }
        if in_bounding == 1 {
            bounding |= 1 << cap;
        }
        // SAFETY: prctl with integer arguments only.
        let is_ambient = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_IS_SET as libc::c_ulong,
                cap as libc::c_ulong,
                0,
                0,
            )
        };
        if is_ambient == 1 {
            ambient |= 1 << cap;
        }
    }
    json!({
        "capget_ok": rc == 0,
        "effective": join(data[0].effective, data[1].effective),
        "permitted": join(data[0].permitted, data[1].permitted),
        "inheritable": join(data[0].inheritable, data[1].inheritable),
        "bounding": bounding,
        "ambient": ambient,
    })
}

fn describe(path: &Path) -> Value {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            let ft = meta.file_type();
            let kind = if ft.is_char_device() {
                "char"
            } else if ft.is_block_device() {
                "block"
            } else if ft.is_dir() {
                "dir"
            } else if ft.is_symlink() {
                "symlink"
            } else if ft.is_file() {
                "file"
            } else {
                "other"
            };
            let rdev = meta.rdev();
            json!({
                "path": path.display().to_string(),
                "kind": kind,
                "mode": meta.mode() & 0o7777,
                "uid": meta.uid(),
                "gid": meta.gid(),
                "major": nix::sys::stat::major(rdev),
                "minor": nix::sys::stat::minor(rdev),
            })
        }
        Err(e) => json!({ "path": path.display().to_string(), "error": e.to_string() }),
    }
}

fn dev_entries() -> Vec<Value> {
    let mut out = Vec::new();
    let mut stack = vec![std::path::PathBuf::from("/dev")];
    while let Some(dir) = stack.pop() {
        out.push(describe(&dir));
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            } else {
                out.push(describe(&path));
            }
        }
    }
    out
}

/// Write past `RLIMIT_FSIZE` in a child: the kernel must kill it with SIGXFSZ.
fn fsize_test() -> Value {
    let Ok((soft, _)) = getrlimit(Resource::RLIMIT_FSIZE) else {
        return Value::Null;
    };
    if soft == RLIM_INFINITY || soft > 64 << 20 {
        return json!({ "skipped": "fsize unlimited or above 64 MiB" });
    }
    let path = "/probe-fsize-test";
    // SAFETY: the probe is single-threaded; the child only writes and exits.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            use std::io::Write;
            let code = match std::fs::File::create(path) {
                Ok(mut f) => {
                    let chunk = vec![0u8; 64 * 1024];
                    let mut written = 0u64;
                    while written <= soft {
                        match f.write(&chunk) {
                            Ok(n) => written += n as u64,
                            Err(_) => break,
                        }
                    }
                    3
                }
                Err(_) => 4,
            };
            // SAFETY: leaving the forked child without running parent state's destructors.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => {
            let status = waitpid(child, None);
            let _ = std::fs::remove_file(path);
            match status {
                Ok(WaitStatus::Signaled(_, signal, _)) => {
                    json!({ "limit": soft, "signal": signal as i32, "signal_name": signal.as_str() })
                }
                Ok(WaitStatus::Exited(_, code)) => {
                    json!({ "limit": soft, "signal": null, "exit": code })
                }
                other => json!({ "limit": soft, "error": format!("{other:?}") }),
            }
        }
        Err(e) => json!({ "error": e.to_string() }),
    }
}

/// Open descriptors until the kernel refuses: it must be EMFILE at `no-file`.
fn nofile_test() -> Value {
    let Ok((soft, _)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return Value::Null;
    };
    if soft > 65536 {
        return json!({ "skipped": "no-file above 65536" });
    }
    let mut opened = Vec::new();
    let mut error = None;
    for _ in 0..soft + 16 {
        match nix::fcntl::open(
            "/",
            nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        ) {
            Ok(fd) => opened.push(fd),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let highest = opened.last().copied();
    for fd in &opened {
        let _ = nix::unistd::close(*fd);
    }
    json!({
        "limit": soft,
        "opened": opened.len(),
        "highest_fd": highest,
        "errno": error.map(|e| e as i32),
        "errno_name": error.map(|e| format!("{e:?}")),
    })
}

/// The id of this process's session keyring (without creating one).
fn session_keyring() -> Value {
    const KEYCTL_GET_KEYRING_ID: libc::c_long = 0;
    const KEY_SPEC_SESSION_KEYRING: libc::c_long = -3;
    // SAFETY: integer arguments only.
    let id = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_GET_KEYRING_ID,
            KEY_SPEC_SESSION_KEYRING,
            0 as libc::c_long,
        )
    };
    if id < 0 {
        json!({ "error": std::io::Error::last_os_error().to_string() })
    } else {
        json!(id)
    }
}

/// What a new user namespace costs to make: in a child, so that the probe
/// itself stays where it is. "ok" or the errno's name.
fn user_namespace_test() -> Value {
    // SAFETY: the probe is single-threaded; the child only unshares and exits.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let code = match nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER) {
                Ok(()) => 0,
                Err(e) => e as i32,
            };
            // SAFETY: leaving the forked child at once.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, 0)) => json!("ok"),
            Ok(WaitStatus::Exited(_, errno)) => {
                json!(format!("{:?}", nix::errno::Errno::from_raw(errno)))
            }
            other => json!(format!("{other:?}")),
        },
        Err(e) => json!(format!("fork: {e}")),
    }
}

/// `clone3` with no flags: the jail answers ENOSYS (so that the C library
/// uses `clone`, whose flags a filter can read).
fn clone3_test() -> Value {
    // SAFETY: an invalid (NULL) argument: the kernel answers EFAULT unless
    // a filter answers first; nothing is created either way.
    let rc = unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize) };
    if rc < 0 {
        json!(format!("{:?}", nix::errno::Errno::last()))
    } else {
        json!("ok")
    }
}

pub fn collect(args: &[String], fds: Vec<i32>, checks: &[String]) -> Value {
    let res_uid = nix::unistd::getresuid().ok();
    let res_gid = nix::unistd::getresgid().ok();
    let stdio: Vec<Value> = (0..3)
        .map(|fd| match nix::sys::stat::fstat(fd) {
            Ok(st) => json!({
                "fd": fd,
                "mode": st.st_mode,
                "major": nix::sys::stat::major(st.st_rdev),
                "minor": nix::sys::stat::minor(st.st_rdev),
            }),
            Err(e) => json!({ "fd": fd, "error": e.to_string() }),
        })
        .collect();
    let root_entries: Vec<String> = std::fs::read_dir("/")
        .map(|e| {
            e.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let visible: serde_json::Map<String, Value> = checks
        .iter()
        .map(|p| (p.clone(), json!(Path::new(p).symlink_metadata().is_ok())))
        .collect();
    // SAFETY: prctl with integer arguments only.
    let nnp = unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) };
    // SAFETY: as above.
    let dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
    json!({
        "args": args,
        "pid": std::process::id(),
        "ppid": nix::unistd::getppid().as_raw(),
        "sid": nix::unistd::getsid(None).map(|p| p.as_raw()).ok(),
        "pgid": nix::unistd::getpgrp().as_raw(),
        "uid": res_uid.map(|r| [r.real.as_raw(), r.effective.as_raw(), r.saved.as_raw()]),
        "gid": res_gid.map(|r| [r.real.as_raw(), r.effective.as_raw(), r.saved.as_raw()]),
        "groups": nix::unistd::getgroups().map(|g| g.iter().map(|g| g.as_raw()).collect::<Vec<_>>()).unwrap_or_default(),
        "capabilities": capabilities(),
        "no_new_privs": nnp == 1,
        "dumpable": dumpable,
        "env": std::env::vars_os().map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy())).collect::<Vec<_>>(),
        "fds": fds,
        "stdio": stdio,
        "cwd": std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_else(|e| format!("error: {e}")),
        "root_entries": root_entries,
        "visible": visible,
        "dev": dev_entries(),
        "rlimit_nofile": limit(Resource::RLIMIT_NOFILE),
        "rlimit_fsize": limit(Resource::RLIMIT_FSIZE),
        "signal_xfsz": Signal::SIGXFSZ as i32,
        "fsize_test": fsize_test(),
        "nofile_test": nofile_test(),
        "session_keyring": session_keyring(),
        "user_namespace": user_namespace_test(),
        "clone3": clone3_test(),
    })
}

pub fn write_atomically(path: &str, json: &Value) -> std::io::Result<()> {
    let tmp = format!("{path}.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(json).unwrap_or_default())?;
    std::fs::rename(&tmp, path)
}
