//! vmjail-agent: the guest side of vmjail. It serves the `Agent` ttrpc
//! service (see `vmjail-agent-protocol`) on a vsock port, or on a Unix socket
//! for tests on the host, and runs processes for the host.
//!
//! Built statically for the guest (no NSS: users and groups are numeric).

mod container;
mod guest_setup;
mod info;
mod listen;
mod process;
mod service;
mod shutdown;
mod stdio;

use std::process::ExitCode;

use clap::Parser;
use tracing::{error, info};

use crate::listen::ListenAddr;

#[derive(Parser, Debug)]
#[command(version, about = "vmjail guest agent")]
struct Cli {
    /// Where to serve: `vsock:PORT` (any CID) or `unix:PATH`.
    #[arg(long, default_value_t = ListenAddr::default())]
    listen: ListenAddr,
    /// A file (or fifo) to write `ready` to once the agent accepts
    /// connections: the guest's init reads it before announcing readiness,
    /// so the host's first dial is answered.
    #[arg(long, value_name = "PATH")]
    ready_file: Option<std::path::PathBuf>,
    /// Set up the guest before serving: mount a devpts instance at
    /// /dev/pts and cgroup2 at /sys/fs/cgroup, and prepare the containers'
    /// parent cgroup. Only the guest's init passes it: on a host it would
    /// mount over the host's own.
    #[arg(long)]
    setup_guest: bool,
}

fn main() -> ExitCode {
    // The agent re-executes itself as a container's init (see
    // container/init.rs) and to exec in a container (container/exec.rs);
    // those modes have no flags and no logging set-up.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() == 4 && args[1] == "container-init" {
        return container::init::main(std::path::Path::new(&args[2]), &args[3].to_string_lossy());
    }
    if args.len() > 2 && args[1] == "container-exec" {
        let words: Vec<String> = args[2..]
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        return container::exec::main(&words);
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VMJAIL_AGENT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    if let Err(e) = stdio::ensure_open() {
        error!("{e}");
        return ExitCode::FAILURE;
    }
    // Orphans of the processes it runs come to the agent, which reaps them
    // (it may not be the guest's init).
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        error!("becoming a child subreaper: {e}");
    }
    match serve(&cli.listen, cli.ready_file.as_deref(), cli.setup_guest) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(
    addr: &ListenAddr,
    ready_file: Option<&std::path::Path>,
    setup_guest: bool,
) -> Result<(), String> {
    // Asked for explicitly, not inferred from vsock: a host can have vsock
    // too (a test agent on vsock once mounted over the host's /dev/pts and
    // /sys/fs/cgroup).
    if setup_guest {
        guest_setup::mount_filesystems()?;
    }
    let service = service::AgentService::new().map_err(|e| format!("starting: {e}"))?;
    let mut server = listen::bind(addr)
        .map_err(|e| format!("listening on {addr}: {e}"))?
        .register_service(vmjail_agent_protocol::agent_ttrpc::create_agent(service));
    server
        .start()
        .map_err(|e| format!("serving on {addr}: {e}"))?;
    info!(
        "vmjail-agent {} (protocol {}) listening on {addr}",
        env!("CARGO_PKG_VERSION"),
        vmjail_agent_protocol::PROTOCOL_VERSION
    );
    if let Some(path) = ready_file {
        std::fs::write(path, b"ready\n")
            .map_err(|e| format!("creating the ready file {}: {e}", path.display()))?;
    }
    // Every container's cgroup needs this parent: made while the host is
    // still dialling, the first container does not wait for it.
    if setup_guest {
        if let Err(e) = container::cgroup::prepare(std::path::Path::new(container::cgroup::ROOT)) {
            tracing::warn!("preparing the containers' cgroup: {e}");
        }
    }
    // The server runs on its own threads; this one only has to stay.
    loop {
        std::thread::park();
    }
}
