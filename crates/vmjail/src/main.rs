//! `vmjail`: the command line. Parsing, output and exit codes only; the work
//! happens in the library crates.

mod cli;
mod cmd;
mod log;
mod out;
mod probe;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // The built-in jailer sits on every sandbox's start-up path: skip the
    // full CLI parse when vmjail is exec'd as `vmjail jailer ...`.
    let mut argv = std::env::args_os();
    if argv.nth(1).is_some_and(|arg| arg == "jailer") {
        return cmd::jailer::exit_code(argv.collect());
    }
    let cli = cli::Cli::parse();
    if cli.version {
        // runc's shape: `docker info` and Podman read the first line.
        crate::out::outln!(
            "vmjail version {}\nspec: 1.0.2\nruntime: microVM per container (runc-compatible CLI)",
            env!("CARGO_PKG_VERSION")
        );
        return ExitCode::SUCCESS;
    }
    log::init(cli.debug, cli.log.as_deref(), cli.log_format);
    match cmd::dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            crate::out::errln!("vmjail: error: {err:#}");
            if log::to_file() {
                tracing::error!("{err:#}");
            }
            ExitCode::FAILURE
        }
    }
}
