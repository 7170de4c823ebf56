//! The QEMU backend for real: QEMU in vmjail's built-in jail, in a fresh
//! netns, booting vmjail's guest (scripts/build-guest.sh) under TCG.
//!
//! Needs root (fails under CI=true without it, skips otherwise) and the
//! `vmjail` binary beside the test executable's directory.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::linux::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use vmjail_config::{ConfigSource, HostFacts, HypervisorKind, KernelParam, RuntimeConfig};
use vmjail_jail::connect_in_jail;
use vmjail_vmm::qemu::{layout, Qemu, Qmp};
use vmjail_vmm::{BlockDevice, Hypervisor, VmState, VmmError, VmmRecord};

const MARKER: &str = "VMJAIL-GUEST-READY";
/// TCG on two shared cores: boots take seconds, allow minutes.
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
const JAIL_UID: u32 = 30000;

fn root_or_skip(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: needs root, and CI is set");
    }
    eprintln!("skipped: {test} needs root");
    false
}

fn jailer_exe() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("vmjail-jailer");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// The guest kernel and initramfs, built (idempotently) when missing.
fn guest_assets() -> (PathBuf, PathBuf) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = repo.join("build/guest");
    let kernel = dir.join("vmlinux");
    let initrd = dir.join("initramfs.cpio.gz");
    if !kernel.is_file() || !initrd.is_file() {
        let status = Command::new(repo.join("scripts/build-guest.sh"))
            .arg(&dir)
            .status()
            .expect("running scripts/build-guest.sh");
        assert!(status.success(), "scripts/build-guest.sh failed");
    }
    (
        kernel.canonicalize().unwrap(),
        initrd.canonicalize().unwrap(),
    )
}

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh named netns, removed on drop.
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        let name = unique("vmjail-t-q");
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(ok.success(), "ip netns add {name}");
        Netns(name)
    }
    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/var/run/netns/{}", self.0))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// vmjail's embedded default config, on the built guest, jailing under
/// `chroot_base`.
fn config(chroot_base: &Path, extra_params: &[&str]) -> RuntimeConfig {
    let (kernel, initrd) = guest_assets();
    let text = vmjail_config::EMBEDDED_DEFAULT
        .replace("/usr/share/vmjail/guest/vmlinux", kernel.to_str().unwrap())
        .replace(
            "/usr/share/vmjail/guest/initramfs.cpio.gz",
            initrd.to_str().unwrap(),
        );
    let host = HostFacts {
        cpus: 2,
        has_vhost_vsock: false,
    };
    let mut config = vmjail_config::load_str(&text, ConfigSource::Embedded, &host)
        .unwrap_or_else(|e| panic!("loading the embedded default: {e}"));
    config.jail.chroot_base_dir = chroot_base.to_path_buf();
    config.jail.uid = JAIL_UID;
    config.jail.gid = JAIL_UID;
    for param in extra_params {
        config.hypervisor.kernel_params.push(KernelParam {
            key: (*param).into(),
            value: None,
        });
    }
    config
}

fn chroot_base() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("vmjail-qemu-test")
        .tempdir()
        .unwrap()
}

/// A host file to take one VM's console (what the sandbox layer gives the
/// backend is a pipe to its bounded log; a file serves these tests).
fn console_log() -> tempfile::NamedTempFile {
    tempfile::NamedTempFile::new().unwrap()
}

/// The descriptor `create` hands the VMM as its console.
fn fd(log: &tempfile::NamedTempFile) -> OwnedFd {
    log.as_file().try_clone().unwrap().into()
}

fn console(log: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(log) {
        let _ = file.read_to_string(&mut text);
    }
    text
}

