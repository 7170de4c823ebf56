//! A container's figures from its cgroup v2 files in the guest (see
//! cgroup.rs for where the cgroup is), and its freezer.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

/// Most bytes read of one cgroup file (cpu.stat is a few lines).
const MAX_FILE: u64 = 8192;
/// Longest a freeze may take to settle before it is reported as failed.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

/// A container's cgroup figures; 0 for a limit that is `max`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    pub cpu_usage_usec: u64,
    pub cpu_user_usec: u64,
    pub cpu_system_usec: u64,
    pub memory_usage_bytes: u64,
    pub memory_limit_bytes: u64,
    pub pids_current: u64,
    pub pids_limit: u64,
    /// memory.events `oom_kill`.
    pub oom_kills: u64,
}

fn read(dir: &Path, file: &str) -> Result<String, String> {
    let path = dir.join(file);
    let mut text = String::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(MAX_FILE).read_to_string(&mut text))
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    Ok(text)
}

/// A single-number file; `max` is 0. A controller not enabled there
/// (no such file) reads as 0 too.
fn number(dir: &Path, file: &str) -> Result<u64, String> {
    if !dir.join(file).exists() {
        return Ok(0);
    }
    let text = read(dir, file)?;
    match text.trim() {
        "max" => Ok(0),
        n => n
            .parse()
            .map_err(|_| format!("{file}: {n:?} is not a number")),
    }
}

/// `key value` lines (cpu.stat): the value of `key`, 0 when absent.
fn keyed(text: &str, key: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The figures of the cgroup `dir`.
pub fn stats(dir: &Path) -> Result<Stats, String> {
    let cpu = read(dir, "cpu.stat")?;
    Ok(Stats {
        cpu_usage_usec: keyed(&cpu, "usage_usec"),
        cpu_user_usec: keyed(&cpu, "user_usec"),
        cpu_system_usec: keyed(&cpu, "system_usec"),
        memory_usage_bytes: number(dir, "memory.current")?,
        memory_limit_bytes: number(dir, "memory.max")?,
        pids_current: number(dir, "pids.current")?,
        pids_limit: number(dir, "pids.max")?,
        oom_kills: match dir.join("memory.events").exists() {
            true => keyed(&read(dir, "memory.events")?, "oom_kill"),
            false => 0,
        },
    })
}

/// Freezes (`true`) or thaws the cgroup `dir` and waits until the kernel
/// says it is done (`frozen` in cgroup.events), within [`FREEZE_TIMEOUT`].
pub fn freeze(dir: &Path, frozen: bool) -> Result<(), String> {
    let want = if frozen { "1" } else { "0" };
    std::fs::write(dir.join("cgroup.freeze"), want).map_err(|e| {
        format!(
            "writing {want} to {}: {e}",
            dir.join("cgroup.freeze").display()
        )
    })?;
    let deadline = Instant::now() + FREEZE_TIMEOUT;
    loop {
        let events = read(dir, "cgroup.events")?;
        if keyed(&events, "frozen").to_string() == want {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{}: still not frozen={want} after {}s",
                dir.display(),
                FREEZE_TIMEOUT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_come_from_the_cgroup_files() {
        let dir = tempfile::tempdir().unwrap();
        let write = |f: &str, v: &str| std::fs::write(dir.path().join(f), v).unwrap();
        write(
            "cpu.stat",
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 0\n",
        );
        write("memory.current", "4096\n");
        write("memory.max", "max\n");
        write("pids.current", "3\n");
        write("pids.max", "20\n");
        write("memory.events", "low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\n");
        let s = stats(dir.path()).unwrap();
        assert_eq!(
            s,
            Stats {
                cpu_usage_usec: 1500,
                cpu_user_usec: 1000,
                cpu_system_usec: 500,
                memory_usage_bytes: 4096,
                memory_limit_bytes: 0,
                pids_current: 3,
                pids_limit: 20,
                oom_kills: 1,
            }
        );
        write("pids.max", "lots\n");
        assert!(stats(dir.path()).unwrap_err().contains("pids.max"));
        std::fs::remove_file(dir.path().join("cpu.stat")).unwrap();
        assert!(stats(dir.path()).is_err(), "no cgroup there");
    }

    #[test]
    fn freeze_waits_for_the_kernel_to_agree() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        freeze(dir.path(), true).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("cgroup.freeze")).unwrap(),
            "1"
        );
    }
}
