//! Shared by the `bundle_*` tests: an OCI bundle made here.

use std::path::{Path, PathBuf};

use super::lifecycle_support::unique_id;

/// A bundle under `dir`: a busybox-static rootfs and a config.json running
/// `sh -c script` with hostname `boxy` and a read-only root when asked.
pub fn bundle(dir: &Path, script: &str, readonly: bool) -> PathBuf {
    let bundle = dir.join(format!("bundle-{}", unique_id("b")));
    let bin = bundle.join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    let out = std::process::Command::new("chroot")
        .arg(bundle.join("rootfs"))
        .args(["/bin/busybox", "--install", "-s", "/bin"])
        .output()
        .unwrap();
    assert!(out.status.success(), "busybox --install: {out:?}");
    for d in ["proc", "dev", "tmp", "sys/fs/cgroup"] {
        std::fs::create_dir_all(bundle.join("rootfs").join(d)).unwrap();
    }
    let config = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["/bin/sh", "-c", script],
            "env": ["PATH=/bin"],
            "cwd": "/"
        },
        "root": {"path": "rootfs", "readonly": readonly},
        "hostname": "boxy",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}
        ],
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}]}
    });
    std::fs::write(bundle.join("config.json"), config.to_string()).unwrap();
    bundle
}
