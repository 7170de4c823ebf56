//! Tap devices inside a sandbox's network namespace.
//!
//! A VMM that runs unprivileged in a jail cannot create a tap itself; the
//! backend creates a *persistent* tap owned by the jail's uid/gid inside the
//! sandbox netns before the VMM opens it, and removes it on stop.

mod netns;
mod tap;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use tap::validate_tap_name;

/// Every step of tap handling that can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid tap name {name:?}: expected 1 to 15 bytes of [A-Za-z0-9_.-]")]
    InvalidTapName { name: String },
    #[error("opening network namespace {path}: {source}")]
    OpenNetns {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("joining network namespace {path} (setns): {source}")]
    JoinNetns { path: PathBuf, source: nix::Error },
    #[error("the helper thread working in network namespace {path} could not run")]
    NetnsThread { path: PathBuf },
    #[error("opening /dev/net/tun: {source}")]
    OpenTun { source: std::io::Error },
    #[error("creating tap {name} (TUNSETIFF): {source}")]
    SetIff { name: String, source: nix::Error },
    #[error("making tap {name} persistent={persist} (TUNSETPERSIST): {source}")]
    SetPersist {
        name: String,
        persist: bool,
        source: nix::Error,
    },
    #[error("handing tap {name} to uid {uid} / gid {gid} (TUNSETOWNER/TUNSETGROUP): {source}")]
    SetOwner {
        name: String,
        uid: u32,
        gid: u32,
        source: nix::Error,
    },
    #[error("bringing tap {name} up (SIOCSIFFLAGS): {source}")]
    LinkUp { name: String, source: nix::Error },
    #[error("tap {name} is still attached to a process after {waited:?} (EBUSY): is its VMM still running?")]
    TapBusy { name: String, waited: Duration },
}

/// How long [`remove_tap`] waits for a tap still attached to be released.
/// A second line only, and short on purpose: once a VMM's whole thread
/// group is gone its tap is already released (the fd table is dropped
/// before the last thread is), so a longer wait would only hide a caller
/// that removes taps before the VMM is gone.
pub const TAP_RELEASE_TIMEOUT: Duration = Duration::from_millis(200);

/// Create persistent tap `name` in the netns at `netns`, owned by
/// `uid`/`gid` (so the jailed VMM may open it) and up.
pub fn create_tap(netns: &Path, name: &str, uid: u32, gid: u32) -> Result<(), Error> {
    validate_tap_name(name)?;
    let owned = name.to_owned();
    netns::run_in(netns, move || tap::create(&owned, uid, gid))?
}

/// Remove tap `name` from the netns at `netns`. A netns that no longer exists
/// took its taps with it, so that counts as removed. Call it once the VMM
/// that used the tap is gone; a tap still attached is waited for up to
/// [`TAP_RELEASE_TIMEOUT`], then [`Error::TapBusy`].
pub fn remove_tap(netns: &Path, name: &str) -> Result<(), Error> {
    remove_tap_within(netns, name, TAP_RELEASE_TIMEOUT)
}

/// [`remove_tap`] waiting at most `wait` for an attached tap to be released.
pub fn remove_tap_within(netns: &Path, name: &str, wait: Duration) -> Result<(), Error> {
    validate_tap_name(name)?;
    if !netns.exists() {
        return Ok(());
    }
    let owned = name.to_owned();
    netns::run_in(netns, move || tap::remove(&owned, wait))?
}

/// Whether a network interface `name` exists in the netns at `netns`.
pub fn link_exists(netns: &Path, name: &str) -> Result<bool, Error> {
    validate_tap_name(name)?;
    let owned = name.to_owned();
    netns::run_in(netns, move || Ok(tap::exists(&owned)))?
}
