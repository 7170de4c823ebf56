//! `vmjail`: the command line. Parsing, output and exit codes only; the work
//! happens in the library crates.

mod cli;
mod cmd;
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
    match cmd::dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("vmjail: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
