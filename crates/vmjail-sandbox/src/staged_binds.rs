//! Bind mounts that exist only for one tool: `mke2fs -d` reads a bundle's
//! rootfs and bind sources through binds onto empty places in its staging
//! tree, made in the tool's own mount namespace between fork and exec.
//! Nothing is copied (a `cp -a` of a rootfs cost a syscall per file, half a
//! second for busybox's 270 symlinks on the disk-backed state dir of a
//! build host) and nothing stays mounted: the namespace ends with the tool.
//!
//! Each source is cloned as a detached mount tree (`open_tree`, its last
//! component not followed) before the fork, checked, and moved into place
//! in the child (`move_mount`): a source swapped for a symlink after the
//! bundle was checked is refused, never followed, and a detached tree is
//! never attached to the host's namespace (closing it drops it).

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use nix::libc;

/// A source cloned, and the empty place in the staging tree it goes on.
pub struct Bind {
    /// The detached tree, inherited by the child (`O_CLOEXEC` closes it
    /// only at its exec).
    tree: OwnedFd,
    onto: CString,
}

impl Bind {
    /// Clones `source` (a directory when `is_dir`, else a regular file) and
    /// makes the empty `target` (a directory or file of the same kind).
    pub fn new(source: &Path, is_dir: bool, target: &Path) -> Result<Bind, String> {
        let path = CString::new(source.as_os_str().as_bytes())
            .map_err(|_| format!("{} has a NUL byte", source.display()))?;
        // SAFETY: a NUL-terminated path; the returned fd is owned below.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_open_tree,
                libc::AT_FDCWD,
                path.as_ptr(),
                libc::OPEN_TREE_CLONE
                    | libc::OPEN_TREE_CLOEXEC
                    | libc::AT_RECURSIVE as libc::c_uint
                    | libc::AT_SYMLINK_NOFOLLOW as libc::c_uint,
            )
        };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            return Err(format!("cloning {} as a mount: {e}", source.display()));
        }
        // SAFETY: open_tree returned a new fd nothing else owns.
        let tree = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd as i32) });
        let meta = tree
            .metadata()
            .map_err(|e| format!("{}: {e}", source.display()))?;
        if meta.is_dir() != is_dir || !(meta.is_dir() || meta.is_file()) {
            return Err(format!(
                "{} is no longer a {}",
                source.display(),
                if is_dir { "directory" } else { "regular file" }
            ));
        }
        let made = match is_dir {
            true => std::fs::create_dir(target),
            false => std::fs::File::create_new(target).map(drop),
        };
        made.map_err(|e| format!("creating {}: {e}", target.display()))?;
        let onto = CString::new(target.as_os_str().as_bytes())
            .map_err(|_| format!("{} has a NUL byte", target.display()))?;
        Ok(Bind {
            tree: tree.into(),
            onto,
        })
    }
}

/// Makes `command` run in a mount namespace of its own (private: nothing
/// propagates back to the host's) with each of `binds` moved into place
/// (recursive clones, as `cp -a` would have crossed into submounts) before
/// it execs. `binds`
/// must live until the command is spawned: the child binds from their fds.
pub fn bind_before_exec(command: &mut Command, binds: &[Bind]) {
    // Everything the child touches is made here: after fork only raw
    // syscalls on these (the parent may be multi-threaded).
    let mounts: Vec<(i32, CString)> = binds
        .iter()
        .map(|b| (b.tree.as_raw_fd(), b.onto.clone()))
        .collect();
    // SAFETY: the closure only makes raw syscalls (unshare, mount,
    // move_mount) on memory allocated before the fork, and allocates
    // nothing.
    unsafe {
        command.pre_exec(move || {
            let check = |rc: libc::c_int| match rc {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            };
            check(libc::unshare(libc::CLONE_NEWNS))?;
            check(libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            for (tree, onto) in &mounts {
                let rc = libc::syscall(
                    libc::SYS_move_mount,
                    *tree,
                    c"".as_ptr(),
                    libc::AT_FDCWD,
                    onto.as_ptr(),
                    libc::MOVE_MOUNT_F_EMPTY_PATH,
                );
                check(rc as libc::c_int)?;
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host's mounts at or under `dir`: only these are the test's to
    /// judge (other tests running at the same time pin namespaces and
    /// mount jails elsewhere).
    fn mounts_under(dir: &Path) -> Vec<String> {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|line| {
                let point = line.split(' ').nth(4).unwrap_or("");
                Path::new(point).starts_with(dir)
            })
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_tool_reads_the_sources_through_binds_the_host_never_sees() {
        let dir = tempfile::tempdir().unwrap();
        let (tree, file) = (dir.path().join("tree"), dir.path().join("file"));
        std::fs::create_dir(&tree).unwrap();
        std::fs::write(tree.join("inside"), b"in the tree").unwrap();
        std::fs::write(&file, b"a file").unwrap();
        let staging = dir.path().join("staging");
        std::fs::create_dir(&staging).unwrap();
        let binds = vec![
            Bind::new(&tree, true, &staging.join("t")).unwrap(),
            Bind::new(&file, false, &staging.join("f")).unwrap(),
        ];
        let before = mounts_under(dir.path());
        let mut cat = Command::new("cat");
        cat.arg(staging.join("t/inside")).arg(staging.join("f"));
        bind_before_exec(&mut cat, &binds);
        let out = cat.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(out.stdout, b"in the treea file");
        assert_eq!(
            mounts_under(dir.path()),
            before,
            "nothing mounted on the host"
        );
        assert!(!staging.join("t/inside").exists(), "the places stay empty");
        assert_eq!(std::fs::read(staging.join("f")).unwrap(), b"");
    }

    #[test]
    fn a_source_that_is_a_symlink_or_of_the_other_kind_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir(&tree).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&tree, &link).unwrap();
        let place = |name: &str| dir.path().join(name);
        let err = Bind::new(&link, true, &place("a"))
            .err()
            .expect("a symlink");
        assert!(err.contains("no longer a directory"), "{err}");
        let err = Bind::new(&tree, false, &place("b"))
            .err()
            .expect("a file expected");
        assert!(err.contains("no longer a regular file"), "{err}");
        assert!(!place("a").exists() && !place("b").exists());
    }
}
