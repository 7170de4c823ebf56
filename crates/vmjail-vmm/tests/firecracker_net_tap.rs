//! Real tap devices in a real network namespace (needs root: fails under
//! `CI`, skips with a reason elsewhere when not root).

mod firecracker_support;

use std::path::PathBuf;

use firecracker_support::host::{root_or_skip, Netns};
use vmjail_vmm::net;

#[test]
fn tap_is_created_owned_up_and_removed_inside_the_netns() {
    if !root_or_skip() {
        return;
    }
    let ns = Netns::new("tap");
    let tap = "fctap0";
    net::create_tap(&ns.path(), tap, 48_611, 48_612).unwrap();
    assert!(net::link_exists(&ns.path(), tap).unwrap());
    let details = ns.link_details(tap);
    assert!(details.contains("tap"), "{details}");
    assert!(details.contains("persist on"), "{details}");
    assert!(details.contains("user 48611"), "{details}");
    assert!(details.contains("group 48612"), "{details}");
    assert!(
        details.contains(",UP") || details.contains("<UP"),
        "{details}"
    );
    // Not in the host's namespace.
    assert!(!PathBuf::from(format!("/sys/class/net/{tap}")).exists());

    // An existing tap is never taken over (nor re-owned).
    let err = net::create_tap(&ns.path(), tap, 1, 1).unwrap_err();
    assert!(matches!(err, net::Error::SetIff { .. }), "{err}");
    assert!(ns.link_details(tap).contains("user 48611"));

    net::remove_tap(&ns.path(), tap).unwrap();
    assert!(!net::link_exists(&ns.path(), tap).unwrap());
    // Idempotent, and a vanished netns counts as removed.
    net::remove_tap(&ns.path(), tap).unwrap();
    net::remove_tap(
        &PathBuf::from("/var/run/netns/vmjail-fc-never-existed"),
        tap,
    )
    .unwrap();
}

#[test]
fn joining_a_missing_or_bogus_netns_is_an_error() {
    let err = net::create_tap(&PathBuf::from("/nonexistent/netns"), "fctap1", 0, 0).unwrap_err();
    assert!(matches!(err, net::Error::OpenNetns { .. }), "{err}");
    if !root_or_skip() {
        return;
    }
    // A file that is not a namespace: setns fails and says so.
    let file = tempfile::NamedTempFile::new().unwrap();
    let err = net::create_tap(file.path(), "fctap1", 0, 0).unwrap_err();
    assert!(matches!(err, net::Error::JoinNetns { .. }), "{err}");
    assert!(matches!(
        net::create_tap(file.path(), "bad/name", 0, 0),
        Err(net::Error::InvalidTapName { .. })
    ));
}