fn wait_for_console(log: &Path, needle: &str) -> String {
    let deadline = Instant::now() + BOOT_TIMEOUT;
    loop {
        let text = console(log);
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the console within {BOOT_TIMEOUT:?}; console:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Nothing of the VM is left: no process, no mount under the jail dir, no
/// cgroup, no jail dir.
fn assert_nothing_left(record: &VmmRecord) {
    if let Some(pid) = record.jail.vmm_pid {
        // (state, start time) of the pid; a zombie awaiting its reaper
        // (init, after the jailer left) runs nothing.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let state = fields.first().copied();
        let start: Option<u64> = fields.get(19).and_then(|s| s.parse().ok());
        let same = start.is_some() && start == record.jail.vmm_start_time;
        assert!(
            !same || matches!(state, Some("Z" | "X")),
            "QEMU pid {pid} still runs (state {state:?})"
        );
    }
    let jail_dir = &record.jail.jail_dir;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let leftover: Vec<&str> = mountinfo
        .lines()
        .filter(|l| {
            l.split(' ')
                .nth(4)
                .is_some_and(|m| Path::new(m).starts_with(jail_dir))
        })
        .collect();
    assert!(
        leftover.is_empty(),
        "mounts left under {}: {leftover:?}",
        jail_dir.display()
    );
    for cgroup in &record.jail.cgroups {
        assert!(!cgroup.exists(), "cgroup {} left", cgroup.display());
    }
    assert!(!jail_dir.exists(), "jail dir {} left", jail_dir.display());
}

/// Stops the VM (jail teardown included) when dropped, so a failing test
/// leaves nothing behind either. `stop` is idempotent.
struct StopOnDrop {
    record: Option<VmmRecord>,
    config: RuntimeConfig,
    exe: PathBuf,
}

impl StopOnDrop {
    fn new(config: &RuntimeConfig, exe: &Path) -> StopOnDrop {
        StopOnDrop {
            record: None,
            config: config.clone(),
            exe: exe.to_path_buf(),
        }
    }
    fn arm(&mut self, qemu: &Qemu) {
        self.record = Some(qemu.record().clone());
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(record) = self.record.take() {
            let _ = Qemu::from_record(record, &self.config, &self.exe).stop(STOP_TIMEOUT);
        }
    }
}

fn in_memory_recorder(
    saved: &mut Vec<VmmRecord>,
) -> impl FnMut(&VmmRecord) -> std::io::Result<()> + '_ {
    move |r: &VmmRecord| {
        saved.push(r.clone());
        Ok(())
    }
}

#[test]
fn qemu_boots_the_guest_in_the_jail_and_leaves_nothing() {
    if !root_or_skip("qemu_boots_the_guest_in_the_jail_and_leaves_nothing") {
        return;
    }
    let base = chroot_base();
    let netns = Netns::new();
    let config = config(base.path(), &[]);
    let exe = jailer_exe();
    let mut guard = StopOnDrop::new(&config, &exe);
    let mut qemu = Qemu::new(&config, &exe).unwrap();
    let mut saved = Vec::new();
    let id = unique("boot");
    let log = console_log();
    qemu.create(
        &id,
        &netns.path(),
        fd(&log),
        &mut in_memory_recorder(&mut saved),
    )
    .unwrap_or_else(|e| panic!("create: {e}"));
    guard.arm(&qemu);
    assert!(!saved.is_empty(), "create recorded nothing");
    assert_eq!(saved.last().unwrap(), qemu.record());
    assert_eq!(qemu.state().unwrap(), VmState::Created);
    qemu.start(BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("start: {e}"));
    let record = qemu.record().clone();
    let text = wait_for_console(log.path(), MARKER);
    let line = text.lines().find(|l| l.contains(MARKER)).unwrap();
    assert!(line.contains("uptime="), "no uptime in {line:?}");
    // The guest powers off by itself after the marker: QEMU exits.
    let deadline = Instant::now() + BOOT_TIMEOUT;
    while qemu.state().unwrap() != VmState::Stopped {
        assert!(
            Instant::now() < deadline,
            "QEMU did not exit after the guest powered off"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    qemu.stop(STOP_TIMEOUT)
        .unwrap_or_else(|e| panic!("stop: {e}"));
    assert_nothing_left(&record);
    // Idempotent.
    qemu.stop(STOP_TIMEOUT).unwrap();
}

#[test]
fn qemu_lifecycle_confinement_and_teardown() {
    if !root_or_skip("qemu_lifecycle_confinement_and_teardown") {
        return;
    }
    let base = chroot_base();
    let netns = Netns::new();
    // vmjail.hold: the guest stays up until the power button is pressed.
    let config = config(base.path(), &["vmjail.hold"]);
    let exe = jailer_exe();
    let mut qemu = Qemu::new(&config, &exe).unwrap();
    let mut guard = StopOnDrop::new(&config, &exe);
    let mut saved = Vec::new();
    let id = unique("cycle");
    let log = console_log();
    qemu.create(
        &id,
        &netns.path(),
        fd(&log),
        &mut in_memory_recorder(&mut saved),
    )
    .unwrap_or_else(|e| panic!("create: {e}"));
    guard.arm(&qemu);
    let record = qemu.record().clone();
    let pid = qemu.pid().expect("a VMM pid after create");
    assert_eq!(record.jail.vmm_pid, Some(pid));

    // Confinement: the jail uid, the given netns, only the chroot.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
    };
    let uid = JAIL_UID.to_string();
    assert_eq!(field("Uid:"), vec![uid.as_str(); 4]);
    assert_eq!(field("Gid:"), vec![uid.as_str(); 4]);
    assert_eq!(field("CapEff:"), vec!["0000000000000000"]);
    assert_eq!(field("NoNewPrivs:"), vec!["1"]);
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert!(comm.starts_with("qemu"), "pid {pid} is {comm:?}, not QEMU");
    let ns = std::fs::metadata(format!("/proc/{pid}/ns/net")).unwrap();
    let want = std::fs::metadata(netns.path()).unwrap();
    assert_eq!(
        ns.st_ino(),
        want.st_ino(),
        "QEMU is not in netns {}",
        netns.0
    );
    let root_seen = std::fs::metadata(format!("/proc/{pid}/root/")).unwrap();
    let jail_root = std::fs::metadata(record.jail.root()).unwrap();
    assert_eq!(
        (root_seen.st_dev(), root_seen.st_ino()),
        (jail_root.st_dev(), jail_root.st_ino()),
        "QEMU's root is not the jail root"
    );
    for host_only in ["etc/passwd", "home", "root", "proc/1", "work", "tmp"] {
        let p = PathBuf::from(format!("/proc/{pid}/root/{host_only}"));
        assert!(!p.exists(), "{} is visible to QEMU", p.display());
    }
    // Under TCG (this host's KVM cannot boot the guest) QEMU needs no device
    // node at all: above all no /dev/kvm or /dev/userfaultfd (review 5).
    if !vmjail_vmm::qemu::probe::probe(&config.hypervisor.path).kvm {
        let dev = PathBuf::from(format!("/proc/{pid}/root/dev"));
        let nodes: Vec<_> = walk(&dev)
            .into_iter()
            .filter(|p| {
                use std::os::unix::fs::FileTypeExt;
                std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_char_device())
            })
            .collect();
        assert!(nodes.is_empty(), "device nodes in a TCG jail: {nodes:?}");
    }
    // Every host file in the jail is a read-only mount.
    let probe = PathBuf::from(format!("/proc/{pid}/root/vmjail/vmlinux"));
    assert!(probe.exists());
    let writable = nix::unistd::access(&probe, nix::unistd::AccessFlags::W_OK);
    assert_eq!(
        writable,
        Err(nix::errno::Errno::EROFS),
        "the kernel is writable in the jail"
    );

    // create → start → pause → resume, QEMU's own status at each step.
    assert_eq!(qemu.state().unwrap(), VmState::Created);
    assert!(
        matches!(qemu.pause(), Err(VmmError::Qemu(_))),
        "pause before start"
    );
    qemu.start(BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("start: {e}"));
    assert_eq!(qemu.state().unwrap(), VmState::Running);
    wait_for_console(log.path(), "vmjail.hold: running until power-off");
    qemu.pause().unwrap_or_else(|e| panic!("pause: {e}"));
    assert_eq!(qemu.state().unwrap(), VmState::Paused);
    assert!(
        matches!(qemu.start(BOOT_TIMEOUT), Err(VmmError::Qemu(_))),
        "start twice"
    );

    // Another process's view: a backend rebuilt from the record.
    let mut other = Qemu::from_record(saved.last().unwrap().clone(), &config, &exe);
    assert_eq!(other.state().unwrap(), VmState::Paused);
    other.resume().unwrap_or_else(|e| panic!("resume: {e}"));
    assert_eq!(qemu.state().unwrap(), VmState::Running);

    // The ACPI power button reaches the held guest (what `stop` presses
    // first): its init reports it and powers off, and QEMU exits.
    assert!(!console(log.path()).contains("power button pressed"));
    let stream = connect_in_jail(
        &record.jail.root(),
        Path::new(layout::QMP_SOCKET),
        STOP_TIMEOUT,
        &|| true,
    )
    .unwrap();
    let mut qmp = Qmp::handshake(stream, STOP_TIMEOUT).unwrap();
    qmp.execute("system_powerdown", None).unwrap();
    wait_for_console(log.path(), "power button pressed");
    let deadline = Instant::now() + BOOT_TIMEOUT;
    while other.state().unwrap() != VmState::Stopped {
        assert!(Instant::now() < deadline, "the guest did not power off");
        std::thread::sleep(Duration::from_millis(50));
    }
    other
        .stop(STOP_TIMEOUT)
        .unwrap_or_else(|e| panic!("stop: {e}"));
    assert_eq!(other.state().unwrap(), VmState::Stopped);
    assert_nothing_left(&record);
    qemu.stop(STOP_TIMEOUT).unwrap();
}

#[test]
fn qemu_create_with_a_missing_kernel_fails_clearly_and_leaves_nothing() {
    if !root_or_skip("qemu_create_with_a_missing_kernel_fails_clearly_and_leaves_nothing") {
        return;
    }
    let base = chroot_base();
    let netns = Netns::new();
    let mut config = config(base.path(), &[]);
    config.hypervisor.kernel = base.path().join("no-such-vmlinux");
    let mut qemu = Qemu::new(&config, &jailer_exe()).unwrap();
    let mut saved = Vec::new();
    let err = qemu
        .create(
            &unique("nokernel"),
            &netns.path(),
            fd(&console_log()),
            &mut in_memory_recorder(&mut saved),
        )
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("kernel") && text.contains("no-such-vmlinux"),
        "{text}"
    );
    let record = saved.last().expect("create recorded before acting").clone();
    assert!(!record.jail.jail_dir.as_os_str().is_empty());
    assert_nothing_left(&record);
    assert!(
        matches!(qemu.state(), Err(VmmError::Qemu(_))),
        "state after a failed create"
    );
}

