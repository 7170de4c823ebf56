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
}

/// True while `pid` exists, is not a zombie and, when `start_time` is given,
/// started at that time.
pub fn is_alive(pid: i32, start_time: Option<u64>) -> bool {
    if pid <= 0 {
        return false;
    }
    match read_stat(pid) {
        Some((state, started)) => {
            !matches!(state, 'Z' | 'X' | 'x') && start_time.map_or(true, |t| t == started)
        }
        None => false,
    }
}

/// The start time of `pid`, if it exists.
pub fn start_time(pid: i32) -> Option<u64> {
    read_stat(pid).map(|(_, started)| started)
}

/// (state, start time) from `/proc/<pid>/stat`. The command name (field 2)
/// may contain spaces and parentheses, so fields are counted after the last
/// `)`.
fn read_stat(pid: i32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 is `state`; field 22 is `starttime`: 19 fields further on.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_spaces_and_parens() {
        let stat = "42 (a) b (c) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1 2 3";
        assert_eq!(parse_stat(stat), Some(('S', 987654)));
        assert_eq!(parse_stat("42 (x) S 1"), None);
    }

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
        while read_stat(pid).map(|(s, _)| s) != Some('Z') {
            assert!(std::time::Instant::now() < deadline, "child never exited");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!is_alive(pid, None));
        child.wait().unwrap();
        assert!(!is_alive(pid, None));
    }
}
