//! The container's filesystem, inside its new mount namespace: the rootfs
//! bound onto itself, the spec's mounts, the standard device nodes, masked
//! and read-only paths, then the rootfs moved onto `/` and chrooted into.
//! The guest's root is an initramfs, where pivot_root fails, so this is
//! runc's `--no-pivot` way (move-mount + chroot).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::AtFlags;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, fstatat, SFlag};
use nix::unistd::{chdir, chroot, symlinkat};

use super::binds;
use super::in_root::{self, Make};
use super::spec::{MountPlan, Plan};

/// Host device nodes bound into a container's `/dev` tmpfs.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

fn step<T>(what: impl FnOnce() -> String, r: nix::Result<T>) -> Result<T, String> {
    r.map_err(|e| format!("{}: {e}", what()))
}

pub fn enter(plan: &Plan) -> Result<(), String> {
    // Nothing done here may reach the agent's namespace.
    step(
        || "making / private".into(),
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        ),
    )?;
    let root = &plan.rootfs;
    step(
        || format!("binding the rootfs {}", root.display()),
        mount(
            Some(root),
            root,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        ),
    )?;
    // Every path below is resolved inside the rootfs (see `in_root`).
    let root_fd = in_root::open_root(root)?;
    let bundle_fd = in_root::open_root(&plan.bundle)?;
    for m in &plan.mounts {
        match m.bind {
            Some(index) => binds::mount_bind(&root_fd, &bundle_fd, index, m)?,
            None => mount_one(&root_fd, m)?,
        }
    }
    if plan
        .mounts
        .iter()
        .any(|m| m.destination == Path::new("dev"))
    {
        populate_dev(&root_fd)?;
    }
    for path in &plan.masked_paths {
        if let Some(target) = in_root::target(&root_fd, path, Make::Nothing)? {
            mask(&target, path)?;
        }
    }
    for path in &plan.readonly_paths {
        bind_readonly(&root_fd, path)?;
    }
    if plan.readonly_root {
        step(
            || "remounting the rootfs read-only".into(),
            mount(
                None::<&str>,
                root,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                None::<&str>,
            ),
        )?;
    }
    step(|| format!("chdir {}", root.display()), chdir(root))?;
    step(
        || "moving the rootfs onto /".into(),
        mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>),
    )?;
    step(|| "chroot".into(), chroot("."))?;
    step(|| "chdir /".into(), chdir("/"))
}

fn mount_one(root: &OwnedFd, m: &MountPlan) -> Result<(), String> {
    let target = in_root::target(root, &m.destination, Make::Dir)?
        .ok_or_else(|| format!("{}: no mount point", m.destination.display()))?;
    let (flags, data) = parse_options(&m.options);
    let what = || format!("mounting {}", m.destination.display());
    let fstype = m
        .fstype
        .as_deref()
        .ok_or_else(|| format!("{}: no type", m.destination.display()))?;
    // The guest has only cgroup v2 (as runc on a unified host does).
    let fstype = if fstype == "cgroup" {
        "cgroup2"
    } else {
        fstype
    };
    let source = m.source.as_deref().unwrap_or(Path::new(fstype));
    let data = (!data.is_empty()).then(|| data.join(","));
    step(
        what,
        mount(
            Some(source),
            &target.proc_path(),
            Some(fstype),
            flags,
            data.as_deref(),
        ),
    )
}

/// Known mount options as flags; the rest go to the filesystem as data.
pub(super) fn parse_options(options: &[String]) -> (MsFlags, Vec<String>) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in options {
        match o.as_str() {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" | "defaults" => {}
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "relatime" => flags |= MsFlags::MS_RELATIME,
            "strictatime" => flags |= MsFlags::MS_STRICTATIME,
            "noatime" => flags |= MsFlags::MS_NOATIME,
            "private" | "rprivate" | "slave" | "rslave" | "shared" | "rshared" => {}
            // runc's and crun's extension (Podman's --read-only /run, /tmp):
            // copy the directory's content into the new tmpfs. Not done: the
            // tmpfs starts empty (what the image has there is hidden).
            "tmpcopyup" => {}
            other => data.push(other.to_string()),
        }
    }
    (flags, data)
}

/// The standard device nodes (bound from the guest's own) and links.
fn populate_dev(root: &OwnedFd) -> Result<(), String> {
    for name in DEVICES {
        let rel = Path::new("dev").join(name);
        let target = in_root::target(root, &rel, Make::File)?
            .ok_or_else(|| format!("no {}", rel.display()))?;
        let source = Path::new("/dev").join(name);
        step(
            || format!("binding {}", source.display()),
            mount(
                Some(&source),
                &target.proc_path(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            ),
        )?;
    }
    let dev = in_root::target(root, Path::new("dev"), Make::Nothing)?
        .ok_or_else(|| "no /dev".to_string())?;
    let dev = dev.fd().as_raw_fd();
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        if fstatat(Some(dev), link, AtFlags::AT_SYMLINK_NOFOLLOW).is_err() {
            symlinkat(to, Some(dev), link).map_err(|e| format!("linking /dev/{link}: {e}"))?;
        }
    }
    Ok(())
}

/// /dev/null over a file, an empty read-only tmpfs over a directory.
fn mask(target: &in_root::Target, path: &Path) -> Result<(), String> {
    let what = || format!("masking {}", path.display());
    let stat = step(what, fstat(target.fd().as_raw_fd()))?;
    let is_dir = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
    let (source, fstype, flags) = match is_dir {
        true => ("tmpfs", Some("tmpfs"), MsFlags::MS_RDONLY),
        false => ("/dev/null", None, MsFlags::MS_BIND),
    };
    step(
        what,
        mount(
            Some(source),
            &target.proc_path(),
            fstype,
            flags,
            None::<&str>,
        ),
    )
}

/// `path` beneath the rootfs bound onto itself and remounted read-only;
/// nothing when it does not exist.
fn bind_readonly(root: &OwnedFd, path: &Path) -> Result<(), String> {
    let what = || format!("making {} read-only", path.display());
    let Some(target) = in_root::target(root, path, Make::Nothing)? else {
        return Ok(());
    };
    step(
        what,
        mount(
            Some(&target.proc_path()),
            &target.proc_path(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        ),
    )?;
    // Resolved again: the held fd still names the mount underneath.
    let top = in_root::target(root, path, Make::Nothing)?
        .ok_or_else(|| format!("{} vanished", path.display()))?;
    step(
        what,
        mount(
            None::<&str>,
            &top.proc_path(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        ),
    )
}
