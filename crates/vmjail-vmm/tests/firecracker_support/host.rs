//! Host helpers for the tests that do the real thing: root checks, fresh
//! network namespaces, mount listing, locating built binaries.

use std::path::{Path, PathBuf};
use std::process::Command;

/// True when root; otherwise fail under `CI`, or print why and skip.
pub fn root_or_skip() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "this test needs root under CI"
    );
    println!("skipped: needs root");
    false
}

/// `<target>/debug`: the test executable is in its `deps/`.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// `vmjail` (for `vmjail jailer`) beside the test's deps directory, or
/// `$VMJAIL_EXE`.
pub fn jailer_exe() -> PathBuf {
    let exe = std::env::var_os("VMJAIL_JAILER_EXE")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("vmjail-jailer"));
    assert!(
        exe.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first (or set VMJAIL_JAILER_EXE)",
        exe.display()
    );
    exe
}

/// A fresh named netns, deleted on drop.
pub struct Netns(pub String);

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!("vmjail-fc-{tag}-{}", std::process::id());
        let status = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(status.success(), "ip netns add {name}");
        Netns(name)
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/var/run/netns/{}", self.0))
    }

    pub fn link_details(&self, link: &str) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.0, "-d", "link", "show", link])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

/// Mount points (in our mount namespace) at or below `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4).map(str::to_owned))
        .filter(|m| m.starts_with(&prefix))
        .collect()
}

/// A jail base directory under a fresh temp dir (0700, so not world-writable).
pub fn jail_base(work: &tempfile::TempDir) -> PathBuf {
    let base = work.path().join("jails");
    std::fs::create_dir(&base).unwrap();
    base
}

/// A stand-in VMM process running `script` (busybox `sh`) chrooted into
/// `root`, so that it is the jail's by the kernel's account (its root is
/// the jail root): vmjail signals only such a process. Needs root; paths
/// in `script` are inside `root`; its stdout is a pipe (the jail's files go
/// with its teardown, what it printed does not).
pub fn jailed_stand_in(root: &Path, script: &str) -> std::process::Child {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let busybox = bin.join("busybox");
    if !busybox.exists() {
        std::fs::copy("/bin/busybox", &busybox).expect("busybox-static (scripts/deps.sh)");
        for applet in ["sh", "sleep"] {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
    }
    let child = std::process::Command::new("/usr/sbin/chroot")
        .arg(root)
        .args(["/bin/sh", "-c", script])
        .env_clear()
        .env("PATH", "/bin")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // chroot(1) execs the shell: wait until it has.
    let comm = format!("/proc/{}/comm", child.id());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::fs::read_to_string(&comm).unwrap_or_default().trim() == "chroot" {
        assert!(std::time::Instant::now() < deadline, "chroot never exec'd");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child
}
