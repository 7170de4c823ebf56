//! Directories root acts in on behalf of sandboxes (the chroot base, the
//! state dir) must be out of every other user's reach, and so must every
//! directory on the way to them: a user who can rename an ancestor can swap
//! the whole tree for a symlink between vmjail's check and its use (the
//! security review's findings 2 and 9: root's `gc` and `delete --force`
//! then removed and chowned host files elsewhere).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::JailError;

/// Who may own a trusted directory: root, or the user vmjail runs as (root
/// in every real deployment; tests may run as another user).
fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == nix::unistd::geteuid().as_raw()
}

/// Check `path` (resolved to its canonical form, which is returned) and each
/// of its ancestors: a directory owned by root, `path` itself writable by
/// its owner only; an ancestor writable by group or others only with the
/// sticky bit (as `/tmp`), where nobody else can rename or remove the
/// root-owned entry below it. `what` names the directory in errors (e.g.
/// "state dir").
pub fn check_trusted_dir(path: &Path, what: &'static str) -> Result<PathBuf, JailError> {
    let canonical = std::fs::canonicalize(path).map_err(|source| JailError::DirAccess {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    let untrusted = |dir: &Path, reason: String| JailError::UntrustedDir {
        what,
        dir: dir.to_path_buf(),
        reason,
    };
    for (depth, dir) in canonical.ancestors().enumerate() {
        // The canonical path has no symlinks: lstat sees what a walk sees.
        let meta = std::fs::symlink_metadata(dir).map_err(|source| JailError::DirAccess {
            what,
            path: dir.to_path_buf(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(untrusted(dir, "not a directory".into()));
        }
        if !trusted_owner(meta.uid()) {
            return Err(untrusted(
                dir,
                format!("owned by uid {}, not root", meta.uid()),
            ));
        }
        let mode = meta.permissions().mode() & 0o7777;
        let others_write = mode & 0o022 != 0;
        let sticky = mode & 0o1000 != 0;
        if others_write && (depth == 0 || !sticky) {
            return Err(untrusted(
                dir,
                format!("mode {mode:04o} lets group or others create, rename or remove entries"),
            ));
        }
    }
    Ok(canonical)
}

/// Check the nearest existing ancestor of `path` (for a directory about to
/// be created: its parents must already be trusted). Returns that ancestor.
pub fn check_trusted_parent(path: &Path, what: &'static str) -> Result<PathBuf, JailError> {
    let existing = path
        .ancestors()
        .skip(1)
        .find(|p| p.symlink_metadata().is_ok())
        .unwrap_or(Path::new("/"));
    check_trusted_dir(existing, what).map(|_| existing.to_path_buf())
}

/// A file or directory inside a trusted directory that root reads as a
/// record (a sandbox's state dir, `state.json`, a lock file): owned by root,
/// writable by its owner only, not a symlink.
pub fn check_trusted_entry(path: &Path, what: &'static str) -> Result<(), JailError> {
    let meta = std::fs::symlink_metadata(path).map_err(|source| JailError::DirAccess {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    let reason = if meta.file_type().is_symlink() {
        Some("a symlink".to_owned())
    } else if !trusted_owner(meta.uid()) {
        Some(format!("owned by uid {}, not root", meta.uid()))
    } else if mode & 0o022 != 0 {
        Some(format!("mode {mode:04o} is writable by group or others"))
    } else {
        None
    };
    match reason {
        Some(reason) => Err(JailError::UntrustedDir {
            what,
            dir: path.to_path_buf(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_dir_under_a_writable_ancestor_is_refused_under_a_sticky_one_not() {
        let tmp = tempfile::tempdir().unwrap();
        let open = tmp.path().join("open");
        let dir = open.join("state");
        std::fs::create_dir_all(&dir).unwrap();
        chmod(tmp.path(), 0o755);
        chmod(&dir, 0o700);
        chmod(&open, 0o777);
        let err = check_trusted_dir(&dir, "state dir").unwrap_err();
        assert!(err.to_string().contains("open"), "{err}");
        // Sticky: others may create entries but not rename ours.
        chmod(&open, 0o1777);
        assert_eq!(
            check_trusted_dir(&dir, "state dir").unwrap(),
            dir.canonicalize().unwrap()
        );
        // The dir itself: never writable by others, sticky or not.
        chmod(&dir, 0o1777);
        assert!(check_trusted_dir(&dir, "state dir").is_err());
        chmod(&dir, 0o700);
        assert!(check_trusted_parent(&dir.join("new/deeper"), "state dir").is_ok());
    }

    #[test]
    fn entries_must_not_be_symlinks_or_writable_by_others() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("state.json");
        std::fs::write(&file, "{}").unwrap();
        chmod(&file, 0o600);
        check_trusted_entry(&file, "state").unwrap();
        chmod(&file, 0o666);
        assert!(check_trusted_entry(&file, "state").is_err());
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(check_trusted_entry(&link, "state").is_err());
    }

    /// Root only: an entry owned by another user is refused.
    #[test]
    fn an_entry_of_another_user_is_refused() {
        if !nix::unistd::geteuid().is_root() {
            assert!(std::env::var_os("CI").is_none(), "CI runs as root");
            eprintln!("skipped: needs root to chown");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("evil");
        std::fs::create_dir(&dir).unwrap();
        chmod(&dir, 0o700);
        nix::unistd::chown(&dir, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        let err = check_trusted_entry(&dir, "sandbox dir").unwrap_err();
        assert!(err.to_string().contains("65534"), "{err}");
        assert!(check_trusted_dir(&dir, "state dir").is_err());
    }
}
