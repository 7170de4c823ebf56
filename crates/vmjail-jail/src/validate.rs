//! Input checks shared by `Jail` (in the caller) and the built-in jailer:
//! every value that reaches a path or a syscall is checked here first.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::error::JailError;

/// Longest Unix socket path (`sun_path` is 108 bytes including the NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// Validate a sandbox id: ASCII `[A-Za-z0-9][A-Za-z0-9-]{0,63}` — the same
/// rule as `vmjail_sandbox::SandboxId`. A leading `-` would make the id an
/// option on the jailer's (and Firecracker's jailer's) command line.
pub fn validate_id(id: &str) -> Result<(), JailError> {
    let invalid = |reason| {
        Err(JailError::InvalidId {
            id: id.to_owned(),
            reason,
        })
    };
    if id.is_empty() {
        return invalid("it is empty");
    }
    if id.len() > 64 {
        return invalid("it is longer than 64 characters");
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return invalid("it contains a character other than A-Z, a-z, 0-9 or '-'");
    }
    if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return invalid("it does not start with a letter or a digit");
    }
    Ok(())
}

/// The exec file must exist and be a regular file (symlinks are resolved:
/// the host path is operator-provided, the jail gets the real file).
/// Returns the canonical path and the file name (the jail's `exec_name`).
pub fn validate_exec_file(path: &Path) -> Result<(PathBuf, String), JailError> {
    let canonical = std::fs::canonicalize(path).map_err(|source| JailError::ExecFileAccess {
        path: path.to_path_buf(),
        source,
    })?;
    let meta = std::fs::metadata(&canonical).map_err(|source| JailError::ExecFileAccess {
        path: canonical.clone(),
        source,
    })?;
    if !meta.is_file() {
        return Err(JailError::ExecFileNotRegular { path: canonical });
    }
    let name = canonical
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .filter(|n| !n.starts_with('.'))
        .ok_or_else(|| JailError::ExecFileName {
            path: canonical.clone(),
        })?;
    Ok((canonical, name))
}

/// The chroot base must exist, be a directory and not be writable by others
/// (else another user could swap `<exec_name>` under us), and so must every
/// directory above it (see `trust`). Returns it canonical.
pub fn validate_chroot_base(path: &Path) -> Result<PathBuf, JailError> {
    let canonical = std::fs::canonicalize(path).map_err(|source| JailError::ChrootBaseAccess {
        path: path.to_path_buf(),
        source,
    })?;
    let meta = std::fs::metadata(&canonical).map_err(|source| JailError::ChrootBaseAccess {
        path: canonical.clone(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(JailError::ChrootBaseNotDir { path: canonical });
    }
    let mode = meta.permissions().mode() & 0o7777;
    // The sticky bit (as on /tmp) does not stop others from creating
    // `<exec_name>`; a group or another owner could swap it too. Same rule as
    // for the `<exec_name>` dir: root-owned, writable by root only.
    if meta.uid() != 0 || mode & 0o022 != 0 {
        return Err(JailError::ChrootBaseWorldWritable {
            path: canonical,
            uid: meta.uid(),
            mode,
        });
    }
    // And every directory above it: whoever can rename one of them can
    // swap the base for a symlink between this check and teardown.
    crate::trust::check_trusted_dir(&canonical, "chroot base dir")?;
    Ok(canonical)
}

/// An in-jail path: absolute, only normal components.
pub fn validate_path_in_jail(path: &Path) -> Result<(), JailError> {
    let invalid = |reason| {
        Err(JailError::InvalidPathInJail {
            path: path.to_path_buf(),
            reason,
        })
    };
    if !path.is_absolute() {
        return invalid("it is not absolute");
    }
    // `Path::components` silently drops inner `.`: look at the raw segments.
    if has_dot_segment(path.as_os_str().as_bytes()) {
        return invalid("it contains '.' or '..'");
    }
    if !path.components().any(|c| matches!(c, Component::Normal(_))) {
        return invalid("it names the jail root itself");
    }
    Ok(())
}

fn has_dot_segment(bytes: &[u8]) -> bool {
    bytes
        .split(|&b| b == b'/')
        .any(|seg| seg == b"." || seg == b"..")
}

/// The API socket seen from the host must fit `sun_path`.
pub fn validate_socket_path(root: &Path, path_in_jail: &Path) -> Result<(), JailError> {
    validate_path_in_jail(path_in_jail)?;
    let host = crate::spec::host_path(root, path_in_jail);
    let len = host.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(JailError::SocketPathTooLong { path: host, len });
    }
    Ok(())
}

/// `--parent-cgroup`: relative, no `.`/`..`, not empty.
pub fn validate_parent_cgroup(value: &str) -> Result<(), JailError> {
    let path = Path::new(value);
    let ok = !value.is_empty()
        && !has_dot_segment(value.as_bytes())
        && path.components().all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(())
    } else {
        Err(JailError::InvalidParentCgroup {
            value: value.to_owned(),
        })
    }
}

