//! `create --bundle DIR [--pid-file F] [--console-socket S] ID` (runc's
//! create), in runc's order: the sandbox recorded and its network
//! namespace pinned (the spec's, when it names one), the host process
//! standing for the container's process spawned into it (recorded first;
//! it waits there), the spec's prestart and createRuntime hooks run with
//! its pid in the state (Docker's libnetwork-setkey moves the container's
//! veth into that netns then), and only then the netns connected to the
//! VM and the VM booted, so the guest gets what the hooks added. Then the
//! container is set up in the guest, waiting for `start`, the host
//! process told its guest process and its pid written to `--pid-file`.
//! A create that fails at any step removes everything again (and then
//! runs the poststop hooks, as the spec has it).

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use vmjail_config::RuntimeConfig;
use vmjail_sandbox::agent::DEFAULT_TTY_SIZE;
use vmjail_sandbox::{BeforeVm, ContainerSpec, SandboxId, Sandboxes, SelectFactory};

use super::monitor::{self, Spawn};
use super::{console, hooks, Globals, AGENT_TIMEOUT};
use crate::cli::CreateArgs;
use crate::cmd::lifecycle::{exit, Failure, CLEANUP_TIMEOUT, START_TIMEOUT};

pub fn create(
    sandboxes: &Sandboxes<SelectFactory>,
    config: &RuntimeConfig,
    args: &CreateArgs,
    bundle: &Path,
    globals: &Globals,
) -> Result<u8, Failure> {
    let id = SandboxId::parse(args.id())?;
    let loaded = vmjail_sandbox::bundle_image::load(bundle)
        .map_err(|e| Failure::Usage(format!("--bundle: {e}")))?;
    let process = loaded.config.get("process");
    let terminal = process
        .and_then(|p| p.get("terminal"))
        .and_then(|t| t.as_bool())
        .unwrap_or(false);
    if terminal && args.console_socket.is_none() {
        return Err(Failure::Usage(
            "the bundle's process.terminal is true: give --console-socket for its pty".into(),
        ));
    }
    let size = console_size(process).unwrap_or(DEFAULT_TTY_SIZE);
    let netns = match &args.netns {
        Some(path) => Some(path.clone()),
        None => spec_netns(&loaded.config),
    };
    let hooks = hooks::from_spec(&loaded.config)?;
    let container = ContainerSpec {
        id: id.to_string(),
        bundle: bundle.to_path_buf(),
        pod: false,
    };
    let stdin = terminal || !stdin_is_null();
    // The host process, waiting in the sandbox's netns, and the OCI state
    // the hooks saw (for the poststop hooks of a failed create).
    let mut waiting = None;
    let mut hooks_state = None;
    let before_vm = |before: &mut BeforeVm<'_>| {
        let slave = match (&args.console_socket, terminal) {
            (Some(socket), true) => Some(console::send_master(socket, size)?),
            _ => None,
        };
        let spawn = Spawn {
            sandbox: &id,
            container: id.as_str(),
            name: "init",
            tty: terminal,
            stdin,
            stdio: slave,
        };
        waiting = Some(monitor::spawn_waiting(before, globals, spawn).map_err(|e| e.to_string())?);
        // Where the state is, and the hooks for start and delete: without
        // a record the poststart and poststop hooks would be lost.
        let recorded = (!hooks.is_empty()).then(|| hooks.to_json());
        match super::pointer::write(id.as_str(), globals, recorded) {
            Err(e) if !hooks.is_empty() => return Err(e),
            Err(e) => tracing::warn!("{e}"),
            Ok(()) => {}
        }
        hooks_state = super::state::oci_state(sandboxes, &id).ok();
        hooks::run_create(sandboxes, &id, &hooks).map_err(|e| e.to_string())?;
        Ok(())
    };
    let created = sandboxes.create_with_containers_then(
        &id,
        config,
        netns.as_deref(),
        std::slice::from_ref(&container),
        before_vm,
    );
    // A failed create undid itself: only a later failure has a sandbox to remove.
    let sandbox_made = created.is_ok();
    let made = created.map_err(Failure::from).and_then(|_| {
        sandboxes.start(&id, START_TIMEOUT)?;
        let client = sandboxes.agent_client(&id, AGENT_TIMEOUT)?;
        let handle = sandboxes.create_container(
            &id,
            client,
            id.as_str(),
            terminal.then_some(size),
            stdin,
        )?;
        let waiting = waiting
            .take()
            .ok_or_else(|| Failure::Other("the container's host process was not spawned".into()))?;
        let process = waiting.proceed(handle.id())?;
        if let Some(path) = &args.pid_file {
            write_pid_file(path, process.pid)?;
        }
        Ok::<_, Failure>(())
    });
    if let Err(e) = made {
        let e = with_console_tail(sandboxes, &id, e);
        drop(waiting);
        let state = super::state::oci_state(sandboxes, &id).ok().or(hooks_state);
        super::pointer::remove(id.as_str());
        if sandbox_made {
            if let Err(cleanup) = sandboxes.delete(&id, true, CLEANUP_TIMEOUT) {
                return Err(Failure::Other(format!(
                    "{e}; removing the sandbox again also failed: {cleanup}"
                )));
            }
        }
        hooks::run_poststop(&id, &hooks, state);
        return Err(e);
    }
    Ok(exit::OK)
}

