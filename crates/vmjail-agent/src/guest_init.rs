//! The agent as the guest's init: started as `vmjail-init` (a link to the
//! agent; the kernel runs it when vmjail passes `rdinit=/sbin/vmjail-init`),
//! it does what guest/init would have done before starting it — mount
//! /dev, /proc and /sys, put its stdio on the console — then serves with
//! the guest's settings. No shell runs first: under TCG the init script's
//! start, mounts and `grep` of the command line cost ~0.12 s on the path
//! to the first container. The guest's NICs, when vmjail names any on the
//! command line, are still set up by guest/net.sh, run before serving as
//! guest/init ran it before starting the agent. As PID 1 it must never
//! exit (the kernel would panic): when serving fails it powers the VM off,
//! as guest/init did.

use std::ffi::OsStr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::mount::{mount, MsFlags};

use crate::cli::Cli;
use crate::listen::ListenAddr;

/// The name the agent answers to as the guest's init.
pub const INIT_NAME: &str = "vmjail-init";
/// The modules loaded before it listens (guest/agent.modules).
const MODULES: &str = "/etc/vmjail/agent.modules";
/// The modules loaded once it is up (guest/container.modules).
const LATER_MODULES: &str = "/etc/vmjail/container.modules";
/// guest/net.sh, which needs guest/modules.sh's loader.
const NET_SCRIPT: &str = "/etc/vmjail/net.sh";
const NET_SETUP: &str = ". /etc/vmjail/modules.sh && . /etc/vmjail/net.sh";

/// Whether the program was started under [`INIT_NAME`] (its `argv[0]`).
pub fn applies(argv0: Option<&OsStr>) -> bool {
    argv0
        .and_then(|name| Path::new(name).file_name())
        .is_some_and(|name| name == INIT_NAME)
}

/// What guest/init would start the agent with.
pub fn command() -> Cli {
    Cli {
        listen: ListenAddr::default(),
        modules: Some(PathBuf::from(MODULES)),
        later_modules: Some(PathBuf::from(LATER_MODULES)),
        announce_ready: true,
        setup_guest: true,
    }
}

/// Mounts devtmpfs at /dev, procfs at /proc and sysfs at /sys (each unless
/// something is mounted there already: guest/init may have done it before
/// handing over), then puts stdin, stdout and stderr on /dev/console (the
/// kernel finds no console to open before /dev is mounted).
pub fn prepare() -> Result<(), String> {
    let nosuid_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    for (fs, dir, flags) in [
        ("devtmpfs", "/dev", MsFlags::MS_NOSUID),
        ("proc", "/proc", nosuid_noexec | MsFlags::MS_NODEV),
        ("sysfs", "/sys", nosuid_noexec | MsFlags::MS_NODEV),
    ] {
        let dir = Path::new(dir);
        if is_mount_point(dir)? {
            continue;
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        mount(Some(fs), dir, Some(fs), flags, None::<&str>)
            .map_err(|e| format!("mounting {fs} at {}: {e}", dir.display()))?;
    }
    let console = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/console")
        .map_err(|e| format!("opening /dev/console: {e}"))?;
    for fd in 0..3 {
        nix::unistd::dup2(console.as_raw_fd(), fd)
            .map_err(|e| format!("putting fd {fd} on /dev/console: {e}"))?;
    }
    Ok(())
}

/// Runs guest/net.sh (with busybox's shell) when the kernel command line
/// names a NIC (`vmjail.nic=`); the script waits for each NIC a bounded
/// time. A failure is reported, not fatal: the agent still serves.
pub fn configure_network() {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    if !names_a_nic(&cmdline) {
        return;
    }
    if !Path::new(NET_SCRIPT).exists() {
        eprintln!("vmjail-init: NICs named but no {NET_SCRIPT}");
        return;
    }
    match Command::new("/bin/busybox")
        .args(["sh", "-c", NET_SETUP])
        .status()
    {
        Ok(status) if status.success() => {}
        Ok(status) => eprintln!("vmjail-init: {NET_SCRIPT}: {status}"),
        Err(e) => eprintln!("vmjail-init: running {NET_SCRIPT}: {e}"),
    }
}

fn names_a_nic(cmdline: &str) -> bool {
    cmdline
        .split_whitespace()
        .any(|word| word.starts_with("vmjail.nic="))
}

/// Whether `dir` is on another filesystem than its parent.
fn is_mount_point(dir: &Path) -> Result<bool, String> {
    let Ok(own) = std::fs::metadata(dir) else {
        return Ok(false);
    };
    let parent = dir.parent().unwrap_or(Path::new("/"));
    let parent = std::fs::metadata(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    Ok(own.dev() != parent.dev())
}

/// Syncs and powers the VM off; never returns (PID 1 must not exit).
pub fn power_off(why: &str) -> ! {
    eprintln!("vmjail-init: {why}; powering off");
    let e = crate::shutdown::power_off();
    eprintln!("vmjail-init: power off: {e}");
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_init_name_makes_it_init() {
        assert!(applies(Some(OsStr::new("/sbin/vmjail-init"))));
        assert!(applies(Some(OsStr::new("vmjail-init"))));
        assert!(!applies(Some(OsStr::new("/sbin/vmjail-agent"))));
        assert!(!applies(Some(OsStr::new("/sbin/vmjail-init-not"))));
        assert!(!applies(None));
    }

    #[test]
    fn as_init_it_serves_as_guest_init_started_it() {
        let cli = command();
        assert_eq!(cli.listen, ListenAddr::Vsock(1024));
        assert_eq!(cli.modules.as_deref(), Some(Path::new(MODULES)));
        assert_eq!(cli.later_modules.as_deref(), Some(Path::new(LATER_MODULES)));
        assert!(cli.announce_ready && cli.setup_guest);
    }

    #[test]
    fn the_network_script_runs_only_for_named_nics() {
        assert!(names_a_nic(
            "console=ttyS0 vmjail.nic=net0,02:00:00:00:00:01,1500 quiet"
        ));
        assert!(!names_a_nic(
            "console=ttyS0 vmjail.agent rdinit=/sbin/vmjail-init"
        ));
        assert!(!names_a_nic("xvmjail.nic=net0"));
    }

    #[test]
    fn mount_points_are_told_from_plain_directories() {
        assert!(is_mount_point(Path::new("/proc")).unwrap());
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_mount_point(dir.path()).unwrap());
        assert!(!is_mount_point(&dir.path().join("missing")).unwrap());
    }
}
