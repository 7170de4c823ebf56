//! Sandbox lifecycle commands: create, start, state, list, pause, resume,
//! stop, delete, logs, run, gc.
//!
//! Output: results on stdout (`state` and `list --json` print stable JSON),
//! messages on stderr as `vmjail: error: ...`. Exit codes (see [`exit`]):
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | success (`run`: the guest powered off by itself) |
//! | 1 | failure: configuration, host, VMM or state store |
//! | 2 | usage: bad arguments, invalid id, bad `--netns` |
//! | 3 | no such sandbox |
//! | 4 | wrong state for the command (e.g. `start` twice; `stop` of a stopped sandbox is not: it exits 0) |
//! | 5 | a sandbox with that id already exists |
//! | 124 | `run`: the guest still ran at `--timeout` (stopped and deleted) |
//! | any | `exec`: the command's own status once it ran (128+N for signal N); before that, the codes above |
//! | 128+N | `run`: interrupted by signal N (130 Ctrl-C, 143 SIGTERM), cleaned up |

mod exec;
mod output;
mod run;
mod run_bundle;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use vmjail_config::{HostFacts, RuntimeConfig};
use vmjail_sandbox::console::ConsoleError;
use vmjail_sandbox::{ErrorKind, SandboxError, SandboxId, Sandboxes, SelectFactory};

use crate::cli::Command;
use crate::cmd::env::print_warnings;

/// Exit codes a script can rely on.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NOT_FOUND: u8 = 3;
    pub const WRONG_STATE: u8 = 4;
    pub const ALREADY_EXISTS: u8 = 5;
    pub const TIMEOUT: u8 = 124;
}

/// How long `start` waits for the VMM to confirm the guest runs.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long each shutdown step of `delete --force` and `gc` may take.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);

pub fn run(config: Option<&Path>, command: Command) -> anyhow::Result<ExitCode> {
    match execute(config, command) {
        Ok(code) => Ok(ExitCode::from(code)),
        Err(err) => {
            crate::out::errln!("vmjail: error: {err}");
            Ok(ExitCode::from(err.code()))
        }
    }
}

/// A command's failure with the exit code it maps to.
pub enum Failure {
    Sandbox(SandboxError),
    Config(vmjail_config::ConfigError),
    /// Bad arguments (exit 2).
    Usage(String),
    Other(String),
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Failure::Sandbox(err) => match err.kind() {
                ErrorKind::InvalidInput => exit::USAGE,
                ErrorKind::NotFound => exit::NOT_FOUND,
                ErrorKind::WrongState => exit::WRONG_STATE,
                ErrorKind::AlreadyExists => exit::ALREADY_EXISTS,
                ErrorKind::Failed => exit::FAILURE,
            },
            Failure::Usage(_) => exit::USAGE,
            Failure::Config(_) | Failure::Other(_) => exit::FAILURE,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Sandbox(err) => write!(f, "{err}"),
            Failure::Config(err) => write!(f, "configuration: {err}"),
            Failure::Usage(msg) | Failure::Other(msg) => f.write_str(msg),
        }
    }
}

impl From<SandboxError> for Failure {
    fn from(err: SandboxError) -> Self {
        Failure::Sandbox(err)
    }
}

fn execute(config_path: Option<&Path>, command: Command) -> Result<u8, Failure> {
    // Only create and run launch anything: they need the whole, validated
    // configuration. Every other command manages sandboxes that exist and
    // needs just `[jail]` (each sandbox's own configuration is in its state).
    match command {
        Command::Create(args) => {
            let config = load_config(config_path)?;
            let id = SandboxId::parse(&args.id)?;
            sandboxes(&config.jail)?.create(&id, &config, args.netns.as_deref())?;
            Ok(exit::OK)
        }
        Command::Run(args) => {
            let config = load_config(config_path)?;
            run::run(&sandboxes(&config.jail)?, &config, &args)
        }
        command => {
            let jail = vmjail_config::load_jail(config_path).map_err(Failure::Config)?;
            manage(&sandboxes(&jail)?, command)
        }
    }
}

