//! The command line grammar.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "vmjail",
    disable_version_flag = true,
    about = "A secure sandbox runtime: reads a Kata configuration.toml and runs each sandbox's VMM in a jail; \
             an OCI runtime with runc's command line (one VM per container)"
)]
pub struct Cli {
    /// Configuration file (else $VMJAIL_CONFIG, $KATA_CONF_FILE, then the default paths).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// State directory (runc's --root): replaces the configuration's
    /// [jail] state_dir, so each caller (Docker, Podman) has its own.
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Write logs (and every error) to FILE instead of stderr.
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// Format of --log lines: text, or json (runc's {"level","msg","time"}).
    #[arg(long, global = true, value_name = "FORMAT", default_value = "text")]
    pub log_format: LogFormat,

    /// Accepted for runc compatibility; no effect: vmjail puts each VMM in
    /// the cgroups its [jail] configuration names, and the container's
    /// limits apply to its cgroup in the guest.
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,

    /// Print the version (runc-style lines) and exit.
    #[arg(short = 'v', long)]
    pub version: bool,

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
    /// With --bundle (runc's create): a container in a sandbox of its own,
    /// its VM booted and its process created, waiting for `start`.
    Create(CreateArgs),
    /// Start a created container (runc's start), or the guest of a created
    /// sandbox.
    Start(IdArgs),
    /// Print a container's OCI state, or a sandbox's state, as JSON.
    State(IdArgs),
    /// List sandboxes (table, or JSON with --json / --format json).
    List(ListArgs),
    /// Freeze a container's processes, or pause a sandbox's VM.
    Pause(IdArgs),
    /// Thaw a paused container, or resume a paused sandbox's VM.
    Resume(IdArgs),
    /// Send a signal (default SIGTERM) to a container's process.
    Kill(KillArgs),
    /// List the guest pids of a container's processes.
    Ps(PsArgs),
    /// Change a running container's memory, pids and cpu limits (in its
    /// guest cgroup).
    Update(UpdateArgs),
    /// Print what this runtime supports, as runc's `features` JSON.
    Features,
    /// Stop a sandbox's VM (graceful, then forced).
    Stop(StopArgs),
    /// Delete a stopped sandbox (or container) and everything it created;
    /// --force also a running one.
    Delete(DeleteArgs),
    /// Print a sandbox's guest console log (kept until delete).
    Logs(LogsArgs),
    /// Create and start a sandbox, stream its console, then stop and delete it.
    Run(RunArgs),
    /// Run a command in a running container (runc's exec), or with --vm
    /// (or in a sandbox without a container of its id) in the sandbox's VM
    /// outside any container; exits with the command's status (128+N for
    /// signal N), or with --detach at once.
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
    /// The host process standing for a container's process (used
    /// internally by create and exec).
    #[command(hide = true)]
    ContainerMonitor(MonitorArgs),
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
    /// Sandbox (and container) id: [A-Za-z0-9][A-Za-z0-9-]{0,63}.
    #[arg(required_unless_present = "id_flag", conflicts_with = "id_flag")]
    pub id: Option<String>,
    /// The id, as before the positional form (kept for scripts).
    #[arg(long = "id", hide = true, value_name = "ID")]
    pub id_flag: Option<String>,
    /// Network namespace to run the VMM in (/run/netns/NAME or /proc/PID/ns/net), pinned at
    /// /run/netns/vmjail-ID; without it vmjail creates one (and removes it on delete).
    /// With --bundle: the spec's network namespace path when it has one.
    #[arg(long, value_name = "PATH")]
    pub netns: Option<PathBuf>,
    /// OCI bundle: create its container in a sandbox of its own (needs
    /// use_vsock = true).
    #[arg(short = 'b', long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// With --bundle: write the pid of the container's host process here.
    #[arg(long, value_name = "FILE", requires = "bundle")]
    pub pid_file: Option<PathBuf>,
    /// With --bundle and a terminal: the Unix socket to send the pty
    /// master to.
    #[arg(long, value_name = "SOCKET", requires = "bundle")]
    pub console_socket: Option<PathBuf>,
    /// Accepted (runc): the guest never pivots (move-mount + chroot).
    #[arg(long)]
    pub no_pivot: bool,
    /// Accepted (runc): the guest has no session keyring to share.
    #[arg(long)]
    pub no_new_keyring: bool,
}

