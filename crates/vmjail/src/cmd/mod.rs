//! One module per subcommand; each returns the process exit code.

mod check;
mod env;
pub mod jailer;
pub mod lifecycle;
pub mod runc;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    if cli.show_default_config_paths {
        return env::show_default_config_paths();
    }
    match cli.command {
        Some(Command::Env(args)) => env::run(cli.config.as_deref(), &args),
        Some(Command::Check(args)) => check::run(cli.config.as_deref(), &args),
        Some(Command::Jailer { args }) => jailer::run(args),
        Some(Command::ConsolePump { dir }) => Ok(ExitCode::from(
            u8::try_from(vmjail_sandbox::console::pump_main(&dir)).unwrap_or(1),
        )),
        Some(Command::Features) => Ok(ExitCode::from(match runc::features() {
            Ok(code) => code,
            Err(e) => {
                crate::out::errln!("vmjail: error: {e}");
                lifecycle::exit::FAILURE
            }
        })),
        Some(command) => {
            let mut globals = runc::Globals {
                config: cli.config.clone(),
                root: cli.root.clone(),
                log: cli.log.clone(),
                log_format: cli.log_format,
                debug: cli.debug,
            };
            if let Some(id) = container_id(&command) {
                runc::pointer::fill_in(id, &mut globals);
            }
            lifecycle::run(&globals, command)
        }
        None => {
            use clap::CommandFactory;
            crate::cli::Cli::command().print_help()?;
            Ok(ExitCode::from(2))
        }
    }
}

/// The container id a runc command acts on.
fn container_id(command: &Command) -> Option<&str> {
    match command {
        Command::Start(a) | Command::State(a) | Command::Pause(a) | Command::Resume(a) => {
            Some(&a.id)
        }
        Command::Delete(a) => Some(&a.id),
        Command::Kill(a) => Some(&a.id),
        Command::Exec(a) => Some(&a.id),
        Command::Ps(a) => Some(&a.id),
        Command::Update(a) => Some(&a.id),
        _ => None,
    }
}
