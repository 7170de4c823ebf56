//! cgroups v1 and v2 behind one plan: which directories a jail creates,
//! which files it writes, where the jailed process is attached.
//!
//! v1: one directory per controller hierarchy named by the settings,
//! `<mount>/<parent>/<id>`; `cpuset.cpus`/`cpuset.mems` are inherited from
//! the nearest ancestor that has them (a new cpuset is empty, and an empty
//! cpuset refuses tasks). v2: one directory `<unified>/<parent>/<id>`, each
//! controller enabled in every ancestor's `cgroup.subtree_control`, then one
//! `cgroup.procs` write.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::error::JailError;
use crate::spec::CgroupVersion;

/// The cgroup hierarchies mounted on this host.
#[derive(Debug, Clone, Default)]
pub struct CgroupMounts {
    /// v1 controller → its hierarchy's mount point (co-mounted controllers
    /// share one).
    pub v1: BTreeMap<String, PathBuf>,
    pub v2: Option<PathBuf>,
}

impl CgroupMounts {
    /// Read the hierarchies from `/proc/self/mountinfo`, once per process:
    /// the kernel writes that file out for every call, and on a host with
    /// hundreds of mounts that costs a millisecond each time.
    pub fn discover() -> CgroupMounts {
        static FOUND: std::sync::OnceLock<CgroupMounts> = std::sync::OnceLock::new();
        FOUND
            .get_or_init(|| {
                let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
                Self::parse(&text)
            })
            .clone()
    }

    pub fn parse(mountinfo: &str) -> CgroupMounts {
        let mut mounts = CgroupMounts::default();
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let Some(mount_point) = left.split(' ').nth(4) else {
                continue;
            };
            let mut right = right.split(' ');
            let (fstype, super_opts) = (right.next(), right.nth(1));
            match fstype {
                Some("cgroup2") if mounts.v2.is_none() => {
                    mounts.v2 = Some(PathBuf::from(mount_point));
                }
                Some("cgroup") => {
                    for opt in super_opts.unwrap_or("").split(',') {
                        let known = !opt.is_empty()
                            && !opt.contains('=')
                            && !matches!(
                                opt,
                                "rw" | "ro"
                                    | "relatime"
                                    | "noatime"
                                    | "nosuid"
                                    | "nodev"
                                    | "noexec"
                                    | "clone_children"
                                    | "noprefix"
                                    | "xattr"
                            );
                        if known {
                            mounts
                                .v1
                                .entry(opt.to_owned())
                                .or_insert_with(|| PathBuf::from(mount_point));
                        }
                    }
                }
                _ => {}
            }
        }
        mounts
    }

    /// Controllers the v2 root offers (`cgroup.controllers`).
    pub fn v2_controllers(&self) -> Vec<String> {
        self.v2
            .as_ref()
            .and_then(|root| std::fs::read_to_string(root.join("cgroup.controllers")).ok())
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    }
}

/// The controller a setting file belongs to (`cpu.shares` → `cpu`); `None`
/// for v2 core files (`cgroup.*`), which need no controller.
pub fn controller_of(file: &str) -> Option<&str> {
    let controller = file.split_once('.').map(|(c, _)| c)?;
    (controller != "cgroup").then_some(controller)
}

/// Cgroup version for `auto`: V2 if the unified hierarchy has the
/// controllers the given settings need, else V1.
pub fn detect_cgroup_version(settings: &[(String, String)]) -> CgroupVersion {
    let mounts = CgroupMounts::discover();
    if mounts.v2.is_none() {
        return CgroupVersion::V1;
    }
    let available = mounts.v2_controllers();
    let all_there = settings
        .iter()
        .filter_map(|(file, _)| controller_of(file))
        .all(|c| available.iter().any(|a| a == c));
    if all_there {
        CgroupVersion::V2
    } else {
        CgroupVersion::V1
    }
}

/// One leaf cgroup the jailed process joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    /// The hierarchy's mount point.
    pub hierarchy: PathBuf,
    /// `<hierarchy>/<parent>/<id>`.
    pub path: PathBuf,
    /// v1 cpuset hierarchy: inherit cpus/mems down the path.
    pub cpuset: bool,
}

/// What a jail does to cgroups, computed before anything is touched.
#[derive(Debug, Clone)]
pub struct CgroupPlan {
    pub version: CgroupVersion,
    pub leaves: Vec<Leaf>,
    /// (file path, value) in the given order.
    pub writes: Vec<(PathBuf, String)>,
    /// v2: controllers to enable in every ancestor of the leaf.
    pub controllers: Vec<String>,
}

