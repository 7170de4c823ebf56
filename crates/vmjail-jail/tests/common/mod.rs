//! Shared helpers of the jail integration tests: root gating, locating the
//! binaries, unique names, launching the probe in a jail, reading its report.
#![allow(dead_code)]

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use vmjail_jail::{
    teardown, CgroupVersion, Jail, JailError, JailRecord, JailSpec, Jailer, LaunchStdio,
};

pub const UID: u32 = 43_210;
pub const GID: u32 = 43_211;

/// Root-only tests: fail in CI when not root, else skip with a reason.
pub fn root_or_skip(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: needs root, and CI is set");
    }
    eprintln!("skipped: {test} needs root");
    false
}

fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("test exe lives in <target>/<profile>/deps")
        .to_path_buf()
}

fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the workspace binaries first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

pub fn jailer_exe() -> PathBuf {
    binary("vmjail-jailer")
}

/// The `vmjail` binary (its `jailer` subcommand is the same jailer).
pub fn vmjail_exe() -> PathBuf {
    binary("vmjail")
}

pub fn probe_exe() -> PathBuf {
    binary("vmjail-probe")
}

/// Which jailer a conformance case runs against.
#[derive(Debug, Clone)]
pub enum Kind {
    BuiltIn,
    Firecracker(PathBuf),
}

impl Kind {
    pub fn builtin(&self) -> bool {
        matches!(self, Kind::BuiltIn)
    }

    pub fn jailer(&self) -> Jailer {
        match self {
            Kind::BuiltIn => Jailer::BuiltIn {
                jailer_exe: jailer_exe(),
            },
            Kind::Firecracker(path) => Jailer::Firecracker {
                jailer_path: path.clone(),
            },
        }
    }
}

/// The built-in jailer always; Firecracker's when `VMJAIL_JAILER` names it.
pub fn for_each_jailer(test: &str, case: impl Fn(&Kind)) {
    if !root_or_skip(test) {
        return;
    }
    case(&Kind::BuiltIn);
    match std::env::var_os("VMJAIL_JAILER") {
        Some(path) => case(&Kind::Firecracker(PathBuf::from(path))),
        None => eprintln!("skipped: {test} against Firecracker's jailer: VMJAIL_JAILER not set"),
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A unique id/name for this process and call.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// The probe under a name Firecracker's jailer accepts (it requires
/// "firecracker" in the exec file name), in a private directory.
pub struct ProbeFile {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

pub fn probe_file() -> ProbeFile {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("probe-firecracker");
    std::fs::copy(probe_exe(), &path).expect("copy probe");
    ProbeFile { _dir: dir, path }
}

/// A chroot base dir (0700, root-owned, under /tmp).
pub fn base_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("vmjail-jail-test")
        .tempdir()
        .expect("tempdir")
}

pub fn spec(id: &str, exec: &Path, base: &Path) -> JailSpec {
    JailSpec {
        id: id.to_owned(),
        exec_file: exec.to_path_buf(),
        uid: UID,
        gid: GID,
        chroot_base_dir: base.to_path_buf(),
        netns: None,
        cgroup_version: CgroupVersion::V1,
        cgroups: Vec::new(),
        parent_cgroup: None,
        rlimit_fsize: None,
        rlimit_no_file: 2048,
        new_pid_ns: false,
        daemonize: false,
        devices: ["/dev/kvm", "/dev/net/tun", "/dev/urandom"]
            .into_iter()
            .map(PathBuf::from)
            .collect(),
        vmm_args: ["--report", "/report.json", "--hold"]
            .iter()
            .map(Into::into)
            .collect(),
        api_socket_in_jail: None,
    }
}

/// The record as last saved, shared with the recorder closure.
#[derive(Clone, Default)]
pub struct Saved(pub Rc<RefCell<JailRecord>>);

impl Saved {
    pub fn recorder(&self) -> impl FnMut(&JailRecord) -> std::io::Result<()> {
        let cell = self.0.clone();
        move |r: &JailRecord| {
            *cell.borrow_mut() = r.clone();
            Ok(())
        }
    }

    pub fn get(&self) -> JailRecord {
        self.0.borrow().clone()
    }
}

/// A launched probe; tears the jail down when dropped (even on panic).
pub struct Running {
    pub jail: Jail,
    pub saved: Saved,
    pub pid: i32,
    pub _base: tempfile::TempDir,
    pub _probe: ProbeFile,
}

impl Running {
    pub fn report(&self) -> Value {
        wait_report(&self.jail.root().join("report.json"))
    }

    pub fn teardown(&self) {
        teardown(&self.saved.get(), Duration::from_millis(500)).expect("teardown");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = teardown(&self.saved.get(), Duration::from_millis(500));
    }
}

/// Prepare, place the probe's libraries, launch.
pub fn launch(kind: &Kind, customize: impl FnOnce(&mut JailSpec)) -> Result<Running, JailError> {
    launch_jail(kind, customize, |_| {}, LaunchStdio::default())
}

/// [`launch`], with the prepared jail adjusted by `configure` and the
/// launched process given `stdio`.
pub fn launch_jail(
    kind: &Kind,
    customize: impl FnOnce(&mut JailSpec),
    configure: impl FnOnce(&mut Jail),
    stdio: LaunchStdio,
) -> Result<Running, JailError> {
    let base = base_dir();
    let probe = probe_file();
    let mut spec = spec(&unique("p"), &probe.path, base.path());
    customize(&mut spec);
    let saved = Saved::default();
    let mut recorder = saved.recorder();
    let mut jail = Jail::prepare(spec, kind.jailer(), &mut recorder)?;
    configure(&mut jail);
    let result = jail
        .place_shared_libraries(&mut recorder)
        .and_then(|_| jail.launch_with(&mut recorder, stdio));
    match result {
        Ok(pid) => Ok(Running {
            jail,
            saved,
            pid,
            _base: base,
            _probe: probe,
        }),
        Err(e) => {
            teardown(&saved.get(), Duration::from_millis(500))
                .expect("teardown after failed launch");
            Err(e)
        }
    }
}

pub fn wait_report(path: &Path) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return serde_json::from_str(&text).expect("probe report is JSON");
        }
        assert!(
            Instant::now() < deadline,
            "no probe report at {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `/proc/<pid>/status` field.
pub fn status_field(pid: i32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("{field} missing"))
        .trim()
        .to_owned()
}

pub fn host_mounts_under(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .filter(|m| Path::new(m).starts_with(dir))
        .collect()
}
