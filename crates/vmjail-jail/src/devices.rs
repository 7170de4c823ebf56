//! Which device nodes a jail may get: the allowlist. `entry/` creates
//! those asked for and present on the host, with the host's major:minor,
//! mode 0600, owned by the jail uid:gid.

use std::path::Path;

use crate::error::JailError;

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