#[test]
fn qemu_rejects_acrn_bad_ids_and_unsupported_devices() {
    let base = chroot_base();
    // Never used: every create below is refused before the netns matters.
    let netns = PathBuf::from("/proc/self/ns/net");
    let mut config = config(base.path(), &[]);
    let exe = PathBuf::from("/nonexistent/vmjail");

    config.hypervisor_kind = HypervisorKind::Acrn;
    let err = Qemu::new(&config, &exe).err().expect("ACRN accepted");
    assert!(err.to_string().contains("ACRN is not available"), "{err}");
    config.hypervisor_kind = HypervisorKind::Qemu;

    // A vsock the backend can serve (its helper is installed) is taken:
    // the real one is tested through the binary (crates/vmjail/tests/vsock_qemu.rs).
    config.hypervisor.use_vsock = true;
    match vmjail_vmm::qemu::vhost_vsock::find() {
        Ok(_) => assert!(Qemu::new(&config, &exe).unwrap().capabilities().vsock),
        // Without it, refused up front rather than dropped.
        Err(_) => {
            let err = Qemu::new(&config, &exe).err().expect("use_vsock accepted");
            assert!(err.to_string().contains("use_vsock = false"), "{err}");
        }
    }
    config.hypervisor.use_vsock = false;

    let mut qemu = Qemu::new(&config, &exe).unwrap();
    let mut saved = Vec::new();
    for bad in ["../x", "", "a/b", &"x".repeat(65)] {
        let err = qemu
            .create(
                bad,
                &netns,
                fd(&console_log()),
                &mut in_memory_recorder(&mut saved),
            )
            .unwrap_err();
        assert!(err.to_string().contains("invalid sandbox id"), "{err}");
    }
    assert!(saved.is_empty(), "a rejected id recorded something");
    let device = BlockDevice {
        id: "d1".into(),
        host_path: "/dev/null".into(),
        read_only: true,
    };
    assert!(matches!(
        qemu.attach_block(&device, &mut in_memory_recorder(&mut saved)),
        Err(VmmError::Unsupported {
            kind: HypervisorKind::Qemu,
            ..
        })
    ));
    assert!(!qemu.capabilities().block_hotplug);
    assert!(matches!(
        qemu.add_vsock(
            &vmjail_vmm::VsockDevice { guest_cid: 3 },
            &mut in_memory_recorder(&mut saved)
        ),
        Err(VmmError::Unsupported { .. })
    ));
}

