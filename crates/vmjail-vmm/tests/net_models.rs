//! The internetworking models in real network namespaces (root: fails
//! under `CI`, skips with a reason elsewhere): what each one creates, that
//! it is recorded before it exists, and that teardown leaves both
//! namespaces exactly as they were.

mod firecracker_support;
mod net_support;

use std::sync::Mutex;

use firecracker_support::host::root_or_skip;
use net_support::{Ns, Pair};
use vmjail_vmm::net::{self, record::Made, NetModel, NetworkRecord, NicDevice};

const UID: u32 = 48_711;
const GID: u32 = 48_712;

fn record(model: NetModel) -> NetworkRecord {
    NetworkRecord {
        model,
        tag: "vmjail:nettest".into(),
        uid: UID,
        gid: GID,
        nics: Vec::new(),
    }
}

/// Connect with a recorder that keeps every saved record and checks, each
/// time, that nothing exists that the record does not name.
fn connect(ns: &Ns, model: NetModel) -> (NetworkRecord, Vec<NetworkRecord>) {
    let mut rec = record(model);
    let saved = Mutex::new(Vec::new());
    let names_before = ns.link_names();
    let mut recorder = |r: &NetworkRecord| -> std::io::Result<()> {
        // Links that exist now were there before or are recorded already.
        let recorded: Vec<String> = r
            .nics
            .iter()
            .flat_map(|n| n.made.iter())
            .filter_map(|m| match m {
                Made::Tap { name } | Made::Bridge { name } | Made::Macvtap { name } => {
                    Some(name.clone())
                }
                _ => None,
            })
            .collect();
        for name in ns.link_names() {
            assert!(
                names_before.contains(&name) || recorded.contains(&name),
                "{name} exists but is not recorded: {r:?}"
            );
        }
        saved.lock().unwrap().push(r.clone());
        Ok(())
    };
    let added = net::connect(&ns.path(), &mut rec, &mut recorder).unwrap();
    assert_eq!(added, vec![0]);
    (rec, saved.into_inner().unwrap())
}

fn disconnect(ns: &Ns, rec: &mut NetworkRecord) {
    let mut recorder = |_: &NetworkRecord| -> std::io::Result<()> { Ok(()) };
    net::disconnect(&ns.path(), rec, &mut recorder).unwrap();
    assert!(rec.nics.is_empty());
}

fn common_checks(pair: &Pair, rec: &NetworkRecord, mac: &str) {
    let nic = &rec.nics[0];
    assert_eq!(nic.endpoint.name, "eth0");
    assert_eq!(nic.endpoint.mac.to_string(), mac);
    assert_eq!(nic.endpoint.mtu, 1500);
    let addrs: Vec<String> = nic
        .endpoint
        .addresses
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert!(
        addrs.contains(&format!("10.77.{}.2/24", pair.n)),
        "{addrs:?}"
    );
    assert!(
        addrs.contains(&format!("fd77:{}::2/64", pair.n)),
        "{addrs:?}"
    );
    assert!(!addrs.iter().any(|a| a.starts_with("fe80")), "{addrs:?}");
    let routes = format!("{:?}", nic.endpoint.routes);
    assert!(routes.contains(&format!("10.77.{}.1", pair.n)), "{routes}");
    assert!(routes.contains("10.78.0.0"), "{routes}");
    assert_eq!(
        nic.endpoint.neighbours.len(),
        1,
        "{:?}",
        nic.endpoint.neighbours
    );
}

fn tap_checks(pair: &Pair) {
    let tap = pair.sandbox.ip(&["-d", "link", "show", "vmj0tap"]);
    assert!(tap.contains(&format!("user {UID}")), "{tap}");
    assert!(tap.contains(&format!("group {GID}")), "{tap}");
    assert!(tap.contains("alias vmjail:nettest"), "{tap}");
    assert!(tap.contains("mtu 1500"), "{tap}");
}

