//! What the agent sets up in its guest before it accepts the host: the
//! filesystems its calls need. Done here rather than by the guest's init
//! shell, where each step would be a fork and exec of busybox (~10 ms each
//! under TCG, on the path to the first container).

use std::path::Path;

use nix::mount::{mount, MsFlags};

use crate::container::cgroup;

/// Mounts a devpts instance of its own at /dev/pts (ptys for `exec -t`;
/// devtmpfs's /dev/ptmx opens the instance beside it) and the cgroup v2
/// hierarchy at /sys/fs/cgroup (containers' limits). Either already
/// mounted is an error: this runs once, in a guest.
pub fn mount_filesystems() -> Result<(), String> {
    let pts = Path::new("/dev/pts");
    std::fs::create_dir_all(pts).map_err(|e| format!("creating {}: {e}", pts.display()))?;
    mount(
        Some("devpts"),
        pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )
    .map_err(|e| format!("mounting devpts at {}: {e}", pts.display()))?;
    mount(
        Some("cgroup2"),
        cgroup::ROOT,
        Some("cgroup2"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|e| format!("mounting cgroup2 at {}: {e}", cgroup::ROOT))
}
