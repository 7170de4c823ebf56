//! `vmjail jailer`: the built-in jailer (being built).

use std::ffi::OsString;
use std::process::ExitCode;

pub fn run(_args: Vec<OsString>) -> anyhow::Result<ExitCode> {
    anyhow::bail!("jailer: not built yet")
}
