//! Host facts about a process, by pid: the one reader of
//! `/proc/<pid>/stat` for every crate. A pid is only trusted together with
//! its start time, which names one process even after the pid is reused.

/// (state, start time in clock ticks since boot) of `pid`, if it exists.
pub fn stat(pid: i32) -> Option<(char, u64)> {
    if pid <= 0 {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// The command name (field 2) may contain spaces and ')': fields are
/// counted after the last ')'. Field 3 is the state, field 22 the start time.
fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Field 22 of `/proc/<pid>/stat`.
pub fn start_time(pid: i32) -> Option<u64> {
    stat(pid).map(|(_, start)| start)
}

/// Whether `pid` is alive and not a zombie.
pub fn is_running(pid: i32) -> bool {
    is_alive(pid, None)
}

/// Whether `pid` is alive, not a zombie and, when `start_time` is given,
/// still the process that started then.
pub fn is_alive(pid: i32, start_time: Option<u64>) -> bool {
    stat(pid).is_some_and(|(state, started)| {
        !matches!(state, 'Z' | 'X' | 'x') && start_time.map_or(true, |t| t == started)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time_is_stable() {
        let me = std::process::id() as i32;
        let a = start_time(me).unwrap();
        assert_eq!(Some(a), start_time(me));
        assert!(is_running(me));
        assert_eq!(start_time(i32::MAX), None);
    }

    #[test]
    fn parses_names_with_spaces_and_parens() {
        let stat = "42 (a) b (c) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1 2 3";
        assert_eq!(parse_stat(stat), Some(('S', 987654)));
        assert_eq!(parse_stat("42 (x) S 1"), None);
    }

    #[test]
    fn a_wrong_start_time_or_a_bad_pid_is_not_alive() {
        let me = std::process::id() as i32;
        let started = start_time(me);
        assert!(is_alive(me, started));
        assert!(!is_alive(me, started.map(|s| s + 1)));
        assert!(!is_alive(0, None));
        assert!(!is_alive(-1, None));
    }
}
