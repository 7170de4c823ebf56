//! The few syscalls `nix` lacks, wrapped in one place: capability sets,
//! the capability bounding set, ambient capabilities, pidfds.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Empty the effective, permitted and inheritable sets of this thread.
pub fn clear_capabilities() -> Result<(), Errno> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData::default(); 2];
    // SAFETY: header and a 2-element data array are what capset(2) v3 reads.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    Errno::result(rc).map(drop)
}

/// Drop every capability from the bounding set (needs CAP_SETPCAP), so that
/// no later exec can regain one.
pub fn drop_bounding_set() -> Result<(), Errno> {
    drop_bounding_set_except(&[])
}

/// Drop every capability but those in `keep` from the bounding set
/// (needs CAP_SETPCAP). Async-signal-safe: prctl(2) only.
pub fn drop_bounding_set_except(keep: &[u32]) -> Result<(), Errno> {
    for cap in 0..=63u32 {
        if keep.contains(&cap) {
            continue;
        }
        // SAFETY: prctl with integer arguments only.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        match Errno::result(rc) {
            Ok(_) => {}
            // Past the kernel's last capability.
            Err(Errno::EINVAL) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Become `uid`:`gid` with no supplementary groups, no capability in any
/// set (bounding and ambient included), and no_new_privs.
///
/// The kernel's calls, not the C library's: glibc's `setgroups` and
/// `set*id` apply the change to every thread of the process by signalling
/// each, and in a child that shares its launcher's memory (`CLONE_VM`, see
/// `in_process.rs`) the threads it knows of are the launcher's. The system
/// calls change the calling thread, which in a single-threaded process is
/// all of it.
pub fn drop_privileges(uid: u32, gid: u32) -> Result<(), Errno> {
    // Bounding-set drops need CAP_SETPCAP: done while still privileged.
    drop_bounding_set()?;
    clear_ambient()?;
    // SAFETY: integer arguments and a NULL list of no groups.
    Errno::result(unsafe {
        libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>())
    })?;
    // SAFETY: integer arguments only.
    Errno::result(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) })?;
    // SAFETY: integer arguments only.
    Errno::result(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) })?;
    // setresuid to non-root empties the permitted set; uid 0 keeps it, so
    // empty every set explicitly either way.
    clear_capabilities()?;
    nix::sys::prctl::set_no_new_privs()
}

/// Install the seccomp filter `program` on this thread (no_new_privs must
/// be set).
pub fn install_seccomp(program: &[libc::sock_filter]) -> Result<(), Errno> {
    let len = u16::try_from(program.len()).map_err(|_| Errno::E2BIG)?;
    let prog = libc::sock_fprog {
        len,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: a valid program of `len` instructions, alive for the call
    // (the kernel copies it).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const libc::sock_fprog,
        )
    };
    Errno::result(rc).map(drop)
}

/// Clear the ambient capability set.
pub fn clear_ambient() -> Result<(), Errno> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    Errno::result(rc).map(drop)
}

/// `pidfd_open(2)`: a handle that names exactly this process, immune to pid reuse.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: integer arguments only.
    let rc = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = Errno::result(rc)? as RawFd;
    // SAFETY: a successful pidfd_open returns a new fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `pidfd_send_signal(2)`.
pub fn pidfd_send_signal(pidfd: &OwnedFd, signal: nix::sys::signal::Signal) -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid pidfd, a valid signal number, no siginfo.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal as libc::c_int,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(rc).map(drop)
}

/// `close_range(first, last, 0)`: close every descriptor in `first..=last`.
pub fn close_range(first: u32, last: u32) -> Result<(), Errno> {
    // SAFETY: integer arguments only; closing fds this single-threaded
    // process does not use.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
    Errno::result(rc).map(drop)
}

const KEYCTL_JOIN_SESSION_KEYRING: libc::c_int = 1;

/// `keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)`: a new, anonymous session
/// keyring for this process, shared with no one.
pub fn join_new_session_keyring() -> Result<(), Errno> {
    // SAFETY: integer arguments and a NULL name: an anonymous keyring.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    };
    Errno::result(rc).map(drop)
}
