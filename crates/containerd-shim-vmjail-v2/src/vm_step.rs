//! The VM's heavy steps — creating it (jail, container image, helpers,
//! VMM, guest start), adding and taking back a pod's container's share,
//! tearing it down — run in a short-lived
//! child: this binary again, as `containerd-shim-vmjail-v2 vm-step`, which
//! calls the same `Sandboxes` functions from a request on its stdin and
//! exits. The serving shim lives as long as the pod; the pages of code it
//! runs stay resident in it, and the create and delete code is most of
//! the binary's text: kept out of it, the serving shim's peak RSS stays
//! under 10 MiB (measured by the `ctr_run` and `cri_pod` benches).
//!
//! Nothing changes for crash safety: the child records before it creates,
//! as `vmjail create` does, and dies with the shim (`PR_SET_PDEATHSIG`),
//! so a SIGKILLed shim leaves what a SIGKILLed `vmjail create` leaves,
//! which containerd's `delete` removes from the bundle's record.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use vmjail_sandbox::{ContainerSpec, ErrorKind, SandboxId, Sandboxes, SelectFactory};

use crate::config;
use crate::task::{CLEANUP_TIMEOUT, START_TIMEOUT};

/// The first argument that makes the binary run one step.
pub const ARG: &str = "vm-step";
/// Most of a request read (it is a few hundred bytes).
const MAX_REQUEST: u64 = 64 * 1024;
/// How the child's last line, its own peak RSS, begins.
const PEAK: &str = "peak RSS (VmHWM)";
/// Most of the child's error message kept.
const MAX_ERROR: u64 = 16 * 1024;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum Step {
    /// Creates sandbox `sandbox` with its first container and starts
    /// its guest; on failure the shim deletes what is left (`Delete`).
    Create {
        sandbox: String,
        config: Option<PathBuf>,
        netns: Option<PathBuf>,
        container: String,
        bundle: PathBuf,
        pod: bool,
    },
    /// Force-deletes sandbox `sandbox` (gone already is fine).
    Delete {
        sandbox: String,
        config: Option<PathBuf>,
    },
    /// Adds a pod's container to its running sandbox (its bundle shared
    /// with the VM).
    AddContainer {
        sandbox: String,
        config: Option<PathBuf>,
        container: String,
        bundle: PathBuf,
    },
    /// Takes a pod's container, gone from the guest, back from the VM.
    RemoveContainer {
        sandbox: String,
        config: Option<PathBuf>,
        container: String,
    },
}

/// Runs `step` in a child and waits for it; its error message if it
/// failed. Call from a thread that outlives the child (the worker's): the
/// child's death signal follows the thread that spawned it.
pub fn run(step: &Step) -> Result<(), String> {
    let request = serde_json::to_vec(step).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| format!("locating the shim binary: {e}"))?;
    let shim = nix::unistd::getpid();
    let mut command = Command::new(exe);
    command
        .arg(ARG)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: prctl, getppid, close_range and _exit are async-signal-safe
    // syscalls.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
            if nix::unistd::getppid() != shim {
                nix::libc::_exit(1);
            }
            // The shim holds inherited descriptors that are not
            // close-on-exec (seen: a pipe's write end, /dev/null): the
            // child, and the helpers it starts, get none of them.
            let cloexec = nix::libc::CLOSE_RANGE_CLOEXEC as nix::libc::c_int;
            if nix::libc::close_range(3, nix::libc::c_uint::MAX, cloexec) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("starting the shim's {ARG} child: {e}"))?;
    let written = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(&request))
        .transpose();
    let mut message = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = (&mut stderr).take(MAX_ERROR).read_to_string(&mut message);
        // The rest is read and dropped: a child blocked on a full pipe
        // would never exit to be waited for.
        let _ = std::io::copy(&mut stderr, &mut std::io::sink());
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for the shim's {ARG} child: {e}"))?;
    written.map_err(|e| format!("writing to the shim's {ARG} child: {e}"))?;
    // Its own peak RSS, its last line: the figure for the benches.
    let (message, peak) = match message.trim_end().rsplit_once('\n') {
        Some((rest, last)) if last.starts_with(PEAK) => (rest.trim(), Some(last)),
        _ if message.starts_with(PEAK) => ("", Some(message.trim_end())),
        _ => (message.trim(), None),
    };
    if let Some(peak) = peak {
        log::info!("{ARG} {}: {peak}", step.name());
    }
    match status.success() {
        true => {
            if !message.is_empty() {
                log::warn!("{ARG} {}: {message}", step.name());
            }
            Ok(())
        }
        false if message.is_empty() => Err(format!("the shim's {ARG} child: {status}")),
        false => Err(message.to_owned()),
    }
}

