//! Removing a jail's directory tree, which its VMM shaped: with a constant
//! number of descriptors (a tree thousands of levels deep must not make
//! teardown fail with EMFILE, as `remove_dir_all` did, which holds one per
//! level), never following a symlink, never leaving the jail's filesystem.

use std::ffi::{CStr, OsStr, OsString};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::dir::{Dir, Type};
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstat, Mode};
use nix::unistd::{unlinkat, UnlinkatFlags};

use crate::error::JailError;
use crate::fsat;

/// Remove `path` and everything below it. A missing `path` is fine.
pub fn remove_tree(path: &Path) -> Result<(), JailError> {
    let top = match nix::fcntl::open(path, dir_flags(), Mode::empty()) {
        Ok(fd) => fsat::own(fd),
        Err(nix::Error::ENOENT) => return Ok(()),
        Err(e) => return Err(JailError::fs("opening", path, e)),
    };
    let device = fstat(top.as_raw_fd())
        .map_err(|e| JailError::fs("stat", path, e))?
        .st_dev;
    // The names from `path` down to the current directory: memory, not fds.
    let mut names: Vec<OsString> = Vec::new();
    let mut dir = top;
    loop {
        let shown = |names: &[OsString]| names.iter().fold(path.to_path_buf(), |p, n| p.join(n));
        match first_entry(&dir).map_err(|e| JailError::fs("reading", shown(&names), e))? {
            Some((name, true)) => {
                let child = openat(
                    Some(dir.as_raw_fd()),
                    name.as_os_str(),
                    dir_flags(),
                    Mode::empty(),
                )
                .map(fsat::own)
                .map_err(|e| JailError::fs("opening", shown(&names).join(&name), e))?;
                let child_dev = fstat(child.as_raw_fd())
                    .map_err(|e| JailError::fs("stat", shown(&names).join(&name), e))?
                    .st_dev;
                if child_dev != device {
                    return Err(JailError::fs(
                        "refusing to cross into",
                        shown(&names).join(&name),
                        nix::Error::EXDEV,
                    ));
                }
                names.push(name);
                dir = child;
            }
            Some((name, false)) => {
                unlinkat(
                    Some(dir.as_raw_fd()),
                    name.as_os_str(),
                    UnlinkatFlags::NoRemoveDir,
                )
                .map_err(|e| JailError::fs("removing", shown(&names).join(&name), e))?;
            }
            None => {
                let Some(name) = names.pop() else { break };
                // Nothing below `path` can move meanwhile (its VMM is gone):
                // `..` is the directory we came from.
                let parent = openat(Some(dir.as_raw_fd()), "..", dir_flags(), Mode::empty())
                    .map(fsat::own)
                    .map_err(|e| JailError::fs("opening the parent of", shown(&names), e))?;
                unlinkat(
                    Some(parent.as_raw_fd()),
                    name.as_os_str(),
                    UnlinkatFlags::RemoveDir,
                )
                .map_err(|e| JailError::fs("removing directory", shown(&names).join(&name), e))?;
                dir = parent;
            }
        }
    }
    drop(dir);
    match std::fs::remove_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(JailError::fs(
            "removing directory",
            path,
            fsat::errno_of(&e),
        )),
    }
}

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// The first entry of `dir` other than `.` and `..`, and whether it is a
/// directory (a real one: a symlink to a directory is an entry to unlink).
fn first_entry(dir: &OwnedFd) -> nix::Result<Option<(OsString, bool)>> {
    // A fresh stream each time (from a dup, so `dir` stays ours): entries
    // are removed as we go, so the first one left is all we need.
    let mut stream = Dir::from_fd(nix::unistd::dup(dir.as_raw_fd())?)?;
    for entry in stream.iter() {
        let entry = entry?;
        let name: &CStr = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        let is_dir = match entry.file_type() {
            Some(Type::Directory) => true,
            Some(_) => false,
            None => {
                let st = nix::sys::stat::fstatat(
                    Some(dir.as_raw_fd()),
                    name,
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                )?;
                st.st_mode & libc::S_IFMT == libc::S_IFDIR
            }
        };
        return Ok(Some((
            OsStr::from_bytes(name.to_bytes()).to_owned(),
            is_dir,
        )));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Review finding 10: 3000 levels, with the descriptor limit far below.
    #[test]
    fn a_very_deep_tree_goes_with_a_few_descriptors() {
        let tmp = tempfile::tempdir().unwrap();
        let top = tmp.path().join("jail");
        std::fs::create_dir(&top).unwrap();
        let mut dir = nix::fcntl::open(&top, dir_flags(), Mode::empty())
            .map(fsat::own)
            .unwrap();
        for level in 0..3000 {
            nix::sys::stat::mkdirat(Some(dir.as_raw_fd()), "d", Mode::from_bits_truncate(0o700))
                .unwrap();
            if level % 100 == 0 {
                let file = openat(
                    Some(dir.as_raw_fd()),
                    "f",
                    OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .unwrap();
                nix::unistd::close(file).unwrap();
                std::os::unix::fs::symlink(
                    "/etc",
                    format!("/proc/self/fd/{}/link", dir.as_raw_fd()),
                )
                .unwrap();
            }
            dir = openat(Some(dir.as_raw_fd()), "d", dir_flags(), Mode::empty())
                .map(fsat::own)
                .unwrap();
        }
        drop(dir);
        // In a child with a low descriptor limit (the test harness shares
        // this process with other tests).
        // SAFETY: the child makes syscalls and small allocations, then exits.
        let status = unsafe { nix::unistd::fork() }.unwrap();
        match status {
            nix::unistd::ForkResult::Child => {
                let ok = nix::sys::resource::setrlimit(
                    nix::sys::resource::Resource::RLIMIT_NOFILE,
                    64,
                    64,
                )
                .is_ok()
                    && remove_tree(&top).is_ok();
                // SAFETY: leaving the forked child at once.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
        assert!(!top.exists());
        // The symlinks to /etc were removed, not followed.
        assert!(Path::new("/etc/hostname").exists());
    }

    #[test]
    fn a_missing_tree_is_fine() {
        remove_tree(Path::new("/nonexistent/jail/dir")).unwrap();
    }
}
