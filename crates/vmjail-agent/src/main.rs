//! vmjail-agent: the guest side of vmjail. It serves the `Agent` ttrpc
//! service (see `vmjail-agent-protocol`) on a vsock port, or on a Unix socket
//! for tests on the host, and runs processes for the host.
//!
//! Built statically for the guest (no NSS: users and groups are numeric).

mod cli;
mod container;
mod guest_init;
mod guest_modules;
mod guest_setup;
mod info;
mod listen;
mod process;
mod ready;
mod service;
mod shutdown;
mod spurious_trap;
mod stdio;

use std::process::ExitCode;

use tracing::{error, info};

use crate::cli::{Cli, Command};

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
    // Started as the guest's init (see guest_init.rs): the console and the
    // filesystems first, so that even the first log line is seen.
    let as_init = guest_init::applies(args.first().map(|a| a.as_os_str()));
    if as_init {
        if let Err(e) = guest_init::prepare() {
            guest_init::power_off(&e);
        }
        guest_init::configure_network();
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VMJAIL_AGENT_LOG")
                // ttrpc's own start-up lines are not worth their console
                // bytes (each an emulated UART write) before the marker.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,ttrpc=warn")),
        )
        .init();
    // The serving agent, with its threads (see spurious_trap.rs).
    spurious_trap::survive();
    let parsed = match as_init {
        true => {
            // The kernel hands init the boot words it does not know.
            if args.len() > 1 {
                info!("as init, ignoring the arguments {:?}", &args[1..]);
            }
            Ok(Command::Serve(guest_init::command()))
        }
        false => cli::parse(args.into_iter().skip(1)),
    };
    let cli = match parsed {
        Ok(Command::Serve(cli)) => cli,
        Ok(Command::Help) => {
            print!("{}", cli::HELP);
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("vmjail-agent {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("vmjail-agent: {e}\n\n{}", cli::HELP);
            return ExitCode::from(2);
        }
    };
    if let Err(e) = stdio::ensure_open() {
        if as_init {
            guest_init::power_off(&e);
        }
        error!("{e}");
        return ExitCode::FAILURE;
    }
    // Orphans of the processes it runs come to the agent, which reaps them
    // (it may not be the guest's init).
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        error!("becoming a child subreaper: {e}");
    }
    match serve(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if as_init => guest_init::power_off(&e),
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(cli: &Cli) -> Result<(), String> {
    let addr = &cli.listen;
    if let Some(list) = &cli.modules {
        guest_modules::load_listed(list)?;
    }
    // Asked for explicitly, not inferred from vsock: a host can have vsock
    // too (a test agent on vsock once mounted over the host's /dev/pts and
    // /sys/fs/cgroup).
    if cli.setup_guest {
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
    if cli.announce_ready {
        ready::announce().map_err(|e| format!("announcing readiness: {e}"))?;
    }
    if let Some(list) = &cli.later_modules {
        guest_modules::load_listed_in_background(list.clone());
    }
    // Every container's cgroup needs this parent: made while the host is
    // still dialling, the first container does not wait for it.
    if cli.setup_guest {
        if let Err(e) = container::cgroup::prepare(std::path::Path::new(container::cgroup::ROOT)) {
            tracing::warn!("preparing the containers' cgroup: {e}");
        }
    }
    // The server runs on its own threads; this one only has to stay.
    loop {
        std::thread::park();
    }
}
