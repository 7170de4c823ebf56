//! Device nodes inside the jail: only those asked for and present on the
//! host, with the host's major:minor, mode 0600, owned by the jail uid:gid.

use std::ffi::OsStr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path};

use nix::sys::stat::{mknodat, Mode, SFlag};
use nix::unistd::{fchownat, Gid, Uid};

use crate::error::JailError;
use crate::fsat::{self, Owner};

/// Create each host device of `devices` (absolute `/dev/...` paths) at the same
/// path under `root` (still a host path: called before `pivot_root`).
pub fn create(root: &Path, devices: &[&Path], owner: Owner) -> Result<(), JailError> {
    let root_fd = fsat::open_dir(root)?;
    for device in devices {
        let Ok(meta) = std::fs::metadata(device) else {
            continue; // "where the host has it"
        };
        let kind = if meta.file_type().is_char_device() {
            SFlag::S_IFCHR
        } else if meta.file_type().is_block_device() {
            SFlag::S_IFBLK
        } else {
            return Err(JailError::UnexpectedFileType {
                path: device.to_path_buf(),
                expected: "device node",
            });
        };
        crate::validate::validate_path_in_jail(device)?;
        let names: Vec<&OsStr> = device
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n),
                _ => None,
            })
            .collect();
        let Some((name, parents)) = names.split_last() else {
            continue;
        };
        let (dir, dir_shown) = fsat::walk_create(&root_fd, root, parents, Some(owner))?;
        let shown = dir_shown.join(name);
        match mknodat(
            Some(dir.as_raw_fd()),
            *name,
            kind,
            Mode::from_bits_truncate(0o600),
            meta.rdev(),
        ) {
            Ok(()) => {}
            // Left by an earlier launch into this jail dir: replace nothing.
            Err(nix::Error::EEXIST) => continue,
            Err(e) => return Err(JailError::fs("mknod", &shown, e)),
        }
        fchownat(
            Some(dir.as_raw_fd()),
            *name,
            Some(Uid::from_raw(owner.uid)),
            Some(Gid::from_raw(owner.gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| JailError::fs("chown", &shown, e))?;
        // mknod's mode is masked by the umask; set it exactly.
        nix::sys::stat::fchmodat(
            Some(dir.as_raw_fd()),
            *name,
            Mode::from_bits_truncate(0o600),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .map_err(|e| JailError::fs("chmod", &shown, e))?;
    }
    Ok(())
}
