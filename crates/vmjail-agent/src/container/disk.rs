//! A bundle on a disk: the host gives a container its bundle as an ext4
//! image on a virtio-blk drive whose serial it chose; the agent finds the
//! drive by that serial (`/sys/block/vd*/serial`) and mounts it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// Where the agent mounts the bundle disk of container `id`.
pub const BUNDLES_DIR: &str = "/run/vmjail-bundles";
/// How long the drive may take to appear (its driver probes it at boot).
const APPEAR_TIMEOUT: Duration = Duration::from_secs(5);
/// virtio-blk serials are at most 20 bytes.
const MAX_SERIAL: usize = 20;

/// A serial the host may ask for: 1 to 20 of `[A-Za-z0-9_-]`.
pub fn valid_serial(serial: &str) -> bool {
    !serial.is_empty()
        && serial.len() <= MAX_SERIAL
        && serial
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b))
}

/// The mount point of container `id`'s bundle disk.
pub fn mount_point(id: &str) -> PathBuf {
    Path::new(BUNDLES_DIR).join(id)
}

/// The name (`vdX`) of the virtio-blk disk whose serial is `serial`,
/// waiting up to [`APPEAR_TIMEOUT`] for it to appear.
fn find(sys_block: &Path, serial: &str) -> Result<String, String> {
    let deadline = Instant::now() + APPEAR_TIMEOUT;
    loop {
        if let Some(name) = scan(sys_block, serial)? {
            return Ok(name);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "no disk with serial {serial:?} in {} after {}s",
                sys_block.display(),
                APPEAR_TIMEOUT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One look through `sys_block` for a `vd*` disk with `serial`.
fn scan(sys_block: &Path, serial: &str) -> Result<Option<String>, String> {
    let entries = std::fs::read_dir(sys_block)
        .map_err(|e| format!("listing {}: {e}", sys_block.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with("vd") || !name[2..].bytes().all(|b| b.is_ascii_lowercase()) {
            continue;
        }
        let Ok(file) = std::fs::File::open(entry.path().join("serial")) else {
            continue;
        };
        let mut text = String::new();
        // Bounded: a serial is 20 bytes, plus a newline.
        if file.take(64).read_to_string(&mut text).is_err() {
            continue;
        }
        if text.trim_end_matches(['\n', '\0']) == serial {
            return Ok(Some(name.to_owned()));
        }
    }
    Ok(None)
}

/// Read-ahead for a bundle disk, in KiB (the kernel's default is 128).
const READ_AHEAD_KIB: &str = "4096";

/// Sets the read-ahead of `disk` (its `/sys/block` directory) to
/// [`READ_AHEAD_KIB`]: a container's first exec reads its binaries from
/// this disk, and with the default each 128 KiB is a virtio request of its
/// own (under TCG a busybox `echo` from the disk ran 25-30 ms sooner with
/// this). Best effort: only speed is at stake.
fn widen_read_ahead(disk: &Path) {
    let knob = disk.join("queue/read_ahead_kb");
    if let Err(e) = std::fs::write(&knob, READ_AHEAD_KIB) {
        tracing::debug!("setting {}: {e}", knob.display());
    }
}

/// Mounts the disk with `serial` (ext4, nosuid, nodev) at
/// [`mount_point`]`(id)` and returns that path.
pub fn mount_bundle(id: &str, serial: &str) -> Result<PathBuf, String> {
    if !valid_serial(serial) {
        return Err(format!(
            "disk serial {:?}: expected 1 to {MAX_SERIAL} of [A-Za-z0-9_-]",
            serial.chars().take(40).collect::<String>()
        ));
    }
    // Its driver may still be loading (see guest_modules.rs).
    crate::guest_modules::wait_for_background(crate::guest_modules::BACKGROUND_TIMEOUT);
    let sys_block = Path::new("/sys/block");
    let name = find(sys_block, serial)?;
    widen_read_ahead(&sys_block.join(&name));
    let device = Path::new("/dev").join(&name);
    let target = mount_point(id);
    std::fs::create_dir_all(&target).map_err(|e| format!("creating {}: {e}", target.display()))?;
    mount(
        Some(&device),
        &target,
        Some("ext4"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        None::<&str>,
    )
    .map_err(|e| format!("mounting {} at {}: {e}", device.display(), target.display()))?;
    Ok(target)
}

/// Unmounts container `id`'s bundle disk if mounted (detached: the
/// container's own namespace may still hold it for a moment).
pub fn unmount_bundle(id: &str) {
    let target = mount_point(id);
    if umount2(&target, MntFlags::MNT_DETACH).is_ok() {
        let _ = std::fs::remove_dir(&target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_bounded_and_plain() {
        assert!(valid_serial("vmjail-b0"));
        assert!(!valid_serial(""));
        assert!(!valid_serial("a/b"));
        assert!(!valid_serial(&"a".repeat(21)));
    }

    #[test]
    fn scan_finds_vd_disks_by_serial_only() {
        let dir = tempfile::tempdir().unwrap();
        for (name, serial) in [
            ("vda", "other\n"),
            ("vdb", "bundle-c1\n"),
            ("sda", "bundle-c2"),
        ] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
            std::fs::write(dir.path().join(name).join("serial"), serial).unwrap();
        }
        assert_eq!(
            scan(dir.path(), "bundle-c1").unwrap().as_deref(),
            Some("vdb")
        );
        assert_eq!(scan(dir.path(), "bundle-c2").unwrap(), None);
        assert_eq!(scan(dir.path(), "missing").unwrap(), None);
    }
}
