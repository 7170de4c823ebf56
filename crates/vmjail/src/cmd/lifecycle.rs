//! Sandbox lifecycle commands (being built).

use std::path::Path;
use std::process::ExitCode;

use crate::cli::Command;

pub fn run(_config: Option<&Path>, command: Command) -> anyhow::Result<ExitCode> {
    anyhow::bail!("{command:?}: not built yet")
}
