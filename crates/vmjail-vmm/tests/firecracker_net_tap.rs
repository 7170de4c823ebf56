//! Real tap devices in a real network namespace (needs root: fails under
//! `CI`, skips with a reason elsewhere when not root).

mod firecracker_support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

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

// <linux/if_tun.h>: TUNSETIFF = _IOW('T', 202, int).
nix::ioctl_write_ptr_bad!(
    tun_set_iff,
    nix::request_code_write!(b'T', 202, std::mem::size_of::<libc::c_int>()),
    libc::ifreq
);

/// Attach to tap `name` inside `netns` the way Firecracker does, from a
/// thread that joined the netns; the descriptor is held by whoever keeps
/// the returned file.
fn attach_like_a_vmm(netns: &std::path::Path, name: &str) -> std::fs::File {
    use std::os::fd::{AsFd, AsRawFd};
    let ns = std::fs::File::open(netns).unwrap();
    let name = name.to_owned();
    std::thread::spawn(move || {
        nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let tun = std::fs::File::options()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .unwrap();
        // SAFETY: ifreq is plain old data; all-zero is valid.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
            *dst = src as libc::c_char;
        }
        req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as i16;
        // SAFETY: a valid ifreq that outlives the call.
        unsafe { tun_set_iff(tun.as_raw_fd(), &req) }.unwrap();
        tun
    })
    .join()
    .unwrap()
}

#[test]
fn a_tap_still_held_is_busy_and_goes_once_released() {
    if !root_or_skip() {
        return;
    }
    let ns = Netns::new("tapheld");
    let tap = "fctap2";
    net::create_tap(&ns.path(), tap, 0, 0).unwrap();
    let held = attach_like_a_vmm(&ns.path(), tap);
    // Held for good: a bounded wait, then a clear error; the tap stays.
    let err = net::remove_tap_within(&ns.path(), tap, Duration::from_millis(100)).unwrap_err();
    assert!(matches!(err, net::Error::TapBusy { .. }), "{err}");
    assert!(err.to_string().contains(tap), "{err}");
    assert!(net::link_exists(&ns.path(), tap).unwrap());
    // Released while remove_tap waits (a VMM's last thread closing it).
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        drop(held);
    });
    let started = Instant::now();
    net::remove_tap_within(&ns.path(), tap, Duration::from_secs(5)).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
    releaser.join().unwrap();
    assert!(!net::link_exists(&ns.path(), tap).unwrap());
}
