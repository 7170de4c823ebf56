//! Bind mounts made through `/proc/self/fd/N` handles, so neither the source
//! nor the target path can be swapped for a symlink between check and mount.

use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::JailError;
use crate::fsat::{self, proc_fd_path};

/// Bind `source` onto `target` (both open `O_PATH` handles).
pub fn bind(
    source: &OwnedFd,
    target: &OwnedFd,
    source_shown: &Path,
    target_shown: &Path,
) -> Result<(), JailError> {
    mount(
        Some(&proc_fd_path(source)),
        &proc_fd_path(target),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|source| JailError::Mount {
        source_path: source_shown.to_path_buf(),
        target: target_shown.to_path_buf(),
        source,
    })
}

/// Remount the bind mount at `target` (a handle opened *after* the bind, so
/// it resolves to the new mount) read-only, nosuid, nodev.
pub fn remount_read_only(target: &OwnedFd, target_shown: &Path) -> Result<(), JailError> {
    mount(
        None::<&str>,
        &proc_fd_path(target),
        None::<&str>,
        MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV,
        None::<&str>,
    )
    .map_err(|source| JailError::Mount {
        source_path: "(read-only remount)".into(),
        target: target_shown.to_path_buf(),
        source,
    })
}

/// Make the mount at `path` a shared peer: mounts placed under it later then
/// propagate into the jail's (slave) mount namespace.
pub fn make_shared(path: &Path) -> Result<(), JailError> {
    set_propagation(path, MsFlags::MS_SHARED, "(make shared)")
}

/// Take the mount at `path` out of any peer group it joined on creation (a
/// bind of a path on a shared mount is a peer of it): made shared after
/// this, it gets a peer group of its own, so nothing mounted in the jail
/// root propagates back to the host mount it was bound from.
pub fn make_private(path: &Path) -> Result<(), JailError> {
    set_propagation(path, MsFlags::MS_PRIVATE, "(make private)")
}

fn set_propagation(path: &Path, flag: MsFlags, step: &str) -> Result<(), JailError> {
    mount(None::<&str>, path, None::<&str>, flag, None::<&str>).map_err(|source| JailError::Mount {
        source_path: step.into(),
        target: path.to_path_buf(),
        source,
    })
}

/// Remount the read-write bind mount at `target` (a handle opened after the
/// bind) nosuid, nodev: a writable asset never carries a setuid file or a
/// device node into the jail.
pub fn remount_read_write(target: &OwnedFd, target_shown: &Path) -> Result<(), JailError> {
    mount(
        None::<&str>,
        &proc_fd_path(target),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        None::<&str>,
    )
    .map_err(|source| JailError::Mount {
        source_path: "(nosuid,nodev remount)".into(),
        target: target_shown.to_path_buf(),
        source,
    })
}

/// Mount a tmpfs of `size` bytes on the jail root `target` (an open handle
/// of the directory), mode 0700, owned by `owner`, `nosuid` and, when
/// `nodev`, `nodev`.
pub fn mount_root_tmpfs(
    target: &OwnedFd,
    target_shown: &Path,
    size: u64,
    owner: crate::fsat::Owner,
    nodev: bool,
) -> Result<(), JailError> {
    let mut flags = MsFlags::MS_NOSUID;
    if nodev {
        flags |= MsFlags::MS_NODEV;
    }
    let options = format!("size={size},mode=0700,uid={},gid={}", owner.uid, owner.gid);
    mount(
        Some("tmpfs"),
        &proc_fd_path(target),
        Some("tmpfs"),
        flags,
        Some(options.as_str()),
    )
    .map_err(|source| JailError::Mount {
        source_path: "tmpfs".into(),
        target: target_shown.to_path_buf(),
        source,
    })
}

/// Unmount the mount at host path `mount`, which must lie strictly below
/// `jail_dir`. The path is resolved component by component from an fd of
/// `jail_dir` with `O_NOFOLLOW`, and the unmount goes through
/// `/proc/self/fd/N` of the final handle: a directory the VMM swapped for a
/// symlink (`mv /drives /d2; ln -s /host /drives`) is never followed to a
/// host mount. A path that no longer resolves (missing, or a symlink on the
/// way) names nothing of ours: done (the mountinfo sweep finds moved mounts).
pub fn unmount_in(jail_dir: &Path, mount: &Path) -> Result<(), JailError> {
    let refuse = |reason: &'static str| JailError::UnsafeRecord {
        path: mount.to_path_buf(),
        reason,
    };
    let relative = mount
        .strip_prefix(jail_dir)
        .map_err(|_| refuse("a recorded mount not under the jail dir"))?;
    if relative.as_os_str().is_empty()
        || relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        || has_dot_segment(mount)
    {
        return Err(refuse(
            "a recorded mount must be a plain path below the jail dir",
        ));
    }
    let dir = match fsat::open_dir(jail_dir) {
        Ok(fd) => fd,
        Err(JailError::Fs {
            source: nix::Error::ENOENT,
            ..
        }) => return Ok(()),
        Err(e) => return Err(e),
    };
    let (parents, name) = fsat::split(relative);
    let dir = match fsat::walk_existing(&dir, jail_dir, &parents) {
        Ok(Some((dir, _))) => dir,
        Ok(None) | Err(JailError::UnexpectedFileType { .. }) => return Ok(()),
        Err(e) => return Err(e),
    };
    let target = match fsat::open_path_nofollow(&dir, name, mount) {
        Ok(fd) => fd,
        Err(JailError::Fs {
            source: nix::Error::ENOENT,
            ..
        })
        | Err(JailError::UnexpectedFileType { .. }) => return Ok(()),
        Err(e) => return Err(e),
    };
    // MNT_DETACH: our own O_PATH handle keeps the mount busy. No
    // UMOUNT_NOFOLLOW: the magic link must be followed to the held inode.
    match umount2(&proc_fd_path(&target), MntFlags::MNT_DETACH) {
        // EINVAL: the handle is not the root of a mount (already unmounted).
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
        Err(source) => Err(JailError::fs("unmounting", mount, source)),
    }
}

fn has_dot_segment(path: &Path) -> bool {
    path.as_os_str()
        .as_bytes()
        .split(|&b| b == b'/')
        .any(|seg| seg == b"." || seg == b"..")
}

/// Every mount point at or below `dir` in this mount namespace, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut found: Vec<std::path::PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mountinfo)
        .map(std::path::PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            if let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn unescapes_mountinfo_octal() {
        assert_eq!(super::unescape_mountinfo(r"/a\040b"), "/a b");
        assert_eq!(super::unescape_mountinfo("/plain"), "/plain");
    }
}
