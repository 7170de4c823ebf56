//! Bind mounts made through `/proc/self/fd/N` handles, so neither the source
//! nor the target path can be swapped for a symlink between check and mount.

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::JailError;
use crate::fsat::proc_fd_path;

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
    mount(
        None::<&str>,
        path,
        None::<&str>,
        MsFlags::MS_SHARED,
        None::<&str>,
    )
    .map_err(|source| JailError::Mount {
        source_path: "(make shared)".into(),
        target: path.to_path_buf(),
        source,
    })
}

/// Bind a trusted host directory onto itself (the jail root on the host).
pub fn bind_self(path: &Path) -> Result<(), JailError> {
    mount(
        Some(path),
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|source| JailError::Mount {
        source_path: path.to_path_buf(),
        target: path.to_path_buf(),
        source,
    })
}

/// Unmount `path`; a busy mount is detached instead. Not mounted = done.
pub fn unmount(path: &Path) -> Result<(), nix::Error> {
    match umount2(path, MntFlags::UMOUNT_NOFOLLOW) {
        Ok(()) => Ok(()),
        Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
        Err(nix::Error::EBUSY) => umount2(path, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW)
            .or_else(|e| {
                if e == nix::Error::EINVAL {
                    Ok(())
                } else {
                    Err(e)
                }
            }),
        Err(e) => Err(e),
    }
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
