//! A pod's containers in one VM (a CRI pod: the sandbox container and
//! each container of the pod): the namespaces their specs join by path
//! are the pod's on the host (`/var/run/netns/cni-…`, `/proc/<pid>/ns/…`),
//! which in the guest is the VM itself. Such an entry is dropped from the
//! guest's `config.json`, so the container shares the VM's namespace with
//! the rest of the pod (the VM's network is the pod's network), except
//! UTS, which becomes a new namespace so the spec's hostname (the pod's)
//! still applies. Outside a pod a path stays and the agent refuses it: a
//! namespace of another container's VM cannot be joined.

use oci_spec::runtime::LinuxNamespaceType;

/// Rewrites `config`'s `linux.namespaces` as described above.
pub fn join_vm_namespaces(config: &mut serde_json::Value) {
    // `pointer_mut`, not indexing: that would add a null `linux` to a
    // config without one.
    let namespaces = config
        .pointer_mut("/linux/namespaces")
        .and_then(serde_json::Value::as_array_mut);
    let Some(namespaces) = namespaces else {
        return;
    };
    let uts = serde_json::to_value(LinuxNamespaceType::Uts).unwrap_or_default();
    namespaces.retain_mut(|ns| {
        let Some(entry) = ns.as_object_mut() else {
            return true;
        };
        if !entry.contains_key("path") {
            return true;
        }
        if entry.get("type") == Some(&uts) {
            entry.remove("path");
            return true;
        }
        false
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_namespaces_become_the_vms() {
        let mut config = serde_json::json!({"linux": {"namespaces": [
            {"type": "pid"},
            {"type": "ipc", "path": "/proc/7/ns/ipc"},
            {"type": "uts", "path": "/proc/7/ns/uts"},
            {"type": "mount"},
            {"type": "network", "path": "/var/run/netns/cni-1"},
        ]}});
        join_vm_namespaces(&mut config);
        assert_eq!(
            config["linux"]["namespaces"],
            serde_json::json!([{"type": "pid"}, {"type": "uts"}, {"type": "mount"}])
        );
        let mut none = serde_json::json!({"process": {}});
        join_vm_namespaces(&mut none);
        assert_eq!(none, serde_json::json!({"process": {}}));
    }
}
