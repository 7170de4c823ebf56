//! `vmjail jailer`: the built-in jailer, CLI-compatible with Firecracker's
//! `jailer`. All the work (and all its error reporting) is in `vmjail-jail`;
//! on success this never returns (the process becomes the VMM).

use std::ffi::OsString;
use std::process::ExitCode;

pub fn run(args: Vec<OsString>) -> anyhow::Result<ExitCode> {
    let code = vmjail_jail::builtin_jailer_main(args);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