impl CreateArgs {
    pub fn id(&self) -> &str {
        self.id
            .as_deref()
            .or(self.id_flag.as_deref())
            .unwrap_or_default()
    }
}

#[derive(Debug, Args)]
pub struct KillArgs {
    pub id: String,
    /// Signal name (TERM, SIGTERM) or number; default SIGTERM.
    pub signal: Option<String>,
    /// Every process of the container, not only its own.
    #[arg(short = 'a', long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    pub id: String,
    /// table or json (a JSON array of guest pids).
    #[arg(short = 'f', long, default_value = "table")]
    pub format: ListFormat,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// table or json (runc's flag; json as --json).
    #[arg(short = 'f', long, default_value = "table")]
    pub format: ListFormat,
    /// Only the ids.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    pub id: String,
    /// An OCI LinuxResources JSON file, or - for stdin (what Docker and
    /// Podman pass): its memory.limit, pids.limit, cpu.quota/period apply.
    #[arg(short = 'r', long, value_name = "FILE")]
    pub resources: Option<String>,
    /// Memory limit in bytes (-1: none).
    #[arg(short = 'm', long, value_name = "BYTES", allow_hyphen_values = true)]
    pub memory: Option<i64>,
    /// Maximum number of pids (-1: none).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// CPU quota per period, in microseconds (-1: none).
    #[arg(long, value_name = "USEC", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU period in microseconds.
    #[arg(long, value_name = "USEC")]
    pub cpu_period: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// The sandbox.
    pub sandbox: String,
    /// The container.
    pub container: String,
    /// The name its record has (`init`, or the exec's process id).
    pub name: String,
    /// The agent's process id of the process it stands for.
    #[arg(long, required_unless_present = "go_fd", conflicts_with = "go_fd")]
    pub process_id: Option<u64>,
    /// Wait (in its netns) for that process id on this pipe; EOF without
    /// one ends it.
    #[arg(long, value_name = "FD")]
    pub go_fd: Option<i32>,
    /// Its stdio is a pty (fd 0): made the controlling terminal, raw,
    /// its size followed.
    #[arg(long)]
    pub tty: bool,
    /// Pump fd 0 to the process's stdin.
    #[arg(long)]
    pub stdin: bool,
    /// Write `ok` here once connected (or the error), then close it.
    #[arg(long)]
    pub ready_fd: i32,
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
    /// Sandbox (container) id: [A-Za-z0-9][A-Za-z0-9-]{0,63}.
    pub id: String,
    /// Run the command on a pseudo-terminal (the local terminal is put in
    /// raw mode; its size is followed).
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Keep stdin open and stream it to the command (else /dev/null; in a
    /// container stdin is also open whenever it is not /dev/null).
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Set an environment variable (repeatable; replaces the default of
    /// that key, e.g. PATH).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Working directory in the guest (default: / or the process file's).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<String>,
    /// Numeric user and group in the guest (default: 0:0; GID 0 when left out).
    #[arg(short = 'u', long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// In a container: the process (an OCI `process` JSON) instead of
    /// CMD and the flags above.
    #[arg(short = 'p', long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// In a container: leave the process to a host process of its own
    /// (its pid in --pid-file) and exit at once.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// With --detach: write the pid of the process's host process here.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// With a terminal: the Unix socket to send the pty master to.
    #[arg(long, value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,
    /// Run in the sandbox's VM, outside any container.
    #[arg(long)]
    pub vm: bool,
    /// The command and its arguments (`--` before them is optional).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct JsonArgs {
    /// Print JSON instead of the default format.
    #[arg(long)]
    pub json: bool,
}
