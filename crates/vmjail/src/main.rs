//! `vmjail`: the command line. Parsing, output and exit codes only; the work
//! happens in the library crates.

mod cli;
mod cmd;
mod probe;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cmd::dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("vmjail: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