impl CgroupPlan {
    /// `settings` empty → an empty plan (nothing created).
    pub fn new(
        mounts: &CgroupMounts,
        version: CgroupVersion,
        settings: &[(String, String)],
        parent: &str,
        id: &str,
    ) -> Result<CgroupPlan, JailError> {
        crate::validate::validate_parent_cgroup(parent)?;
        crate::validate::validate_id(id)?;
        let mut plan = CgroupPlan {
            version,
            leaves: Vec::new(),
            writes: Vec::new(),
            controllers: Vec::new(),
        };
        for (file, value) in settings {
            crate::validate::validate_cgroup_setting(file, value)?;
        }
        if settings.is_empty() {
            return Ok(plan);
        }
        match version {
            CgroupVersion::V1 => {
                for (file, value) in settings {
                    let controller = controller_of(file).unwrap_or("cgroup");
                    let hierarchy = mounts.v1.get(controller).ok_or_else(|| {
                        JailError::CgroupControllerUnavailable {
                            controller: controller.to_owned(),
                            version: "v1",
                            available: mounts.v1.keys().cloned().collect::<Vec<_>>().join(", "),
                        }
                    })?;
                    let leaf = hierarchy.join(parent).join(id);
                    if !plan.leaves.iter().any(|l| l.path == leaf) {
                        plan.leaves.push(Leaf {
                            hierarchy: hierarchy.clone(),
                            path: leaf.clone(),
                            cpuset: mounts.v1.get("cpuset") == Some(hierarchy),
                        });
                    }
                    plan.writes.push((leaf.join(file), value.clone()));
                }
            }
            CgroupVersion::V2 => {
                let hierarchy = mounts.v2.clone().ok_or(JailError::CgroupV2NotMounted)?;
                let available = mounts.v2_controllers();
                for (file, _) in settings {
                    if let Some(controller) = controller_of(file) {
                        if !available.iter().any(|a| a == controller) {
                            return Err(JailError::CgroupControllerUnavailable {
                                controller: controller.to_owned(),
                                version: "v2",
                                available: if available.is_empty() {
                                    "none".to_owned()
                                } else {
                                    available.join(", ")
                                },
                            });
                        }
                        if !plan.controllers.iter().any(|c| c == controller) {
                            plan.controllers.push(controller.to_owned());
                        }
                    }
                }
                let leaf = hierarchy.join(parent).join(id);
                for (file, value) in settings {
                    plan.writes.push((leaf.join(file), value.clone()));
                }
                plan.leaves.push(Leaf {
                    hierarchy,
                    path: leaf,
                    cpuset: false,
                });
            }
        }
        Ok(plan)
    }

    /// Directories this plan will create, in creation order (parents first):
    /// what the caller records before launching.
    pub fn dirs_to_create(&self) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        for leaf in &self.leaves {
            let mut missing = Vec::new();
            let mut dir = leaf.path.as_path();
            while dir != leaf.hierarchy && !dir.exists() {
                missing.push(dir.to_path_buf());
                match dir.parent() {
                    Some(parent) => dir = parent,
                    None => break,
                }
            }
            missing.reverse();
            dirs.extend(missing);
        }
        dirs
    }

    /// The file a single-threaded process writes `0` to to join a leaf.
    ///
    /// v1: `0` (the calling thread) goes to each leaf's `tasks`, not its
    /// `cgroup.procs`. Moving a whole thread group takes the kernel's global
    /// `cgroup_threadgroup_rwsem` for writing, and the first writer after a
    /// quiet spell waits for an RCU grace period (`rcu_sync`): 2–15 ms on
    /// this 2-core host under load, measured with `perf trace`. Moving the
    /// calling thread alone needs no such lock (Linux ≥ 6.0), and with one
    /// thread it is the whole process; the VMM it becomes, and a child it
    /// forks, start in the same cgroups. v2 has no `tasks` file: `0` goes
    /// to `cgroup.procs`.
    pub fn join_file(&self) -> &'static str {
        match self.version {
            CgroupVersion::V1 => "tasks",
            CgroupVersion::V2 => "cgroup.procs",
        }
    }

    /// Create the cgroups and write the settings, attaching nothing (a
    /// process joins itself, writing `0` to each leaf's
    /// [`CgroupPlan::join_file`]).
    pub fn prepare(&self) -> Result<(), JailError> {
        for leaf in &self.leaves {
            create_path(&leaf.hierarchy, &leaf.path)?;
            if leaf.cpuset {
                inherit_cpuset(&leaf.hierarchy, &leaf.path)?;
            }
            if self.version == CgroupVersion::V2 && !self.controllers.is_empty() {
                enable_controllers(&leaf.hierarchy, &leaf.path, &self.controllers)?;
            }
        }
        for (file, value) in &self.writes {
            write(file, value, "writing")?;
        }
        Ok(())
    }
}

/// Kill every process left in the jail's cgroup `dir` (a VMM orphaned by a
/// crash between spawn and record): `cgroup.kill` where the kernel has it,
/// else SIGKILL to each pid in `cgroup.procs`, until it is empty (bounded).
/// Best effort: what cannot be killed shows up as a busy cgroup next.
pub fn kill_all(dir: &Path) {
    let _ = std::fs::write(dir.join("cgroup.kill"), "1");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) else {
            return;
        };
        let pids: Vec<i32> = procs
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        if pids.is_empty() || std::time::Instant::now() >= deadline {
            return;
        }
        for pid in pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

pub(crate) fn write(path: &Path, value: &str, step: &'static str) -> Result<(), JailError> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, value.as_bytes()))
        .map_err(|source| JailError::Cgroup {
            step,
            path: path.to_path_buf(),
            source,
        })
}

