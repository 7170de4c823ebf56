//! The configuration round-trips that turn a fresh Firecracker into a VM
//! ready for `InstanceStart`.

use std::time::Duration;

use super::api::{self, ApiRequest};
use super::client::ApiClient;
use super::Error;

/// Everything `configure` tells Firecracker; every path is in-jail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootPlan {
    pub machine: api::MachineConfiguration,
    pub boot_source: api::BootSource,
    pub logger: api::Logger,
    pub metrics: api::Metrics,
    /// The read-only root drive, when booting from an image.
    pub root_drive: Option<api::Drive>,
    /// Drives given at `create`, in order (Firecracker's guest reads each
    /// one's id as its virtio-blk serial).
    pub boot_drives: Vec<api::Drive>,
    /// Empty placeholder drives, later swapped by `PATCH /drives/{id}`.
    pub placeholders: Vec<api::Drive>,
    pub vsock: Option<api::Vsock>,
}

impl BootPlan {
    /// The requests, in the order Firecracker is sent them: logger and
    /// metrics first so later refusals are logged.
    pub fn requests(&self) -> Vec<ApiRequest> {
        let mut requests = vec![
            api::put_logger(&self.logger),
            api::put_metrics(&self.metrics),
            api::put_machine_config(&self.machine),
            api::put_boot_source(&self.boot_source),
        ];
        requests.extend(self.root_drive.iter().map(api::put_drive));
        requests.extend(self.boot_drives.iter().map(api::put_drive));
        requests.extend(self.placeholders.iter().map(api::put_drive));
        requests.extend(self.vsock.iter().map(api::put_vsock));
        requests
    }
}

/// Send every request of `plan`, each bounded by `timeout`; the first
/// refusal stops and is returned with Firecracker's `fault_message`.
pub fn configure(client: &ApiClient, plan: &BootPlan, timeout: Duration) -> Result<(), Error> {
    for request in plan.requests() {
        call(client, &request, timeout)?;
    }
    Ok(())
}

/// One API call, its failure naming the request.
pub(crate) fn call(
    client: &ApiClient,
    request: &ApiRequest,
    timeout: Duration,
) -> Result<super::client::ApiResponse, Error> {
    client.send(request, timeout).map_err(|source| Error::Api {
        method: request.method.as_str(),
        path: request.path.clone(),
        socket: client.socket().to_path_buf(),
        source,
    })
}
