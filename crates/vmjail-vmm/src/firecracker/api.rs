//! Firecracker's API, typed after `firecracker.yaml` (Swagger 2.0): the
//! request bodies vmjail sends and the one answer it reads, plus a builder per
//! request. Optional fields are skipped when unset so every body holds only
//! properties the spec defines.

use serde::{Deserialize, Serialize};

/// An HTTP method the client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Put,
    Patch,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
        }
    }
}

/// One API call: method, path (with path parameters filled in) and body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiRequest {
    pub method: Method,
    pub path: String,
    pub body: Option<serde_json::Value>,
}

/// `Logger`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logger {
    pub log_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<LogLevel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub show_level: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub show_log_origin: Option<bool>,
}

/// `Logger.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogLevel {
    Error,
    Warning,
    Info,
    Debug,
    Trace,
    Off,
}

/// `Metrics`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    pub metrics_path: String,
}

/// `MachineConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineConfiguration {
    pub vcpu_count: u32,
    pub mem_size_mib: u32,
    pub smt: bool,
}

/// `BootSource`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootSource {
    pub kernel_image_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initrd_path: Option<String>,
    pub boot_args: String,
}

/// `Drive` (virtio-block flavour).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drive {
    pub drive_id: String,
    pub path_on_host: String,
    pub is_root_device: bool,
    pub is_read_only: bool,
}

/// `PartialDrive`: swap the backing file of a drive after boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialDrive {
    pub drive_id: String,
    pub path_on_host: String,
}

/// `Vsock` (hybrid: a Unix socket on the host side).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vsock {
    pub guest_cid: u32,
    pub uds_path: String,
}

/// `NetworkInterface`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInterface {
    pub iface_id: String,
    pub host_dev_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_mac: Option<String>,
}

/// `InstanceActionInfo.action_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionType {
    InstanceStart,
    SendCtrlAltDel,
    FlushMetrics,
}

/// `InstanceActionInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceActionInfo {
    pub action_type: ActionType,
}

/// `Vm.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VmRunState {
    Paused,
    Resumed,
}

/// `Vm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vm {
    pub state: VmRunState,
}

/// `InstanceInfo.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InstanceState {
    #[serde(rename = "Not started")]
    NotStarted,
    Running,
    Paused,
}

/// `InstanceInfo`, the answer to `GET /`. Unknown fields from newer
/// Firecrackers are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceInfo {
    pub app_name: String,
    pub id: String,
    pub state: InstanceState,
    pub vmm_version: String,
}

/// `Error`: what Firecracker says when it refuses a request.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Fault {
    #[serde(default)]
    pub fault_message: String,
}

fn request(method: Method, path: String, body: Option<serde_json::Value>) -> ApiRequest {
    ApiRequest { method, path, body }
}

fn json<T: Serialize>(body: &T) -> Option<serde_json::Value> {
    // Serialising these plain structs cannot fail (no maps with non-string
    // keys, no custom serialisers); `ok()` keeps that out of every signature.
    serde_json::to_value(body).ok()
}

pub fn put_logger(body: &Logger) -> ApiRequest {
    request(Method::Put, "/logger".into(), json(body))
}

pub fn put_metrics(body: &Metrics) -> ApiRequest {
    request(Method::Put, "/metrics".into(), json(body))
}

pub fn put_machine_config(body: &MachineConfiguration) -> ApiRequest {
    request(Method::Put, "/machine-config".into(), json(body))
}

pub fn put_boot_source(body: &BootSource) -> ApiRequest {
    request(Method::Put, "/boot-source".into(), json(body))
}

/// `drive_id` must already be validated ([`valid_resource_id`]): it becomes
/// part of the path.
pub fn put_drive(body: &Drive) -> ApiRequest {
    request(
        Method::Put,
        format!("/drives/{}", body.drive_id),
        json(body),
    )
}

pub fn patch_drive(body: &PartialDrive) -> ApiRequest {
    request(
        Method::Patch,
        format!("/drives/{}", body.drive_id),
        json(body),
    )
}

pub fn put_vsock(body: &Vsock) -> ApiRequest {
    request(Method::Put, "/vsock".into(), json(body))
}

pub fn put_network_interface(body: &NetworkInterface) -> ApiRequest {
    request(
        Method::Put,
        format!("/network-interfaces/{}", body.iface_id),
        json(body),
    )
}

pub fn put_action(action_type: ActionType) -> ApiRequest {
    request(
        Method::Put,
        "/actions".into(),
        json(&InstanceActionInfo { action_type }),
    )
}

pub fn patch_vm(state: VmRunState) -> ApiRequest {
    request(Method::Patch, "/vm".into(), json(&Vm { state }))
}

pub fn get_instance_info() -> ApiRequest {
    request(Method::Get, "/".into(), None)
}

/// Ids that travel in an API path (`/drives/{id}`, `/network-interfaces/{id}`):
/// `[A-Za-z0-9_-]{1,64}`, so nothing can escape the path segment.
pub fn valid_resource_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
