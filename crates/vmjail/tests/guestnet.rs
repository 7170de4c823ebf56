//! The internetworking models end to end, through the real binary and a
//! real QEMU guest (root; fails under `CI`): the test makes an "outside"
//! netns and the sandbox netns joined by a veth pair (addresses it
//! chooses), creates the sandbox in that netns, and checks that the guest
//! took the veth's MAC and addresses, answers ping from outside, serves TCP
//! to the outside and reaches a server there (bytes counted both ways), and
//! that after delete both namespaces are exactly as they were.

mod guestnet_support;
mod lifecycle_support;
#[path = "../../vmjail-vmm/tests/net_support/mod.rs"]
mod net_support;

use std::net::SocketAddr;
use std::time::Duration;

use guestnet_support::{
    console_line, echo_through, net_world, ping, Peer, GUEST_ECHO_PORT, PEER_PORT,
};
use lifecycle_support::{require_root, unique_id};
use net_support::Pair;

const BOOT: Duration = Duration::from_secs(90);
const ECHO_BYTES: usize = 256 * 1024;

/// What `none` leaves to the user: the test connects the tap to the veth
/// itself, with its own tc redirects (and removes them from the veth after).
fn connect_by_hand(pair: &Pair) {
    for dev in ["eth0", "vmj0tap"] {
        pair.sandbox.tc(&["qdisc", "add", "dev", dev, "ingress"]);
    }
    for (from, to) in [("eth0", "vmj0tap"), ("vmj0tap", "eth0")] {
        pair.sandbox.tc(&[
            "filter", "add", "dev", from, "ingress", "protocol", "all", "u32", "match", "u32", "0",
            "0", "action", "mirred", "egress", "redirect", "dev", to,
        ]);
    }
}

fn model_end_to_end(tag: &str, n: u8, model: &str) {
    if !require_root() {
        return;
    }
    let pair = Pair::new(tag, n);
    let before = (pair.sandbox.snapshot(), pair.outside.snapshot());
    let mac = pair.sandbox.mac_of("eth0");
    let peer_addr: SocketAddr = format!("{}:{PEER_PORT}", pair.outside_ip())
        .parse()
        .unwrap();
    let peer = Peer::start(&pair.outside.path(), peer_addr);
    let w = net_world(tag, model, &peer_addr.to_string(), "");
    let id = unique_id(tag);
    let netns = pair.sandbox.path();
    w.ok(&["create", "--id", &id, "--netns", netns.to_str().unwrap()]);
    if model == "none" {
        connect_by_hand(&pair);
    }
    w.ok(&["start", &id]);

    // The guest interface has the veth's MAC and addresses.
    let console = w.wait_console(&id, "VMJAIL-NET-IF", BOOT);
    let line = console_line(&console, "VMJAIL-NET-IF");
    assert!(line.contains(&format!(" {mac} ")), "{line}");
    assert!(line.contains(&format!("10.77.{n}.2/24")), "{line}");
    assert!(line.contains(&format!("fd77:{n}::2/64")), "{line}");
    // state shows it.
    let state = w.state(&id);
    let iface = &state["interfaces"][0];
    assert_eq!(iface["name"], "eth0", "{state}");
    assert_eq!(iface["mac"], mac.as_str(), "{state}");
    assert_eq!(iface["model"], model, "{state}");
    let addresses = iface["addresses"].to_string();
    assert!(addresses.contains(&format!("10.77.{n}.2/24")), "{state}");

    // ping from outside.
    assert!(
        ping(&pair.outside.0, &pair.guest_ip(), Duration::from_secs(30)),
        "the guest does not answer ping from outside"
    );
    // TCP outside → guest, bytes counted both ways.
    let guest: SocketAddr = format!("{}:{GUEST_ECHO_PORT}", pair.guest_ip())
        .parse()
        .unwrap();
    let (sent, received) = echo_through(&pair.outside.path(), guest, ECHO_BYTES);
    assert_eq!((sent, received), (ECHO_BYTES, ECHO_BYTES));
    // TCP guest → outside: the guest sent 65536 bytes and got them back.
    let console = w.wait_console(&id, "VMJAIL-NET-PEER", BOOT);
    let line = console_line(&console, "VMJAIL-NET-PEER");
    assert!(line.contains("received=65536"), "{line}");
    assert!(
        peer.received.load(std::sync::atomic::Ordering::SeqCst) >= 65536,
        "the outside peer got {} bytes",
        peer.received.load(std::sync::atomic::Ordering::SeqCst)
    );

    let recorded = w.stored(&id);
    w.ok(&["stop", &id]);
    w.ok(&["delete", &id]);
    w.assert_no_leaks(&id, recorded.as_ref());
    if model == "none" {
        // The user's own connection, on the user's side.
        pair.sandbox.tc(&["qdisc", "del", "dev", "eth0", "ingress"]);
    }
    assert_eq!(
        (pair.sandbox.snapshot(), pair.outside.snapshot()),
        before,
        "the namespaces differ after delete"
    );
}

