//! A container's cgroup in the guest: `/sys/fs/cgroup/vmjail/<id>` on the
//! cgroup v2 hierarchy the guest's init mounts at `/sys/fs/cgroup`, with
//! the spec's memory, pids and cpu limits. The container init moves itself
//! in before it unshares anything, so every process of the container (and
//! a cgroup namespace's root) is there.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

/// The guest's cgroup v2 mount.
pub const ROOT: &str = "/sys/fs/cgroup";
/// The parent of every container's cgroup.
const PARENT: &str = "vmjail";
/// The controllers a container's limits need.
const CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];

/// The spec's limits, as the cgroup v2 files take them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// `memory.max`.
    pub memory_max: Option<String>,
    /// `pids.max`.
    pub pids_max: Option<String>,
    /// `cpu.max`: `<quota|max> <period>`.
    pub cpu_max: Option<String>,
}

impl Limits {
    pub fn from_spec(spec: &Spec) -> Result<Limits, String> {
        match spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
            Some(resources) => Limits::from_resources(resources),
            None => Ok(Limits::default()),
        }
    }

    /// The limits of a `linux.resources` (also `runc update`'s JSON).
    pub fn from_resources(resources: &oci_spec::runtime::LinuxResources) -> Result<Limits, String> {
        let max_or = |n: i64, what: &str| -> Result<String, String> {
            match n {
                -1 => Ok("max".into()),
                n if n > 0 => Ok(n.to_string()),
                n => Err(format!(
                    "linux.resources.{what} {n}: expected -1 or more than 0"
                )),
            }
        };
        let memory_max = resources
            .memory()
            .as_ref()
            .and_then(|m| m.limit())
            .map(|n| max_or(n, "memory.limit"))
            .transpose()?;
        let pids_max = resources
            .pids()
            .as_ref()
            .map(|p| max_or(p.limit(), "pids.limit"))
            .transpose()?;
        let cpu_max = match resources.cpu().as_ref() {
            Some(cpu) if cpu.quota().is_some() || cpu.period().is_some() => {
                let period = cpu.period().unwrap_or(100_000);
                if !(1_000..=1_000_000).contains(&period) {
                    return Err(format!(
                        "linux.resources.cpu.period {period}: expected 1000 to 1000000"
                    ));
                }
                let quota = match cpu.quota() {
                    None => "max".to_string(),
                    Some(q) => max_or(q, "cpu.quota")?,
                };
                Some(format!("{quota} {period}"))
            }
            _ => None,
        };
        Ok(Limits {
            memory_max,
            pids_max,
            cpu_max,
        })
    }

    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }
}

/// The cgroup of container `id` under `root`.
pub fn path(root: &Path, id: &str) -> PathBuf {
    root.join(PARENT).join(id)
}

fn write(dir: &Path, file: &str, value: &str) -> Result<(), String> {
    std::fs::write(dir.join(file), value)
        .map_err(|e| format!("writing {value:?} to {}: {e}", dir.join(file).display()))
}

/// Enables in `dir`'s subtree the limit controllers the hierarchy has and
/// `dir` does not enable yet, in one write: each write re-applies the
/// controllers to the whole subtree, tens of milliseconds in a TCG guest.
fn delegate(dir: &Path, available: &str) -> Result<(), String> {
    let enabled = std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
    let has = |list: &str, controller: &str| list.split_whitespace().any(|c| c == controller);
    let missing: Vec<String> = CONTROLLERS
        .iter()
        .filter(|c| has(available, c) && !has(&enabled, c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    write(dir, "cgroup.subtree_control", &missing.join(" "))
}

/// The controllers of the cgroup v2 hierarchy at `root`, `None` without one.
fn controllers(root: &Path) -> Option<String> {
    std::fs::read_to_string(root.join("cgroup.controllers")).ok()
}

/// Creates the parent of the containers' cgroups under `root`, with the
/// limit controllers delegated to it (done again, as needed, by
/// [`enter`]). The agent calls it as it starts, so the first container
/// does not wait for it. Without a cgroup v2 hierarchy: nothing.
pub fn prepare(root: &Path) -> Result<(), String> {
    match controllers(root) {
        Some(available) => prepare_parent(root, &available),
        None => Ok(()),
    }
}

fn prepare_parent(root: &Path, available: &str) -> Result<(), String> {
    delegate(root, available)?;
    let parent = root.join(PARENT);
    match std::fs::create_dir(&parent) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("creating {}: {e}", parent.display())),
    }
    delegate(&parent, available)
}

