//! The task's root filesystem: containerd hands the snapshot as mounts
//! (overlay, bind) for `<bundle>/rootfs`. It is mounted only while vmjail
//! copies it into the container's disk image, then unmounted again: the
//! VM gets the image, and no host mount outlives `create`. (The shim
//! crate's own mount helper waits on its reaper, which this shim turns off.)

use std::path::Path;

use containerd_shim_protos::types::mount::Mount;
use nix::mount::{umount2, MntFlags, MsFlags};

/// Longest mount data the kernel takes (one page).
const MAX_DATA: usize = 4096;

/// Splits mount options into flags and the filesystem's data.
fn parse(options: &[String]) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for option in options {
        match option.as_str() {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" => flags &= !MsFlags::MS_RDONLY,
            "bind" => flags |= MsFlags::MS_BIND,
            "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            other => data.push(other),
        }
    }
    (flags, data.join(","))
}

/// Mounts `mounts` on `target` (the first on it, later ones over it).
pub fn mount(mounts: &[Mount], target: &Path) -> Result<(), String> {
    for m in mounts {
        let (flags, data) = parse(&m.options);
        if data.len() >= MAX_DATA {
            return Err(format!(
                "rootfs mount options of {} bytes: more than a page (too many layers)",
                data.len()
            ));
        }
        let fs_type = (!m.type_.is_empty()).then_some(m.type_.as_str());
        let source = (!m.source.is_empty()).then_some(m.source.as_str());
        let data = (!data.is_empty()).then_some(data.as_str());
        nix::mount::mount(source, target, fs_type, flags, data).map_err(|e| {
            format!(
                "mounting the rootfs ({}) on {}: {e}",
                m.type_,
                target.display()
            )
        })?;
    }
    Ok(())
}

/// Unmounts everything stacked on `target` (nothing there is fine).
pub fn unmount(target: &Path) -> Result<(), String> {
    loop {
        match umount2(target, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(format!("unmounting {}: {e}", target.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_into_flags_and_data() {
        let opts: Vec<String> = ["ro", "rbind", "lowerdir=/a:/b", "index=off"]
            .map(String::from)
            .into();
        let (flags, data) = parse(&opts);
        assert_eq!(
            flags,
            MsFlags::MS_RDONLY | MsFlags::MS_BIND | MsFlags::MS_REC
        );
        assert_eq!(data, "lowerdir=/a:/b,index=off");
    }
}
