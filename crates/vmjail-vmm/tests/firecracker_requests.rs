//! Every request the Firecracker client can send, checked against the API
//! spec parsed from `firecracker.yaml` at test time.

mod firecracker_support;

use std::path::Path;

use firecracker_support::config::runtime_config;
use firecracker_support::spec::Spec;
use serde_json::json;
use vmjail_vmm::firecracker::api::{self, ActionType, ApiRequest, VmRunState};
use vmjail_vmm::firecracker::{layout, Firecracker};

fn check(spec: &Spec, request: &ApiRequest) {
    spec.validate_request(
        request.method.as_str(),
        &request.path,
        request.body.as_ref(),
    )
    .unwrap_or_else(|e| panic!("{request:?} breaks the spec: {e}"));
}

fn backend(image: bool) -> Firecracker {
    let p = Path::new("/nonexistent");
    let mut config = runtime_config(p, None, p, p, p);
    if image {
        config.hypervisor.initrd = None;
        config.hypervisor.image = Some(p.to_path_buf());
    }
    Firecracker::new(&config, p).unwrap()
}

#[test]
fn every_boot_plan_request_conforms_to_the_spec() {
    let spec = Spec::load();
    for image in [false, true] {
        let plan = backend(image).boot_plan();
        let requests = plan.requests();
        assert!(requests.len() >= 5 + layout::DEFAULT_PLACEHOLDER_DRIVES);
        for request in &requests {
            check(&spec, request);
        }
    }
}

#[test]
fn every_runtime_request_conforms_to_the_spec() {
    let spec = Spec::load();
    let requests = [
        api::put_action(ActionType::InstanceStart),
        api::put_action(ActionType::SendCtrlAltDel),
        api::put_action(ActionType::FlushMetrics),
        api::patch_vm(VmRunState::Paused),
        api::patch_vm(VmRunState::Resumed),
        api::get_instance_info(),
        api::patch_drive(&api::PartialDrive {
            drive_id: "drive0".into(),
            path_on_host: "/drives/drive0/vol".into(),
        }),
        api::put_drive(&api::Drive {
            drive_id: "drive1".into(),
            path_on_host: "/drives/drive1/vol".into(),
            is_root_device: false,
            is_read_only: true,
        }),
        api::put_network_interface(&api::NetworkInterface {
            iface_id: "eth0".into(),
            host_dev_name: "tap0".into(),
            guest_mac: Some("AA:FC:00:00:00:01".into()),
        }),
        api::put_network_interface(&api::NetworkInterface {
            iface_id: "eth1".into(),
            host_dev_name: "tap1".into(),
            guest_mac: None,
        }),
        api::put_vsock(&api::Vsock {
            guest_cid: 3,
            uds_path: layout::VSOCK_SOCKET.into(),
        }),
    ];
    for request in &requests {
        check(&spec, request);
    }
}

#[test]
fn boot_plan_holds_what_firecracker_needs() {
    let plan = backend(false).boot_plan();
    assert!(!plan.machine.smt);
    assert_eq!(plan.machine.vcpu_count, 1);
    assert_eq!(plan.machine.mem_size_mib, 128);
    assert_eq!(plan.boot_source.kernel_image_path, layout::KERNEL);
    assert_eq!(
        plan.boot_source.initrd_path.as_deref(),
        Some(layout::INITRD)
    );
    // vmjail.agent: the guest starts its agent on the vsock, as its init.
    for needed in [
        "console=ttyS0",
        "reboot=k",
        "panic=1",
        "pci=off",
        "quiet",
        "vmjail.agent",
        "rdinit=/sbin/vmjail-init",
    ] {
        assert!(
            plan.boot_source.boot_args.split(' ').any(|a| a == needed),
            "{needed} missing from {}",
            plan.boot_source.boot_args
        );
    }
    assert_eq!(plan.vsock.as_ref().map(|v| v.guest_cid), Some(3));
    assert!(plan.root_drive.is_none());
    // Every path handed to Firecracker is an in-jail absolute path.
    for request in plan.requests() {
        let body = request.body.unwrap_or_default();
        for key in [
            "log_path",
            "metrics_path",
            "kernel_image_path",
            "initrd_path",
            "path_on_host",
            "uds_path",
        ] {
            if let Some(path) = body.get(key).and_then(|v| v.as_str()) {
                assert!(
                    path.starts_with('/') && !path.contains(".."),
                    "{key}={path}"
                );
                assert!(
                    !path.starts_with("/nonexistent"),
                    "host path leaked: {key}={path}"
                );
            }
        }
    }

    let image_plan = backend(true).boot_plan();
    let root = image_plan.root_drive.expect("a root drive for an image");
    assert!(root.is_root_device && root.is_read_only);
    assert_eq!(root.path_on_host, layout::ROOTFS);
    assert_eq!(image_plan.boot_source.initrd_path, None);
}