fn read_trimmed(path: &Path) -> Result<String, JailError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|source| JailError::Cgroup {
            step: "reading",
            path: path.to_path_buf(),
            source,
        })
}

pub(crate) fn create_path(hierarchy: &Path, leaf: &Path) -> Result<(), JailError> {
    let rel = leaf.strip_prefix(hierarchy).unwrap_or(leaf);
    let mut dir = hierarchy.to_path_buf();
    for component in rel.components() {
        dir.push(component);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(JailError::Cgroup {
                    step: "creating",
                    path: dir,
                    source,
                })
            }
        }
    }
    Ok(())
}

/// Copy `cpuset.cpus`/`cpuset.mems` from parent to child wherever the child's
/// are empty, from the hierarchy root down to the leaf.
pub(crate) fn inherit_cpuset(hierarchy: &Path, leaf: &Path) -> Result<(), JailError> {
    let rel = leaf.strip_prefix(hierarchy).unwrap_or(leaf);
    let mut parent = hierarchy.to_path_buf();
    for component in rel.components() {
        let child = parent.join(component);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if read_trimmed(&child.join(file))?.is_empty() {
                let value = read_trimmed(&parent.join(file))?;
                write(&child.join(file), &value, "inheriting")?;
            }
        }
        parent = child;
    }
    Ok(())
}

/// Enable `controllers` in the `cgroup.subtree_control` of every ancestor of
/// `leaf`, from the hierarchy root down.
fn enable_controllers(
    hierarchy: &Path,
    leaf: &Path,
    controllers: &[String],
) -> Result<(), JailError> {
    let rel = leaf.strip_prefix(hierarchy).unwrap_or(leaf);
    let mut dir = hierarchy.to_path_buf();
    let ancestors = rel.components().count().saturating_sub(1);
    for component in rel.components().take(ancestors + 1) {
        let control = dir.join("cgroup.subtree_control");
        let enabled = read_trimmed(&control)?;
        let missing: Vec<String> = controllers
            .iter()
            .filter(|c| !enabled.split_whitespace().any(|e| e == c.as_str()))
            .map(|c| format!("+{c}"))
            .collect();
        if !missing.is_empty() {
            let value = missing.join(" ");
            if let Err(e) = write(&control, &value, "enabling controllers in") {
                if let JailError::Cgroup { source, .. } = &e {
                    if source.raw_os_error() == Some(libc::EBUSY) {
                        return Err(JailError::CgroupBusy {
                            path: dir,
                            controllers: value,
                        });
                    }
                }
                return Err(e);
            }
        }
        dir.push(component);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 25 0:26 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu
31 25 0:27 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
32 25 0:28 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
33 25 0:29 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
34 25 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
";

    #[test]
    fn parses_hybrid_mountinfo() {
        let m = CgroupMounts::parse(HYBRID);
        assert_eq!(m.v1["cpu"], Path::new("/sys/fs/cgroup/cpu"));
        assert_eq!(m.v1["cpuacct"], Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(m.v1["cpuset"], Path::new("/sys/fs/cgroup/cpuset"));
        assert!(!m.v1.contains_key("name=systemd") && !m.v1.contains_key("clone_children"));
        assert_eq!(m.v2.as_deref(), Some(Path::new("/sys/fs/cgroup/unified")));
    }

    #[test]
    fn v1_plan_names_leaves_per_hierarchy() {
        let m = CgroupMounts::parse(HYBRID);
        let settings = vec![
            ("cpu.shares".to_owned(), "2".to_owned()),
            ("cpuset.cpus".to_owned(), "0".to_owned()),
            ("cpu.cfs_quota_us".to_owned(), "1000".to_owned()),
        ];
        let plan = CgroupPlan::new(&m, CgroupVersion::V1, &settings, "fc/jails", "x1").unwrap();
        assert_eq!(plan.leaves.len(), 2);
        assert_eq!(
            plan.leaves[0].path,
            Path::new("/sys/fs/cgroup/cpu/fc/jails/x1")
        );
        assert!(plan.leaves[1].cpuset && !plan.leaves[0].cpuset);
        assert_eq!(
            plan.writes[0].0,
            Path::new("/sys/fs/cgroup/cpu/fc/jails/x1/cpu.shares")
        );
    }

    #[test]
    fn unavailable_controller_is_named() {
        let m = CgroupMounts::parse(HYBRID);
        let settings = vec![("memory.limit_in_bytes".to_owned(), "1".to_owned())];
        let err = CgroupPlan::new(&m, CgroupVersion::V1, &settings, "p", "x").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("\"memory\"") && msg.contains("cpuset"),
            "{msg}"
        );
    }

    #[test]
    fn bad_parents_are_rejected() {
        let m = CgroupMounts::parse(HYBRID);
        let settings = vec![("cpu.shares".to_owned(), "2".to_owned())];
        for parent in ["../x", "/abs", ""] {
            assert!(CgroupPlan::new(&m, CgroupVersion::V1, &settings, parent, "x").is_err());
        }
    }
}
