//! A container's bind mounts. The host copied (or shares) each source
//! into the bundle's reserved `binds/<n>` and rewrote the spec to name it
//! (see `vmjail_agent_protocol::bundle_layout`); the agent binds from
//! there and nowhere else: a source naming any other guest path (another
//! container's disk, the agent's own files) is refused. Targets are
//! resolved inside the rootfs like every other mount point.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, SFlag};
use vmjail_agent_protocol::bundle_layout::{bind_source, parse_bind_source};

use super::in_root::{self, Make};
use super::spec::MountPlan;

/// Options a bind mount may carry besides the flags `rootfs` knows:
/// the bind itself, and SELinux relabelling (Podman's `z`/`Z`: the host's
/// business, meaningless in the guest).
const BIND_ONLY: &[&str] = &["bind", "rbind", "z", "Z"];

/// Checks a bind mount of the spec: its source is `binds/<n>` and every
/// option is one the agent honours; returns `n`.
pub fn check(
    destination: &Path,
    source: Option<&Path>,
    options: &[String],
) -> Result<usize, String> {
    let fail = |reason: String| format!("mount {}: {reason}", destination.display());
    let index = source
        .and_then(Path::to_str)
        .and_then(parse_bind_source)
        .ok_or_else(|| {
            fail(format!(
                "bind source {:?}: the agent binds only from the bundle's binds/ \
                 (made by the host)",
                source.map(|s| s
                    .display()
                    .to_string()
                    .chars()
                    .take(200)
                    .collect::<String>())
            ))
        })?;
    let (_, data) = super::rootfs::parse_options(options);
    if let Some(unknown) = data.iter().find(|o| !BIND_ONLY.contains(&o.as_str())) {
        return Err(fail(format!(
            "option {:?} is not supported on a bind mount",
            unknown.chars().take(80).collect::<String>()
        )));
    }
    Ok(index)
}

/// The bundle's `binds/<index>`, opened `O_PATH` without following any
/// symlink or leaving the bundle.
fn open_source(bundle: &OwnedFd, index: usize) -> Result<OwnedFd, String> {
    let rel = PathBuf::from(bind_source(index));
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    let fd = openat2(bundle.as_raw_fd(), &rel, how)
        .map_err(|e| format!("opening the bundle's {}: {e}", rel.display()))?;
    // SAFETY: freshly opened, owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Binds `binds/<index>` of `bundle` onto the mount's destination inside
/// `root` (a file onto a file, a directory onto a directory, made when
/// missing), then applies its flags.
pub fn mount_bind(
    root: &OwnedFd,
    bundle: &OwnedFd,
    index: usize,
    m: &MountPlan,
) -> Result<(), String> {
    let what = |step: &str| {
        format!(
            "mount {}: {step}",
            Path::new("/").join(&m.destination).display()
        )
    };
    let source = open_source(bundle, index).map_err(|e| what(&e))?;
    let stat = fstat(source.as_raw_fd()).map_err(|e| what(&format!("stat of the source: {e}")))?;
    let is_dir = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
    let make = if is_dir { Make::Dir } else { Make::File };
    let target =
        in_root::target(root, &m.destination, make)?.ok_or_else(|| what("no mount point"))?;
    let recursive = match m.options.iter().any(|o| o == "rbind") {
        true => MsFlags::MS_REC,
        false => MsFlags::empty(),
    };
    let source_path = PathBuf::from(format!("/proc/self/fd/{}", source.as_raw_fd()));
    mount(
        Some(&source_path),
        &target.proc_path(),
        None::<&str>,
        MsFlags::MS_BIND | recursive,
        None::<&str>,
    )
    .map_err(|e| what(&format!("binding: {e}")))?;
    // A bind takes its flags only from a remount. nosuid and nodev are
    // kept whatever the spec says, as the bundle's disk has them.
    let (flags, _) = super::rootfs::parse_options(&m.options);
    let top = in_root::target(root, &m.destination, Make::Nothing)?
        .ok_or_else(|| what("vanished after binding"))?;
    mount(
        None::<&str>,
        &top.proc_path(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | flags,
        None::<&str>,
    )
    .map_err(|e| what(&format!("applying its options: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_options_and_reserved_sources_pass() {
        let dest = Path::new("/data");
        let opts = |o: &[&str]| o.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            check(
                dest,
                Some(Path::new("binds/3")),
                &opts(&["rbind", "ro", "rprivate", "nosuid", "Z"])
            ),
            Ok(3)
        );
        let err = check(dest, Some(Path::new("binds/3")), &opts(&["bind", "idmap"])).unwrap_err();
        assert!(err.contains("option \"idmap\""), "{err}");
        let err = check(dest, None, &opts(&["bind"])).unwrap_err();
        assert!(err.starts_with("mount /data: bind source None"), "{err}");
        let err = check(dest, Some(Path::new("/etc")), &opts(&["bind"])).unwrap_err();
        assert!(err.contains("binds only from the bundle's binds/"), "{err}");
    }
}
