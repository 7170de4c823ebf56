//! `shared_fs` and its virtio-fs daemon requirement.

use crate::model::SharedFs;

/// The accepted values, for error messages.
pub const VALID: &str = "valid: \"virtio-9p\", \"virtio-fs\"";

/// `shared_fs`: unset/empty → virtio-9p; unknown → `Err` with the valid list.
pub fn shared_fs(raw: Option<&str>) -> Result<SharedFs, &'static str> {
    match raw.unwrap_or("") {
        "" | "virtio-9p" => Ok(SharedFs::Virtio9p),
        "virtio-fs" => Ok(SharedFs::VirtioFs),
        _ => Err(VALID),
    }
}

/// virtio-fs needs a `virtio_fs_daemon`; returns whether the pair is valid.
pub fn daemon_requirement_met(fs: SharedFs, daemon: Option<&str>) -> bool {
    fs != SharedFs::VirtioFs || daemon.is_some_and(|d| !d.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_fs_table() {
        let cases = [
            (None, Ok(SharedFs::Virtio9p)),
            (Some(""), Ok(SharedFs::Virtio9p)),
            (Some("virtio-9p"), Ok(SharedFs::Virtio9p)),
            (Some("virtio-fs"), Ok(SharedFs::VirtioFs)),
            (Some("9p"), Err(VALID)),
            (Some("virtiofs"), Err(VALID)),
        ];
        for (raw, want) in cases {
            assert_eq!(shared_fs(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn daemon_requirement_table() {
        let cases = [
            (SharedFs::Virtio9p, None, true),
            (SharedFs::Virtio9p, Some(""), true),
            (SharedFs::VirtioFs, None, false),
            (SharedFs::VirtioFs, Some(""), false),
            (SharedFs::VirtioFs, Some("/usr/bin/virtiofsd"), true),
        ];
        for (fs, daemon, want) in cases {
            assert_eq!(
                daemon_requirement_met(fs, daemon),
                want,
                "{fs:?} {daemon:?}"
            );
        }
    }
}
