//! What a task is in a CRI pod, from the annotations containerd's CRI
//! plugin puts in its spec: `io.kubernetes.cri.container-type` (`sandbox`
//! for the pod's sandbox container, `container` for each other) and
//! `io.kubernetes.cri.sandbox-id` (the pod's sandbox container's id).
//! Without them (`ctr run`) a task is a container in a VM of its own.

use std::path::Path;

const CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
/// Longest sandbox id taken (containerd's are 64 hex digits).
const MAX_SANDBOX_ID: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A container in a VM of its own (no CRI annotations).
    Alone,
    /// A pod's sandbox container: it creates the pod's VM.
    PodSandbox,
    /// A container of pod `sandbox` (its sandbox container's id): one more
    /// container in that pod's VM.
    PodMember { sandbox: String },
}

impl Role {
    pub fn of(spec: &oci_spec::runtime::Spec) -> Result<Role, String> {
        let annotations = spec.annotations().as_ref();
        let get = |key: &str| annotations.and_then(|a| a.get(key));
        match get(CONTAINER_TYPE).map(String::as_str) {
            None => Ok(Role::Alone),
            Some("sandbox") => Ok(Role::PodSandbox),
            Some("container") => {
                let sandbox = get(SANDBOX_ID)
                    .filter(|s| !s.is_empty() && s.len() <= MAX_SANDBOX_ID)
                    .ok_or_else(|| {
                        format!(
                            "a CRI container needs a {SANDBOX_ID} annotation of 1 to \
                             {MAX_SANDBOX_ID} bytes"
                        )
                    })?;
                Ok(Role::PodMember {
                    sandbox: sandbox.clone(),
                })
            }
            Some(other) => Err(format!(
                "{CONTAINER_TYPE} {:?}: expected \"sandbox\" or \"container\"",
                other.chars().take(40).collect::<String>()
            )),
        }
    }

    /// Whether the container is one of a pod's (its joined namespaces are
    /// the pod's VM).
    pub fn in_pod(&self) -> bool {
        !matches!(self, Role::Alone)
    }
}

/// The shim a task belongs to (containerd's grouping, as Kata's): a pod's
/// containers share the shim of its sandbox container, which holds the
/// VM; any other task has its own. Read from the bundle's spec at
/// `start`; a spec that cannot be read groups by the task id (its
/// `Create` then reports the problem).
pub fn grouping(bundle: &Path, task_id: &str) -> String {
    let spec = oci_spec::runtime::Spec::load(bundle.join("config.json")).ok();
    match spec.map(|s| Role::of(&s)) {
        Some(Ok(Role::PodMember { sandbox })) => sandbox,
        _ => task_id.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(annotations: &[(&str, &str)]) -> oci_spec::runtime::Spec {
        let mut spec = oci_spec::runtime::Spec::default();
        let map = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        spec.set_annotations(Some(map));
        spec
    }

    #[test]
    fn cri_annotations_decide_the_role() {
        assert_eq!(Role::of(&spec(&[])).unwrap(), Role::Alone);
        let sandbox = spec(&[(CONTAINER_TYPE, "sandbox"), (SANDBOX_ID, "p")]);
        assert_eq!(Role::of(&sandbox).unwrap(), Role::PodSandbox);
        let member = spec(&[(CONTAINER_TYPE, "container"), (SANDBOX_ID, "p")]);
        assert_eq!(
            Role::of(&member).unwrap(),
            Role::PodMember {
                sandbox: "p".into()
            }
        );
        assert!(Role::of(&spec(&[(CONTAINER_TYPE, "container")])).is_err());
        assert!(Role::of(&spec(&[(CONTAINER_TYPE, "vm")])).is_err());
        let long = "x".repeat(MAX_SANDBOX_ID + 1);
        let member = spec(&[(CONTAINER_TYPE, "container"), (SANDBOX_ID, &long)]);
        assert!(Role::of(&member).is_err());
    }

    #[test]
    fn a_pods_containers_group_with_its_sandbox() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(grouping(dir.path(), "t1"), "t1");
        let member = spec(&[(CONTAINER_TYPE, "container"), (SANDBOX_ID, "pod1")]);
        member.save(dir.path().join("config.json")).unwrap();
        assert_eq!(grouping(dir.path(), "c1"), "pod1");
        let sandbox = spec(&[(CONTAINER_TYPE, "sandbox"), (SANDBOX_ID, "pod1")]);
        sandbox.save(dir.path().join("config.json")).unwrap();
        assert_eq!(grouping(dir.path(), "pod1"), "pod1");
    }
}
