//! The jail's file-system view: a new mount namespace whose mounts are
//! slaves of the host's (host mounts propagate in, nothing leaks out), the
//! jail root bound on itself, `pivot_root` into it, the old root detached
//! and removed — no host path stays reachable.

use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::unistd::{chdir, pivot_root};

use crate::error::JailError;

/// Enter new mount, IPC and UTS namespaces with one `unshare` (the kernel
/// builds one set of namespaces, not one per call): no host SysV segment,
/// queue or semaphore is reachable, and a hostname change stays inside.
/// Then make every mount a recursive slave, and bind `root` onto itself (so
/// it is a mount point `pivot_root` accepts).
pub fn enter_namespaces(root: &Path) -> Result<(), JailError> {
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS)
        .map_err(|e| JailError::sys("unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS)", e))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| JailError::sys("making / a recursive slave", e))?;
    mount(
        Some(root),
        root,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| JailError::fs("bind-mounting the jail root on itself", root, e))
}

/// `pivot_root` into `root` and drop the old root.
pub fn pivot_into(root: &Path) -> Result<(), JailError> {
    chdir(root).map_err(|e| JailError::fs("chdir", root, e))?;
    // pivot_root(".", ".") stacks the old root on top of the new one; detaching
    // it then leaves only the jail — no `old_root` directory to create or remove.
    pivot_root(".", ".").map_err(|e| JailError::fs("pivot_root into", root, e))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| JailError::sys("detaching the old root", e))?;
    chdir("/").map_err(|e| JailError::sys("chdir / in the jail", e))
}
