//! Plain values of the agent API, free of protobuf types.

use std::time::Duration;

/// A process to start in the guest. Users and groups are numeric: the
/// guest has no user database the host could rely on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessSpec {
    /// argv[0] is looked up in the `PATH` of `env` when it has no slash.
    pub argv: Vec<String>,
    /// The whole environment, `KEY=VALUE` each.
    pub env: Vec<String>,
    /// `None`: `/`.
    pub cwd: Option<String>,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// `Some((rows, cols))`: run on a new pty of that size (stdout then
    /// carries stderr too); `None`: pipes.
    pub tty: Option<(u16, u16)>,
    /// `false`: stdin is `/dev/null`.
    pub stdin: bool,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(u8),
    Signaled(u8),
}

impl ExitStatus {
    /// The status as a shell reports it: the exit code, or 128 + the signal.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(code) => i32::from(code),
            ExitStatus::Signaled(signal) => 128 + i32::from(signal),
        }
    }

    /// Checks the agent's numbers: one exit code 0..=255, or one signal
    /// 1..=64 with code 0.
    pub(crate) fn from_wire(exit_code: i32, signal: i32) -> Result<Self, String> {
        match (exit_code, signal) {
            (code, 0) => u8::try_from(code)
                .map(ExitStatus::Exited)
                .map_err(|_| format!("exit code {code} is not 0..=255")),
            (0, sig @ 1..=64) => Ok(ExitStatus::Signaled(sig as u8)),
            (code, sig) => Err(format!("exit code {code} with signal {sig}")),
        }
    }
}

/// One answer of a stdout/stderr read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Some bytes; empty when nothing came within the wait.
    Data(Vec<u8>),
    /// The stream is closed and drained.
    Eof,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestInfo {
    pub kernel_release: String,
    pub uptime: Duration,
    pub memory_total_bytes: u64,
    pub memory_free_bytes: u64,
    pub cpus: u32,
}

/// A container's cgroup figures in the guest; a limit of 0 is none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerStats {
    pub cpu_usage_usec: u64,
    pub cpu_user_usec: u64,
    pub cpu_system_usec: u64,
    pub memory_usage_bytes: u64,
    pub memory_limit_bytes: u64,
    pub pids_current: u64,
    pub pids_limit: u64,
    /// Processes the OOM killer took in the container's cgroup.
    pub oom_kills: u64,
}

/// A process the agent keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub id: u64,
    pub pid: u32,
    pub argv: Vec<String>,
    pub tty: bool,
    /// `None` while it runs.
    pub status: Option<ExitStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_status_is_checked_and_maps_to_shell_codes() {
        assert_eq!(ExitStatus::from_wire(0, 0), Ok(ExitStatus::Exited(0)));
        assert_eq!(ExitStatus::from_wire(255, 0).map(ExitStatus::code), Ok(255));
        assert_eq!(ExitStatus::from_wire(0, 9).map(ExitStatus::code), Ok(137));
        assert!(ExitStatus::from_wire(256, 0).is_err());
        assert!(ExitStatus::from_wire(-1, 0).is_err());
        assert!(ExitStatus::from_wire(0, 65).is_err());
        assert!(ExitStatus::from_wire(1, 9).is_err());
    }
}
