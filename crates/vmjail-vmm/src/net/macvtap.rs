//! A macvtap's character device, opened for the VMM.
//!
//! The host's `/dev/tap<ifindex>` cannot be trusted to be *our* macvtap:
//! ifindexes are per netns, so two sandboxes' macvtaps can share one, and
//! devtmpfs then has a single node for both. The device number is read
//! instead from sysfs as the macvtap's own netns shows it, and a private
//! node made for it — both in a mount namespace of a short-lived thread
//! that has joined the sandbox netns, so nothing shows on the host. The
//! descriptor is checked (TUNGETIFF) to be the macvtap named, then handed
//! to the VMM, which cannot open it from its jail.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};

use super::{netns, Error};

// <linux/if_tun.h>: TUNGETIFF = _IOR('T', 210, unsigned int).
nix::ioctl_read_bad!(
    tun_get_iff,
    nix::request_code_read!(b'T', 210, std::mem::size_of::<libc::c_uint>()),
    libc::ifreq
);

/// Where the private node is made, inside the thread's own mount namespace
/// (a tmpfs mounted over it there).
const PRIVATE_DIR: &str = "/tmp";

fn step<'a>(name: &'a str, what: &'static str) -> impl FnOnce(nix::Error) -> Error + 'a {
    move |source| Error::MacvtapDevice {
        name: name.to_owned(),
        step: what,
        source: source.into(),
    }
}

/// Open macvtap `name` (ifindex `ifindex`) of the netns at `netns`,
/// read-write.
pub fn open_macvtap(netns: &Path, name: &str, ifindex: u32) -> Result<OwnedFd, Error> {
    super::validate_tap_name(name)?;
    let owned = name.to_owned();
    netns::run_in(netns, move || open_here(&owned, ifindex))?
}

/// Runs on a thread inside the sandbox netns.
fn open_here(name: &str, ifindex: u32) -> Result<OwnedFd, Error> {
    // A mount namespace of this thread alone (CLONE_FS: threads share
    // their fs state otherwise, and unshare refuses).
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_FS)
        .map_err(step(name, "unsharing a mount namespace"))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(step(name, "making the mounts private"))?;
    // sysfs shows the network devices of the netns that mounts it.
    mount(
        Some("sysfs"),
        "/sys",
        Some("sysfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(step(name, "mounting the netns's sysfs"))?;
    let dev_file = PathBuf::from(format!("/sys/class/net/{name}/macvtap/tap{ifindex}/dev"));
    let text = std::fs::read_to_string(&dev_file).map_err(|source| Error::MacvtapDevice {
        name: name.to_owned(),
        step: "reading its device number",
        source,
    })?;
    let (major, minor) = text
        .trim()
        .split_once(':')
        .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
        .ok_or_else(|| Error::MacvtapMismatch {
            name: name.to_owned(),
            path: dev_file.clone(),
            found: text.trim().to_owned(),
        })?;
    mount(
        Some("tmpfs"),
        PRIVATE_DIR,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("mode=0700,size=16k"),
    )
    .map_err(step(name, "mounting a private tmpfs"))?;
    let node = Path::new(PRIVATE_DIR).join("macvtap");
    mknod(
        &node,
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o600),
        makedev(major, minor),
    )
    .map_err(step(name, "making its device node"))?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&node)
        .map_err(|source| Error::MacvtapDevice {
            name: name.to_owned(),
            step: "opening its device",
            source,
        })?;
    check_name(&file, name, &node)?;
    Ok(file.into())
}

/// The descriptor is the macvtap named `name`.
fn check_name(file: &std::fs::File, name: &str, path: &Path) -> Result<(), Error> {
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    // SAFETY: `req` outlives the call; the kernel writes at most IFNAMSIZ
    // bytes of name into it.
    unsafe { tun_get_iff(file.as_raw_fd(), &mut req) }.map_err(|source| Error::MacvtapName {
        path: path.to_path_buf(),
        source,
    })?;
    // SAFETY: the kernel NUL-terminates ifr_name (IFNAMSIZ bytes).
    let found = unsafe { CStr::from_ptr(req.ifr_name.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    if found != name {
        return Err(Error::MacvtapMismatch {
            name: name.to_owned(),
            path: path.to_path_buf(),
            found,
        });
    }
    Ok(())
}