impl Step {
    fn sandbox(&self) -> &str {
        match self {
            Step::Create { sandbox, .. }
            | Step::Delete { sandbox, .. }
            | Step::AddContainer { sandbox, .. }
            | Step::RemoveContainer { sandbox, .. } => sandbox,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Step::Create { .. } => "create",
            Step::Delete { .. } => "delete",
            Step::AddContainer { .. } => "add-container",
            Step::RemoveContainer { .. } => "remove-container",
        }
    }
}

/// The child's whole life: reads its step from stdin, runs it, exits 0 or
/// 1 with the error on stderr.
pub fn main() -> ! {
    let done = read_request().and_then(|step| run_here(&step));
    if let Err(e) = &done {
        eprintln!("{e}");
    }
    eprintln!("{PEAK} {} KiB", own_peak_kib().unwrap_or(0));
    std::process::exit(i32::from(done.is_err()))
}

/// This process's peak RSS (`VmHWM`), in KiB.
fn own_peak_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn read_request() -> Result<Step, String> {
    let mut request = Vec::new();
    std::io::stdin()
        .take(MAX_REQUEST)
        .read_to_end(&mut request)
        .map_err(|e| format!("reading the step: {e}"))?;
    serde_json::from_slice(&request).map_err(|e| format!("reading the step: {e}"))
}

fn run_here(step: &Step) -> Result<(), String> {
    let id = SandboxId::parse(step.sandbox()).map_err(|e| e.to_string())?;
    match step {
        Step::Create {
            config,
            netns,
            container,
            bundle,
            pod,
            ..
        } => {
            let runtime = config::load(config.as_deref())?;
            let s = sandboxes(&runtime.jail)?;
            let container = ContainerSpec {
                id: container.clone(),
                bundle: bundle.clone(),
                pod: *pod,
            };
            s.create_with_containers(
                &id,
                &runtime,
                netns.as_deref(),
                std::slice::from_ref(&container),
            )
            .map_err(|e| e.to_string())?;
            // A failed start leaves the sandbox to the shim, which deletes
            // it after any failed create (also of a child killed midway).
            s.start(&id, START_TIMEOUT)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        Step::Delete { config, .. } => {
            match sandboxes_of(config)?.delete(&id, true, CLEANUP_TIMEOUT) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                Err(e) => Err(format!("deleting sandbox {id}: {e}")),
            }
        }
        Step::AddContainer {
            config,
            container,
            bundle,
            ..
        } => {
            let container = ContainerSpec {
                id: container.clone(),
                bundle: bundle.clone(),
                pod: true,
            };
            sandboxes_of(config)?
                .add_container(&id, &container)
                .map_err(|e| e.to_string())
        }
        Step::RemoveContainer {
            config, container, ..
        } => sandboxes_of(config)?
            .remove_container(&id, container)
            .map_err(|e| e.to_string()),
    }
}

/// The sandboxes of the state dir that `jail` names.
fn sandboxes(jail: &vmjail_config::JailConfig) -> Result<Sandboxes<SelectFactory>, String> {
    Ok(Sandboxes::new(
        jail,
        SelectFactory {
            vmjail_exe: config::vmjail_exe()?,
        },
    ))
}

/// The sandboxes of the state dir that configuration `config` names (only
/// its [jail] section is read).
fn sandboxes_of(config: &Option<PathBuf>) -> Result<Sandboxes<SelectFactory>, String> {
    let jail = vmjail_config::load_jail(config.as_deref())
        .map_err(|e| format!("vmjail configuration: {e}"))?;
    sandboxes(&jail)
}