#[test]
fn tcfilter_guest_takes_the_veth_identity_and_talks_both_ways() {
    model_end_to_end("gntcf", 21, "tcfilter");
}

#[test]
fn bridged_guest_takes_the_veth_identity_and_talks_both_ways() {
    model_end_to_end("gnbrd", 22, "bridged");
}

#[test]
fn macvtap_guest_takes_the_veth_identity_and_talks_both_ways() {
    model_end_to_end("gnmvt", 23, "macvtap");
}

#[test]
fn none_guest_talks_once_the_user_connects_the_tap() {
    model_end_to_end("gnnon", 24, "none");
}

/// A second veth pair into the sandbox netns: `out1` outside
/// (10.77.<m>.1/24), `eth1` inside (10.77.<m>.2/24); no IPv6 link-local
/// addresses, so a snapshot taken right after stays true.
fn add_second_endpoint(pair: &Pair, m: u8) {
    net_support::run(
        "ip",
        &[
            "-n",
            &pair.outside.0,
            "link",
            "add",
            "out1",
            "type",
            "veth",
            "peer",
            "name",
            "eth1",
            "netns",
            &pair.sandbox.0,
        ],
    );
    pair.outside
        .ip(&["link", "set", "out1", "addrgenmode", "none"]);
    pair.sandbox
        .ip(&["link", "set", "eth1", "addrgenmode", "none"]);
    pair.outside
        .ip(&["addr", "add", &format!("10.77.{m}.1/24"), "dev", "out1"]);
    pair.outside.ip(&["link", "set", "out1", "up"]);
    pair.sandbox
        .ip(&["addr", "add", &format!("10.77.{m}.2/24"), "dev", "eth1"]);
    pair.sandbox.ip(&["link", "set", "eth1", "up"]);
}

