//! Host facts about a process, by pid.

/// Field 22 of `/proc/<pid>/stat` (start time in clock ticks since boot):
/// with the pid, it names one process even after the pid is reused.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and ')': skip past the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    // Fields from 3 on; start time is field 22 → index 19.
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid` is alive and not a zombie.
pub fn is_running(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next());
    !matches!(state, None | Some("Z") | Some("X"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_start_time_is_stable() {
        let me = std::process::id() as i32;
        let a = super::start_time(me).unwrap();
        assert_eq!(Some(a), super::start_time(me));
        assert!(super::is_running(me));
        assert_eq!(super::start_time(i32::MAX), None);
    }
}
