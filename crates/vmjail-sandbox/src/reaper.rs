//! `vmjail run` as its sandbox's reaper. With `new_pid_ns` the jailer forks
//! the VMM and exits, so the VMM is orphaned: without a subreaper its
//! zombie waits for pid 1 (which, in a container, may never reap it).
//! A child subreaper inherits it instead and reaps it.

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Make this process the reaper of its orphaned descendants
/// (`PR_SET_CHILD_SUBREAPER`).
pub fn become_subreaper() -> nix::Result<()> {
    nix::sys::prctl::set_child_subreaper(true)
}

/// Reap every child that has exited, without waiting for the living ones;
/// returns how many were reaped. Call only when no other code still waits
/// for a child of its own (it would lose that exit status).
pub fn reap_exited() -> usize {
    let mut reaped = 0;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return reaped,
            Ok(_) => reaped += 1,
            Err(Errno::EINTR) => {}
            Err(_) => return reaped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grandchild orphaned by its parent is reparented to a subreaper,
    /// and reaped by it. Run in a child process: the test harness's own
    /// children must not be taken.
    #[test]
    fn an_orphaned_grandchild_is_inherited_and_reaped() {
        use nix::unistd::{fork, ForkResult};
        // SAFETY: the child only makes syscalls and spawns `sh`, then exits.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                let code = (|| {
                    become_subreaper().ok()?;
                    // `sh` starts `sleep` in the background and exits: the
                    // sleep is orphaned.
                    let out = std::process::Command::new("sh")
                        .args(["-c", "sleep 0.2 & echo $!"])
                        .stdout(std::process::Stdio::piped())
                        .output()
                        .ok()?;
                    let orphan: i32 = String::from_utf8(out.stdout).ok()?.trim().parse().ok()?;
                    let stat = std::fs::read_to_string(format!("/proc/{orphan}/stat")).ok()?;
                    let ppid: i32 = stat
                        .rsplit(')')
                        .next()?
                        .split_whitespace()
                        .nth(1)?
                        .parse()
                        .ok()?;
                    if ppid != std::process::id() as i32 {
                        return Some(2);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(500));
                    if reap_exited() != 1
                        || std::path::Path::new(&format!("/proc/{orphan}")).exists()
                    {
                        return Some(3);
                    }
                    Some(0)
                })()
                .unwrap_or(1);
                std::process::exit(code);
            }
            ForkResult::Parent { child } => {
                let status = waitpid(child, None).unwrap();
                assert_eq!(status, WaitStatus::Exited(child, 0));
            }
        }
    }
}
