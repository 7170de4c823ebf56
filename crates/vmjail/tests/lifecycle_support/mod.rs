//! Shared by the `lifecycle_*` tests: a private state dir, jail base and
//! config pointing at the repository's real guest (`build/guest/*`), a
//! runner for the real `vmjail` binary, and leak checks.
#![allow(dead_code)] // each test file uses a different subset

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// True when the test may run; panics in CI (`CI` set) when not root.
pub fn require_root() -> bool {
    if euid() == 0 {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run the lifecycle tests as root"
    );
    eprintln!("skipped: the lifecycle tests need root (namespaces, mounts, cgroups)");
    false
}

/// Our effective uid, from /proc (the test crate has no syscall crate).
pub fn euid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

/// The real uid of `pid`.
pub fn uid_of(pid: i64) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Send `signal` (e.g. "KILL", "TERM") to `pid` with kill(1).
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

mod uid_block;

/// How many uid/gid pairs a world's sandboxes are given from (one each).
pub const ID_RANGE: u32 = 16;

/// One test's world: its own state dir, jail base, cgroup parent, config.
pub struct World {
    pub dir: tempfile::TempDir,
    pub state_dir: PathBuf,
    pub chroot_base: PathBuf,
    pub parent_cgroup: String,
    pub config: PathBuf,
    /// The first jail uid/gid of this world's range of [`ID_RANGE`], unique
    /// per world: any process left with one of them is a stray VMM of this
    /// test.
    pub jail_uid: u32,
    /// The claim that keeps `jail_uid`'s range this world's alone.
    _uids: uid_block::UidBlock,
}

impl World {
    /// `tag` must be unique per test (it names the cgroup parent).
    pub fn new(tag: &str) -> Self {
        Self::with_kernel(tag, &repo_root().join("build/guest/vmlinux"))
    }

    pub fn with_kernel(tag: &str, kernel: &Path) -> Self {
        let guest = repo_root().join("build/guest");
        let initrd = guest.join("initramfs.cpio.gz");
        for asset in [&guest.join("vmlinux"), &initrd] {
            assert!(
                asset.exists(),
                "guest asset {} is missing: run scripts/build-guest.sh build/guest first",
                asset.display()
            );
        }
        // Short paths: the QMP socket path inside the jail must fit sun_path.
        let dir = tempfile::Builder::new()
            .prefix("vmjail-lt-")
            .tempdir_in("/tmp")
            .unwrap();
        let state_dir = dir.path().join("state");
        let chroot_base = dir.path().join("jail");
        let parent_cgroup = format!("vmjail-lt-{tag}-{}", std::process::id());
        let uids = uid_block::UidBlock::claim(
            tag.bytes().fold(std::process::id(), |h, b| {
                h.wrapping_mul(31).wrapping_add(b.into())
            }),
            ID_RANGE,
        );
        let jail_uid = uids.first;
        let config = dir.path().join("config.toml");
        // The jail expects its base directory to exist.
        std::fs::create_dir(&chroot_base).unwrap();
        std::fs::write(
            &config,
            format!(
                r#"[hypervisor.qemu]
path = "/usr/bin/qemu-system-x86_64"
kernel = "{kernel}"
initrd = "{initrd}"
machine_type = "microvm"
default_vcpus = 1
default_memory = 256
block_device_driver = "virtio-mmio"
use_vsock = false

[agent.kata]

[runtime]
internetworking_model = "tcfilter"

[jail]
uid = {jail_uid}
gid = {jail_uid}
id_range_size = {ID_RANGE}
chroot_base_dir = "{chroot}"
state_dir = "{state}"
parent_cgroup = "{parent_cgroup}"
"#,
                kernel = kernel.display(),
                initrd = initrd.display(),
                chroot = chroot_base.display(),
                state = state_dir.display(),
            ),
        )
        .unwrap();
        Self {
            dir,
            state_dir,
            chroot_base,
            parent_cgroup,
            config,
            jail_uid,
            _uids: uids,
        }
    }

    /// Like [`World::new`], with `lines` added to its `[jail]` table.
    pub fn with_jail_lines(tag: &str, lines: &str) -> Self {
        let world = Self::new(tag);
        let mut text = std::fs::read_to_string(&world.config).unwrap();
        text.push_str(lines);
        text.push('\n');
        std::fs::write(&world.config, text).unwrap();
        world
    }

