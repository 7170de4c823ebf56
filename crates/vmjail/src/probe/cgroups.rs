//! Which cgroup hierarchies this host has mounted and their controllers:
//! v1 controllers from `/proc/self/mountinfo` (`cgroup` mounts and their
//! super options), v2 from the `cgroup2` mount's `cgroup.controllers`.

use std::path::{Path, PathBuf};

/// The cgroup hierarchies of this host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupMounts {
    /// v1: (controller, mount point).
    pub v1: Vec<(String, PathBuf)>,
    /// v2: the unified hierarchy's mount point.
    pub v2: Option<PathBuf>,
    /// v2: controllers listed in its root `cgroup.controllers`.
    pub v2_controllers: Vec<String>,
}

impl CgroupMounts {
    pub fn v1_controllers(&self) -> Vec<&str> {
        self.v1.iter().map(|(c, _)| c.as_str()).collect()
    }
}

/// Read this host's hierarchies.
pub fn probe() -> Result<CgroupMounts, String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    let mut mounts = parse_mountinfo(&text);
    if let Some(v2) = &mounts.v2 {
        mounts.v2_controllers = read_controllers(&v2.join("cgroup.controllers"));
    }
    Ok(mounts)
}

fn read_controllers(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|t| t.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Parse mountinfo text (see proc(5)): the mount point is field 5; after
/// the ` - ` separator come the filesystem type, the source and the super
/// options, which for cgroup v1 name the controllers.
pub fn parse_mountinfo(text: &str) -> CgroupMounts {
    let mut out = CgroupMounts::default();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mount_point) = left.split_whitespace().nth(4) else {
            continue;
        };
        let mut right = right.split_whitespace();
        let (Some(fstype), Some(_source), Some(options)) =
            (right.next(), right.next(), right.next())
        else {
            continue;
        };
        let mount_point = PathBuf::from(unescape(mount_point));
        match fstype {
            "cgroup2" if out.v2.is_none() => out.v2 = Some(mount_point),
            "cgroup" => {
                for opt in options.split(',') {
                    let is_flag = matches!(
                        opt,
                        "rw" | "ro" | "noprefix" | "clone_children" | "xattr" | "cpuset_v2_mode"
                    ) || opt.contains('=');
                    if !is_flag && !out.v1.iter().any(|(c, _)| c == opt) {
                        out.v1.push((opt.to_string(), mount_point.clone()));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 30 0:23 / /sys rw,nosuid - sysfs sysfs rw
33 25 0:28 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
34 33 0:29 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
35 33 0:30 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
38 33 0:33 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
39 33 0:34 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
40 33 0:35 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
41 33 0:36 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset,clone_children
";

    #[test]
    fn hybrid_host() {
        let m = parse_mountinfo(HYBRID);
        assert_eq!(m.v2, Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(
            m.v1_controllers(),
            ["cpu", "cpuacct", "memory", "pids", "cpuset"]
        );
        assert_eq!(m.v1[0].1, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
    }

    #[test]
    fn mountinfo_table() {
        let cases: [(&str, Option<&str>, &[&str]); 4] = [
            ("", None, &[]),
            ("garbage line\n", None, &[]),
            (
                "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
                Some("/sys/fs/cgroup"),
                &[],
            ),
            (
                "1 1 0:1 / /cg\\040x rw - cgroup none rw,blkio\n",
                None,
                &["blkio"],
            ),
        ];
        for (text, v2, v1) in cases {
            let m = parse_mountinfo(text);
            assert_eq!(m.v2.as_deref(), v2.map(Path::new), "{text:?}");
            assert_eq!(m.v1_controllers(), v1, "{text:?}");
        }
        let m = parse_mountinfo("1 1 0:1 / /cg\\040x rw - cgroup none rw,blkio\n");
        assert_eq!(m.v1[0].1, PathBuf::from("/cg x"));
    }

    #[test]
    fn real_host_has_some_hierarchy() {
        let m = probe().unwrap();
        assert!(m.v2.is_some() || !m.v1.is_empty(), "{m:?}");
    }
}