#[test]
fn qemu_stop_ends_a_running_guest_and_a_created_one() {
    if !root_or_skip("qemu_stop_ends_a_running_guest_and_a_created_one") {
        return;
    }
    let base = chroot_base();
    let netns = Netns::new();
    let config = config(base.path(), &["vmjail.hold"]);
    let exe = jailer_exe();
    let mut running = Qemu::new(&config, &exe).unwrap();
    let mut never_started = Qemu::new(&config, &exe).unwrap();
    let mut saved = Vec::new();
    let mut guard_running = StopOnDrop::new(&config, &exe);
    let mut guard_idle = StopOnDrop::new(&config, &exe);
    let log = console_log();
    running
        .create(
            &unique("run"),
            &netns.path(),
            fd(&log),
            &mut in_memory_recorder(&mut saved),
        )
        .unwrap_or_else(|e| panic!("create: {e}"));
    guard_running.arm(&running);
    never_started
        .create(
            &unique("idle"),
            &netns.path(),
            fd(&console_log()),
            &mut in_memory_recorder(&mut saved),
        )
        .unwrap_or_else(|e| panic!("create: {e}"));
    guard_idle.arm(&never_started);
    running.start(BOOT_TIMEOUT).unwrap();
    let record = running.record().clone();
    wait_for_console(log.path(), "vmjail.hold: running until power-off");
    running
        .stop(STOP_TIMEOUT)
        .unwrap_or_else(|e| panic!("stop running: {e}"));
    assert_eq!(running.state().unwrap(), VmState::Stopped);
    assert_nothing_left(&record);
    let idle = never_started.record().clone();
    never_started
        .stop(STOP_TIMEOUT)
        .unwrap_or_else(|e| panic!("stop created: {e}"));
    assert_nothing_left(&idle);
}

