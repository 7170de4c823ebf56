//! Handing a host asset (a read-write drive) to the jail uid and giving it
//! back: the original owner is recorded before the change, the change goes
//! through the held descriptor (never a re-opened path), and the restore
//! only touches the same inode still owned by the jail.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{fchownat, Gid, Uid};

use crate::error::JailError;
use crate::fsat;
use crate::spec::ChownedAsset;

/// What to record before giving `fd` (an open handle of `path`) to uid:gid.
pub fn plan(
    fd: &OwnedFd,
    path: &Path,
    placed_at: &Path,
    uid: u32,
    gid: u32,
) -> Result<ChownedAsset, JailError> {
    let st = fsat::stat_fd(fd, path)?;
    Ok(ChownedAsset {
        path: path.to_path_buf(),
        placed_at: placed_at.to_path_buf(),
        dev: st.st_dev,
        ino: st.st_ino,
        uid: st.st_uid,
        gid: st.st_gid,
        jail_uid: uid,
        jail_gid: gid,
    })
}

/// `fchownat(fd, "", AT_EMPTY_PATH)`: works on an `O_PATH` handle too.
pub fn chown_fd(fd: &OwnedFd, path: &Path, uid: u32, gid: u32) -> Result<(), JailError> {
    fchownat(
        Some(fd.as_raw_fd()),
        "",
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        AtFlags::AT_EMPTY_PATH,
    )
    .map_err(|e| JailError::fs("chown", path, e))
}

/// Give `asset` its recorded owner back, if the path still names the same
/// inode and the jail still owns it. Gone = nothing to do.
pub fn restore(asset: &ChownedAsset) -> Result<(), JailError> {
    let fd = match nix::fcntl::open(
        &asset.path,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fsat::own(fd),
        Err(nix::Error::ENOENT) | Err(nix::Error::ELOOP) => return Ok(()),
        Err(e) => {
            return Err(JailError::fs(
                "opening asset to restore its owner",
                &asset.path,
                e,
            ))
        }
    };
    let st = fsat::stat_fd(&fd, &asset.path)?;
    let same = st.st_dev == asset.dev && st.st_ino == asset.ino;
    let still_jails = st.st_uid == asset.jail_uid && st.st_gid == asset.jail_gid;
    if same && still_jails {
        chown_fd(&fd, &asset.path, asset.uid, asset.gid)?;
    }
    Ok(())
}