/// Most bytes of the guest's console added to a failed create's error.
const CONSOLE_TAIL: u64 = 1024;

/// `failure` with the end of the guest's console log (gone with the
/// sandbox right after), which says why a guest did not come up.
fn with_console_tail(
    sandboxes: &Sandboxes<SelectFactory>,
    id: &SandboxId,
    failure: Failure,
) -> Failure {
    use std::io::{Read, Seek, SeekFrom};
    let Some(log) = sandboxes.state(id).ok().and_then(|v| v.console_log) else {
        return failure;
    };
    let mut tail = Vec::new();
    let read = std::fs::File::open(&log).and_then(|mut f| {
        let len = f.metadata()?.len();
        f.seek(SeekFrom::Start(len.saturating_sub(CONSOLE_TAIL)))?;
        f.take(CONSOLE_TAIL).read_to_end(&mut tail)
    });
    if read.is_err() || tail.is_empty() {
        return failure;
    }
    let text = String::from_utf8_lossy(&tail).replace('\n', " | ");
    tracing::error!("container {id}: guest console before the failure: {text}");
    Failure::Other(format!("{failure} (guest console, last lines: {text})"))
}

/// `process.consoleSize` as (rows, cols).
fn console_size(process: Option<&serde_json::Value>) -> Option<(u16, u16)> {
    let size = process?.get("consoleSize")?;
    let dim = |key: &str| {
        size.get(key)
            .and_then(|v| v.as_u64())
            .and_then(|v| u16::try_from(v).ok())
            .filter(|v| *v > 0)
    };
    Some((dim("height")?, dim("width")?))
}

/// The path of the spec's network namespace, when it names one (Docker
/// and Podman make it): the sandbox's netns, where the VMM runs.
fn spec_netns(config: &serde_json::Value) -> Option<PathBuf> {
    config
        .pointer("/linux/namespaces")?
        .as_array()?
        .iter()
        .find(|ns| ns.get("type").and_then(|t| t.as_str()) == Some("network"))?
        .get("path")?
        .as_str()
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

/// Whether this process's stdin is /dev/null (or closed): the container's
/// stdin is then closed too.
pub(super) fn stdin_is_null() -> bool {
    let Ok(stat) = nix::sys::stat::fstat(std::io::stdin().as_raw_fd()) else {
        return true;
    };
    let null = nix::sys::stat::stat("/dev/null").ok();
    null.is_some_and(|n| {
        stat.st_mode & nix::libc::S_IFMT == nix::libc::S_IFCHR && stat.st_rdev == n.st_rdev
    })
}

/// Writes `pid` to `path` atomically (a file beside it, renamed), as runc.
pub(super) fn write_pid_file(path: &Path, pid: i32) -> Result<(), Failure> {
    let fail = |e: std::io::Error| Failure::Other(format!("--pid-file {}: {e}", path.display()));
    let name = path
        .file_name()
        .ok_or_else(|| Failure::Usage(format!("--pid-file {}: not a file", path.display())))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".vmjail-tmp");
    let tmp = path.with_file_name(tmp_name);
    std::fs::write(&tmp, pid.to_string()).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}
