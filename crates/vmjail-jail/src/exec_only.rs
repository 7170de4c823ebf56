//! The VMM's binary as the jail user cannot read it: root's, mode 0111.
//! Executing a file its user may not read makes the process non-dumpable
//! (the kernel's rule for exec-only binaries), so no other process of that
//! uid can ptrace the VMM or read its `/proc/<pid>/mem` and `maps` — which
//! `prctl(PR_SET_DUMPABLE, 0)` cannot give, since `execve` resets it.
//!
//! A read-only bind of the host's binary (readable by everyone) would leave
//! the VMM dumpable, and copying it into every jail costs its size per
//! sandbox; so one exec-only copy per binary is kept under the chroot base,
//! at `<base>/.exec-only/<name>/<dev>-<ino>-<size>-<mtime>/<name>` (the key
//! names the binary's identity: an upgraded binary gets a new copy and the
//! old one goes), and bound read-only into each jail.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{renameat2, OFlag, RenameFlags};
use nix::sys::stat::Mode;

use crate::error::JailError;
use crate::{fsat, temp_name};

/// The directory below the chroot base; exec names never start with `.`.
const CACHE_DIR: &str = ".exec-only";
/// What the jail user may do with the binary: execute, nothing else.
const EXEC_ONLY: u32 = 0o111;

/// An exec-only copy of `exec_file` (named `exec_name`) under `base`, made
/// if missing; returns it opened (`O_PATH`) and its path.
pub fn exec_only_copy(
    base: &Path,
    exec_file: &Path,
    exec_name: &str,
) -> Result<(OwnedFd, PathBuf), JailError> {
    let source = File::open(exec_file).map_err(|e| JailError::ExecFileAccess {
        path: exec_file.to_path_buf(),
        source: e,
    })?;
    let meta = source.metadata().map_err(|e| JailError::ExecFileAccess {
        path: exec_file.to_path_buf(),
        source: e,
    })?;
    let key = format!(
        "{:x}-{:x}-{:x}-{}.{}",
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec()
    );
    let base_fd = fsat::open_dir(base)?;
    let cache_path = base.join(CACHE_DIR);
    let cache = fsat::ensure_subdir(&base_fd, OsStr::new(CACHE_DIR), &cache_path, 0o700, None)?;
    fsat::check_root_only(&cache, &cache_path)?;
    let name_path = cache_path.join(exec_name);
    let by_name = fsat::ensure_subdir(&cache, OsStr::new(exec_name), &name_path, 0o700, None)?;
    let key_path = name_path.join(&key);
    let dir = fsat::ensure_subdir(&by_name, OsStr::new(&key), &key_path, 0o700, None)?;
    let copy_path = key_path.join(exec_name);
    if let Some(copy) = existing(&dir, exec_name, &copy_path, meta.size())? {
        return Ok((copy, copy_path));
    }
    make_copy(&dir, source, exec_name, &copy_path)?;
    remove_stale_copies(&name_path, &key);
    let copy = existing(&dir, exec_name, &copy_path, meta.size())?.ok_or_else(|| {
        JailError::fs("opening the exec-only copy", &copy_path, nix::Error::ENOENT)
    })?;
    Ok((copy, copy_path))
}

/// Removes the copies of earlier binaries of this name: jails running one
/// keep their bind mount of its inode. A copy another live thread is still
/// making (`<name>.tmp.<tid>` in its key's directory: a jail started with
/// the old binary while it was being replaced) is left to it.
fn remove_stale_copies(name_path: &Path, key: &str) {
    let Ok(entries) = std::fs::read_dir(name_path) else {
        return;
    };
    let being_made = |dir: &Path| {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.file_name().to_str().is_some_and(temp_name::maker_alive))
    };
    for entry in entries.flatten() {
        if entry.file_name() != OsStr::new(key) && !being_made(&entry.path()) {
            let _ = crate::rmtree::remove_tree(&entry.path());
        }
    }
}

