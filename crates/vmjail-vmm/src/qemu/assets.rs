//! What QEMU reads, made visible in its jail: kernel, initrd or image,
//! firmware, and the BIOS / option ROMs of the machine — each one read-only
//! bind mount, nothing else of the host.

use std::path::{Path, PathBuf};

use vmjail_config::HypervisorConfig;
use vmjail_jail::{Jail, Placement, Recorder};

use super::cmdline::{Accel, Machine, Paths};
use super::layout;
use super::Error;

/// The in-jail paths QEMU is given for `config`'s assets.
pub fn jail_paths(config: &HypervisorConfig) -> Paths {
    Paths {
        kernel: layout::KERNEL.into(),
        initrd: config.initrd.as_ref().map(|_| layout::INITRD.into()),
        image: config.image.as_ref().map(|_| layout::IMAGE.into()),
        firmware: config.firmware.as_ref().map(|_| layout::FIRMWARE.into()),
        data_dir: layout::DATA_DIR.into(),
        qmp_socket: layout::QMP_SOCKET.into(),
        vhost_vsock_socket: None,
        virtiofs_socket: None,
    }
}

/// The host file for firmware `name`: the first search directory holding
/// it, with symlinks resolved (Debian links `bios-microvm.bin` to
/// `qboot.rom`; the jail gets the target's content at the link's name).
pub fn find_firmware(
    name: &'static str,
    machine: Machine,
    search: &[&str],
) -> Result<PathBuf, Error> {
    search
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find_map(|candidate| {
            let real = candidate.canonicalize().ok()?;
            real.is_file().then_some(real)
        })
        .ok_or_else(|| Error::FirmwareMissing {
            name,
            machine: format!("{machine:?}"),
            searched: search.join(", "),
        })
}

/// The loadable modules QEMU needs for `accel`, found on the host. A QEMU
/// built without modules has the accelerator built in: nothing to place.
pub fn modules(accel: Accel) -> Vec<(PathBuf, PathBuf)> {
    let names: &[&str] = match accel {
        Accel::Tcg => &["accel-tcg-x86_64.so"],
        Accel::Kvm => &[],
    };
    names
        .iter()
        .filter_map(|name| {
            layout::MODULE_SEARCH.iter().find_map(|dir| {
                let real = Path::new(dir).join(name).canonicalize().ok()?;
                real.is_file()
                    .then(|| (real, Path::new(layout::MODULE_DIR).join(name)))
            })
        })
        .collect()
}

/// Bind every asset read-only at its in-jail path.
pub fn place_all(
    jail: &mut Jail,
    recorder: &mut dyn Recorder,
    config: &HypervisorConfig,
    machine: Machine,
    accel: Accel,
) -> Result<(), Error> {
    let mut files: Vec<(&'static str, PathBuf, PathBuf)> =
        vec![("kernel", config.kernel.clone(), layout::KERNEL.into())];
    if let Some(initrd) = &config.initrd {
        files.push(("initrd", initrd.clone(), layout::INITRD.into()));
    }
    if let Some(image) = &config.image {
        files.push(("image", image.clone(), layout::IMAGE.into()));
    }
    if let Some(firmware) = &config.firmware {
        files.push(("firmware", firmware.clone(), layout::FIRMWARE.into()));
    }
    for name in machine.firmware_files() {
        let host = find_firmware(name, machine, layout::FIRMWARE_SEARCH)?;
        files.push((
            "QEMU firmware",
            host,
            Path::new(layout::DATA_DIR).join(name),
        ));
    }
    for (host, in_jail) in modules(accel) {
        files.push(("QEMU module", host, in_jail));
    }
    for (what, source, target) in files {
        jail.place(recorder, &source, &target, Placement::ReadOnlyBind)
            .map_err(|source_err| Error::Place {
                what,
                path: source.clone(),
                source: Box::new(source_err),
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firmware_symlinks_resolve_to_their_target_and_missing_names_the_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("a");
        let second = dir.path().join("b");
        std::fs::create_dir_all(&first).unwrap();
        std::fs::create_dir_all(&second).unwrap();
        std::fs::write(second.join("qboot.rom"), b"rom").unwrap();
        std::os::unix::fs::symlink("qboot.rom", second.join("bios-microvm.bin")).unwrap();
        let search = [first.to_str().unwrap(), second.to_str().unwrap()];
        let found = find_firmware("bios-microvm.bin", Machine::Microvm, &search).unwrap();
        assert_eq!(found, second.join("qboot.rom").canonicalize().unwrap());
        match find_firmware("pvh.bin", Machine::Microvm, &search) {
            Err(Error::FirmwareMissing { name, searched, .. }) => {
                assert_eq!(name, "pvh.bin");
                assert!(searched.contains(search[0]) && searched.contains(search[1]));
            }
            other => panic!("expected FirmwareMissing, got {other:?}"),
        }
    }
}
