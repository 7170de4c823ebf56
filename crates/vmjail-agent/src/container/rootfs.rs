//! The container's filesystem, inside its new mount namespace: the rootfs
//! bound onto itself, the spec's mounts, the standard device nodes, masked
//! and read-only paths, then the rootfs moved onto `/` and chrooted into.
//! The guest's root is an initramfs, where pivot_root fails, so this is
//! runc's `--no-pivot` way (move-mount + chroot).

use std::fs;
use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::unistd::{chdir, chroot};

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
    for m in &plan.mounts {
        mount_one(root, m)?;
    }
    if plan
        .mounts
        .iter()
        .any(|m| m.destination == Path::new("dev"))
    {
        populate_dev(root)?;
    }
    for path in &plan.masked_paths {
        mask(&root.join(path))?;
    }
    for path in &plan.readonly_paths {
        let target = root.join(path);
        if target.exists() {
            bind_readonly(&target, &target)?;
        }
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

fn mount_one(root: &Path, m: &MountPlan) -> Result<(), String> {
    let target = root.join(&m.destination);
    let (mut flags, data) = parse_options(&m.options);
    let bind = flags.contains(MsFlags::MS_BIND) || m.fstype.as_deref() == Some("bind");
    let source_is_file = bind && m.source.as_ref().is_some_and(|s| s.is_file());
    make_target(&target, source_is_file)?;
    let what = || format!("mounting {}", m.destination.display());
    if bind {
        let source = m
            .source
            .as_deref()
            .ok_or_else(|| format!("{}: a bind mount needs a source", m.destination.display()))?;
        flags |= MsFlags::MS_BIND;
        step(
            what,
            mount(
                Some(source),
                &target,
                None::<&str>,
                flags & (MsFlags::MS_BIND | MsFlags::MS_REC),
                None::<&str>,
            ),
        )?;
        // Bind mounts take their other flags only on a remount.
        let rest = flags - MsFlags::MS_REC;
        if rest != MsFlags::MS_BIND {
            step(
                what,
                mount(
                    None::<&str>,
                    &target,
                    None::<&str>,
                    rest | MsFlags::MS_REMOUNT,
                    None::<&str>,
                ),
            )?;
        }
        return Ok(());
    }
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
        mount(Some(source), &target, Some(fstype), flags, data.as_deref()),
    )
}

/// Known mount options as flags; the rest go to the filesystem as data.
fn parse_options(options: &[String]) -> (MsFlags, Vec<String>) {
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
            "bind" => flags |= MsFlags::MS_BIND,
            "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
            "private" | "rprivate" | "slave" | "rslave" | "shared" | "rshared" => {}
            other => data.push(other.to_string()),
        }
    }
    (flags, data)
}

fn make_target(target: &Path, file: bool) -> Result<(), String> {
    let made = if file {
        target
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| {
                fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(target)
                    .map(drop)
            })
    } else {
        fs::create_dir_all(target)
    };
    made.map_err(|e| format!("creating mount point {}: {e}", target.display()))
}

/// The standard device nodes (bound from the guest's own) and links.
fn populate_dev(root: &Path) -> Result<(), String> {
    let dev = root.join("dev");
    for name in DEVICES {
        let target = dev.join(name);
        make_target(&target, true)?;
        let source = Path::new("/dev").join(name);
        step(
            || format!("binding {}", source.display()),
            mount(
                Some(&source),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            ),
        )?;
    }
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        let path = dev.join(link);
        if path.symlink_metadata().is_err() {
            std::os::unix::fs::symlink(to, &path)
                .map_err(|e| format!("linking {}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// /dev/null over a file, an empty read-only tmpfs over a directory.
fn mask(target: &Path) -> Result<(), String> {
    let what = || format!("masking {}", target.display());
    match fs::metadata(target) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => step(
            what,
            mount(
                Some("tmpfs"),
                target,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None::<&str>,
            ),
        ),
        Ok(_) => step(
            what,
            mount(
                Some("/dev/null"),
                target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            ),
        ),
    }
}

fn bind_readonly(source: &Path, target: &Path) -> Result<(), String> {
    let what = || format!("making {} read-only", target.display());
    step(
        what,
        mount(
            Some(source),
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        ),
    )?;
    step(
        what,
        mount(
            None::<&str>,
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        ),
    )
}
