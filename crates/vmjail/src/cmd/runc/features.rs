//! `features`: what this runtime supports, in the shape of runc's
//! `features` JSON (opencontainers/runtime-spec features.md).

use crate::cmd::lifecycle::{exit, print_json, Failure};

pub fn features() -> Result<u8, Failure> {
    let features = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.0.2",
        // Run on the host; createContainer/startContainer are refused
        // (they belong in the container's namespaces, inside the VM).
        "hooks": ["prestart", "createRuntime", "poststart", "poststop"],
        "mountOptions": [
            "defaults", "ro", "rw", "nosuid", "nodev", "noexec", "relatime",
            "strictatime", "noatime", "private", "rprivate", "slave", "rslave",
            "shared", "rshared"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "uts"],
            "capabilities": [],
            "cgroup": {"v1": false, "v2": true, "systemd": false, "systemdUser": false},
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "seccomp": {"enabled": false}
        },
        "annotations": {
            "io.github.vmjail.sandbox": "one microVM per container"
        }
    });
    print_json(&features)?;
    Ok(exit::OK)
}
