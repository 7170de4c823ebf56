//! Paths beneath a container's rootfs, resolved as if the rootfs were `/`
//! (`openat2` with `RESOLVE_IN_ROOT`). The rootfs is the bundle author's: a
//! symlink in it (`etc -> /run/vmjail-bundles/<other>/rootfs/etc`) must not
//! make the agent create or mount anything outside it (runc's
//! CVE-2021-30465 class). Mounts go onto the resolved target's
//! `/proc/self/fd/N`, never onto a path walked again.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{mkdirat, Mode};

/// What to make when the path does not exist yet.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Make {
    Nothing,
    Dir,
    File,
}

/// A resolved path beneath the rootfs, held open (`O_PATH`).
pub struct Target {
    fd: OwnedFd,
}

impl Target {
    /// The path that names exactly this target, for `mount(2)`.
    pub fn proc_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }
}

/// The rootfs at `root`, opened to resolve paths beneath it.
pub fn open_root(root: &Path) -> Result<OwnedFd, String> {
    let fd = nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("opening {}: {e}", root.display()))?;
    // SAFETY: freshly opened, owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Symlinks followed while making a missing path (the kernel's own limit).
const MAX_LINKS: u32 = 40;

/// `rel` (relative, no `..`: see `spec::inside`) beneath `root`, made as
/// `make` says when missing; `None` when missing and `make` is `Nothing`.
/// A symlink on the way to a missing path is followed inside the rootfs,
/// and what it names is made there (as runc does).
pub fn target(root: &OwnedFd, rel: &Path, make: Make) -> Result<Option<Target>, String> {
    make_in(root, rel, make, MAX_LINKS)
}

fn make_in(root: &OwnedFd, rel: &Path, make: Make, links: u32) -> Result<Option<Target>, String> {
    if rel.as_os_str().is_empty() {
        return Err("a mount over the rootfs itself".into());
    }
    match resolve(root, rel) {
        Ok(fd) => return Ok(Some(Target { fd })),
        Err(Errno::ENOENT) if make != Make::Nothing => {}
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(format!("resolving {}: {e}", rel.display())),
    }
    let name = rel
        .file_name()
        .ok_or_else(|| format!("{}: no name", rel.display()))?;
    let parent_rel = rel.parent().unwrap_or(Path::new(""));
    let parent = match parent_rel.as_os_str().is_empty() {
        false => {
            make_in(root, parent_rel, Make::Dir, links)?
                .ok_or_else(|| format!("{}: no parent", rel.display()))?
                .fd
        }
        true => root
            .try_clone()
            .map_err(|e| format!("{}: {e}", rel.display()))?,
    };
    // A dangling symlink: make what it names, inside the rootfs.
    if let Ok(to) = readlinkat(Some(parent.as_raw_fd()), name) {
        if links == 0 {
            return Err(format!("{}: too many symlinks", rel.display()));
        }
        let to = Path::new(&to);
        let next: PathBuf = match to.is_absolute() {
            true => to.to_path_buf(),
            false => parent_rel.join(to),
        };
        let next = super::spec::inside(&next)?;
        return make_in(root, &next, make, links - 1);
    }
    let made = match make {
        Make::Dir => mkdirat(
            Some(parent.as_raw_fd()),
            name,
            Mode::from_bits_truncate(0o755),
        ),
        _ => openat(
            Some(parent.as_raw_fd()),
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        // SAFETY: freshly opened, closed at once.
        .map(|fd| drop(unsafe { OwnedFd::from_raw_fd(fd) })),
    };
    match made {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(format!("creating {}: {e}", rel.display())),
    }
    resolve(root, rel)
        .map(|fd| Some(Target { fd }))
        .map_err(|e| format!("resolving {} after creating it: {e}", rel.display()))
}

fn resolve(root: &OwnedFd, rel: &Path) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(root.as_raw_fd(), rel, how)?;
    // SAFETY: freshly opened, owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
