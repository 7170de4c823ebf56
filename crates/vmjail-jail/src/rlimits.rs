//! Resource limits of the jailed process (hard = soft, so the VMM cannot raise them).

use nix::sys::resource::{setrlimit, Resource, RLIM_INFINITY};

use crate::error::JailError;

/// `no-file` always; `fsize` when set, else unlimited.
pub fn install(fsize: Option<u64>, no_file: u64) -> Result<(), JailError> {
    let fsize = fsize.unwrap_or(RLIM_INFINITY);
    setrlimit(Resource::RLIMIT_FSIZE, fsize, fsize).map_err(|source| JailError::SetRlimit {
        resource: "fsize",
        source,
    })?;
    setrlimit(Resource::RLIMIT_NOFILE, no_file, no_file).map_err(|source| JailError::SetRlimit {
        resource: "no-file",
        source,
    })
}
