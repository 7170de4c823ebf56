//! Process identity: a pid plus its start time, so that a recycled pid is
//! never mistaken for the process that was recorded.

use serde::{Deserialize, Serialize};

/// A process as recorded on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    pub pid: i32,
    /// `/proc/<pid>/stat` field 22 (clock ticks after boot).
    pub start_time: u64,
}

impl ProcessId {
    /// The calling process.
    pub fn current() -> Option<Self> {
        let pid = std::process::id() as i32;
        start_time(pid).map(|start_time| Self { pid, start_time })
    }

    /// True while this very process (not a recycled pid) exists and has not
    /// exited (a zombie counts as gone).
    pub fn is_alive(&self) -> bool {
        is_alive(self.pid, Some(self.start_time))
    }

    /// Poll until this process is gone or `timeout` passes; true when gone.
    pub fn wait_gone(&self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while self.is_alive() {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        true
    }

    /// SIGKILL this process, if it is still this one.
    pub fn kill(&self) -> nix::Result<()> {
        if !self.is_alive() {
            return Ok(());
        }
        match nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid),
            nix::sys::signal::Signal::SIGKILL,
        ) {
            Err(nix::Error::ESRCH) => Ok(()),
            other => other,
        }
    }
}

pub use vmjail_jail::process::{is_alive, start_time};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_process_is_alive_and_a_wrong_start_time_is_not() {
        let me = ProcessId::current().unwrap();
        assert!(me.is_alive());
        let recycled = ProcessId {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!recycled.is_alive());
        assert!(!is_alive(0, None));
        assert!(!is_alive(-1, None));
    }

    #[test]
    fn an_exited_unreaped_child_counts_as_gone() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        // Wait for it to become a zombie without reaping it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while vmjail_jail::process::stat(pid).map(|(s, _)| s) != Some('Z') {
            assert!(std::time::Instant::now() < deadline, "child never exited");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!is_alive(pid, None));
        child.wait().unwrap();
        assert!(!is_alive(pid, None));
    }
}
