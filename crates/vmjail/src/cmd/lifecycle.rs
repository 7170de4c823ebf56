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
use crate::cmd::runc::{self, Globals};

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
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long each shutdown step of `delete --force` and `gc` may take.
pub const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);

pub use output::print_json;

pub fn run(globals: &Globals, command: Command) -> anyhow::Result<ExitCode> {
    // A container's host process has the container's stderr: its errors
    // go to the log only.
    let quiet = matches!(command, Command::ContainerMonitor(_));
    match execute(globals, command) {
        Ok(code) => Ok(ExitCode::from(code)),
        Err(err) => {
            if !quiet {
                crate::out::errln!("vmjail: error: {err}");
            }
            if crate::log::to_file() {
                tracing::error!("{err}");
            }
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
    /// No such container (exit 3).
    NotFound(String),
    /// Wrong state for the command (exit 4).
    WrongState(String),
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
            Failure::NotFound(_) => exit::NOT_FOUND,
            Failure::WrongState(_) => exit::WRONG_STATE,
            Failure::Config(_) | Failure::Other(_) => exit::FAILURE,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Sandbox(err) => write!(f, "{err}"),
            Failure::Config(err) => write!(f, "configuration: {err}"),
            Failure::Usage(msg)
            | Failure::NotFound(msg)
            | Failure::WrongState(msg)
            | Failure::Other(msg) => f.write_str(msg),
        }
    }
}

impl From<SandboxError> for Failure {
    fn from(err: SandboxError) -> Self {
        Failure::Sandbox(err)
    }
}

fn execute(globals: &Globals, command: Command) -> Result<u8, Failure> {
    let config_path = globals.config.as_deref();
    let root = globals.root.as_deref();
    // Only create and run launch anything: they need the whole, validated
    // configuration. Every other command manages sandboxes that exist and
    // needs just `[jail]` (each sandbox's own configuration is in its state).
    match command {
        Command::Create(args) => {
            let config = load_config(config_path)?;
            let sandboxes = sandboxes(&config.jail, root)?;
            if let Some(bundle) = &args.bundle {
                return runc::create(&sandboxes, &config, &args, bundle, globals);
            }
            let id = SandboxId::parse(args.id())?;
            sandboxes.create(&id, &config, args.netns.as_deref())?;
            Ok(exit::OK)
        }
        Command::Run(args) => {
            let config = load_config(config_path)?;
            run::run(&sandboxes(&config.jail, root)?, &config, &args)
        }
        command => {
            let jail = vmjail_config::load_jail(config_path).map_err(Failure::Config)?;
            manage(&sandboxes(&jail, root)?, command, globals)
        }
    }
}

/// The commands that act on existing sandboxes.
fn manage(
    sandboxes: &Sandboxes<SelectFactory>,
    command: Command,
    globals: &Globals,
) -> Result<u8, Failure> {
    // Commands on a container (a sandbox holding one of its own id) go to
    // the runc side; on any other sandbox they act on its VM.
    let container = |id: &str| -> Result<Option<SandboxId>, Failure> {
        let id = SandboxId::parse(id)?;
        Ok(runc::is_container(sandboxes, &id).then_some(id))
    };
    match command {
        Command::Start(args) => match container(&args.id)? {
            Some(id) => return runc::start(sandboxes, &id),
            None => {
                sandboxes.start(&SandboxId::parse(&args.id)?, START_TIMEOUT)?;
            }
        },
        Command::State(args) => match container(&args.id)? {
            Some(id) => runc::print_state(sandboxes, &id)?,
            None => {
                let view = sandboxes.state(&SandboxId::parse(&args.id)?)?;
                output::print_json(&view)?;
            }
        },
        Command::List(args) => {
            let listing = sandboxes.list()?;
            for problem in &listing.problems {
                crate::out::errln!("vmjail: warning: {problem}");
            }
            if args.quiet {
                for view in &listing.sandboxes {
                    crate::out::outln!("{}", view.id);
                }
            } else if args.json || args.format == crate::cli::ListFormat::Json {
                output::print_json(&listing.sandboxes)?;
            } else {
                output::print_table(&listing.sandboxes)?;
            }
        }
        Command::Pause(args) => match container(&args.id)? {
            Some(id) => return runc::pause(sandboxes, &id, true),
            None => {
                sandboxes.pause(&SandboxId::parse(&args.id)?)?;
            }
        },
        Command::Resume(args) => match container(&args.id)? {
            Some(id) => return runc::pause(sandboxes, &id, false),
            None => {
                sandboxes.resume(&SandboxId::parse(&args.id)?)?;
            }
        },
        Command::Kill(args) => return runc::kill(sandboxes, &args),
        Command::Ps(args) => return runc::ps(sandboxes, &args),
        Command::Features => return runc::features(),
        Command::Update(args) => return runc::update(sandboxes, &args),
        Command::ContainerMonitor(args) => {
            return Ok(runc::monitor::run(sandboxes, &args));
        }
        Command::Stop(args) => {
            let id = SandboxId::parse(&args.id)?;
            sandboxes.stop(&id, Duration::from_secs(args.timeout))?;
        }
        Command::Delete(args) => match container(&args.id)? {
            Some(id) => return runc::delete(sandboxes, &id, args.force, CLEANUP_TIMEOUT),
            None => {
                let id = SandboxId::parse(&args.id)?;
                sandboxes.delete(&id, args.force, CLEANUP_TIMEOUT)?;
            }
        },
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
                runc::pointer::remove_if_for(id, globals);
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
        Command::Exec(args) => {
            return match args.vm {
                false if container(&args.id)?.is_some() => runc::exec(sandboxes, &args, globals),
                _ => exec::exec(sandboxes, &args),
            }
        }
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

fn sandboxes(
    jail: &vmjail_config::JailConfig,
    root: Option<&Path>,
) -> Result<Sandboxes<SelectFactory>, Failure> {
    let mut jail = jail.clone();
    if let Some(root) = root {
        jail.state_dir = root.to_path_buf();
    }
    // The built-in jailer (`vmjail-jailer`) and the console pump (this
    // binary's hidden `console-pump`) are found from this binary.
    let vmjail_exe: PathBuf = std::env::current_exe()
        .map_err(|e| Failure::Other(format!("locating the vmjail binary (/proc/self/exe): {e}")))?;
    Ok(Sandboxes::new(&jail, SelectFactory { vmjail_exe }))
}
