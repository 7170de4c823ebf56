//! `block_device_driver`: one of Kata's four drivers.

use crate::model::BlockDeviceDriver;

/// The accepted values, for error messages.
pub const VALID: &str = "valid: \"virtio-scsi\", \"virtio-blk\", \"virtio-mmio\", \"nvdimm\"";

/// `block_device_driver`: unset/empty → virtio-scsi (Kata's default); an
/// unknown name is an error (`Err` carries the valid list).
pub fn block_device_driver(raw: Option<&str>) -> Result<BlockDeviceDriver, &'static str> {
    match raw.unwrap_or("") {
        "" | "virtio-scsi" => Ok(BlockDeviceDriver::VirtioScsi),
        "virtio-blk" => Ok(BlockDeviceDriver::VirtioBlk),
        "virtio-mmio" => Ok(BlockDeviceDriver::VirtioMmio),
        "nvdimm" => Ok(BlockDeviceDriver::Nvdimm),
        _ => Err(VALID),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_driver_table() {
        let cases = [
            (None, Ok(BlockDeviceDriver::VirtioScsi)),
            (Some(""), Ok(BlockDeviceDriver::VirtioScsi)),
            (Some("virtio-scsi"), Ok(BlockDeviceDriver::VirtioScsi)),
            (Some("virtio-blk"), Ok(BlockDeviceDriver::VirtioBlk)),
            (Some("virtio-mmio"), Ok(BlockDeviceDriver::VirtioMmio)),
            (Some("nvdimm"), Ok(BlockDeviceDriver::Nvdimm)),
            (Some("virtio_blk"), Err(VALID)),
            (Some("VIRTIO-BLK"), Err(VALID)),
            (Some("ide"), Err(VALID)),
        ];
        for (raw, want) in cases {
            assert_eq!(block_device_driver(raw), want, "{raw:?}");
        }
    }
}
