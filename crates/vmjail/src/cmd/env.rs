//! `vmjail env` (being built).

use std::path::Path;
use std::process::ExitCode;

use crate::cli::JsonArgs;

pub fn run(_config: Option<&Path>, _args: &JsonArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("env: not built yet")
}

pub fn show_default_config_paths() -> anyhow::Result<ExitCode> {
    anyhow::bail!("--show-default-config-paths: not built yet")
}
