//! What this host's QEMU can do: a usable KVM, a seccomp sandbox.
//!
//! `/dev/kvm` existing is not enough (the paravirtual `kvm_pvm` module
//! accepts KVM_CREATE_VM but QEMU aborts setting up a vCPU), so KVM counts
//! as usable only when QEMU itself brings a stopped microvm up under it and
//! quits cleanly. Results are cached per QEMU binary: in this process, and
//! on disk under [`DISK_CACHE`] (a tmpfs, so a reboot clears it), keyed by
//! the binary's identity and the boot id, so each `vmjail create` does not
//! start QEMU twice more before the real one.

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

/// Where probe results persist between vmjail processes (root-only).
pub const DISK_CACHE: &str = "/run/vmjail-qemu-probe";

/// Probe `qemu` (once per process, and once per boot and binary on disk).
pub fn probe(qemu: &Path) -> Probe {
    if let Ok(guard) = CACHE.lock() {
        if let Some(found) = guard.as_ref().and_then(|m| m.get(qemu)) {
            return *found;
        }
    }
    let disk = disk_key(qemu).map(|key| Path::new(DISK_CACHE).join(key));
    let found = match disk.as_deref().and_then(read_cached) {
        Some(found) => found,
        None => {
            let found = Probe {
                kvm: kvm_usable(qemu),
                seccomp: seccomp_supported(qemu),
            };
            if let Some(file) = &disk {
                write_cached(file, found);
            }
            found
        }
    };
    if let Ok(mut guard) = CACHE.lock() {
        guard
            .get_or_insert_with(HashMap::new)
            .insert(qemu.to_path_buf(), found);
    }
    found
}

/// The binary's identity (device, inode, size, mtime) and this boot's id:
/// a replaced QEMU or a reboot (a KVM module loaded or not) probes anew.
fn disk_key(qemu: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(qemu).ok()?;
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(format!(
        "{}-{}-{}-{}.{}-{}",
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
        boot.trim()
    ))
}

/// A cached result, trusted only from a root-owned directory that nobody
/// else can write and a regular file (never through a symlink).
fn read_cached(file: &Path) -> Option<Probe> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    if !trusted_cache_dir() {
        return None;
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(file)
        .ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    (&mut f).take(64).read_to_string(&mut text).ok()?;
    match text.trim() {
        "kvm=0 seccomp=0" => Some(Probe {
            kvm: false,
            seccomp: false,
        }),
        "kvm=0 seccomp=1" => Some(Probe {
            kvm: false,
            seccomp: true,
        }),
        "kvm=1 seccomp=0" => Some(Probe {
            kvm: true,
            seccomp: false,
        }),
        "kvm=1 seccomp=1" => Some(Probe {
            kvm: true,
            seccomp: true,
        }),
        _ => None,
    }
}

/// The cache directory exists, is a real directory, root's and closed to
/// everyone else.
fn trusted_cache_dir() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(DISK_CACHE)
        .is_ok_and(|dir| dir.is_dir() && dir.uid() == 0 && dir.mode() & 0o077 == 0)
}

/// Best effort: a cache that cannot be written only costs the next probe.
fn write_cached(file: &Path, found: Probe) {
    use std::os::unix::fs::DirBuilderExt;
    let _ = std::fs::DirBuilder::new().mode(0o700).create(DISK_CACHE);
    if !trusted_cache_dir() {
        return;
    }
    let text = format!("kvm={} seccomp={}\n", found.kvm as u8, found.seccomp as u8);
    // Written beside and renamed: a reader never sees half a line.
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    if std::fs::write(&tmp, text).is_ok() && std::fs::rename(&tmp, file).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Root-only (the cache is root's): fails under CI when not root.
    #[test]
    fn cached_results_round_trip_and_a_planted_symlink_is_not_read() {
        if !nix::unistd::geteuid().is_root() {
            assert!(std::env::var_os("CI").is_none(), "needs root under CI");
            eprintln!("skipped: not root");
            return;
        }
        let file = Path::new(DISK_CACHE).join(format!("test-{}", std::process::id()));
        let found = Probe {
            kvm: false,
            seccomp: true,
        };
        write_cached(&file, found);
        assert_eq!(read_cached(&file), Some(found));
        std::fs::remove_file(&file).unwrap();

        std::os::unix::fs::symlink("/etc/hostname", &file).unwrap();
        assert_eq!(read_cached(&file), None);
        std::fs::remove_file(&file).unwrap();
        // The key changes with the binary and names this boot.
        let key = disk_key(Path::new("/bin/sh")).unwrap();
        assert_ne!(Some(key), disk_key(Path::new("/bin/ls")));
    }
}