/// An interface that appears after start is hot-plugged into QEMU's q35:
/// connected per model, its tap attached by QEMU (carrier up), shown in
/// state, and removed with the rest on delete.
#[test]
fn an_interface_that_appears_later_is_hot_plugged_on_q35() {
    if !require_root() {
        return;
    }
    let pair = Pair::new("gnhot", 25);
    let w = net_world("gnhot", "tcfilter", "10.77.25.1:9", "");
    let id = unique_id("gnhot");
    let netns = pair.sandbox.path();
    w.ok(&["create", "--id", &id, "--netns", netns.to_str().unwrap()]);
    w.ok(&["start", &id]);
    w.wait_console(&id, "VMJAIL-NET-IF", BOOT);
    add_second_endpoint(&pair, 26);
    let eth1 = |pair: &Pair| {
        [
            pair.sandbox.ip(&["-d", "-o", "link", "show", "eth1"]),
            pair.sandbox.ip(&["-o", "addr", "show", "dev", "eth1"]),
            pair.sandbox.tc(&["qdisc", "show", "dev", "eth1"]),
            pair.outside.snapshot(),
        ]
    };
    let before = eth1(&pair);
    let synced = w.ok(&["net-sync", &id]);
    assert_eq!(synced.split_whitespace().collect::<String>(), "[\"eth1\"]");
    let tap = pair.sandbox.ip(&["link", "show", "vmj1tap"]);
    assert!(
        tap.contains("LOWER_UP") && !tap.contains("NO-CARRIER"),
        "QEMU did not attach the hot-plugged tap: {tap}"
    );
    let filter = pair
        .sandbox
        .tc(&["filter", "show", "dev", "eth1", "ingress"]);
    assert!(filter.contains("Redirect to device vmj1tap"), "{filter}");
    let state = w.state(&id);
    assert_eq!(state["interfaces"][1]["name"], "eth1", "{state}");
    assert_eq!(state["interfaces"][1]["guest_nic"], "net1", "{state}");
    // Nothing new: nothing connected.
    assert_eq!(w.ok(&["net-sync", &id]).trim(), "[]");
    let recorded = w.stored(&id);
    w.ok(&["delete", "--force", &id]);
    w.assert_no_leaks(&id, recorded.as_ref());
    // eth1 and the outside as they were before net-sync (eth0 as before
    // create: the models' tests prove that), nothing of ours left.
    assert_eq!(eth1(&pair), before);
    let ours: Vec<String> = pair
        .sandbox
        .link_names()
        .into_iter()
        .filter(|l| l.starts_with("vmj"))
        .collect();
    assert!(ours.is_empty(), "{ours:?}");
}

/// microvm (virtio-mmio) has no hotplug: net-sync says so and undoes what
/// it made for the interface.
#[test]
fn microvm_refuses_hot_plug_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    let pair = Pair::new("gnmhp", 27);
    let w = lifecycle_support::World::new("gnmhp");
    let id = unique_id("gnmhp");
    let netns = pair.sandbox.path();
    w.ok(&["create", "--id", &id, "--netns", netns.to_str().unwrap()]);
    add_second_endpoint(&pair, 28);
    let before = pair.sandbox.snapshot();
    let out = w.vmjail(&["net-sync", &id]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("virtio-mmio has no hotplug"), "{stderr}");
    assert_eq!(pair.sandbox.snapshot(), before);
    let state = w.state(&id);
    assert_eq!(state["interfaces"].as_array().unwrap().len(), 1, "{state}");
    let recorded = w.stored(&id);
    w.ok(&["delete", "--force", &id]);
    w.assert_no_leaks(&id, recorded.as_ref());
}

/// A vmjail killed while it connects the netns (after the n-th record),
/// or right after, leaves a record from which `delete --force` (or `gc`)
/// removes every object it made and gives the veth back as it was.
#[test]
fn a_vmjail_killed_while_connecting_is_cleaned_by_delete_force_and_gc() {
    if !require_root() {
        return;
    }
    let pair = Pair::new("gncrash", 29);
    let before = (pair.sandbox.snapshot(), pair.outside.snapshot());
    let w = net_world("gncrash", "bridged", "10.77.29.1:9", "");
    let netns = pair.sandbox.path();
    for (i, step) in [
        "create-net-record-2",
        "create-net-record-5",
        "create-net-record-7",
        "create-net-connected",
    ]
    .iter()
    .enumerate()
    {
        let id = unique_id(&format!("gncrash{i}"));
        let status = w
            .command(&["create", "--id", &id, "--netns", netns.to_str().unwrap()])
            .env("VMJAIL_TEST_CRASH_AT", step)
            .status()
            .unwrap();
        assert!(!status.success(), "{step}: create was not killed");
        let recorded = w.stored(&id);
        let made = recorded
            .as_ref()
            .map(|s| s["network"].to_string())
            .unwrap_or_default();
        assert!(
            made.contains("\"made\""),
            "{step}: nothing recorded: {made}"
        );
        if i % 2 == 0 {
            w.ok(&["delete", "--force", &id]);
        } else {
            let gc = w.ok(&["gc"]);
            assert!(gc.contains(&format!("removed {id}")), "{step}: {gc}");
        }
        w.assert_no_leaks(&id, recorded.as_ref());
        assert_eq!(
            (pair.sandbox.snapshot(), pair.outside.snapshot()),
            before,
            "{step}: the namespaces differ after cleanup"
        );
    }
}