/// The `cgroup.*` files a setting may write.
const CGROUP_CORE_SETTINGS: &[&str] = &["cgroup.max.descendants", "cgroup.max.depth"];

/// `<controller>.<file>=<value>` split into (file, value), the file a plain
/// name with a controller prefix.
pub fn validate_cgroup_setting(file: &str, value: &str) -> Result<(), JailError> {
    let invalid = || JailError::InvalidCgroupSetting {
        value: format!("{file}={value}"),
    };
    let plain = !file.is_empty()
        && !file.contains('/')
        && file != "."
        && file != ".."
        && file
            .split_once('.')
            .is_some_and(|(c, f)| !c.is_empty() && !f.is_empty());
    if !plain || value.is_empty() || value.contains('\n') {
        return Err(invalid());
    }
    // The core `cgroup.*` files move processes or change the tree
    // (cgroup.procs, cgroup.subtree_control, cgroup.kill, ...): only the
    // limits are settings.
    if file.starts_with("cgroup.") && !CGROUP_CORE_SETTINGS.contains(&file) {
        return Err(invalid());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate_id("a").is_ok());
        assert!(validate_id("bd65600d-8669-4903-8a14-af88203add38").is_ok());
        assert!(validate_id(&"a".repeat(64)).is_ok());
        assert!(validate_id("9-").is_ok());
        for bad in [
            "",
            "a_b",
            "a/b",
            "../x",
            "a b",
            "é",
            "a.b",
            "-",
            "--",
            "--uid",
            "--allow-root",
            "-a",
        ] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
        let long = validate_id(&"a".repeat(65)).unwrap_err().to_string();
        assert!(long.contains("longer than 64"), "{long}");
        let dash = validate_id("--uid").unwrap_err().to_string();
        assert!(dash.contains("start with a letter or a digit"), "{dash}");
    }

    #[test]
    fn paths_in_jail() {
        assert!(validate_path_in_jail(Path::new("/a/b")).is_ok());
        for bad in ["a/b", "/", "/a/../b", "/a/./b", ""] {
            assert!(validate_path_in_jail(Path::new(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn socket_length() {
        let root = Path::new("/srv/jail/firecracker/x/root");
        assert!(validate_socket_path(root, Path::new("/run/api.sock")).is_ok());
        let long = format!("/{}", "s".repeat(100));
        let err = validate_socket_path(root, Path::new(&long)).unwrap_err();
        assert!(matches!(err, JailError::SocketPathTooLong { .. }));
    }

    #[test]
    fn parent_cgroups() {
        assert!(validate_parent_cgroup("vmjail/sandboxes").is_ok());
        for bad in ["", "/abs", "a/../b", "./a", ".."] {
            assert!(validate_parent_cgroup(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cgroup_settings() {
        assert!(validate_cgroup_setting("cpu.shares", "1024").is_ok());
        assert!(validate_cgroup_setting("cgroup.max.depth", "2").is_ok());
        for (f, v) in [
            ("cpu.shares", ""),
            ("shares", "1"),
            ("../x.y", "1"),
            ("a.b", "1\n2"),
            ("cgroup.procs", "1"),
            ("cgroup.subtree_control", "+cpu"),
            ("cgroup.kill", "1"),
        ] {
            assert!(validate_cgroup_setting(f, v).is_err(), "{f}={v}");
        }
    }

    /// Review finding 9: under an ancestor another user can write, that
    /// user could swap the base for a symlink between prepare and teardown.
    #[test]
    fn a_chroot_base_under_an_ancestor_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let open = tmp.path().join("open");
        let base = open.join("base");
        std::fs::create_dir_all(&base).unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o711)).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        if !nix::unistd::geteuid().is_root() {
            // A non-root owner fails the base's own check first.
            assert!(validate_chroot_base(&base).is_err());
            return;
        }
        let err = validate_chroot_base(&base).unwrap_err();
        assert!(
            matches!(err, JailError::UntrustedDir { ref dir, .. } if *dir == open.canonicalize().unwrap()),
            "{err}"
        );
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(validate_chroot_base(&base).is_ok());
    }
}
