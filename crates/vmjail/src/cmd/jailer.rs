//! `vmjail jailer`: the built-in jailer, CLI-compatible with Firecracker's
//! `jailer`. All the work (and all its error reporting) is in `vmjail-jail`;
//! on success this never returns (the process becomes the VMM).

use std::ffi::OsString;
use std::process::ExitCode;

pub fn run(args: Vec<OsString>) -> anyhow::Result<ExitCode> {
    Ok(exit_code(args))
}

/// Run the jailer; only returns when it failed before exec'ing the VMM.
pub fn exit_code(args: Vec<OsString>) -> ExitCode {
    let code = vmjail_jail::builtin_jailer_main(args);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