#[test]
fn tcfilter_redirects_both_ways_and_teardown_restores() {
    if !root_or_skip() {
        return;
    }
    let pair = Pair::new("tcf", 11);
    let before = (pair.sandbox.snapshot(), pair.outside.snapshot());
    let mac = pair.sandbox.mac_of("eth0");
    let (mut rec, saved) = connect(&pair.sandbox, NetModel::Tcfilter);
    common_checks(&pair, &rec, &mac);
    tap_checks(&pair);
    assert_eq!(
        rec.nics[0].device,
        Some(NicDevice::Tap {
            name: "vmj0tap".into()
        })
    );
    for (dev, to) in [("eth0", "vmj0tap"), ("vmj0tap", "eth0")] {
        let qdisc = pair.sandbox.tc(&["qdisc", "show", "dev", dev, "ingress"]);
        assert!(qdisc.contains("qdisc ingress ffff:"), "{qdisc}");
        let filter = pair.sandbox.tc(&["filter", "show", "dev", dev, "ingress"]);
        assert!(filter.contains("u32"), "{filter}");
        assert!(filter.contains("protocol all pref 30317"), "{filter}");
        assert!(
            filter.contains(&format!("Egress Redirect to device {to}")),
            "{filter}"
        );
    }
    // tcfilter leaves the endpoint's identity alone.
    assert_eq!(pair.sandbox.mac_of("eth0"), mac);
    // Each object was recorded before it was made: five saves of made
    // objects (tap, 2 qdiscs, 2 filters), in order.
    let last = saved.last().unwrap();
    assert_eq!(last.nics[0].made.len(), 5, "{last:?}");
    disconnect(&pair.sandbox, &mut rec);
    assert_eq!((pair.sandbox.snapshot(), pair.outside.snapshot()), before);
}

#[test]
fn bridged_makes_a_bridge_and_teardown_gives_the_veth_back() {
    if !root_or_skip() {
        return;
    }
    let pair = Pair::new("brd", 12);
    let before = pair.sandbox.snapshot();
    let mac = pair.sandbox.mac_of("eth0");
    let (mut rec, _) = connect(&pair.sandbox, NetModel::Bridged);
    common_checks(&pair, &rec, &mac);
    tap_checks(&pair);
    let bridge = pair.sandbox.ip(&["-d", "link", "show", "vmj0br"]);
    assert!(bridge.contains("bridge"), "{bridge}");
    for port in ["eth0", "vmj0tap"] {
        let link = pair.sandbox.ip(&["link", "show", port]);
        assert!(link.contains("master vmj0br"), "{link}");
    }
    // The guest takes the MAC and the addresses.
    assert_ne!(pair.sandbox.mac_of("eth0"), mac);
    let addrs = pair.sandbox.ip(&["-o", "addr", "show", "dev", "eth0"]);
    assert!(!addrs.contains("10.77.12.2"), "{addrs}");
    disconnect(&pair.sandbox, &mut rec);
    assert_eq!(pair.sandbox.snapshot(), before);
}

#[test]
fn macvtap_sits_on_the_veth_with_its_mac() {
    if !root_or_skip() {
        return;
    }
    let pair = Pair::new("mvt", 13);
    let before = pair.sandbox.snapshot();
    let mac = pair.sandbox.mac_of("eth0");
    let (mut rec, _) = connect(&pair.sandbox, NetModel::Macvtap);
    common_checks(&pair, &rec, &mac);
    let link = pair.sandbox.ip(&["-d", "link", "show", "vmj0mvt"]);
    assert!(link.contains("macvtap mode bridge"), "{link}");
    assert!(link.contains("vmj0mvt@eth0"), "{link}");
    assert_eq!(pair.sandbox.mac_of("vmj0mvt"), mac);
    assert_ne!(pair.sandbox.mac_of("eth0"), mac);
    let Some(NicDevice::Macvtap { name, ifindex }) = rec.nics[0].device.clone() else {
        panic!("{:?}", rec.nics[0].device);
    };
    // Its device opens, and is the macvtap we made; another name is refused.
    net::open_macvtap(&pair.sandbox.path(), &name, ifindex).unwrap();
    // Another name with this ifindex is no macvtap of this netns.
    assert!(matches!(
        net::open_macvtap(&pair.sandbox.path(), "eth0", ifindex),
        Err(net::Error::MacvtapDevice { .. })
    ));
    disconnect(&pair.sandbox, &mut rec);
    assert_eq!(pair.sandbox.snapshot(), before);
}