/// Creates container `id`'s cgroup under `root` with `limits` and moves
/// this process into it. Without a cgroup v2 hierarchy at `root`: nothing,
/// unless limits were asked for (then an error naming the mount).
pub fn enter(root: &Path, id: &str, limits: &Limits) -> Result<(), String> {
    let Some(available) = controllers(root) else {
        if limits.is_empty() {
            return Ok(());
        }
        return Err(format!(
            "cgroup limits need a cgroup v2 hierarchy at {}",
            root.display()
        ));
    };
    prepare_parent(root, &available)?;
    let dir = path(root, id);
    std::fs::create_dir(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    for (file, value) in [
        ("memory.max", &limits.memory_max),
        ("pids.max", &limits.pids_max),
        ("cpu.max", &limits.cpu_max),
    ] {
        if let Some(value) = value {
            write(&dir, file, value)?;
        }
    }
    write(&dir, "cgroup.procs", &std::process::id().to_string())
}

/// Writes the limits `limits` sets into container `id`'s cgroup.
pub fn update(root: &Path, id: &str, limits: &Limits) -> Result<(), String> {
    let dir = path(root, id);
    if !dir.is_dir() {
        return Err(format!(
            "changing limits needs the container's cgroup {}",
            dir.display()
        ));
    }
    for (file, value) in [
        ("memory.max", &limits.memory_max),
        ("pids.max", &limits.pids_max),
        ("cpu.max", &limits.cpu_max),
    ] {
        if let Some(value) = value {
            write(&dir, file, value)?;
        }
    }
    Ok(())
}

/// Most pids read from a cgroup.
const MAX_PIDS: usize = vmjail_agent_protocol::MAX_PROCESSES;

/// The pids in container `id`'s cgroup (at most [`MAX_PIDS`]).
pub fn pids(root: &Path, id: &str) -> Result<Vec<u32>, String> {
    let file = path(root, id).join("cgroup.procs");
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(text
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .take(MAX_PIDS)
        .collect())
}

/// Kills whatever is left in container `id`'s cgroup (a container without
/// a pid namespace leaves its init's children when the init is killed) and
/// removes the cgroup once they are gone (they take a moment to leave it).
pub fn remove(root: &Path, id: &str) {
    let dir = path(root, id);
    // cgroup.kill (Linux 5.14; the guest runs 6.1) kills every process in it.
    let _ = std::fs::write(dir.join("cgroup.kill"), "1");
    for _ in 0..100 {
        match std::fs::remove_dir(&dir) {
            Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                tracing::warn!(cgroup = %dir.display(), "not removed: {e}");
                return;
            }
        }
    }
    tracing::warn!(cgroup = %dir.display(), "not removed: still busy after 1 s");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(resources: &str) -> Spec {
        let text = format!(
            r#"{{"ociVersion":"1.0.2","root":{{"path":"rootfs"}},"linux":{{"resources":{resources}}}}}"#
        );
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn limits_follow_the_spec() {
        let limits = Limits::from_spec(&spec(
            r#"{"memory":{"limit":33554432},"pids":{"limit":20},"cpu":{"quota":50000,"period":100000}}"#,
        ))
        .unwrap();
        assert_eq!(limits.memory_max.as_deref(), Some("33554432"));
        assert_eq!(limits.pids_max.as_deref(), Some("20"));
        assert_eq!(limits.cpu_max.as_deref(), Some("50000 100000"));
        let unlimited =
            Limits::from_spec(&spec(r#"{"memory":{"limit":-1},"cpu":{"period":20000}}"#)).unwrap();
        assert_eq!(unlimited.memory_max.as_deref(), Some("max"));
        assert_eq!(unlimited.cpu_max.as_deref(), Some("max 20000"));
        assert!(Limits::from_spec(&spec("{}")).unwrap().is_empty());
        assert!(Limits::from_spec(&spec(r#"{"memory":{"limit":-5}}"#)).is_err());
        assert!(Limits::from_spec(&spec(r#"{"cpu":{"period":5}}"#)).is_err());
    }

    #[test]
    fn enter_writes_the_limits_into_a_cgroup_of_its_own() {
        let root = tempfile::tempdir().unwrap();
        // Without cgroup v2 there: nothing, unless limits were asked for.
        assert!(enter(root.path(), "c1", &Limits::default()).is_ok());
        let limits = Limits {
            memory_max: Some("1000".into()),
            ..Limits::default()
        };
        assert!(enter(root.path(), "c1", &limits)
            .unwrap_err()
            .contains("cgroup v2"));
        std::fs::write(root.path().join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        enter(root.path(), "c1", &limits).unwrap();
        let dir = path(root.path(), "c1");
        assert_eq!(
            std::fs::read_to_string(dir.join("memory.max")).unwrap(),
            "1000"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("cgroup.procs")).unwrap(),
            std::process::id().to_string()
        );
        assert!(!dir.join("pids.max").exists());
    }

    #[test]
    fn controllers_are_delegated_in_one_write_and_only_when_missing() {
        let root = tempfile::tempdir().unwrap();
        assert!(prepare(root.path()).is_ok(), "no cgroup v2: nothing to do");
        assert!(!root.path().join(PARENT).exists());
        std::fs::write(root.path().join("cgroup.controllers"), "cpu io memory\n").unwrap();
        prepare(root.path()).unwrap();
        let control = |dir: &Path| std::fs::read_to_string(dir.join("cgroup.subtree_control"));
        // pids is not in the hierarchy; what is there is asked for at once.
        assert_eq!(control(root.path()).unwrap(), "+memory +cpu");
        let parent = root.path().join(PARENT);
        assert_eq!(control(&parent).unwrap(), "+memory +cpu");
        // As the kernel shows them once enabled: no write (a write here
        // would replace the file's text).
        std::fs::write(parent.join("cgroup.subtree_control"), "cpu memory\n").unwrap();
        enter(root.path(), "c2", &Limits::default()).unwrap();
        assert_eq!(control(&parent).unwrap(), "cpu memory\n");
    }
}
