//! A container's OCI state (`state ID`): runc's JSON, read from the
//! sandbox's record and its host processes without reaching the guest.

use serde::Serialize;
use vmjail_sandbox::{ContainerStatus, SandboxId, Sandboxes, SelectFactory, Status};

use crate::cmd::lifecycle::Failure;

/// The OCI runtime spec's statuses (plus `paused`, as runc has it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OciStatus {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for OciStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        f.write_str(&text)
    }
}

/// runc's `state` output (go-runc's `State`), also what hooks get on
/// their stdin.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    oci_version: &'static str,
    id: String,
    pub status: OciStatus,
    /// The container's host process (0 once it has ended).
    pub pid: i32,
    /// The bundle directory (hooks run there).
    pub bundle: String,
    rootfs: String,
    created: String,
    annotations: serde_json::Map<String, serde_json::Value>,
    owner: &'static str,
}

/// The container's status and its host process's pid (while it lives):
/// `created`/`running` only while the host process standing for its
/// process lives (it ends as the process ends), `stopped` once it or the
/// VM is gone.
pub fn oci_status(
    sandboxes: &Sandboxes<SelectFactory>,
    id: &SandboxId,
) -> Result<(OciStatus, i32), Failure> {
    let view = sandboxes.state(id)?;
    let record = sandboxes.container_record(id, id.as_str())?;
    let init = record
        .monitors
        .iter()
        .find(|m| m.name == "init")
        .and_then(|m| m.process)
        .filter(|p| p.is_alive());
    let pid = init.map(|p| p.pid).unwrap_or(0);
    let status = match (view.status, record.status) {
        (Status::Creating, _) => OciStatus::Creating,
        (Status::Running, ContainerStatus::Imaging | ContainerStatus::Ready) => OciStatus::Creating,
        (Status::Running, _) if init.is_none() => OciStatus::Stopped,
        (Status::Running, ContainerStatus::Created) => OciStatus::Created,
        (Status::Running, ContainerStatus::Running) => OciStatus::Running,
        (Status::Running, ContainerStatus::Paused) => OciStatus::Paused,
        _ => OciStatus::Stopped,
    };
    Ok((status, if status == OciStatus::Stopped { 0 } else { pid }))
}

pub fn print_state(sandboxes: &Sandboxes<SelectFactory>, id: &SandboxId) -> Result<(), Failure> {
    crate::cmd::lifecycle::print_json(&oci_state(sandboxes, id)?)
}

/// Container `id`'s OCI state.
pub fn oci_state(
    sandboxes: &Sandboxes<SelectFactory>,
    id: &SandboxId,
) -> Result<OciState, Failure> {
    let (status, pid) = oci_status(sandboxes, id)?;
    let view = sandboxes.state(id)?;
    let record = sandboxes.container_record(id, id.as_str())?;
    let config = vmjail_sandbox::bundle_image::load(&record.bundle).ok();
    let annotations = config
        .as_ref()
        .and_then(|b| b.config.get("annotations"))
        .and_then(|a| a.as_object())
        .cloned()
        .unwrap_or_default();
    let rootfs = config
        .as_ref()
        .map(|b| b.rootfs.display().to_string())
        .unwrap_or_default();
    Ok(OciState {
        oci_version: "1.0.2",
        id: id.to_string(),
        status,
        pid,
        bundle: record.bundle.display().to_string(),
        rootfs,
        created: view.created.unwrap_or_default(),
        annotations,
        owner: "",
    })
}

impl OciState {
    /// The JSON a hook reads on its stdin.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}
