//! Flow tests of the Firecracker client and backend logic against an
//! in-process API double (which validates every request against the spec).
//! These prove logic only; the real-binary tests are in
//! `firecracker_real.rs`.

mod firecracker_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use firecracker_support::api_double::{ApiDouble, Behaviour};
use firecracker_support::config::runtime_config;
use firecracker_support::host::{jailed_stand_in, root_or_skip};
use vmjail_config::HypervisorKind;
use vmjail_jail::JailRecord;
use vmjail_vmm::firecracker::{
    self, api, configure, ApiClient, ApiError, BootPlan, Firecracker, WaitError,
};
use vmjail_vmm::{Hypervisor, VmState, VmmError, VmmRecord, VsockDevice};

/// The API socket where the backend looks for it: `<jail_dir>/root/run/
/// firecracker.socket`, with `<temp dir>/firecracker/double` as the jail dir
/// (teardown insists on the `<base>/<exec>/<id>` shape).
fn socket_in(dir: &tempfile::TempDir) -> PathBuf {
    let run = dir.path().join("firecracker/double/root/run");
    std::fs::create_dir_all(&run).unwrap();
    run.join("firecracker.socket")
}

/// `<jail_dir>/root` for a socket made by [`socket_in`].
fn jail_root(socket: &Path) -> PathBuf {
    socket.ancestors().nth(2).unwrap().to_path_buf()
}

fn plan() -> BootPlan {
    let p = Path::new("/nonexistent");
    Firecracker::new(&runtime_config(p, None, p, p, p), p)
        .unwrap()
        .with_placeholder_drives(2)
        .boot_plan()
}

fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// A backend reattached (as another process would) to the double, with a
/// `sleep` child standing in for the VMM process.
fn reattached(socket: &Path, vmm: &std::process::Child) -> Firecracker {
    let p = Path::new("/nonexistent");
    let pid = vmm.id() as i32;
    let record = VmmRecord {
        kind: HypervisorKind::Firecracker,
        id: "double".into(),
        netns: PathBuf::from("/nonexistent-netns"),
        jail: JailRecord {
            id: "double".into(),
            // socket_in's layout: <jail_dir>/root/run/firecracker.socket.
            jail_dir: socket.ancestors().nth(3).unwrap().to_path_buf(),
            vmm_pid: Some(pid),
            vmm_start_time: start_time(pid),
            ..JailRecord::default()
        },
        api_socket: socket.to_path_buf(),
        taps: vec![],
        drives: vec![],
        helpers: vec![],
        vsock: None,
    };
    Firecracker::from_record(record, &runtime_config(p, None, p, p, p), p)
        .with_timeouts(Duration::from_secs(2), Duration::from_secs(2))
}

fn fc_error(error: VmmError) -> firecracker::Error {
    match error {
        VmmError::Firecracker(e) => *e,
        other => panic!("not a firecracker error: {other}"),
    }
}

