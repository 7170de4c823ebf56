//! vmjail's `[jail]` section: safe defaults and the checks that keep the
//! jail safe.

use std::path::{Component, Path, PathBuf};

use crate::error::ConfigError;
use crate::model::{CgroupVersionSetting, JailConfig};
use crate::raw::value::Spanned;
use crate::raw::RawJail;
use crate::source::SourceText;

/// Default uid/gid of the VMM: unprivileged and not 65534 (`nobody`), which
/// other daemons share.
pub const DEFAULT_ID: u32 = 30000;
pub const DEFAULT_CHROOT_BASE_DIR: &str = "/srv/vmjail";
pub const DEFAULT_STATE_DIR: &str = "/run/vmjail";
pub const DEFAULT_PARENT_CGROUP: &str = "vmjail";
pub const DEFAULT_RLIMIT_NO_FILE: u64 = 2048;
/// Default number of uid/gid pairs: sandboxes 30000..=39999 by default.
pub const DEFAULT_ID_RANGE_SIZE: u32 = 10_000;
/// `nobody`, which other daemons share: never a VMM's id.
const NOBODY: u32 = 65534;

/// `id_range_size` with the first `uid`/`gid`: at least 1, no wrap past
/// the last id, and (for more than one) neither root nor `nobody` inside.
pub fn check_id_range(uid: u32, gid: u32, size: u32) -> Result<u32, String> {
    if size == 0 {
        return Err("must be at least 1 (1: every sandbox shares uid and gid)".into());
    }
    for (what, first) in [("uid", uid), ("gid", gid)] {
        let Some(last) = first.checked_add(size - 1) else {
            return Err(format!("{what} {first} + {size} runs past the last id"));
        };
        if size > 1 && (first == 0 || (first..=last).contains(&NOBODY)) {
            return Err(format!(
                "{what}s {first}..={last} include root or nobody (65534); pick a range without them"
            ));
        }
    }
    Ok(size)
}

/// `uid`/`gid`: 0 (root) only with `allow_root = true`.
pub fn check_id(id: u32, allow_root: bool) -> Result<u32, String> {
    if id == 0 && !allow_root {
        return Err("0 (root) would run the VMM as root; use an unprivileged id (default 30000) or set jail.allow_root = true".into());
    }
    Ok(id)
}

/// `chroot_base_dir`/`state_dir`: absolute, not `/`, no `.`/`..`
/// components.
pub fn check_dir(raw: &str) -> Result<PathBuf, String> {
    let path = Path::new(raw);
    if !path.is_absolute() {
        return Err("must be an absolute path".into());
    }
    if raw.contains('\0') {
        return Err("must not contain NUL".into());
    }
    let mut normal = 0;
    for c in path.components() {
        match c {
            Component::Normal(_) => normal += 1,
            Component::RootDir => {}
            _ => return Err("must not contain \".\" or \"..\" components".into()),
        }
    }
    if normal == 0 {
        return Err("must not be \"/\"".into());
    }
    Ok(path.to_path_buf())
}

/// `parent_cgroup`: a relative path of plain names (no `.`, `..`, empty
/// components or leading `/`), below each hierarchy's root.
pub fn check_parent_cgroup(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Err("must not be empty".into());
    }
    if raw.starts_with('/') {
        return Err("must be relative to the cgroup root (no leading \"/\")".into());
    }
    for part in raw.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err(
                "must be names separated by \"/\", without \".\", \"..\" or empty parts".into(),
            );
        }
        if !part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@'))
        {
            return Err(format!(
                "component {part:?} may only use A-Z a-z 0-9 - _ . : @"
            ));
        }
    }
    Ok(raw.to_string())
}

/// One `cgroups` entry, `"<controller>.<file>=<value>"` as Firecracker's
/// jailer `--cgroup` takes it: the file a plain name with a dot, the value
/// non-empty and on one line.
pub fn parse_cgroup_setting(raw: &str) -> Result<(String, String), String> {
    let Some((file, value)) = raw.split_once('=') else {
        return Err("must be \"<controller>.<file>=<value>\", e.g. \"cpu.shares=1024\"".into());
    };
    let valid_file = file.contains('.')
        && !file.starts_with('.')
        && !file.ends_with('.')
        && file
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !valid_file {
        return Err(format!(
            "{file:?} is not a cgroup file name like \"cpu.shares\" or \"memory.max\""
        ));
    }
    if value.is_empty() || value.contains(['\n', '\r', '\0']) {
        return Err(format!(
            "the value for {file:?} must be non-empty and on one line"
        ));
    }
    Ok((file.to_string(), value.to_string()))
}

