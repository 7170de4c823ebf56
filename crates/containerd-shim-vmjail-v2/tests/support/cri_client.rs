//! A CRI client for the tests and the bench, as kubelet drives
//! containerd: CRI v1 over gRPC on containerd's socket.

use std::path::Path;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, CreateContainerRequest, ExecSyncRequest, ExecSyncResponse,
    ImageSpec, LinuxPodSandboxConfig, PodSandboxConfig, PodSandboxMetadata,
    RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest, StopPodSandboxRequest,
};
use tonic::transport::{Channel, Endpoint, Uri};

use super::{Containerd, IMAGE};

pub type Client = RuntimeServiceClient<Channel>;

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A CRI client on containerd's socket (the URI is a placeholder: every
/// connection goes to the Unix socket).
pub async fn connect(socket: &Path) -> Client {
    let socket = socket.to_path_buf();
    let channel = Endpoint::try_from("http://[::1]:50051")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await
        .unwrap();
    RuntimeServiceClient::new(channel)
}

/// Pod `name` (unique among the test's pods), its logs in `logs`.
pub fn pod_config(name: &str, logs: &Path) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: format!("vmjail-test-{}", std::process::id()),
            namespace: "vmjail-test".into(),
            attempt: 0,
        }),
        hostname: "vmjail-pod".into(),
        log_directory: logs.to_string_lossy().into_owned(),
        linux: Some(LinuxPodSandboxConfig::default()),
        ..Default::default()
    }
}

pub fn container_config(name: &str) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: IMAGE.into(),
            ..Default::default()
        }),
        command: vec!["/bin/sleep".into(), "3600".into()],
        log_path: format!("{name}.log"),
        ..Default::default()
    }
}

pub async fn exec(client: &mut Client, id: &str, cmd: &[&str]) -> ExecSyncResponse {
    client
        .exec_sync(ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 60,
        })
        .await
        .unwrap_or_else(|e| panic!("ExecSync {cmd:?} in {id}: {e}"))
        .into_inner()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The kernel boot id a container sees.
pub async fn boot_id(client: &mut Client, id: &str) -> String {
    let out = exec(client, id, &["cat", "/proc/sys/kernel/random/boot_id"]).await;
    assert_eq!(out.exit_code, 0, "{}", text(&out.stderr));
    text(&out.stdout).trim().to_owned()
}

/// RunPodSandbox of pod `name` with runtime handler `handler`, then two
/// containers created and started in it; the pod's id and the
/// containers'.
pub async fn start_pod(
    c: &Containerd,
    client: &mut Client,
    name: &str,
    handler: &str,
) -> (String, Vec<String>) {
    let logs = c.dir.path().join("pod-logs").join(name);
    std::fs::create_dir_all(&logs).unwrap();
    let config = pod_config(name, &logs);
    let pod = client
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", c.log()))
        .into_inner()
        .pod_sandbox_id;
    let mut ids = Vec::new();
    for name in ["one", "two"] {
        let id = create_and_start(c, client, &pod, container_config(name), &config).await;
        ids.push(id);
    }
    (pod, ids)
}

/// CreateContainer of `config` in pod `pod` (whose config is
/// `sandbox_config`), then StartContainer; the container's id.
pub async fn create_and_start(
    c: &Containerd,
    client: &mut Client,
    pod: &str,
    config: ContainerConfig,
    sandbox_config: &PodSandboxConfig,
) -> String {
    let name = config
        .metadata
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_default();
    let id = client
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod.into(),
            config: Some(config),
            sandbox_config: Some(sandbox_config.clone()),
        })
        .await
        .unwrap_or_else(|e| panic!("CreateContainer {name}: {e}\n{}", c.log()))
        .into_inner()
        .container_id;
    client
        .start_container(StartContainerRequest {
            container_id: id.clone(),
        })
        .await
        .unwrap_or_else(|e| panic!("StartContainer {name}: {e}\n{}", c.log()));
    id
}

/// StopPodSandbox then RemovePodSandbox, as kubelet ends a pod.
pub async fn remove_pod(c: &Containerd, client: &mut Client, pod: &str) {
    client
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("StopPodSandbox: {e}\n{}", c.log()));
    client
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: pod.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("RemovePodSandbox: {e}\n{}", c.log()));
}
