//! Where things live inside a Firecracker jail (every path handed to the API
//! is one of these in-jail paths) and the kernel command line Firecracker
//! needs.

use vmjail_config::KernelParam;

pub const API_SOCKET: &str = "/run/firecracker.socket";
pub const VSOCK_SOCKET: &str = "/run/vsock.sock";
pub const RUN_DIR: &str = "/run";
pub const BOOT_DIR: &str = "/boot";
pub const KERNEL: &str = "/boot/vmlinux";
pub const INITRD: &str = "/boot/initrd";
pub const ROOTFS: &str = "/boot/rootfs.img";
pub const LOGS_DIR: &str = "/logs";
pub const LOG_FIFO: &str = "/logs/log.fifo";
pub const METRICS_FIFO: &str = "/logs/metrics.fifo";
pub const DRIVES_DIR: &str = "/drives";
/// The root drive's id when booting from an image.
pub const ROOT_DRIVE_ID: &str = "rootfs";
/// Where drives given at `create` are placed (never a slot's directory).
pub const BOOT_DRIVES_DIR: &str = "/drives/boot";

/// The in-jail path of boot drive `id`.
pub fn boot_drive_path(id: &str) -> String {
    format!("{BOOT_DRIVES_DIR}/{id}")
}

/// Placeholder drives created at boot, so a later attach is a `PATCH`
/// (Firecracker cannot add drives after boot). Kata uses 8 too.
pub const DEFAULT_PLACEHOLDER_DRIVES: usize = 8;

/// The API id of placeholder drive slot `slot`.
pub fn slot_id(slot: usize) -> String {
    format!("drive{slot}")
}

/// The empty file that backs slot `slot` while nothing is attached.
pub fn placeholder_path(slot: usize) -> String {
    format!("{DRIVES_DIR}/placeholder-{slot}")
}

/// Where device `device_id` attached in slot `slot` is mounted in the jail.
pub fn attached_dir(slot: usize) -> String {
    format!("{DRIVES_DIR}/{}", slot_id(slot))
}

pub fn attached_path(slot: usize, device_id: &str) -> String {
    format!("{}/{device_id}", attached_dir(slot))
}

/// The slot an attached path belongs to (inverse of [`attached_path`]).
pub fn slot_of_attached(path: &std::path::Path) -> Option<usize> {
    let dir = path.parent()?.file_name()?.to_str()?;
    dir.strip_prefix("drive")?.parse().ok()
}

/// What Firecracker's guest needs on its command line: the serial console,
/// reboot by keyboard controller (so `SendCtrlAltDel` and a guest reboot end
/// the VMM), panic → reboot, and no PCI probing (Firecracker has no PCI bus).
const FIRECRACKER_DEFAULTS: &[(&str, Option<&str>)] = &[
    ("console", Some("ttyS0")),
    ("reboot", Some("k")),
    ("panic", Some("1")),
    ("pci", Some("off")),
    ("i8042.noaux", None),
    ("i8042.nomux", None),
    ("i8042.dumbkbd", None),
];

/// Firecracker's defaults, then the configuration's parameters; a later key
/// replaces an earlier one in place, so the configuration can override any
/// default.
pub fn boot_args(config_params: &[KernelParam]) -> String {
    let mut params: Vec<(String, Option<String>)> = FIRECRACKER_DEFAULTS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
        .collect();
    for param in config_params {
        match params.iter_mut().find(|(key, _)| *key == param.key) {
            Some(existing) => existing.1 = param.value.clone(),
            None => params.push((param.key.clone(), param.value.clone())),
        }
    }
    params
        .into_iter()
        .map(|(key, value)| match value {
            Some(value) => format!("{key}={value}"),
            None => key,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(key: &str, value: Option<&str>) -> KernelParam {
        KernelParam {
            key: key.into(),
            value: value.map(Into::into),
        }
    }

    #[test]
    fn defaults_come_first_and_config_overrides_in_place() {
        let args = boot_args(&[
            param("console", Some("hvc0")),
            param("quiet", None),
            param("agent.log", Some("debug")),
        ]);
        assert_eq!(
            args,
            "console=hvc0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd quiet agent.log=debug"
        );
    }

    #[test]
    fn attached_paths_round_trip_to_their_slot() {
        let path = attached_path(5, "vol-1");
        assert_eq!(path, "/drives/drive5/vol-1");
        assert_eq!(slot_of_attached(std::path::Path::new(&path)), Some(5));
        assert_eq!(
            slot_of_attached(std::path::Path::new("/drives/x/vol")),
            None
        );
    }
}