    /// Keep the guest running after its marker until `stop` presses its
    /// power button (`vmjail.hold` on the kernel command line).
    pub fn hold_guest(&self) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let held = text.replacen(
            "[hypervisor.qemu]\n",
            "[hypervisor.qemu]\nkernel_params = \"vmjail.hold\"\n",
            1,
        );
        assert_ne!(held, text, "no [hypervisor.qemu] table");
        std::fs::write(&self.config, held).unwrap();
    }

    /// Give the guest a vsock (`use_vsock = true`): QEMU's is served by
    /// the jailed vhost-device-vsock, and the guest starts its agent.
    pub fn use_vsock(&self) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let with = text.replacen("use_vsock = false", "use_vsock = true", 1);
        assert_ne!(with, text, "no use_vsock in the config");
        std::fs::write(&self.config, with).unwrap();
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vmjail"));
        cmd.arg("--config").arg(&self.config).args(args);
        cmd.env_remove("VMJAIL_TEST_CRASH_AT");
        cmd
    }

    /// Run `vmjail --config <ours> ARGS` to completion.
    pub fn vmjail(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Run and require exit code `code`; returns stdout.
    pub fn expect(&self, args: &[&str], code: i32) -> String {
        let out = self.vmjail(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "vmjail {args:?}: expected exit {code}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        self.expect(args, 0)
    }

    /// Spawn `vmjail` with stdout/stderr piped.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    /// `state.json` as stored (for the recorded resources).
    pub fn stored(&self, id: &str) -> Option<Value> {
        let text = std::fs::read_to_string(self.state_dir.join(id).join("state.json")).ok()?;
        Some(serde_json::from_str(&text).unwrap())
    }

    /// Poll `state` until `status`, within `timeout`.
    pub fn wait_status(&self, id: &str, status: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self.vmjail(&["state", id]);
            if out.status.success() {
                let v: Value = serde_json::from_slice(&out.stdout).unwrap();
                if v["status"] == status {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "sandbox {id} never became {status}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Poll the console log `state` names until it holds `needle` and the
    /// rest of its line.
    pub fn wait_console(&self, id: &str, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            // Not there yet (a `run` still creating it) reads as no log.
            let out = self.vmjail(&["state", id]);
            let state: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            let text = state["console_log"]
                .as_str()
                .and_then(|log| std::fs::read(log).ok())
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_default();
            // The whole line: the console log may end mid-line.
            if text
                .find(needle)
                .is_some_and(|at| text[at..].contains('\n'))
            {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{id}: {needle:?} never appeared on the console:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every resource a sandbox can leave: checked after delete/gc.
    pub fn assert_no_leaks(&self, id: &str, recorded: Option<&Value>) {
        assert!(!self.state_dir.join(id).exists(), "{id}: state dir left");
        assert!(
            !self.state_dir.join(format!("{id}.lock")).exists(),
            "{id}: lock file left"
        );
        let netns = Path::new("/run/netns").join(format!("vmjail-{id}"));
        assert!(!netns.exists(), "{id}: netns {} left", netns.display());
        if let Ok(execs) = std::fs::read_dir(&self.chroot_base) {
            for exec in execs.flatten() {
                let jail = exec.path().join(id);
                assert!(!jail.exists(), "{id}: chroot {} left", jail.display());
            }
        }
        let mounts = mounts_under(self.dir.path());
        assert!(mounts.is_empty(), "{id}: mounts left: {mounts:?}");
        let procs = processes_mentioning(&[id, self.dir.path().to_str().unwrap()]);
        assert!(procs.is_empty(), "{id}: processes left: {procs:?}");
        let strays: Vec<_> = (self.jail_uid..self.jail_uid + ID_RANGE)
            .flat_map(processes_of_uid)
            .collect();
        assert!(strays.is_empty(), "{id}: stray VMM processes: {strays:?}");
        for uid in self.jail_uid..self.jail_uid + ID_RANGE {
            let claim =
                std::fs::read_to_string(format!("/run/vmjail-ids/{uid}")).unwrap_or_default();
            assert!(
                !(claim.contains(&format!("\"{id}\""))
                    && claim.contains(self.state_dir.to_str().unwrap())),
                "{id}: uid claim {uid} left: {claim}"
            );
        }
        let cgroups = cgroups_of(&self.parent_cgroup, id);
        assert!(cgroups.is_empty(), "{id}: cgroups left: {cgroups:?}");
        let vmm = recorded.and_then(|s| s.get("vmm")).filter(|v| !v.is_null());
        // Helpers (QEMU's vsock back-end) are jails like the VMM's.
        let helpers = vmm
            .and_then(|v| v["helpers"].as_array().cloned())
            .unwrap_or_default();
        for jail in vmm
            .iter()
            .map(|v| &v["jail"])
            .chain(helpers.iter().map(|h| &h["jail"]))
        {
            for path in jail["cgroups"].as_array().unwrap() {
                let path = Path::new(path.as_str().unwrap());
                assert!(
                    !path.exists(),
                    "{id}: recorded cgroup {} left",
                    path.display()
                );
            }
            for m in jail["mounts"].as_array().unwrap() {
                let m = m.as_str().unwrap();
                assert!(
                    !mounts_under(Path::new(m)).iter().any(|x| x == Path::new(m)),
                    "{id}: recorded mount {m} left"
                );
            }
            if let Some(pid) = jail["vmm_pid"].as_i64() {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let start = jail["vmm_start_time"].as_u64();
                let alive = !stat.is_empty()
                    && start.is_none_or(|s| stat_start_time(&stat) == Some(s))
                    && !stat.contains(") Z ");
                assert!(!alive, "{id}: VMM pid {pid} still runs");
            }
        }
    }
}

impl Drop for World {
    /// Remove this test's (by now empty) cgroup parents; a non-empty one
    /// fails the rmdir and stays for the leak check to see.
    fn drop(&mut self) {
        // A failed test must not leave guests running (and spinning CPU) on
        // the host: its sandboxes are force-deleted, best effort.
        if std::thread::panicking() {
            for entry in std::fs::read_dir(&self.state_dir).into_iter().flatten() {
                let Ok(entry) = entry else { continue };
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    let _ = Command::new(env!("CARGO_BIN_EXE_vmjail"))
                        .arg("--config")
                        .arg(&self.config)
                        .args(["delete", "--force"])
                        .arg(entry.file_name())
                        .output();
                }
            }
        }
        for root in cgroup_roots() {
            let _ = std::fs::remove_dir(root.join(&self.parent_cgroup));
        }
    }
}

/// Field 22 of a /proc/<pid>/stat line (counted after the comm's `)`).
pub fn stat_start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Mount points at or under `dir` in our mount namespace.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// Processes (other than us) whose command line mentions any needle.
pub fn processes_mentioning(needles: &[&str]) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        if stat.contains(") Z ") {
            continue;
        }
        if needles.iter().any(|n| cmdline.contains(n)) {
            found.push((pid, cmdline));
        }
    }
    found
}

/// Live processes (not zombies) whose real uid is `uid`.
pub fn processes_of_uid(uid: u32) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .map(str::to_owned)
        };
        let zombie = field("State:").is_some_and(|s| s == "Z");
        if !zombie && field("Uid:").and_then(|u| u.parse().ok()) == Some(uid) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push((pid, String::from_utf8_lossy(&cmdline).replace('\0', " ")));
        }
    }
    found
}

/// Every cgroup hierarchy root on this host (v1 controllers and v2).
pub fn cgroup_roots() -> Vec<PathBuf> {
    let mut roots = vec![PathBuf::from("/sys/fs/cgroup")];
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in entries.flatten() {
            let is_link = e.file_type().map(|t| t.is_symlink()).unwrap_or(true);
            if e.path().is_dir() && !is_link {
                roots.push(e.path());
            }
        }
    }
    roots
}

/// Cgroup directories named after sandbox `id` under `parent`.
pub fn cgroups_of(parent: &str, id: &str) -> Vec<PathBuf> {
    cgroup_roots()
        .into_iter()
        .map(|r| r.join(parent).join(id))
        .filter(|p| p.exists())
        .collect()
}

/// The inode of a namespace file.
pub fn ns_inode(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().ino()
}

/// A unique, short sandbox id for this test process.
pub fn unique_id(tag: &str) -> String {
    format!("{tag}-{}", std::process::id())
}