/// A VMM that dies while running (SIGKILL) leaves its network to `gc`,
/// which removes it and gives the veth back.
#[test]
fn gc_cleans_the_network_of_a_vmm_that_died() {
    if !require_root() {
        return;
    }
    let pair = Pair::new("gndead", 30);
    let before = (pair.sandbox.snapshot(), pair.outside.snapshot());
    let w = net_world("gndead", "macvtap", "10.77.30.1:9", "");
    let id = unique_id("gndead");
    let netns = pair.sandbox.path();
    w.ok(&["create", "--id", &id, "--netns", netns.to_str().unwrap()]);
    w.ok(&["start", &id]);
    w.wait_console(&id, "VMJAIL-NET-IF", BOOT);
    let pid = w.state(&id)["vmm_pid"].as_u64().unwrap() as u32;
    lifecycle_support::signal(pid, "KILL");
    w.wait_status(&id, "stopped", Duration::from_secs(10));
    assert!(pair.sandbox.link_names().contains(&"vmj0mvt".to_string()));
    let recorded = w.stored(&id);
    let gc = w.ok(&["gc"]);
    assert!(gc.contains(&format!("removed {id}")), "{gc}");
    w.assert_no_leaks(&id, recorded.as_ref());
    assert_eq!((pair.sandbox.snapshot(), pair.outside.snapshot()), before);
}

/// Firecracker (the real binary, when `VMJAIL_FIRECRACKER` names it; the
/// guest itself dies on this host's KVM, so only the VMM side is checked):
/// it attaches vmjail's taps at create and before start (`net-sync`), and
/// refuses an interface after start, leaving nothing for it.
#[test]
fn firecracker_takes_nics_before_start_only() {
    if !require_root() {
        return;
    }
    let Some(firecracker) = std::env::var_os("VMJAIL_FIRECRACKER") else {
        println!("skipped: VMJAIL_FIRECRACKER not set");
        return;
    };
    let pair = Pair::new("gnfc", 31);
    let before = (pair.sandbox.snapshot(), pair.outside.snapshot());
    let w = lifecycle_support::World::new("gnfc");
    let guest = lifecycle_support::repo_root().join("build/guest");
    std::fs::write(
        &w.config,
        format!(
            "[hypervisor.firecracker]\npath = \"{}\"\nkernel = \"{}\"\ninitrd = \"{}\"\n\
             default_vcpus = 1\ndefault_memory = 256\nuse_vsock = true\n\n[agent.kata]\n\n\
             [runtime]\n\n[jail]\nuid = {uid}\ngid = {uid}\nid_range_size = {range}\n\
             chroot_base_dir = \"{}\"\nstate_dir = \"{}\"\nparent_cgroup = \"{}\"\n",
            std::path::Path::new(&firecracker).display(),
            guest.join("vmlinux").display(),
            guest.join("initramfs.cpio.gz").display(),
            w.chroot_base.display(),
            w.state_dir.display(),
            w.parent_cgroup,
            uid = w.jail_uid,
            range = lifecycle_support::ID_RANGE,
        ),
    )
    .unwrap();
    let id = unique_id("gnfc");
    let netns = pair.sandbox.path();
    w.ok(&["create", "--id", &id, "--netns", netns.to_str().unwrap()]);
    let attached = |tap: &str| {
        let link = pair.sandbox.ip(&["link", "show", tap]);
        link.contains("LOWER_UP") && !link.contains("NO-CARRIER")
    };
    assert!(attached("vmj0tap"), "Firecracker did not open vmj0tap");
    // The default model for Firecracker is tcfilter.
    assert_eq!(w.state(&id)["interfaces"][0]["model"], "tcfilter");
    add_second_endpoint(&pair, 32);
    assert_eq!(
        w.ok(&["net-sync", &id])
            .split_whitespace()
            .collect::<String>(),
        "[\"eth1\"]"
    );
    assert!(attached("vmj1tap"), "Firecracker did not open vmj1tap");
    w.ok(&["start", &id]);
    net_support::run(
        "ip",
        &[
            "-n",
            &pair.sandbox.0,
            "link",
            "add",
            "eth2",
            "type",
            "veth",
            "peer",
            "name",
            "eth2p",
        ],
    );
    let out = w.vmjail(&["net-sync", &id]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "net-sync after start succeeded");
    assert!(stderr.contains("no network hotplug"), "{stderr}");
    assert!(!pair.sandbox.link_names().iter().any(|l| l == "vmj2tap"));
    let recorded = w.stored(&id);
    w.ok(&["delete", "--force", &id]);
    w.assert_no_leaks(&id, recorded.as_ref());
    pair.sandbox.ip(&["link", "del", "eth2"]);
    pair.sandbox.ip(&["link", "del", "eth1"]);
    assert_eq!((pair.sandbox.snapshot(), pair.outside.snapshot()), before);
}