/// The commands that act on existing sandboxes.
fn manage(sandboxes: &Sandboxes<SelectFactory>, command: Command) -> Result<u8, Failure> {
    match command {
        Command::Start(args) => {
            sandboxes.start(&SandboxId::parse(&args.id)?, START_TIMEOUT)?;
        }
        Command::State(args) => {
            let view = sandboxes.state(&SandboxId::parse(&args.id)?)?;
            output::print_json(&view)?;
        }
        Command::List(args) => {
            let listing = sandboxes.list()?;
            for problem in &listing.problems {
                crate::out::errln!("vmjail: warning: {problem}");
            }
            if args.json {
                output::print_json(&listing.sandboxes)?;
            } else {
                output::print_table(&listing.sandboxes)?;
            }
        }
        Command::Pause(args) => {
            sandboxes.pause(&SandboxId::parse(&args.id)?)?;
        }
        Command::Resume(args) => {
            sandboxes.resume(&SandboxId::parse(&args.id)?)?;
        }
        Command::Stop(args) => {
            let id = SandboxId::parse(&args.id)?;
            sandboxes.stop(&id, Duration::from_secs(args.timeout))?;
        }
        Command::Delete(args) => {
            let id = SandboxId::parse(&args.id)?;
            sandboxes.delete(&id, args.force, CLEANUP_TIMEOUT)?;
        }
        Command::Logs(args) => {
            let id = SandboxId::parse(&args.id)?;
            let mut stdout = std::io::stdout().lock();
            match sandboxes.console(&id, &mut stdout, args.follow, &mut || false) {
                Ok(()) => {}
                // The reader went away (`vmjail logs -f ID | head`).
                Err(SandboxError::ConsoleLog {
                    source: ConsoleError::Write(e),
                    ..
                }) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                Err(err) => return Err(err.into()),
            }
        }
        Command::Gc => {
            let report = sandboxes.gc(CLEANUP_TIMEOUT)?;
            for id in &report.removed {
                crate::out::outln!("removed {id}");
            }
            for id in &report.busy {
                crate::out::errln!("vmjail: gc: skipped {id}: another vmjail command holds it");
            }
            for (id, why) in &report.failed {
                crate::out::errln!("vmjail: error: gc: {id}: {why}");
            }
            if !report.failed.is_empty() {
                return Ok(exit::FAILURE);
            }
        }
        Command::Exec(args) => return exec::exec(sandboxes, &args),
        Command::NetSync(args) => {
            let connected = sandboxes.sync_network(&SandboxId::parse(&args.id)?)?;
            output::print_json(&connected)?;
        }
        Command::Create(_)
        | Command::Run(_)
        | Command::Env(_)
        | Command::Check(_)
        | Command::ConsolePump { .. }
        | Command::Jailer { .. } => {
            return Err(Failure::Other(
                "internal: not a command on existing sandboxes".to_owned(),
            ))
        }
    }
    Ok(exit::OK)
}

/// The whole configuration, its warnings on stderr (for create and run) —
/// also when it fails to load, before the error they may explain.
fn load_config(path: Option<&Path>) -> Result<RuntimeConfig, Failure> {
    match vmjail_config::load(path, &HostFacts::detect()) {
        Ok(config) => {
            print_warnings(&config.warnings);
            Ok(config)
        }
        Err(failure) => {
            print_warnings(&failure.warnings);
            Err(Failure::Config(*failure.error))
        }
    }
}

fn sandboxes(jail: &vmjail_config::JailConfig) -> Result<Sandboxes<SelectFactory>, Failure> {
    // The built-in jailer (`vmjail-jailer`) and the console pump (this
    // binary's hidden `console-pump`) are found from this binary.
    let vmjail_exe: PathBuf = std::env::current_exe()
        .map_err(|e| Failure::Other(format!("locating the vmjail binary (/proc/self/exe): {e}")))?;
    Ok(Sandboxes::new(jail, SelectFactory { vmjail_exe }))
}
