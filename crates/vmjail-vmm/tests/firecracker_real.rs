//! Real Firecracker, jailed both ways (vmjail's built-in jail and
//! Firecracker's own `jailer`) in a fresh netns, driven through the whole
//! VMM-side lifecycle. Runs when `VMJAIL_FIRECRACKER` names a firecracker
//! binary (and `VMJAIL_JAILER` a jailer for the external case), with
//! `VMJAIL_FC_KERNEL` and `VMJAIL_FC_INITRD` naming a guest kernel and
//! initrd (default: `build/guest/vmlinux` and `initramfs.cpio.gz` from
//! `scripts/build-guest.sh`). Without them each test prints why it skipped.
//!
//! What is proven is the VMM side, through Firecracker's API: the jailed
//! process (uid, netns), the tap it opens, InstanceStart accepted, state,
//! pause/resume, a drive swapped by PATCH after boot, the log and metrics
//! FIFOs reaching vmjail's log, stop (the whole thread group gone before the
//! tap is removed) and nothing left behind. Not the guest's own output: on
//! the build hosts `/dev/kvm` is the paravirtual `kvm_pvm`, under which a
//! stock guest kernel crawls after InstanceStart and dies within a minute,
//! so nothing here waits for the guest (its boot is proven under QEMU/TCG).

mod firecracker_support;

use std::path::PathBuf;
use std::time::Duration;

use firecracker_support::config::runtime_config;
use firecracker_support::host::{jail_base, jailer_exe, root_or_skip, Netns};
use firecracker_support::lifecycle::full_lifecycle;

fn binary(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            println!("skipped: {var} not set");
            None
        }
    }
}

/// `$var`, else the asset `scripts/build-guest.sh` leaves in `build/guest`.
fn guest_asset(var: &str, built: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../build/guest")
            .join(built)
    });
    assert!(
        path.is_file(),
        "{} is not a file: set {var} or run scripts/build-guest.sh",
        path.display()
    );
    path
}

fn run(tag: &str, jailer: Option<PathBuf>) {
    let Some(firecracker) = binary("VMJAIL_FIRECRACKER") else {
        return;
    };
    if !root_or_skip() {
        return;
    }
    let kernel = guest_asset("VMJAIL_FC_KERNEL", "vmlinux");
    let initrd = guest_asset("VMJAIL_FC_INITRD", "initramfs.cpio.gz");
    let netns = Netns::new(tag);
    let work = tempfile::tempdir().unwrap();
    let base = jail_base(&work);
    let disk = work.path().join("disk.img");
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    let mut config = runtime_config(&firecracker, jailer.as_deref(), &kernel, &initrd, &base);
    // Debug level: Firecracker logs each API request, so the log FIFO
    // carries lines whatever the guest does (at Warning it may stay silent).
    config.hypervisor.enable_debug = true;
    let id = format!("fc-{tag}-{}", std::process::id());
    full_lifecycle(
        &config,
        &jailer_exe(),
        &id,
        &netns,
        &disk,
        Duration::from_secs(2),
    );
}

#[test]
fn real_firecracker_in_the_builtin_jail() {
    run("real-builtin", None);
}

#[test]
fn real_firecracker_under_its_own_jailer() {
    if std::env::var_os("VMJAIL_FIRECRACKER").is_none() {
        println!("skipped: VMJAIL_FIRECRACKER not set");
        return;
    }
    let Some(jailer) = binary("VMJAIL_JAILER") else {
        return;
    };
    run("real-jailer", Some(jailer));
}
