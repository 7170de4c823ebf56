//! Where things live inside a QEMU jail (all absolute in-jail paths).

/// Read-only assets: kernel, initrd, image, firmware.
pub const KERNEL: &str = "/vmjail/vmlinux";
pub const INITRD: &str = "/vmjail/initrd";
pub const IMAGE: &str = "/vmjail/image";
pub const FIRMWARE: &str = "/vmjail/firmware";
/// QEMU's data directory (`-L`): BIOS and option ROMs.
pub const DATA_DIR: &str = "/usr/share/qemu";
/// Written by QEMU (owned by the jail uid).
pub const RUN_DIR: &str = "/run";
pub const QMP_SOCKET: &str = "/run/qmp.sock";
/// The vsock helper's socket directory, bound read-only from its jail:
/// the vhost-user socket QEMU connects to and the hybrid-vsock socket the
/// host connects to.
pub const VSOCK_DIR: &str = "/vsock";
/// virtiofsd's socket directory, bound read-only from its jail: the
/// vhost-user socket of the virtio-fs device.
pub const VIRTIOFS_DIR: &str = "/virtiofs";
/// Hot-plugged drives: `/drives/<id>`.
pub const DRIVES_DIR: &str = "/drives";

/// Host directories searched, in order, for the firmware files a machine
/// needs (Debian's QEMU firmware path).
pub const FIRMWARE_SEARCH: &[&str] = &[
    "/usr/share/qemu",
    "/usr/share/seabios",
    "/usr/lib/ipxe/qemu",
];

/// Where QEMU looks for its loadable modules when it runs as
/// `/<exec_name>` in the jail: its build-time module dir relocated against
/// the binary's directory (`/usr/bin/../lib/...` becomes `/../lib/...`).
pub const MODULE_DIR: &str = "/lib/x86_64-linux-gnu/qemu";

/// Host directories searched for QEMU's modules (Debian builds the TCG
/// accelerator as one).
pub const MODULE_SEARCH: &[&str] = &["/usr/lib/x86_64-linux-gnu/qemu", "/usr/lib/qemu"];
