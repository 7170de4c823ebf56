//! A dynamically linked VMM's shared libraries, as one read-only tree per
//! binary instead of one bind mount per library: QEMU needs ~60 files, and
//! a mount (recorded first) for each cost most of `create`. The tree holds
//! copies of the loader and every `DT_NEEDED` library at the paths the
//! loader looks for them in the jail, under
//! `<chroot base>/.libs/<exec name>/<key>/`; each jail gets a read-only bind
//! of each directory of the tree (two for QEMU: `/lib/x86_64-linux-gnu`,
//! `/lib64`).
//!
//! The key names the binary (device, inode, size, mtime) and the loader
//! cache (`/etc/ld.so.cache`, rewritten by `ldconfig` whenever a library is
//! installed or upgraded): an upgraded library gets a new tree, and the
//! old trees of that binary go (jails running them keep their binds of the
//! old inodes). The tree is built beside its final name and renamed into
//! place, so a concurrent create never sees half of it; the cache is root's
//! alone (0700) and its copies root-owned.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::JailError;
use crate::fsat;
use crate::libs::shared_libraries;

const CACHE_DIR: &str = ".libs";

/// A library tree: its host directory and the in-jail directories to bind
/// from it (`<root>/<dir>` onto `<jail root>/<dir>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryTree {
    pub root: PathBuf,
    pub dirs: Vec<PathBuf>,
}

fn identity(path: &Path) -> String {
    match std::fs::metadata(path) {
        Ok(m) => format!(
            "{:x}-{:x}-{:x}-{}.{}",
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime(),
            m.mtime_nsec()
        ),
        Err(_) => "none".into(),
    }
}

fn io_error(step: &'static str, path: &Path, e: std::io::Error) -> JailError {
    JailError::fs(step, path, fsat::errno_of(&e))
}

/// The tree for `exec` (named `exec_name` in the jail) under `base`, made
/// if missing; `None` for a static executable.
pub fn library_tree(
    base: &Path,
    exec: &Path,
    exec_name: &str,
) -> Result<Option<LibraryTree>, JailError> {
    let key = format!(
        "{}-{}",
        identity(exec),
        identity(Path::new("/etc/ld.so.cache"))
    );
    let base_fd = fsat::open_dir(base)?;
    let cache_path = base.join(CACHE_DIR);
    let cache = fsat::ensure_subdir(&base_fd, OsStr::new(CACHE_DIR), &cache_path, 0o700, None)?;
    fsat::check_root_only(&cache, &cache_path)?;
    let name_path = cache_path.join(exec_name);
    fsat::ensure_subdir(&cache, OsStr::new(exec_name), &name_path, 0o700, None)?;
    let root = name_path.join(&key);
    if !root.is_dir() {
        let libraries = shared_libraries(exec)?;
        if libraries.is_empty() {
            return Ok(None);
        }
        build(&root, &libraries)?;
        remove_stale_trees(&name_path, &key);
    }
    let dirs = directories_of(&root)?;
    Ok((!dirs.is_empty()).then_some(LibraryTree { root, dirs }))
}

/// Removes the trees under `dir` other than `key`'s (made for an older
/// QEMU or loader cache), except the ones another live thread is still
/// building (`<key>.tmp.<tid>`): sandboxes are created in parallel (one
/// containerd shim each, or threads of one process), and removing a
/// builder's half-made tree under it failed its create.
fn remove_stale_trees(dir: &Path, key: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name != key && !crate::temp_name::maker_alive(&name) {
            let _ = crate::rmtree::remove_tree(&entry.path());
        }
    }
}

/// Copy every library to `<root>/<path in jail>` under a temporary name
/// (see `temp_name`), then rename into place.
fn build(root: &Path, libraries: &crate::libs::LibraryMap) -> Result<(), JailError> {
    let key = root.file_name().unwrap_or_default().to_string_lossy();
    let tmp = root.with_file_name(crate::temp_name::of(&key));
    let _ = crate::rmtree::remove_tree(&tmp);
    let made = libraries.iter().try_for_each(|(in_jail, host)| {
        let target = crate::spec::host_path(&tmp, in_jail);
        if let Some(parent) = target.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .map_err(|e| io_error("creating library directory", parent, e))?;
        }
        std::fs::copy(host, &target)
            .map(drop)
            .map_err(|e| io_error("copying library to", &target, e))
    });
    let made = made.and_then(|()| match std::fs::rename(&tmp, root) {
        Ok(()) => Ok(()),
        Err(e) => Err(io_error("renaming library tree to", root, e)),
    });
    // Another create built the same tree first: use that one. (Its clean
    // up of the binary's other trees may even have removed this one's
    // half-made copy under it: creates in parallel on a fresh chroot base.)
    let made = made.or_else(|e| if root.is_dir() { Ok(()) } else { Err(e) });
    let _ = crate::rmtree::remove_tree(&tmp);
    made
}

/// The directories holding files, in-jail (relative to `/`), without those
/// inside another: each is one bind.
fn directories_of(root: &Path) -> Result<Vec<PathBuf>, JailError> {
    let mut holding = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| io_error("reading", &dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error("reading", &dir, e))?;
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(entry.path());
            } else if let Ok(rel) = dir.strip_prefix(root) {
                holding.insert(Path::new("/").join(rel));
            }
        }
    }
    let outermost: Vec<PathBuf> = holding
        .iter()
        .filter(|d| !holding.iter().any(|o| o != *d && d.starts_with(o)))
        .cloned()
        .collect();
    Ok(outermost)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn stale_trees_go_but_not_one_a_live_process_is_building() {
        let dir = tempfile::tempdir().unwrap();
        let live = format!("key.tmp.{}", std::process::id());
        // No process has pid 4194305 (above the kernel's pid_max limit).
        for name in ["key", "old-key", "key.tmp.4194305", live.as_str()] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        remove_stale_trees(dir.path(), "key");
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, vec!["key".to_string(), live]);
    }

    #[test]
    fn a_tree_of_copies_at_the_loaders_paths_made_once() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("base");
        std::fs::create_dir(&base).unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o711)).unwrap();
        let tree = library_tree(&base, Path::new("/bin/sh"), "sh")
            .unwrap()
            .expect("/bin/sh is dynamic");
        for (in_jail, host) in shared_libraries(Path::new("/bin/sh")).unwrap() {
            let copy = crate::spec::host_path(&tree.root, &in_jail);
            assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&host).unwrap());
            assert!(
                tree.dirs.iter().any(|d| in_jail.starts_with(d)),
                "{in_jail:?} not under {:?}",
                tree.dirs
            );
        }
        let again = library_tree(&base, Path::new("/bin/sh"), "sh")
            .unwrap()
            .unwrap();
        assert_eq!(again, tree, "made once");
    }

    #[test]
    fn a_static_executable_has_none() {
        let tmp = tempfile::tempdir().unwrap();
        let busybox = Path::new("/bin/busybox");
        if !busybox.exists() {
            return;
        }
        assert_eq!(library_tree(tmp.path(), busybox, "busybox").unwrap(), None);
    }
}
