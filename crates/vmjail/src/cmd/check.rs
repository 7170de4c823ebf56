//! `vmjail check` (being built).

use std::path::Path;
use std::process::ExitCode;

use crate::cli::JsonArgs;

pub fn run(_config: Option<&Path>, _args: &JsonArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("check: not built yet")
}
