//! The whole create → start → pause/resume → attach/detach → stop path
//! through vmjail's real built-in jail (real mount namespace, chroot,
//! cgroups, netns, unprivileged uid), with `examples/fake_firecracker` as the
//! VMM: a small API server that checks every path it is handed opens inside
//! its chroot. Needs root (fails under `CI`, skips elsewhere when not root).

mod firecracker_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use firecracker_support::config::runtime_config;
use firecracker_support::host::{
    jail_base, jailer_exe, mounts_under, root_or_skip, target_dir, Netns,
};
use firecracker_support::lifecycle::full_lifecycle;
use vmjail_vmm::firecracker::{self, Firecracker};
use vmjail_vmm::{Hypervisor, VmmError, VmmRecord};

fn fake_firecracker() -> PathBuf {
    let exe = target_dir().join("examples/fake_firecracker");
    assert!(
        exe.is_file(),
        "{} is missing: `cargo test -p vmjail-vmm` builds it (or `cargo build -p vmjail-vmm --examples`)",
        exe.display()
    );
    exe
}

fn assets(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let kernel = dir.join("vmlinux");
    let initrd = dir.join("initrd.img");
    let disk = dir.join("disk.img");
    std::fs::write(&kernel, b"not really a kernel").unwrap();
    std::fs::write(&initrd, b"not really an initrd").unwrap();
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    (kernel, initrd, disk)
}

/// Each wait of the stop. Long on purpose: a stop that asked for
/// Ctrl-Alt-Del but did not see the VMM end waits all of it before
/// signalling, so any stop shorter than this ended on the graceful path,
/// however loaded the host (CI once took 1.15 s for it).
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The fake exits on Ctrl-Alt-Del like a rebooting guest: the graceful path
/// ends it, with no wait for a signal.
fn assert_ended_gracefully(stop: Duration) {
    assert!(
        stop < STOP_TIMEOUT,
        "stop took {stop:?}: the VMM did not end on Ctrl-Alt-Del"
    );
}

#[test]
fn fake_vmm_runs_the_whole_lifecycle_in_the_builtin_jail() {
    if !root_or_skip() {
        return;
    }
    let netns = Netns::new("fake");
    let work = tempfile::tempdir().unwrap();
    let base = jail_base(&work);
    let (kernel, initrd, disk) = assets(work.path());
    let config = runtime_config(&fake_firecracker(), None, &kernel, &initrd, &base);
    let id = format!("fc-fake-{}", std::process::id());
    let stop = full_lifecycle(&config, &jailer_exe(), &id, &netns, &disk, STOP_TIMEOUT);
    assert_ended_gracefully(stop);
}

#[test]
fn fake_vmm_in_a_new_pid_namespace_is_stopped_by_its_real_pid() {
    if !root_or_skip() {
        return;
    }
    let netns = Netns::new("pidns");
    let work = tempfile::tempdir().unwrap();
    let base = jail_base(&work);
    let (kernel, initrd, disk) = assets(work.path());
    let mut config = runtime_config(&fake_firecracker(), None, &kernel, &initrd, &base);
    config.jail.new_pid_ns = true;
    let id = format!("fc-pidns-{}", std::process::id());
    let stop = full_lifecycle(&config, &jailer_exe(), &id, &netns, &disk, STOP_TIMEOUT);
    assert_ended_gracefully(stop);
}

#[test]
fn a_failed_create_leaves_nothing_behind() {
    if !root_or_skip() {
        return;
    }
    let netns = Netns::new("fail");
    let work = tempfile::tempdir().unwrap();
    let base = jail_base(&work);
    let (_, initrd, _) = assets(work.path());
    let missing_kernel = work.path().join("no-such-kernel");
    let config = runtime_config(&fake_firecracker(), None, &missing_kernel, &initrd, &base);
    let id = format!("fc-fail-{}", std::process::id());
    let mut fc = Firecracker::new(&config, &jailer_exe()).unwrap();
    let mut recorder = |_: &VmmRecord| Ok(());
    let console = tempfile::tempfile().unwrap();
    let err = fc
        .create(&id, &netns.path(), console.into(), &mut recorder)
        .unwrap_err();
    let VmmError::Firecracker(inner) = &err else {
        panic!("{err}")
    };
    assert!(
        matches!(**inner, firecracker::Error::Place { what: "kernel", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("no-such-kernel"), "{err}");
    let jail_dir = fc.record().jail.jail_dir.clone();
    assert!(!jail_dir.as_os_str().is_empty());
    assert!(!jail_dir.exists(), "{} left behind", jail_dir.display());
    assert!(mounts_under(&base).is_empty());
}

#[test]
fn a_bad_sandbox_id_is_refused_before_anything_is_made() {
    let work = tempfile::tempdir().unwrap();
    let p = work.path();
    let config = runtime_config(p, None, p, p, p);
    let mut fc = Firecracker::new(&config, p).unwrap();
    let mut recorder = |_: &VmmRecord| -> std::io::Result<()> { panic!("nothing may be recorded") };
    for bad in ["../x", "a/b", "", "a_b"] {
        let err = fc
            .create(
                bad,
                Path::new("/proc/self/ns/net"),
                tempfile::tempfile().unwrap().into(),
                &mut recorder,
            )
            .unwrap_err();
        assert!(
            matches!(&err, VmmError::Firecracker(e) if matches!(**e, firecracker::Error::InvalidId(_))),
            "{bad}: {err}"
        );
    }
}

#[test]
fn a_boot_drive_is_recorded_before_it_is_placed_and_goes_with_the_jail() {
    if !root_or_skip() {
        return;
    }
    let netns = Netns::new("bootdrv");
    let work = tempfile::tempdir().unwrap();
    let base = jail_base(&work);
    let (kernel, initrd, disk) = assets(work.path());
    let config = runtime_config(&fake_firecracker(), None, &kernel, &initrd, &base);
    let id = format!("fc-bootdrv-{}", std::process::id());
    let mut fc = Firecracker::new(&config, &jailer_exe()).unwrap();
    fc.set_boot_drives(vec![vmjail_vmm::BlockDevice {
        id: "vmjail-c0".into(),
        host_path: disk.clone(),
        read_only: false,
    }])
    .unwrap();
    // Every record the backend saves: the drive must be in the first one
    // that names its mount.
    let mut saved: Vec<VmmRecord> = Vec::new();
    let mut recorder = |r: &VmmRecord| {
        saved.push(r.clone());
        Ok(())
    };
    let console = tempfile::tempfile().unwrap();
    fc.create(&id, &netns.path(), console.into(), &mut recorder)
        .unwrap();
    let in_jail = Path::new("/drives/boot/vmjail-c0");
    let root = fc.record().jail.root();
    let placed = root.join("drives/boot/vmjail-c0");
    assert!(placed.is_file(), "{} not placed", placed.display());
    assert!(mounts_under(&base)
        .iter()
        .any(|m| m.ends_with("drives/boot/vmjail-c0")));
    assert!(fc
        .record()
        .drives
        .iter()
        .any(|(d, p)| d == "vmjail-c0" && p == in_jail));
    let first_mount = saved
        .iter()
        .position(|r| format!("{:?}", r.jail).contains("vmjail-c0"))
        .expect("the drive's mount recorded");
    assert!(saved[first_mount]
        .drives
        .iter()
        .any(|(d, _)| d == "vmjail-c0"));
    // After create, boot drives are fixed.
    assert!(fc.set_boot_drives(Vec::new()).is_err());
    fc.stop(Duration::from_secs(5)).unwrap();
    assert!(mounts_under(&base).is_empty());
    assert!(disk.is_file(), "the image itself stays the caller's");
}