#[test]
fn socket_wait_backs_off_until_the_socket_appears_logic_with_api_double() {
    let dir = tempfile::tempdir().unwrap();
    let socket = socket_in(&dir);
    let _double = ApiDouble::start_after(&socket, Duration::from_millis(150));
    let client = ApiClient::new(&socket).unwrap();
    let waited = client
        .wait_for_socket(Duration::from_secs(5), || true)
        .unwrap();
    assert!(waited >= Duration::from_millis(140), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
}

#[test]
fn socket_wait_is_bounded_logic_with_api_double() {
    let dir = tempfile::tempdir().unwrap();
    let client = ApiClient::new(&socket_in(&dir)).unwrap();
    let started = Instant::now();
    let err = client
        .wait_for_socket(Duration::from_millis(200), || true)
        .unwrap_err();
    assert!(matches!(err, WaitError::Timeout { .. }), "{err}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[test]
fn socket_wait_stops_when_the_vmm_dies_logic_with_api_double() {
    let dir = tempfile::tempdir().unwrap();
    let client = ApiClient::new(&socket_in(&dir)).unwrap();
    let started = Instant::now();
    let err = client
        .wait_for_socket(Duration::from_secs(10), || false)
        .unwrap_err();
    assert!(matches!(err, WaitError::VmmGone { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn configuration_is_sent_in_order_and_conforms_logic_with_api_double() {
    let dir = tempfile::tempdir().unwrap();
    let double = ApiDouble::start(&socket_in(&dir));
    let client = ApiClient::new(&double.socket).unwrap();
    client
        .wait_for_socket(Duration::from_secs(5), || true)
        .unwrap();
    let plan = plan();
    configure(&client, &plan, Duration::from_secs(2)).unwrap();
    assert_eq!(
        double.calls(),
        [
            "PUT /logger",
            "PUT /metrics",
            "PUT /machine-config",
            "PUT /boot-source",
            "PUT /drives/drive0",
            "PUT /drives/drive1",
            "PUT /vsock",
        ]
    );
    double.assert_no_violation();
    // What was sent is what the plan holds.
    let received = double.received();
    assert_eq!(
        received[3].body.as_ref().unwrap()["boot_args"],
        plan.boot_source.boot_args.as_str()
    );
    assert_eq!(
        double.drives()["drive1"]["path_on_host"],
        "/drives/placeholder-1"
    );
}

#[test]
fn a_refusal_stops_configuration_and_carries_fault_message_logic_with_api_double() {
    let dir = tempfile::tempdir().unwrap();
    let double = ApiDouble::start(&socket_in(&dir));
    double.set(
        "PUT",
        "/boot-source",
        Behaviour::Fault(
            400,
            "Kernel image path does not exist: /boot/vmlinux".into(),
        ),
    );
    let client = ApiClient::new(&double.socket).unwrap();
    client
        .wait_for_socket(Duration::from_secs(5), || true)
        .unwrap();
    let err = configure(&client, &plan(), Duration::from_secs(2)).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("PUT /boot-source"), "{text}");
    assert!(
        text.contains("Kernel image path does not exist: /boot/vmlinux"),
        "{text}"
    );
    match err {
        firecracker::Error::Api {
            source: ApiError::Status { status, .. },
            ..
        } => assert_eq!(status, 400),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(double.calls().last().unwrap(), "PUT /boot-source");
    double.assert_no_violation();
}

#[test]
fn a_slow_answer_times_out_logic_with_api_double() {
    let dir = tempfile::tempdir().unwrap();
    let double = ApiDouble::start(&socket_in(&dir));
    double.set(
        "PUT",
        "/machine-config",
        Behaviour::Delay(Duration::from_secs(3)),
    );
    let client = ApiClient::new(&double.socket).unwrap();
    client
        .wait_for_socket(Duration::from_secs(5), || true)
        .unwrap();
    let started = Instant::now();
    let err = configure(&client, &plan(), Duration::from_millis(200)).unwrap_err();
    assert!(
        matches!(
            err,
            firecracker::Error::Api {
                source: ApiError::Timeout(_),
                ..
            }
        ),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn lifecycle_start_pause_resume_stop_logic_with_api_double() {
    if !root_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let double = ApiDouble::start(&socket_in(&dir));
    // A stand-in VMM in the jail root that notes SIGTERM and ignores
    // Ctrl-Alt-Del.
    let mut vmm = jailed_stand_in(
        &jail_root(&double.socket),
        "trap 'echo got-sigterm; exit 0' TERM; while :; do sleep 0.02; done",
    );
    std::thread::sleep(Duration::from_millis(50));
    let mut fc = reattached(&double.socket, &vmm);
    ApiClient::new(&double.socket)
        .unwrap()
        .wait_for_socket(Duration::from_secs(5), || true)
        .unwrap();
    configure(
        &ApiClient::new(&double.socket).unwrap(),
        &plan(),
        Duration::from_secs(2),
    )
    .unwrap();

    assert_eq!(fc.state().unwrap(), VmState::Created);
    let mut recorder = |_: &VmmRecord| Ok(());
    fc.add_vsock(&VsockDevice { guest_cid: 7 }, &mut recorder)
        .unwrap();
    let err = fc_error(
        fc.add_vsock(&VsockDevice { guest_cid: 2 }, &mut recorder)
            .unwrap_err(),
    );
    assert!(
        matches!(err, firecracker::Error::InvalidGuestCid { cid: 2 }),
        "{err}"
    );

    fc.start(Duration::from_secs(2)).unwrap();
    assert_eq!(fc.state().unwrap(), VmState::Running);
    fc.pause().unwrap();
    assert_eq!(fc.state().unwrap(), VmState::Paused);
    fc.resume().unwrap();
    assert_eq!(fc.state().unwrap(), VmState::Running);
    let err = fc_error(
        fc.add_vsock(&VsockDevice { guest_cid: 9 }, &mut recorder)
            .unwrap_err(),
    );
    assert!(matches!(err, firecracker::Error::AfterBoot { .. }), "{err}");

    // The stand-in VMM ignores Ctrl-Alt-Del: stop must escalate to SIGTERM
    // after the bounded wait.
    let started = Instant::now();
    fc.stop(Duration::from_millis(300)).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(started.elapsed() < Duration::from_secs(3));
    let mut said = String::new();
    std::io::Read::read_to_string(&mut vmm.stdout.take().unwrap(), &mut said).unwrap();
    assert_eq!(said.trim(), "got-sigterm", "the VMM got SIGTERM");
    assert!(
        !Path::new(&format!("/proc/{}", vmm.id())).exists(),
        "and is gone (reaped)"
    );
    assert_eq!(fc.state().unwrap(), VmState::Stopped);
    // Idempotent.
    fc.stop(Duration::from_millis(100)).unwrap();
    // Already reaped by the backend (its child here); nothing left to wait for.
    assert!(vmm.wait().is_err());

    let calls = double.calls();
    let vsock_puts = calls.iter().filter(|c| *c == "PUT /vsock").count();
    assert_eq!(vsock_puts, 2, "the plan's and add_vsock's: {calls:?}");
    let actions: Vec<String> = double
        .received()
        .iter()
        .filter(|r| r.path == "/actions")
        .map(|r| {
            r.body.as_ref().unwrap()["action_type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(actions, ["InstanceStart", "SendCtrlAltDel"]);
    double.assert_no_violation();
}

#[test]
fn start_refusal_reaches_the_user_logic_with_api_double() {
    if !root_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let double = ApiDouble::start(&socket_in(&dir));
    let mut vmm = jailed_stand_in(&jail_root(&double.socket), "sleep 60");
    let mut fc = reattached(&double.socket, &vmm);
    ApiClient::new(&double.socket)
        .unwrap()
        .wait_for_socket(Duration::from_secs(5), || true)
        .unwrap();
    // No boot source configured: the double refuses like Firecracker.
    let err = fc.start(Duration::from_secs(2)).unwrap_err().to_string();
    assert!(
        err.contains("Cannot start microvm without kernel configuration"),
        "{err}"
    );
    assert!(err.contains("PUT /actions"), "{err}");
    let _ = vmm.kill();
    let _ = vmm.wait();
    double.assert_no_violation();
}

#[test]
fn operations_before_create_say_so_logic_with_api_double() {
    let p = Path::new("/nonexistent");
    let mut fc = Firecracker::new(&runtime_config(p, None, p, p, p), p).unwrap();
    assert_eq!(fc.state().unwrap(), VmState::Stopped);
    let err = fc_error(fc.start(Duration::from_secs(1)).unwrap_err());
    assert!(
        matches!(err, firecracker::Error::NotCreated { operation: "start" }),
        "{err}"
    );
    fc.stop(Duration::from_millis(10)).unwrap();
    assert_eq!(fc.pid(), None);
}

#[test]
fn instance_info_is_typed_after_the_spec_logic_with_api_double() {
    let dir = tempfile::tempdir().unwrap();
    let double = ApiDouble::start(&socket_in(&dir));
    let client = ApiClient::new(&double.socket).unwrap();
    client
        .wait_for_socket(Duration::from_secs(5), || true)
        .unwrap();
    let answer = client
        .send(&api::get_instance_info(), Duration::from_secs(2))
        .unwrap();
    let info: api::InstanceInfo = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(info.state, api::InstanceState::NotStarted);
}

#[test]
fn stop_escalates_to_sigkill_when_sigterm_is_ignored_logic_with_api_double() {
    if !root_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let double = ApiDouble::start(&socket_in(&dir));
    let mut vmm = jailed_stand_in(
        &jail_root(&double.socket),
        "trap '' TERM; while :; do sleep 0.02; done",
    );
    std::thread::sleep(Duration::from_millis(50));
    let mut fc = reattached(&double.socket, &vmm);
    let started = Instant::now();
    // Not started: Firecracker refuses Ctrl-Alt-Del, so no wait for it;
    // SIGTERM is ignored, one bounded wait, then SIGKILL. A wait for
    // Ctrl-Alt-Del too would make it two.
    let wait = Duration::from_secs(2);
    fc.stop(wait).unwrap();
    let took = started.elapsed();
    assert!(took >= wait && took < 2 * wait, "{took:?}");
    assert!(!Path::new(&format!("/proc/{}", vmm.id())).exists());
    assert_eq!(fc.pid(), Some(vmm.id() as i32));
    assert!(vmm.wait().is_err(), "already reaped by the backend");
    double.assert_no_violation();
}

/// Firecracker takes NICs (taps the network layer made) only before
/// InstanceStart, never a macvtap; the boot network's kernel parameters
/// reach its boot_args.
#[test]
fn nics_only_before_start_and_never_a_macvtap_logic_with_api_double() {
    use vmjail_vmm::net::NicDevice;
    use vmjail_vmm::{BootNetwork, GuestNic};
    let p = Path::new("/nonexistent");
    let nic = |id: &str, device: NicDevice| GuestNic {
        id: id.into(),
        device,
        mac: "02:00:00:00:00:01".parse().unwrap(),
    };
    let tap = nic(
        "net0",
        NicDevice::Tap {
            name: "vmj0tap".into(),
        },
    );
    let macvtap = nic(
        "net1",
        NicDevice::Macvtap {
            name: "vmj1mvt".into(),
            ifindex: 9,
        },
    );
    // Before create: the kernel parameters go into boot_args.
    let mut fresh = Firecracker::new(&runtime_config(p, None, p, p, p), p).unwrap();
    fresh
        .set_boot_network(BootNetwork {
            nics: vec![tap.clone()],
            kernel_params: vec![vmjail_config::KernelParam {
                key: "vmjail.nic".into(),
                value: Some("net0,02:00:00:00:00:01,1500".into()),
            }],
        })
        .unwrap();
    assert!(
        fresh
            .boot_plan()
            .boot_source
            .boot_args
            .contains("vmjail.nic=net0,02:00:00:00:00:01,1500"),
        "{:?}",
        fresh.boot_plan().boot_source.boot_args
    );
    let err = fc_error(
        fresh
            .set_boot_network(BootNetwork {
                nics: vec![macvtap.clone()],
                kernel_params: vec![],
            })
            .unwrap_err(),
    );
    assert!(
        matches!(err, firecracker::Error::MacvtapUnsupported { .. }),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let double = ApiDouble::start(&socket_in(&dir));
    let mut vmm = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let mut fc = reattached(&double.socket, &vmm);
    ApiClient::new(&double.socket)
        .unwrap()
        .wait_for_socket(Duration::from_secs(5), || true)
        .unwrap();
    configure(
        &ApiClient::new(&double.socket).unwrap(),
        &plan(),
        Duration::from_secs(2),
    )
    .unwrap();
    fc.hot_plug_nic(&tap).unwrap();
    let err = fc_error(fc.hot_plug_nic(&macvtap).unwrap_err());
    assert!(
        matches!(err, firecracker::Error::MacvtapUnsupported { .. }),
        "{err}"
    );
    fc.start(Duration::from_secs(2)).unwrap();
    let err = fc_error(fc.hot_plug_nic(&tap).unwrap_err());
    assert!(matches!(err, firecracker::Error::AfterBoot { .. }), "{err}");
    let put: Vec<_> = double
        .received()
        .into_iter()
        .filter(|r| r.path == "/network-interfaces/net0")
        .collect();
    assert_eq!(put.len(), 1, "{:?}", double.calls());
    let body = put[0].body.as_ref().unwrap();
    assert_eq!(body["host_dev_name"], "vmj0tap");
    assert_eq!(body["guest_mac"], "02:00:00:00:00:01");
    double.assert_no_violation();
    let _ = vmm.kill();
    let _ = vmm.wait();
}
