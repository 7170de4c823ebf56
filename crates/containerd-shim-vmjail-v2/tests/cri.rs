//! A Kubernetes pod through the shim, driven as kubelet drives it: a
//! client on containerd's CRI socket (CRI v1 over gRPC) asks Debian's
//! real containerd for a pod with runtime handler `vmjail`, two containers
//! in it, a command run in one (its output and exit code), a container's
//! status, a container over its memory limit reported OOMKilled (TaskOOM),
//! then stops and removes everything. Both containers are in the
//! pod's one VM (the same guest kernel boot id, not the host's), served by
//! one shim; a stopped container's share is taken back while the pod runs
//! on. A pod whose shim is SIGKILLed is cleaned by containerd's `delete`.
//! After each pod is removed nothing is left.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_cri::v1::{
    ContainerState, ContainerStatus, ContainerStatusRequest, LinuxContainerConfig,
    LinuxContainerResources, StopContainerRequest,
};
use support::cri_client::*;
use support::*;

/// The vmjail sandboxes (VMs) in the state dir.
fn sandboxes(c: &Containerd) -> usize {
    std::fs::read_dir(&c.state_dir)
        .map(|d| d.flatten().filter(|e| e.path().is_dir()).count())
        .unwrap_or(0)
}

/// Mounts in the jails: QEMU's, and virtiofsd's shared tree.
fn jail_mounts(c: &Containerd) -> usize {
    mounts_under(&c.dir.path().join("jail")).len()
}

/// A container of `pod` limited to 16 MiB that holds 64 MB in its shell,
/// started and waited for; its status once exited.
async fn oom_killed_container(c: &Containerd, client: &mut Client, pod: &str) -> ContainerStatus {
    let mut config = container_config("hog");
    config.command = vec![
        "sh".into(),
        "-c".into(),
        "x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo ${#x}".into(),
    ];
    config.linux = Some(LinuxContainerConfig {
        resources: Some(LinuxContainerResources {
            memory_limit_in_bytes: 16 << 20,
            ..Default::default()
        }),
        ..Default::default()
    });
    let sandbox_config = pod_config("pod", &c.dir.path().join("pod-logs/pod"));
    let id = create_and_start(c, client, pod, config, &sandbox_config).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = client
            .container_status(ContainerStatusRequest {
                container_id: id.clone(),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner()
            .status
            .unwrap();
        if status.state == ContainerState::ContainerExited as i32 {
            return status;
        }
        assert!(Instant::now() < deadline, "hog still runs: {status:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn a_pods_two_containers_share_its_one_vm() {
    if !require_root() {
        return;
    }
    let c = Containerd::start_cri("cri");
    let socket: PathBuf = c.address.clone();
    let rt = runtime();
    let pod = rt.block_on(async {
        let mut client = connect(&socket).await;
        let (pod, ids) = start_pod(&c, &mut client, "pod", CRI_HANDLER).await;
        // One VM (one vmjail sandbox) for the pod, one shim serving it.
        assert_eq!(sandboxes(&c), 1);
        assert!(c.shim_pid(&pod).is_some(), "no shim for the pod");
        for id in &ids {
            assert_eq!(c.shim_pid(id), None, "container {id} got a shim of its own");
        }

        let out = exec(
            &mut client,
            &ids[0],
            &["sh", "-c", "echo out; echo err >&2; exit 3"],
        )
        .await;
        assert_eq!(out.exit_code, 3);
        assert_eq!(text(&out.stdout), "out\n");
        assert_eq!(text(&out.stderr), "err\n");
        let host = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
        let (one, two) = (
            boot_id(&mut client, &ids[0]).await,
            boot_id(&mut client, &ids[1]).await,
        );
        assert_eq!(one, two, "the pod's containers are in different VMs");
        assert_ne!(one, host.trim(), "the container runs on the host's kernel");

        let status = client
            .container_status(ContainerStatusRequest {
                container_id: ids[1].clone(),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner()
            .status
            .unwrap();
        assert_eq!(status.state, ContainerState::ContainerRunning as i32);
        assert_eq!(status.metadata.unwrap().name, "two");

        // A third container over its memory limit: the OOM killer takes
        // it in the guest, the shim says so (TaskOOM) and CRI reports it.
        let hog = oom_killed_container(&c, &mut client, &pod).await;
        assert_eq!(hog.reason, "OOMKilled", "{hog:?}");
        assert_eq!(hog.exit_code, 137, "{hog:?}");

        // A stopped container's task is deleted: its share (rootfs and
        // binds in virtiofsd's tree) is taken back while the pod runs on.
        for id in ids.iter().rev() {
            let before = jail_mounts(&c);
            client
                .stop_container(StopContainerRequest {
                    container_id: id.clone(),
                    timeout: 5,
                })
                .await
                .unwrap_or_else(|e| panic!("StopContainer: {e}\n{}", c.log()));
            let deadline = Instant::now() + Duration::from_secs(10);
            while jail_mounts(&c) >= before && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            assert!(jail_mounts(&c) < before, "container {id}'s share stays");
        }
        assert_eq!(sandboxes(&c), 1, "the pod's VM went with its containers");
        remove_pod(&c, &mut client, &pod).await;
        pod
    });
    c.wait_cleanup(&pod, Duration::from_secs(30));
    c.assert_clean(&pod);
}

/// The pod's shim SIGKILLed with both containers running: containerd's
/// `delete` for its tasks tears the VM down, and the pod is then stopped
/// and removed as kubelet would; nothing is left.
#[test]
fn a_pods_shim_killed_is_cleaned_up() {
    if !require_root() {
        return;
    }
    let c = Containerd::start_cri("crikill");
    let socket: PathBuf = c.address.clone();
    let rt = runtime();
    let pod = rt.block_on(async {
        let mut client = connect(&socket).await;
        let (pod, _) = start_pod(&c, &mut client, "pod", CRI_HANDLER).await;
        let shim = c.shim_pid(&pod).expect("the pod's shim");
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &shim.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        while sandboxes(&c) > 0 {
            assert!(
                Instant::now() < deadline,
                "the VM outlived its shim\n{}",
                c.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        remove_pod(&c, &mut client, &pod).await;
        pod
    });
    c.wait_cleanup(&pod, Duration::from_secs(30));
    c.assert_clean(&pod);
}
