//! Bundles shared with the guest over virtio-fs (QEMU with
//! `shared_fs = "virtio-fs"`) instead of copied into images: the tree the
//! sandbox's virtiofsd serves holds, per container `<n>`, the guest's
//! `config.json` (as for an image: `root.path` is `rootfs`, bind sources
//! `binds/<k>`), the host rootfs bound read-write at `rootfs` and each
//! bind source bound at `binds/<k>` (read-only when its mount says
//! `ro`). The container's writes reach the host, as with runc.

use std::path::PathBuf;

use vmjail_agent_protocol::bundle_layout::bind_source;
use vmjail_config::{HypervisorKind, RuntimeConfig, SharedFs};
use vmjail_vmm::{ShareEntry, SharedDir};

use crate::bundle_binds::is_bind;
use crate::bundle_image::Bundle;
use crate::sandboxes::ContainerSpec;

/// Whether a sandbox of `config` shares its bundles (QEMU and virtio-fs;
/// Firecracker has no shared filesystem and always takes images).
pub fn applies(config: &RuntimeConfig) -> bool {
    config.hypervisor_kind == HypervisorKind::Qemu
        && config.hypervisor.shared_fs == SharedFs::VirtioFs
}

/// Container slot `index`'s directory in the share.
pub fn name(index: usize) -> String {
    index.to_string()
}

/// The tree to share for `bundles`, in slot order.
pub fn shared_dir(bundles: &[(ContainerSpec, Bundle)]) -> SharedDir {
    let mut entries = Vec::new();
    for (index, (_, bundle)) in bundles.iter().enumerate() {
        entries.extend(entries_for(&name(index), bundle));
    }
    SharedDir { entries }
}

/// Directory `dir` of the share for `bundle`: its guest `config.json`,
/// its rootfs and its bind sources.
pub fn entries_for(dir: &str, bundle: &Bundle) -> Vec<ShareEntry> {
    let dir = PathBuf::from(dir);
    let mut entries = vec![
        ShareEntry::File {
            path: dir.join("config.json"),
            contents: serde_json::to_vec_pretty(&bundle.config).unwrap_or_default(),
        },
        ShareEntry::Bind {
            path: dir.join("rootfs"),
            source: bundle.rootfs.clone(),
            read_only: false,
        },
    ];
    let mounts = bundle.config["mounts"].as_array();
    let binds = mounts.into_iter().flatten().filter(|m| is_bind(m));
    for (k, (bind, mount)) in bundle.binds.iter().zip(binds).enumerate() {
        let read_only = mount["options"]
            .as_array()
            .is_some_and(|o| o.iter().any(|o| o == "ro"));
        entries.push(ShareEntry::Bind {
            path: dir.join(bind_source(k)),
            source: bind.source.clone(),
            read_only,
        });
    }
    entries
}
