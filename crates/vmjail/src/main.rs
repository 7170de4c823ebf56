//! `vmjail`: the command line. Parsing, output and exit codes only; the work
//! happens in the library crates.

mod cli;
mod cmd;
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
    init_logging(cli.debug);
    match cmd::dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            crate::out::errln!("vmjail: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr: warnings by default, everything from vmjail's crates
/// and the VMM's own log (target `firecracker`) with `--debug`;
/// `VMJAIL_LOG` takes a full `tracing` filter and wins over both. Each
/// lifecycle step is a span: its closing line carries `time.busy`, how
/// long the step took.
fn init_logging(debug: bool) {
    use std::io::IsTerminal;
    let default = if debug { "debug" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("VMJAIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}
