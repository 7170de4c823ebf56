//! Did a jailed process run out of memory in its cgroup? The kernel's OOM
//! killer ends it with SIGKILL and the process itself says nothing, so the
//! only account is the memory cgroup's own counters: v1
//! `memory.oom_control` (`oom_kill N`) and `memory.failcnt`, v2
//! `memory.events` (`oom_kill N`, `max N`), with the limit beside them.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Bytes read from one cgroup file: they hold a few short lines.
const MAX_CGROUP_FILE: u64 = 4096;

/// A memory cgroup that hit its limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryPressure {
    pub cgroup: PathBuf,
    /// The limit in bytes; `None` when unlimited or unreadable.
    pub limit: Option<u64>,
    /// Processes the OOM killer ended in it (when the kernel counts them).
    pub oom_kills: Option<u64>,
    /// Times an allocation hit the limit.
    pub limit_hits: u64,
}

impl std::fmt::Display for MemoryPressure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "its cgroup {}", self.cgroup.display())?;
        match self.limit {
            Some(limit) => write!(f, ", limit {}", human_bytes(limit))?,
            None => f.write_str(", no limit")?,
        }
        if let Some(kills) = self.oom_kills {
            write!(f, ", oom_kill {kills}")?;
        }
        write!(f, ", limit hit {} times", self.limit_hits)
    }
}

/// The first of the jail's recorded `cgroups` whose memory counters show
/// the limit was hit (an OOM kill, or allocations refused at the limit).
pub fn memory_pressure(cgroups: &[PathBuf]) -> Option<MemoryPressure> {
    cgroups.iter().find_map(|dir| v1(dir).or_else(|| v2(dir)))
}

fn v1(dir: &Path) -> Option<MemoryPressure> {
    let limit_hits = number(&read(&dir.join("memory.failcnt"))?)?;
    let oom_kills = read(&dir.join("memory.oom_control")).and_then(|t| field(&t, "oom_kill"));
    let limit = read(&dir.join("memory.limit_in_bytes")).and_then(|t| number(&t));
    // v1 reports "no limit" as the largest page-aligned value.
    let limit = limit.filter(|&l| l < i64::MAX as u64 / 2);
    hit(dir, limit, oom_kills, limit_hits)
}

fn v2(dir: &Path) -> Option<MemoryPressure> {
    let events = read(&dir.join("memory.events"))?;
    let limit_hits = field(&events, "max")?;
    let oom_kills = field(&events, "oom_kill");
    let limit = read(&dir.join("memory.max")).and_then(|t| number(&t));
    hit(dir, limit, oom_kills, limit_hits)
}

fn hit(
    dir: &Path,
    limit: Option<u64>,
    oom_kills: Option<u64>,
    limit_hits: u64,
) -> Option<MemoryPressure> {
    (oom_kills.unwrap_or(0) > 0 || limit_hits > 0).then(|| MemoryPressure {
        cgroup: dir.to_path_buf(),
        limit,
        oom_kills,
        limit_hits,
    })
}

fn read(path: &Path) -> Option<String> {
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_CGROUP_FILE)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

fn number(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// `key N` from a flat-keyed cgroup file.
fn field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| number(v)).flatten()
    })
}

fn human_bytes(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    if bytes >= MIB && bytes % MIB == 0 {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cgroup(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn a_v1_oom_kill_is_found_with_its_limit() {
        let quiet = cgroup(&[
            ("memory.failcnt", "0\n"),
            ("memory.oom_control", "oom_kill 0\n"),
        ]);
        let killed = cgroup(&[
            ("memory.failcnt", "57\n"),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
            ),
            ("memory.limit_in_bytes", "8388608\n"),
        ]);
        let dirs = [quiet.path().to_path_buf(), killed.path().to_path_buf()];
        let found = memory_pressure(&dirs).unwrap();
        assert_eq!(found.cgroup, killed.path());
        assert_eq!(found.limit, Some(8 << 20));
        assert_eq!(found.oom_kills, Some(1));
        assert_eq!(
            found.to_string(),
            format!(
                "its cgroup {}, limit 8 MiB, oom_kill 1, limit hit 57 times",
                killed.path().display()
            )
        );
        assert_eq!(memory_pressure(&dirs[..1]), None);
    }

    #[test]
    fn a_v2_oom_kill_is_found_and_no_limit_is_said() {
        let killed = cgroup(&[
            ("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"),
            ("memory.max", "max\n"),
        ]);
        let found = memory_pressure(&[killed.path().to_path_buf()]).unwrap();
        assert_eq!(found.limit, None);
        assert_eq!(found.oom_kills, Some(1));
        assert_eq!(found.limit_hits, 3);
        assert!(found.to_string().contains("no limit"), "{found}");
    }

    #[test]
    fn cgroups_without_memory_counters_say_nothing() {
        let cpu = cgroup(&[("cpu.shares", "1024\n")]);
        let gone = cpu.path().join("gone");
        assert_eq!(memory_pressure(&[cpu.path().to_path_buf(), gone]), None);
    }
}