#[test]
fn placeholder_count_is_configurable() {
    let plan = backend(false).with_placeholder_drives(2).boot_plan();
    let ids: Vec<_> = plan
        .placeholders
        .iter()
        .map(|d| d.drive_id.clone())
        .collect();
    assert_eq!(ids, ["drive0", "drive1"]);
    assert!(plan
        .placeholders
        .iter()
        .all(|d| !d.is_read_only && !d.is_root_device));
}

#[test]
fn the_validator_rejects_what_the_spec_forbids() {
    let spec = Spec::load();
    let bad = [
        ("PUT", "/nowhere", Some(json!({}))),
        ("DELETE", "/drives/x", None),
        ("PUT", "/machine-config", Some(json!({ "vcpu_count": 1 }))),
        (
            "PUT",
            "/machine-config",
            Some(json!({ "vcpu_count": 1, "mem_size_mib": 128, "bogus": 1 })),
        ),
        (
            "PUT",
            "/machine-config",
            Some(json!({ "vcpu_count": 33, "mem_size_mib": 128 })),
        ),
        (
            "PUT",
            "/machine-config",
            Some(json!({ "vcpu_count": "1", "mem_size_mib": 128 })),
        ),
        ("PUT", "/actions", Some(json!({ "action_type": "Reboot" }))),
        ("PATCH", "/vm", Some(json!({ "state": "Stopped" }))),
        (
            "PUT",
            "/vsock",
            Some(json!({ "guest_cid": 2, "uds_path": "/v" })),
        ),
        (
            "PUT",
            "/drives/d",
            Some(json!({ "drive_id": "d", "is_root_device": "no" })),
        ),
        ("PUT", "/logger", None),
        ("GET", "/", Some(json!({}))),
    ];
    for (method, path, body) in bad {
        assert!(
            spec.validate_request(method, path, body.as_ref()).is_err(),
            "{method} {path} {body:?} passed"
        );
    }
}

#[test]
fn instance_info_answers_decode() {
    let spec = Spec::load();
    for (state, expected) in [
        ("Not started", api::InstanceState::NotStarted),
        ("Running", api::InstanceState::Running),
        ("Paused", api::InstanceState::Paused),
    ] {
        let body =
            json!({ "app_name": "Firecracker", "id": "x", "state": state, "vmm_version": "1.7.0" });
        spec.validate_response("GET", "/", 200, &body).unwrap();
        let info: api::InstanceInfo = serde_json::from_value(body).unwrap();
        assert_eq!(info.state, expected);
    }
}

#[test]
fn resource_ids_cannot_escape_their_path_segment() {
    for good in ["drive0", "root_fs", "eth-1"] {
        assert!(api::valid_resource_id(good));
    }
    for bad in ["", "a/b", "..", "a?b", "a b", &"x".repeat(65)] {
        assert!(!api::valid_resource_id(bad), "{bad:?}");
    }
}

#[test]
fn boot_drives_go_before_the_placeholders_with_their_id_as_serial() {
    use vmjail_vmm::{BlockDevice, Hypervisor};
    let mut fc = backend(false).with_placeholder_drives(1);
    let drive = |id: &str| BlockDevice {
        id: id.into(),
        host_path: "/nonexistent/bundle.img".into(),
        read_only: false,
    };
    fc.set_boot_drives(vec![drive("vmjail-c0")]).unwrap();
    let plan = fc.boot_plan();
    let spec = Spec::load();
    for request in &plan.requests() {
        check(&spec, request);
    }
    let ids: Vec<_> = plan
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/drives/"))
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(ids, ["/drives/vmjail-c0", "/drives/drive0"]);
    let boot = &plan.boot_drives[0];
    assert_eq!(boot.path_on_host, "/drives/boot/vmjail-c0");
    assert!(!boot.is_root_device && !boot.is_read_only);
    // A placeholder's or the root drive's id, a duplicate, or one longer
    // than a virtio-blk serial is refused.
    for bad in [
        vec![drive("drive0")],
        vec![drive("rootfs")],
        vec![drive("a"), drive("a")],
        vec![drive(&"x".repeat(21))],
        vec![drive("a/b")],
    ] {
        assert!(fc.set_boot_drives(bad).is_err());
    }
}
