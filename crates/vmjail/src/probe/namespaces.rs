//! Can this process create the namespaces a jail uses? Tried for real: a
//! forked child calls `unshare(2)` for one namespace and exits with the
//! result, so the probing process itself never changes namespace.

use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};

/// The namespaces probed: (name, flag).
pub const NAMESPACES: [(&str, CloneFlags); 4] = [
    ("mount", CloneFlags::CLONE_NEWNS),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("net", CloneFlags::CLONE_NEWNET),
    ("user", CloneFlags::CLONE_NEWUSER),
];

/// Try `unshare(flags)` in a forked child.
pub fn try_unshare(flags: CloneFlags) -> Result<(), String> {
    // SAFETY: the child only makes the unshare and _exit system calls, both
    // async-signal-safe, so forking from any process state is sound.
    match unsafe { fork() }.map_err(|e| format!("fork failed: {e}"))? {
        ForkResult::Child => {
            let code = match unshare(flags) {
                Ok(()) => 0,
                Err(errno) => errno as i32,
            };
            // SAFETY: _exit ends the child without running the parent's
            // atexit handlers or destructors (nix has no wrapper for it).
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, 0)) => Ok(()),
            Ok(WaitStatus::Exited(_, code)) => Err(format!(
                "unshare failed: {}",
                nix::errno::Errno::from_raw(code)
            )),
            Ok(other) => Err(format!("probe child ended unexpectedly: {other:?}")),
            Err(e) => Err(format!("waitpid failed: {e}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_can_unshare_mount_pid_net() {
        if !nix::unistd::geteuid().is_root() {
            assert!(std::env::var_os("CI").is_none(), "CI runs as root");
            println!("skipped: not root");
            return;
        }
        for (name, flag) in &NAMESPACES[..3] {
            assert_eq!(try_unshare(*flag), Ok(()), "{name}");
        }
    }

    #[test]
    fn invalid_flag_is_reported() {
        // CLONE_PARENT is not a flag unshare(2) accepts: EINVAL.
        let err = try_unshare(CloneFlags::CLONE_PARENT).unwrap_err();
        assert!(err.contains("EINVAL"), "{err}");
    }
}