/// `cgroup_version`: "auto", "1" or "2" (an integer is accepted too).
pub fn cgroup_version(raw: &str) -> Result<CgroupVersionSetting, String> {
    match raw {
        "auto" => Ok(CgroupVersionSetting::Auto),
        "1" => Ok(CgroupVersionSetting::V1),
        "2" => Ok(CgroupVersionSetting::V2),
        _ => Err("valid: \"auto\", \"1\", \"2\"".into()),
    }
}

/// `rlimit_no_file`: at least 1 (the VMM needs descriptors).
pub fn check_no_file(n: u64) -> Result<u64, String> {
    if n == 0 {
        return Err("must be at least 1".into());
    }
    Ok(n)
}

/// Build the [`JailConfig`] from `[jail]`, applying defaults.
pub(crate) fn jail_config(src: &SourceText<'_>, raw: &RawJail) -> Result<JailConfig, ConfigError> {
    fn get<T>(field: &Option<Spanned<T>>) -> Option<&T> {
        field.as_ref().map(|s| &s.value)
    }
    fn span_of<T>(field: &Option<Spanned<T>>) -> Option<std::ops::Range<usize>> {
        field.as_ref().and_then(|s| s.span.clone())
    }
    let fail = |key: &'static str, span: Option<std::ops::Range<usize>>, message: String| {
        ConfigError::Jail {
            location: src.at(span.or_else(|| raw.span.clone())),
            key,
            message,
        }
    };

    let allow_root = get(&raw.allow_root).copied().unwrap_or(false);
    let uid = check_id(get(&raw.uid).copied().unwrap_or(DEFAULT_ID), allow_root)
        .map_err(|m| fail("uid", span_of(&raw.uid), m))?;
    let gid = check_id(get(&raw.gid).copied().unwrap_or(DEFAULT_ID), allow_root)
        .map_err(|m| fail("gid", span_of(&raw.gid), m))?;
    // A root VMM (allow_root) is one identity, not a range.
    let default_range = if uid == 0 || gid == 0 {
        1
    } else {
        DEFAULT_ID_RANGE_SIZE
    };
    let id_range_size = check_id_range(
        uid,
        gid,
        get(&raw.id_range_size).copied().unwrap_or(default_range),
    )
    .map_err(|m| fail("id_range_size", span_of(&raw.id_range_size), m))?;
    let chroot_base_dir =
        check_dir(get(&raw.chroot_base_dir).map_or(DEFAULT_CHROOT_BASE_DIR, String::as_str))
            .map_err(|m| fail("chroot_base_dir", span_of(&raw.chroot_base_dir), m))?;
    let state_dir = check_dir(get(&raw.state_dir).map_or(DEFAULT_STATE_DIR, String::as_str))
        .map_err(|m| fail("state_dir", span_of(&raw.state_dir), m))?;
    let cgroup_version = cgroup_version(get(&raw.cgroup_version).map_or("auto", |v| v.0.as_str()))
        .map_err(|m| fail("cgroup_version", span_of(&raw.cgroup_version), m))?;
    let cgroups = get(&raw.cgroups)
        .map(|entries| {
            entries
                .iter()
                .map(|e| parse_cgroup_setting(e))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()
        .map_err(|m| fail("cgroups", span_of(&raw.cgroups), m))?
        .unwrap_or_default();
    let parent_cgroup =
        check_parent_cgroup(get(&raw.parent_cgroup).map_or(DEFAULT_PARENT_CGROUP, String::as_str))
            .map_err(|m| fail("parent_cgroup", span_of(&raw.parent_cgroup), m))?;
    let rlimit_no_file = check_no_file(
        get(&raw.rlimit_no_file)
            .copied()
            .unwrap_or(DEFAULT_RLIMIT_NO_FILE),
    )
    .map_err(|m| fail("rlimit_no_file", span_of(&raw.rlimit_no_file), m))?;

    Ok(JailConfig {
        uid,
        gid,
        id_range_size,
        chroot_base_dir,
        state_dir,
        cgroup_version,
        cgroups,
        parent_cgroup,
        rlimit_fsize: get(&raw.rlimit_fsize).copied(),
        rlimit_no_file,
        new_pid_ns: get(&raw.new_pid_ns).copied().unwrap_or(true),
        daemonize: get(&raw.daemonize).copied().unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_range_table() {
        assert_eq!(check_id_range(30000, 30000, 10_000), Ok(10_000));
        assert_eq!(check_id_range(30000, 30000, 1), Ok(1));
        assert!(check_id_range(30000, 30000, 0).is_err());
        assert!(check_id_range(u32::MAX, 1, 2).is_err());
        assert!(
            check_id_range(60000, 1000, 10_000).is_err(),
            "nobody inside"
        );
        assert!(
            check_id_range(1000, 60000, 10_000).is_err(),
            "nobody gid inside"
        );
        assert!(check_id_range(0, 1, 2).is_err(), "root inside");
        assert_eq!(
            check_id_range(0, 0, 1),
            Ok(1),
            "root alone is allow_root's call"
        );
    }

    #[test]
    fn id_table() {
        let cases = [
            (30000, false, true),
            (1, false, true),
            (0, false, false),
            (0, true, true),
            (u32::MAX, false, true),
        ];
        for (id, allow, ok) in cases {
            assert_eq!(check_id(id, allow).is_ok(), ok, "{id} {allow}");
        }
    }

    #[test]
    fn dir_table() {
        let cases = [
            ("/srv/vmjail", true),
            ("/run/vmjail/", true),
            ("/", false),
            ("srv/vmjail", false),
            ("", false),
            ("/srv/../etc", false),
            ("/srv/./x", true), // Path::components drops interior "."
            ("/a\0b", false),
        ];
        for (raw, ok) in cases {
            assert_eq!(check_dir(raw).is_ok(), ok, "{raw:?}");
        }
    }

    #[test]
    fn parent_cgroup_table() {
        let cases = [
            ("vmjail", true),
            ("machine.slice/vmjail", true),
            ("", false),
            ("/vmjail", false),
            ("../escape", false),
            ("a/../b", false),
            ("a//b", false),
            ("a/", false),
            ("a b", false),
        ];
        for (raw, ok) in cases {
            assert_eq!(check_parent_cgroup(raw).is_ok(), ok, "{raw:?}");
        }
    }

    #[test]
    fn cgroup_setting_table() {
        let cases = [
            ("cpu.shares=1024", Some(("cpu.shares", "1024"))),
            ("memory.max=1G", Some(("memory.max", "1G"))),
            ("cpuset.cpus=0-1", Some(("cpuset.cpus", "0-1"))),
            ("pids.max=max", Some(("pids.max", "max"))),
            ("memory.max=a=b", Some(("memory.max", "a=b"))),
            ("cpu.shares", None),
            ("cpushares=1", None),
            ("../cpu.shares=1", None),
            ("cpu/shares.x=1", None),
            ("cpu.shares=", None),
            ("cpu.shares=1\n2", None),
            (".cpu=1", None),
        ];
        for (raw, want) in cases {
            let got = parse_cgroup_setting(raw).ok();
            let want = want.map(|(f, v)| (f.to_string(), v.to_string()));
            assert_eq!(got, want, "{raw:?}");
        }
    }

    #[test]
    fn cgroup_version_table() {
        let cases = [
            ("auto", Some(CgroupVersionSetting::Auto)),
            ("1", Some(CgroupVersionSetting::V1)),
            ("2", Some(CgroupVersionSetting::V2)),
            ("3", None),
            ("v2", None),
            ("", None),
        ];
        for (raw, want) in cases {
            assert_eq!(cgroup_version(raw).ok(), want, "{raw:?}");
        }
    }

    #[test]
    fn no_file_table() {
        for (n, ok) in [(0, false), (1, true), (2048, true), (u64::MAX, true)] {
            assert_eq!(check_no_file(n).is_ok(), ok, "{n}");
        }
    }
}
