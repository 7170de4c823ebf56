//! What this host's QEMU can do: a usable KVM, a seccomp sandbox.
//!
//! `/dev/kvm` existing is not enough (the paravirtual `kvm_pvm` module
//! accepts KVM_CREATE_VM but QEMU aborts setting up a vCPU), so KVM counts
//! as usable only when QEMU itself brings a stopped microvm up under it and
//! quits cleanly. Results are cached per QEMU binary for this process.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The capabilities found for one QEMU binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub kvm: bool,
    pub seccomp: bool,
}

static CACHE: Mutex<Option<HashMap<PathBuf, Probe>>> = Mutex::new(None);

/// Probe `qemu` (once per process).
pub fn probe(qemu: &Path) -> Probe {
    if let Ok(guard) = CACHE.lock() {
        if let Some(found) = guard.as_ref().and_then(|m| m.get(qemu)) {
            return *found;
        }
    }
    let found = Probe {
        kvm: kvm_usable(qemu),
        seccomp: seccomp_supported(qemu),
    };
    if let Ok(mut guard) = CACHE.lock() {
        guard
            .get_or_insert_with(HashMap::new)
            .insert(qemu.to_path_buf(), found);
    }
    found
}

/// Run `command` with `input` on stdin; true when it exits 0 within
/// `timeout` (killed otherwise).
fn succeeds(mut command: Command, input: &[u8], timeout: Duration) -> bool {
    let Ok(mut child) = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

/// A KVM QEMU can run a vCPU on.
fn kvm_usable(qemu: &Path) -> bool {
    let openable = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    if !openable {
        return false;
    }
    let mut command = Command::new(qemu);
    command.args([
        "-machine",
        "microvm,accel=kvm",
        "-cpu",
        "host",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-S",
        "-monitor",
        "stdio",
    ]);
    succeeds(command, b"quit\n", Duration::from_secs(10))
}

/// QEMU was built with seccomp: `-sandbox` is parsed before `-version`
/// exits, and a build without it rejects the option.
fn seccomp_supported(qemu: &Path) -> bool {
    let mut command = Command::new(qemu);
    command.args(["-sandbox", "on", "-version"]);
    succeeds(command, b"", Duration::from_secs(10))
}