#[test]
fn none_makes_only_the_tap() {
    if !root_or_skip() {
        return;
    }
    let pair = Pair::new("non", 14);
    let before = pair.sandbox.snapshot();
    let (mut rec, _) = connect(&pair.sandbox, NetModel::None);
    tap_checks(&pair);
    assert_eq!(rec.nics[0].made.len(), 1);
    let qdiscs = pair.sandbox.tc(&["qdisc", "show", "dev", "eth0"]);
    assert!(!qdiscs.contains("ingress"), "{qdiscs}");
    disconnect(&pair.sandbox, &mut rec);
    assert_eq!(pair.sandbox.snapshot(), before);
}

/// Teardown deletes only what is still ours: a stranger's link under a
/// recorded name stays, a foreign ingress qdisc is never taken over.
#[test]
fn strangers_objects_are_left_alone() {
    if !root_or_skip() {
        return;
    }
    let pair = Pair::new("str", 15);
    pair.sandbox.tc(&["qdisc", "add", "dev", "eth0", "ingress"]);
    let mut rec = record(NetModel::Tcfilter);
    let mut recorder = |_: &NetworkRecord| -> std::io::Result<()> { Ok(()) };
    let err = net::connect(&pair.sandbox.path(), &mut rec, &mut recorder).unwrap_err();
    assert!(matches!(err, net::Error::QdiscTaken { .. }), "{err}");
    // The failed NIC was undone: no tap left, nothing recorded.
    assert!(rec.nics.is_empty(), "{rec:?}");
    assert!(!pair.sandbox.link_names().contains(&"vmj0tap".to_string()));
    pair.sandbox.tc(&["qdisc", "del", "dev", "eth0", "ingress"]);

    let (mut rec, _) = connect(&pair.sandbox, NetModel::None);
    // Someone replaces our tap with a bridge of the same name.
    pair.sandbox.ip(&["link", "del", "vmj0tap"]);
    pair.sandbox
        .ip(&["link", "add", "vmj0tap", "type", "bridge"]);
    disconnect(&pair.sandbox, &mut rec);
    assert!(pair.sandbox.link_names().contains(&"vmj0tap".to_string()));
}

/// An endpoint the namespace may not hand over is refused with its name.
#[test]
fn hostile_endpoints_are_refused() {
    if !root_or_skip() {
        return;
    }
    let pair = Pair::new("hst", 16);
    for i in 0..9 {
        pair.sandbox.ip(&[
            "addr",
            "add",
            &format!("10.79.0.{}/32", i + 10),
            "dev",
            "eth0",
        ]);
    }
    let mut rec = record(NetModel::Tcfilter);
    let mut recorder = |_: &NetworkRecord| -> std::io::Result<()> { Ok(()) };
    let err = net::connect(&pair.sandbox.path(), &mut rec, &mut recorder).unwrap_err();
    assert!(
        matches!(
            err,
            net::Error::TooMany {
                what: "addresses",
                ..
            }
        ),
        "{err}"
    );
    assert!(rec.nics.is_empty());
}

/// ifindexes are per netns: two sandboxes' macvtaps can share one, and the
/// host's `/dev/tap<ifindex>` then names only one of them. Each sandbox
/// must still get its own device.
#[test]
fn macvtaps_of_two_netns_with_one_ifindex_are_told_apart() {
    use std::os::unix::fs::MetadataExt;
    if !root_or_skip() {
        return;
    }
    let pairs = [Pair::new("mva", 17), Pair::new("mvb", 18)];
    let mut devices = Vec::new();
    let mut records = Vec::new();
    for pair in &pairs {
        let (rec, _) = connect(&pair.sandbox, NetModel::Macvtap);
        let Some(NicDevice::Macvtap { name, ifindex }) = rec.nics[0].device.clone() else {
            panic!("{:?}", rec.nics[0].device);
        };
        let fd = net::open_macvtap(&pair.sandbox.path(), &name, ifindex).unwrap();
        let rdev = std::fs::File::from(fd).metadata().unwrap().rdev();
        devices.push((ifindex, rdev));
        records.push(rec);
    }
    assert_eq!(
        devices[0].0, devices[1].0,
        "the same ifindex in both: {devices:?}"
    );
    assert_ne!(
        devices[0].1, devices[1].1,
        "one device for both: {devices:?}"
    );
    for (pair, mut rec) in pairs.iter().zip(records) {
        disconnect(&pair.sandbox, &mut rec);
    }
}
