//! Bundles shared by the host over virtio-fs (QEMU's `shared_fs =
//! "virtio-fs"`): one share per sandbox, tag [`TAG`], holding a directory
//! per container (`<n>/config.json`, `<n>/rootfs`, `<n>/binds/`). The
//! agent mounts it once, on first use, and never unmounts it: later
//! containers of the sandbox are in it too.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::mount::{mount, MsFlags};

/// The virtio-fs tag the host gives the share.
pub const TAG: &str = "vmjail";
/// Where the agent mounts the share.
pub const SHARE_DIR: &str = "/run/vmjail-share";

/// Whether the share is mounted (mounting twice would stack it).
static MOUNTED: Mutex<bool> = Mutex::new(false);

/// A container's directory name in the share: 1 to 3 decimal digits.
pub fn valid_name(name: &str) -> bool {
    (1..=3).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_digit())
}

/// The bundle directory `name` of the share, mounting the share first if
/// it is not yet (virtiofs, `nosuid,nodev`: the host's files are served,
/// never its devices or setuid bits).
pub fn bundle(name: &str) -> Result<PathBuf, String> {
    if !valid_name(name) {
        return Err(format!(
            "share directory {:?}: expected 1 to 3 decimal digits",
            name.chars().take(40).collect::<String>()
        ));
    }
    let mut mounted = MOUNTED.lock().unwrap_or_else(|p| p.into_inner());
    if !*mounted {
        // virtiofs may still be loading (see guest_modules.rs).
        crate::guest_modules::wait_for_background(crate::guest_modules::BACKGROUND_TIMEOUT);
        std::fs::create_dir_all(SHARE_DIR).map_err(|e| format!("creating {SHARE_DIR}: {e}"))?;
        mount(
            Some(TAG),
            SHARE_DIR,
            Some("virtiofs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            None::<&str>,
        )
        .map_err(|e| format!("mounting the virtio-fs share {TAG:?} at {SHARE_DIR}: {e}"))?;
        *mounted = true;
    }
    Ok(Path::new(SHARE_DIR).join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_names_are_plain_numbers() {
        assert!(valid_name("0") && valid_name("127"));
        for bad in ["", "1234", "../x", "a", "1/2", "."] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
