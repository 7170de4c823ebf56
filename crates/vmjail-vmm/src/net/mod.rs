//! Networking inside a sandbox's network namespace: taps, and the seed's
//! internetworking models connecting the namespace's endpoints (the veths
//! its caller set up) to the VM.
//!
//! A VMM that runs unprivileged in a jail cannot create a tap itself; a
//! *persistent* tap owned by the jail's uid/gid is created inside the
//! sandbox netns before the VMM opens it. [`connect`] does that for every
//! endpoint and wires it per model; [`disconnect`] undoes it from the
//! record. Everything goes through netlink (rtnetlink), but the tun ioctls.

mod connect;
pub mod facts;
pub mod guest;
mod macvtap;
mod netns;
pub mod record;
mod rtnl;
mod scan;
mod tap;
mod teardown;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use facts::{Endpoint, IpNet, Mac};
pub use macvtap::open_macvtap;
pub use record::{NetModel, NetworkRecord, NicDevice, NicRecord};
pub use scan::MAX_ENDPOINTS;
pub use tap::validate_tap_name;

/// Persists the network record; called before each object is created.
pub trait NetRecorder {
    fn record(&mut self, record: &NetworkRecord) -> std::io::Result<()>;
}

impl<F: FnMut(&NetworkRecord) -> std::io::Result<()>> NetRecorder for F {
    fn record(&mut self, record: &NetworkRecord) -> std::io::Result<()> {
        self(record)
    }
}

/// Connect every endpoint of the netns at `netns` that `record` does not
/// hold yet, per `record.model`; returns the indices of the NICs added to
/// `record.nics`. On failure the NIC being connected is undone (the ones
/// before it stay, recorded).
pub fn connect(
    netns: &Path,
    record: &mut NetworkRecord,
    recorder: &mut (dyn NetRecorder + Send),
) -> Result<Vec<usize>, Error> {
    netns::run_in(netns, || {
        let rtnl = rtnl::Rtnl::open()?;
        connect::connect_all(&rtnl, record, recorder)
    })?
}

/// Undo everything `record` holds in the netns at `netns` (idempotent); a
/// namespace that no longer exists took it all with it.
pub fn disconnect(
    netns: &Path,
    record: &mut NetworkRecord,
    recorder: &mut (dyn NetRecorder + Send),
) -> Result<(), Error> {
    if !netns.exists() {
        record.nics.clear();
        return recorder
            .record(record)
            .map_err(|source| Error::Record { source });
    }
    netns::run_in(netns, || {
        let rtnl = rtnl::Rtnl::open()?;
        teardown::undo_all(&rtnl, record, recorder)
    })?
}

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
    #[error("starting the netlink runtime: {source}")]
    NetlinkRuntime { source: std::io::Error },
    #[error("opening a netlink socket: {source}")]
    NetlinkSocket { source: std::io::Error },
    #[error("netlink: {step} {target}: {message}")]
    Netlink {
        step: &'static str,
        target: String,
        message: String,
    },
    #[error("interface {name} of the sandbox netns cannot be given to the guest: {reason}")]
    InvalidEndpoint { name: String, reason: String },
    #[error("{name} has {found} {what}; vmjail carries at most {max} into the guest")]
    TooMany {
        what: &'static str,
        name: String,
        found: usize,
        max: usize,
    },
    #[error("no free slot for vmjail's link names below {max} (vmj<N>tap, vmj<N>br, vmj<N>mvt)")]
    NoFreeSlot { max: u32 },
    #[error("link {name} vanished right after vmjail created it")]
    LinkVanished { name: String },
    #[error("{link} already has an {kind} qdisc; vmjail does not take over someone else's (remove it, or use internetworking_model = \"none\")")]
    QdiscTaken { link: String, kind: String },
    #[error("making a random MAC address (/dev/urandom): {source}")]
    RandomMac { source: std::io::Error },
    #[error("recording the network state: {source}")]
    Record { source: std::io::Error },
    #[error("macvtap {name}: {step}: {source}")]
    MacvtapDevice {
        name: String,
        step: &'static str,
        source: std::io::Error,
    },
    #[error("{path} is macvtap {found:?}, not {name}")]
    MacvtapMismatch {
        name: String,
        path: PathBuf,
        found: String,
    },
    #[error("reading the name of {path} (TUNGETIFF): {source}")]
    MacvtapName { path: PathBuf, source: nix::Error },
    #[error("the network facts for the guest take {len} bytes of kernel command line; at most {max} fit (fewer interfaces, addresses or routes)")]
    GuestParamsTooLong { len: usize, max: usize },
    #[error("{error}; undoing it also failed: {cleanup}")]
    Incomplete {
        error: Box<Error>,
        cleanup: Box<Error>,
    },
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
