//! Helpers of root's confined without a jail of their own (the jailed VMM
//! drops its privileges in `entry/`, through `sys::drop_privileges`).

use crate::error::JailError;
use crate::sys;

/// Confine a small helper process of root's (vmjail's console pump) to the
/// one directory it writes: chroot into `dir`, then give up every
/// capability (bounding and ambient too) and gain none again
/// (no_new_privs). It stays uid 0 so that it may still write the root-owned
/// files there — as their owner, not by privilege.
pub fn confine_to_dir(dir: &std::path::Path) -> Result<(), JailError> {
    nix::unistd::chroot(dir).map_err(|e| JailError::fs("chroot", dir, e))?;
    nix::unistd::chdir("/").map_err(|e| JailError::sys("chdir / after chroot", e))?;
    sys::drop_bounding_set()
        .map_err(|e| JailError::sys("dropping the capability bounding set", e))?;
    sys::clear_ambient().map_err(|e| JailError::sys("clearing ambient capabilities", e))?;
    sys::clear_capabilities().map_err(|e| JailError::sys("capset (empty sets)", e))?;
    nix::sys::prctl::set_no_new_privs().map_err(|e| JailError::sys("prctl(PR_SET_NO_NEW_PRIVS)", e))
}

/// Confine a helper that must stay root with a few capabilities (virtiofsd
/// serving a container's files whatever their owners), between fork and
/// exec: its bounding set cut down to `keep` (what it may ever hold, its
/// own drops coming on top), no ambient capabilities, no_new_privs.
/// Async-signal-safe: prctl(2) only.
pub fn confine_root_helper(keep: &[u32]) -> Result<(), nix::errno::Errno> {
    sys::drop_bounding_set_except(keep)?;
    sys::clear_ambient()?;
    nix::sys::prctl::set_no_new_privs()
}
