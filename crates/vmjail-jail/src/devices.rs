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
        check_allowed(device)?;
        // The host's node itself, never what a symlink there points to.
        let Ok(meta) = std::fs::symlink_metadata(device) else {
            continue; // "where the host has it"
        };
        if !meta.file_type().is_char_device() {
            return Err(JailError::UnexpectedFileType {
                path: device.to_path_buf(),
                expected: "character device node",
            });
        }
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
        // With umask 077, mknod's 0600 is exact: no chmod by path afterwards.
        let umask = nix::sys::stat::umask(Mode::from_bits_truncate(0o077));
        let made = mknodat(
            Some(dir.as_raw_fd()),
            *name,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o600),
            meta.rdev(),
        );
        nix::sys::stat::umask(umask);
        match made {
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
    }
    Ok(())
}

/// Only the character devices a VMM needs: a jail never gets a disk, a
/// memory device or a terminal of the host.
pub fn check_allowed(device: &Path) -> Result<(), JailError> {
    let refuse = |reason| {
        Err(JailError::DeviceNotAllowed {
            path: device.to_path_buf(),
            reason,
            allowed: ALLOWED.join(", "),
        })
    };
    crate::validate::validate_path_in_jail(device)?;
    if !device.starts_with("/dev/") {
        return refuse("not below /dev");
    }
    if !ALLOWED.iter().any(|a| device == Path::new(a)) {
        return refuse("not on the allowlist");
    }
    Ok(())
}

/// The devices a jail may receive (`--device`), all character devices.
pub const ALLOWED: &[&str] = &[
    "/dev/kvm",
    "/dev/net/tun",
    "/dev/vhost-vsock",
    "/dev/vhost-net",
    "/dev/urandom",
    "/dev/userfaultfd",
];

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn only_allowlisted_character_devices() {
        for ok in ["/dev/kvm", "/dev/net/tun", "/dev/urandom"] {
            assert!(super::check_allowed(Path::new(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "/dev/sda",
            "/dev/mem",
            "/etc/passwd",
            "/dev/../dev/kvm",
            "dev/kvm",
        ] {
            assert!(super::check_allowed(Path::new(bad)).is_err(), "{bad}");
        }
    }
}