#[test]
fn qemu_pc_attaches_and_detaches_a_drive_in_the_jail() {
    if !root_or_skip("qemu_pc_attaches_and_detaches_a_drive_in_the_jail") {
        return;
    }
    let base = chroot_base();
    let netns = Netns::new();
    let mut config = config(base.path(), &["vmjail.hold"]);
    config.hypervisor.machine_type = "pc".into();
    let disk_dir = tempfile::tempdir().unwrap();
    let disk = disk_dir.path().join("disk.img");
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    let exe = jailer_exe();
    let mut guard = StopOnDrop::new(&config, &exe);
    let mut qemu = Qemu::new(&config, &exe).unwrap();
    assert!(qemu.capabilities().block_hotplug);
    let mut saved = Vec::new();
    let log = console_log();
    qemu.create(
        &unique("pc"),
        &netns.path(),
        fd(&log),
        &mut in_memory_recorder(&mut saved),
    )
    .unwrap_or_else(|e| panic!("create: {e}"));
    guard.arm(&qemu);
    let record = qemu.record().clone();
    qemu.start(BOOT_TIMEOUT).unwrap();
    wait_for_console(log.path(), "vmjail.hold: running until power-off");
    let device = BlockDevice {
        id: "data_1".into(),
        host_path: disk.clone(),
        read_only: true,
    };
    qemu.attach_block(&device, &mut in_memory_recorder(&mut saved))
        .unwrap_or_else(|e| panic!("attach: {e}"));
    let host_drive = vmjail_jail::host_path(&record.jail.root(), Path::new("/drives/data_1"));
    let last = saved.last().unwrap();
    assert!(
        last.jail.mounts.contains(&host_drive),
        "the drive mount was not saved"
    );
    assert_eq!(last.drives.len(), 1, "the attached drive was not saved");
    let pid = qemu.pid().unwrap();
    let seen = PathBuf::from(format!("/proc/{pid}/root/drives/data_1"));
    assert!(seen.exists(), "the drive is not in the jail");
    assert_eq!(
        qemu.record().drives,
        vec![("data_1".to_string(), PathBuf::from("/drives/data_1"))]
    );
    assert!(
        matches!(
            qemu.attach_block(&device, &mut in_memory_recorder(&mut saved)),
            Err(VmmError::Qemu(_))
        ),
        "attached twice"
    );
    qemu.detach_block("data_1", &mut in_memory_recorder(&mut saved))
        .unwrap_or_else(|e| panic!("detach: {e}"));
    assert!(qemu.record().drives.is_empty());
    assert!(
        saved.last().unwrap().drives.is_empty(),
        "the detach was not saved"
    );
    assert!(!seen.exists(), "the drive is still in the jail");
    assert!(matches!(
        qemu.detach_block("data_1", &mut in_memory_recorder(&mut saved)),
        Err(VmmError::Qemu(_))
    ));
    qemu.stop(STOP_TIMEOUT)
        .unwrap_or_else(|e| panic!("stop: {e}"));
    assert_nothing_left(qemu.record());
    assert!(disk.exists(), "stop removed the host's drive file");
}

/// Every path below `dir` (not following symlinks).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(walk(&path));
        }
        found.push(path);
    }
    found
}