/// With `disable_new_netns` (only with model `none`, the seed's rule) the
/// VMM shares the host's namespace, whose interfaces are never the
/// sandbox's: nothing is connected or created there.
#[test]
fn disable_new_netns_connects_nothing_of_the_hosts() {
    if !require_root() {
        return;
    }
    let w = lifecycle_support::World::new("gnhost");
    let text = std::fs::read_to_string(&w.config).unwrap().replacen(
        "internetworking_model = \"tcfilter\"",
        "internetworking_model = \"none\"\ndisable_new_netns = true",
        1,
    );
    std::fs::write(&w.config, text).unwrap();
    let links = || net_support::run("ip", &["-o", "link", "show"]);
    let id = unique_id("gnhost");
    w.ok(&["create", "--id", &id]);
    let state = w.state(&id);
    assert_eq!(state["interfaces"], serde_json::json!([]), "{state}");
    assert!(!links().contains("vmj"), "{}", links());
    w.ok(&["delete", "--force", &id]);
}

/// The runtime's own netns, wired after start (as a CNI plugin does with
/// the namespace its runtime made): the VM booted with no NIC, so QEMU's
/// jail still has /dev/net/tun for a tap plugged later.
#[test]
fn a_veth_added_to_vmjails_own_netns_after_start_is_hot_plugged() {
    if !require_root() {
        return;
    }
    let w = net_world("gnown", "bridged", "10.77.33.1:9", "");
    let id = unique_id("gnown");
    w.ok(&["create", "--id", &id]);
    w.ok(&["start", &id]);
    w.wait_console(&id, "VMJAIL-GUEST-READY", BOOT);
    let outside = net_support::Ns::new(format!("vmjt-out-gnown-{}", std::process::id()));
    let ns = format!("vmjail-{id}");
    net_support::run(
        "ip",
        &[
            "-n", &outside.0, "link", "add", "out0", "type", "veth", "peer", "name", "eth0",
            "netns", &ns,
        ],
    );
    net_support::run(
        "ip",
        &["-n", &ns, "addr", "add", "10.77.33.2/24", "dev", "eth0"],
    );
    net_support::run("ip", &["-n", &ns, "link", "set", "eth0", "up"]);
    assert_eq!(
        w.ok(&["net-sync", &id])
            .split_whitespace()
            .collect::<String>(),
        "[\"eth0\"]"
    );
    let tap = net_support::run("ip", &["-n", &ns, "link", "show", "vmj0tap"]);
    assert!(
        tap.contains("LOWER_UP") && !tap.contains("NO-CARRIER"),
        "QEMU did not attach the hot-plugged tap: {tap}"
    );
    assert!(tap.contains("master vmj0br"), "{tap}");
    let recorded = w.stored(&id);
    w.ok(&["delete", "--force", &id]);
    w.assert_no_leaks(&id, recorded.as_ref());
}
