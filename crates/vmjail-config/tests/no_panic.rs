//! No input makes the loader panic: arbitrary text, and arbitrary values
//! in a structurally valid file.

mod common;

use common::{Assets, HOST};
use proptest::prelude::*;
use vmjail_config::{load_str, ConfigSource};

const KEYS: &[&str] = &[
    "path",
    "kernel",
    "initrd",
    "image",
    "default_vcpus",
    "default_maxvcpus",
    "default_memory",
    "memory_slots",
    "default_bridges",
    "msize_9p",
    "block_device_driver",
    "shared_fs",
    "kernel_params",
    "machine_accelerators",
    "use_vsock",
    "jailer_path",
    "virtio_fs_daemon",
];

fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        "[ -~]{0,20}".prop_map(|s| format!("{s:?}")),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("1.5".to_string()),
        Just("\"initrd.img\"".to_string()),
        Just("\"../../../../etc/passwd\"".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_text(text in "\\PC{0,300}") {
        let origin = ConfigSource::File("/nonexistent/configuration.toml".into());
        let _ = load_str(&text, origin, &HOST);
    }

    #[test]
    fn arbitrary_bytes_as_text(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = load_str(&text, ConfigSource::Embedded, &HOST);
    }

    #[test]
    fn arbitrary_values(
        table in prop_oneof![Just("hypervisor.qemu"), Just("hypervisor.firecracker"), Just("hypervisor.acrn"), Just("jail"), Just("runtime"), Just("agent.kata")],
        entries in proptest::collection::vec((proptest::sample::select(KEYS), toml_value()), 0..8),
    ) {
        let assets = Assets::new();
        let mut text = format!("[hypervisor.qemu]\npath = \"qemu\"\nkernel = \"vmlinux\"\ninitrd = \"initrd.img\"\n[{table}]\n");
        let mut seen = std::collections::HashSet::new();
        for (k, v) in entries {
            if seen.insert(k) {
                text.push_str(&format!("{k} = {v}\n"));
            }
        }
        let _ = assets.load(&text);
    }
}
