//! The command line grammar.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "vmjail",
    version,
    about = "A secure sandbox runtime: reads a Kata configuration.toml and runs each sandbox's VMM in a jail"
)]
pub struct Cli {
    /// Configuration file (else $VMJAIL_CONFIG, $KATA_CONF_FILE, then the default paths).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// List the configuration files looked for, in order, and exit.
    #[arg(long)]
    pub show_default_config_paths: bool,

    /// Log at debug level to stderr (or set VMJAIL_LOG to a tracing filter).
    #[arg(long, global = true)]
    pub debug: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the resolved configuration and host facts (TOML, or JSON with --json).
    Env(JsonArgs),
    /// Validate the configuration and probe the host; exit 0 only if a sandbox can be created.
    Check(JsonArgs),
    /// Create a sandbox: launch its jailed VMM, configured but not started.
    Create(CreateArgs),
    /// Start the guest of a created sandbox.
    Start(IdArgs),
    /// Print a sandbox's state as JSON.
    State(IdArgs),
    /// List sandboxes (table, or JSON with --json).
    List(JsonArgs),
    /// Pause a running sandbox's VM.
    Pause(IdArgs),
    /// Resume a paused sandbox's VM.
    Resume(IdArgs),
    /// Stop a sandbox's VM (graceful, then forced).
    Stop(StopArgs),
    /// Delete a stopped sandbox and everything it created.
    Delete(DeleteArgs),
    /// Print a sandbox's guest console log (kept until delete).
    Logs(LogsArgs),
    /// Create and start a sandbox, stream its console, then stop and delete it.
    Run(RunArgs),
    /// Run a command in a running sandbox's VM (outside any container),
    /// through its guest agent; exits with the command's status (128+N
    /// for signal N).
    Exec(ExecArgs),
    /// Remove every sandbox whose VMM is gone or whose creation never finished.
    Gc,
    /// Connect interfaces that appeared in a sandbox's netns since create
    /// and give them to its VM (QEMU q35/pc: hot-plug; Firecracker: before
    /// start only); prints their names as JSON.
    NetSync(IdArgs),
    /// Copies a VMM's console (stdin) into a sandbox's bounded console log
    /// (used internally).
    #[command(hide = true)]
    ConsolePump {
        /// The sandbox's state directory.
        dir: PathBuf,
    },
    /// Firecracker-jailer-compatible built-in jailer (used internally).
    #[command(hide = true)]
    Jailer {
        /// Firecracker `jailer` arguments, `--` and the VMM's arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

#[derive(Debug, Args)]
pub struct IdArgs {
    /// Sandbox id: [A-Za-z0-9][A-Za-z0-9-]{0,63}.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Sandbox id: [A-Za-z0-9][A-Za-z0-9-]{0,63}.
    #[arg(long)]
    pub id: String,
    /// Network namespace to run the VMM in (/run/netns/NAME or /proc/PID/ns/net), pinned at
    /// /run/netns/vmjail-ID; without it vmjail creates one (and removes it on delete).
    #[arg(long, value_name = "PATH")]
    pub netns: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    pub id: String,
    /// Seconds each shutdown step may take before the next, harsher one.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    pub id: String,
    /// Stop the VMM first if it still runs, and clean up half-made sandboxes.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    pub id: String,
    /// Keep printing what the guest writes until the sandbox stops.
    #[arg(long, short)]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Sandbox id (generated when absent).
    #[arg(long)]
    pub id: Option<String>,
    /// Seconds to wait for the guest to finish before stopping it.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Network namespace to run the VMM in (/run/netns/NAME or /proc/PID/ns/net), pinned at
    /// /run/netns/vmjail-ID; without it vmjail creates one (and removes it on delete).
    #[arg(long, value_name = "PATH")]
    pub netns: Option<PathBuf>,
    /// Run this OCI bundle's process as a container in the sandbox
    /// (config.json + its root); stdio streamed, SIGINT/SIGTERM forwarded,
    /// exits with its status. Needs use_vsock = true. --timeout does not apply.
    #[arg(long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// With --bundle: the container's process on a pseudo-terminal.
    #[arg(short = 't', long, requires = "bundle")]
    pub tty: bool,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Sandbox id: [A-Za-z0-9][A-Za-z0-9-]{0,63}.
    pub id: String,
    /// Run the command on a pseudo-terminal (the local terminal is put in
    /// raw mode; its size is followed).
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Keep stdin open and stream it to the command (else /dev/null).
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Set an environment variable (repeatable; replaces the default of
    /// that key, e.g. PATH).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Working directory in the guest (default: /).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<String>,
    /// Numeric user and group in the guest (default: 0:0; GID 0 when left out).
    #[arg(long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct JsonArgs {
    /// Print JSON instead of the default format.
    #[arg(long)]
    pub json: bool,
}