/// The copy, when it is a whole one: a regular file of root's, exec-only,
/// of the source's size.
fn existing(
    dir: &OwnedFd,
    name: &str,
    shown: &Path,
    size: u64,
) -> Result<Option<OwnedFd>, JailError> {
    let fd = match fsat::open_path_nofollow(dir, OsStr::new(name), shown) {
        Ok(fd) => fd,
        Err(JailError::Fs {
            source: nix::Error::ENOENT,
            ..
        }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let st = fsat::stat_fd(&fd, shown)?;
    let whole = st.st_mode & libc::S_IFMT == libc::S_IFREG
        && st.st_uid == 0
        && st.st_mode & 0o7777 == EXEC_ONLY
        && st.st_size as u64 == size;
    Ok(whole.then_some(fd))
}

/// Copy into a temporary name (see `temp_name`) and rename it into place.
fn make_copy(dir: &OwnedFd, mut source: File, name: &str, shown: &Path) -> Result<(), JailError> {
    let tmp = temp_name::of(name);
    let fd = nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        tmp.as_str(),
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o700),
    )
    .map_err(|e| JailError::fs("creating the exec-only copy", shown, e))?;
    let mut to = File::from(fsat::own(fd));
    let placed = std::io::copy(&mut source, &mut to)
        .map_err(|e| JailError::Copy {
            source_path: shown.to_path_buf(),
            target: shown.to_path_buf(),
            source: e,
        })
        .and_then(|_| {
            nix::sys::stat::fchmod(to.as_raw_fd(), Mode::from_bits_truncate(EXEC_ONLY))
                .map_err(|e| JailError::fs("chmod", shown, e))
        })
        .and_then(|()| {
            // Closed before it is in place: a file open for writing cannot
            // be exec'd (ETXTBSY), and a jail may exec it at once.
            drop(to);
            // Never over another launcher's copy: once in place, a copy
            // stays the inode every jail entering later checks it against.
            match renameat2(
                Some(dir.as_raw_fd()),
                tmp.as_str(),
                Some(dir.as_raw_fd()),
                name,
                RenameFlags::RENAME_NOREPLACE,
            ) {
                Ok(()) => Ok(true),
                Err(nix::Error::EEXIST) => Ok(false),
                Err(e) => Err(JailError::fs("renaming the exec-only copy to", shown, e)),
            }
        });
    // Not placed (failed, or another launcher's came first): ours goes.
    if !matches!(placed, Ok(true)) {
        let _ = nix::unistd::unlinkat(
            Some(dir.as_raw_fd()),
            tmp.as_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
    }
    placed.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn one_exec_only_copy_per_binary_and_a_new_one_when_it_changes() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("base");
        std::fs::create_dir(&base).unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o711)).unwrap();
        let exec = tmp.path().join("vmm");
        std::fs::write(&exec, b"#!/bin/sh\nexit 0\n").unwrap();
        let (_, first) = exec_only_copy(&base, &exec, "vmm").unwrap();
        let meta = std::fs::metadata(&first).unwrap();
        assert_eq!(meta.mode() & 0o7777, EXEC_ONLY);
        assert_eq!(std::fs::read(&first).unwrap(), b"#!/bin/sh\nexit 0\n");
        let (_, again) = exec_only_copy(&base, &exec, "vmm").unwrap();
        assert_eq!(first, again, "one copy per binary");
        std::fs::write(&exec, b"#!/bin/sh\nexit 1\n").unwrap();
        let (_, upgraded) = exec_only_copy(&base, &exec, "vmm").unwrap();
        assert_ne!(first, upgraded);
        assert!(!first.exists(), "the old copy stays behind");
    }

    #[test]
    fn a_copy_a_live_process_is_still_making_is_not_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let live = format!("vmm.tmp.{}", std::process::id());
        for (key, file) in [
            ("old", "vmm"),
            ("making", live.as_str()),
            ("dead", "vmm.tmp.4194305"),
        ] {
            std::fs::create_dir(tmp.path().join(key)).unwrap();
            std::fs::write(tmp.path().join(key).join(file), b"").unwrap();
        }
        std::fs::create_dir(tmp.path().join("new")).unwrap();
        remove_stale_copies(tmp.path(), "new");
        let mut left: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["making", "new"]);
    }
}
