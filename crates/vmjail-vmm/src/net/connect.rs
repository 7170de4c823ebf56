//! Connecting endpoints to the VM, per internetworking model. Each object
//! is recorded before it is created and forgotten if creating it failed;
//! a NIC that cannot be completed is undone at once.

use super::facts::{Endpoint, Mac};
use super::record::{
    bridge_name, macvtap_name, tap_name, Change, Made, NetModel, NetworkRecord, NicDevice,
    NicRecord,
};
use super::rtnl::Rtnl;
use super::{scan, tap, teardown, Error, NetRecorder};

/// Slots are small numbers; this bounds the search for a free one.
const MAX_SLOT: u32 = 64;

fn save(record: &NetworkRecord, recorder: &mut dyn NetRecorder) -> Result<(), Error> {
    recorder
        .record(record)
        .map_err(|source| Error::Record { source })
}

/// Record `made` on NIC `nic`, then `create` it. A failed creation stays
/// in the record: it may have left part of itself (a tap made persistent
/// before its link failed to come up), and teardown skips what is absent.
fn make(
    record: &mut NetworkRecord,
    nic: usize,
    made: Made,
    recorder: &mut dyn NetRecorder,
    create: impl FnOnce() -> Result<(), Error>,
) -> Result<(), Error> {
    record.nics[nic].made.push(made);
    save(record, recorder)?;
    create()
}

/// Record `change` on NIC `nic`, then `apply` it. A failed change is kept
/// in the record: restoring what may have been half-applied is harmless.
fn change(
    record: &mut NetworkRecord,
    nic: usize,
    change: Change,
    recorder: &mut dyn NetRecorder,
    apply: impl FnOnce() -> Result<(), Error>,
) -> Result<(), Error> {
    record.nics[nic].changed.push(change);
    save(record, recorder)?;
    apply()
}

/// The lowest slot not used by the record whose link names are all free.
fn free_slot(rtnl: &Rtnl, record: &NetworkRecord) -> Result<u32, Error> {
    let links = rtnl.links()?;
    (0..MAX_SLOT)
        .find(|slot| {
            !record.nics.iter().any(|n| n.slot == *slot)
                && [tap_name(*slot), bridge_name(*slot), macvtap_name(*slot)]
                    .iter()
                    .all(|name| !links.iter().any(|l| &l.name == name))
        })
        .ok_or(Error::NoFreeSlot { max: MAX_SLOT })
}

/// Connect every endpoint of the netns not yet in `record`; returns the
/// indices (in `record.nics`) of the NICs added.
pub(super) fn connect_all(
    rtnl: &Rtnl,
    record: &mut NetworkRecord,
    recorder: &mut dyn NetRecorder,
) -> Result<Vec<usize>, Error> {
    let known: Vec<u32> = record.nics.iter().map(|n| n.endpoint.ifindex).collect();
    let endpoints = scan::endpoints(rtnl, &known)?;
    if record.nics.len() + endpoints.len() > scan::MAX_ENDPOINTS {
        return Err(Error::TooMany {
            what: "interfaces",
            name: "the sandbox netns".into(),
            found: record.nics.len() + endpoints.len(),
            max: scan::MAX_ENDPOINTS,
        });
    }
    let mut added = Vec::new();
    for endpoint in endpoints {
        let slot = free_slot(rtnl, record)?;
        record.nics.push(NicRecord {
            slot,
            endpoint,
            made: Vec::new(),
            changed: Vec::new(),
            device: None,
        });
        let nic = record.nics.len() - 1;
        save(record, recorder)?;
        if let Err(e) = connect_one(rtnl, record, nic, recorder) {
            // Undo this NIC now; the caller undoes the ones before it.
            let undone = teardown::undo_nic(rtnl, record, nic, recorder);
            return Err(match undone {
                Ok(()) => e,
                Err(cleanup) => Error::Incomplete {
                    error: Box::new(e),
                    cleanup: Box::new(cleanup),
                },
            });
        }
        added.push(nic);
    }
    Ok(added)
}

fn connect_one(
    rtnl: &Rtnl,
    record: &mut NetworkRecord,
    nic: usize,
    recorder: &mut dyn NetRecorder,
) -> Result<(), Error> {
    let slot = record.nics[nic].slot;
    let endpoint = record.nics[nic].endpoint.clone();
    let device = match record.model {
        NetModel::Macvtap => connect_macvtap(rtnl, record, nic, &endpoint, recorder)?,
        model => {
            let tap = make_tap(rtnl, record, nic, slot, &endpoint, recorder)?;
            match model {
                NetModel::Tcfilter => {
                    connect_tcfilter(rtnl, record, nic, &endpoint, &tap, recorder)?
                }
                NetModel::Bridged => connect_bridged(rtnl, record, nic, &endpoint, &tap, recorder)?,
                _ => {}
            }
            NicDevice::Tap { name: tap }
        }
    };
    record.nics[nic].device = Some(device);
    save(record, recorder)
}

/// The tap the VMM opens: owned by the jail's uid/gid, tagged, with the
/// endpoint's MTU.
fn make_tap(
    rtnl: &Rtnl,
    record: &mut NetworkRecord,
    nic: usize,
    slot: u32,
    endpoint: &Endpoint,
    recorder: &mut dyn NetRecorder,
) -> Result<String, Error> {
    let name = tap_name(slot);
    let (uid, gid, tag) = (record.uid, record.gid, record.tag.clone());
    make(
        record,
        nic,
        Made::Tap { name: name.clone() },
        recorder,
        || tap::create(&name, uid, gid),
    )?;
    let index = link_index(rtnl, &name)?;
    rtnl.set_alias(index, &tag)?;
    rtnl.set_mtu(index, endpoint.mtu)?;
    Ok(name)
}

fn link_index(rtnl: &Rtnl, name: &str) -> Result<u32, Error> {
    rtnl.link(name)?
        .map(|l| l.index)
        .ok_or_else(|| Error::LinkVanished {
            name: name.to_owned(),
        })
}

/// Ingress qdiscs on both, and a u32 match-all filter with a mirred
/// redirect each way.
fn connect_tcfilter(
    rtnl: &Rtnl,
    record: &mut NetworkRecord,
    nic: usize,
    endpoint: &Endpoint,
    tap: &str,
    recorder: &mut dyn NetRecorder,
) -> Result<(), Error> {
    // Never take over (and later delete) someone else's ingress qdisc.
    if let Some(kind) = rtnl.ingress_qdisc(endpoint.ifindex)? {
        return Err(Error::QdiscTaken {
            link: endpoint.name.clone(),
            kind,
        });
    }
    let tap_index = link_index(rtnl, tap)?;
    for (link, index) in [(endpoint.name.as_str(), endpoint.ifindex), (tap, tap_index)] {
        let made = Made::IngressQdisc { link: link.into() };
        make(record, nic, made, recorder, || {
            rtnl.add_ingress_qdisc(index)
        })?;
    }
    for (from, from_index, to, to_index) in [
        (endpoint.name.as_str(), endpoint.ifindex, tap, tap_index),
        (tap, tap_index, endpoint.name.as_str(), endpoint.ifindex),
    ] {
        let made = Made::Redirect {
            from: from.into(),
            to: to.into(),
        };
        make(record, nic, made, recorder, || {
            rtnl.add_redirect(from_index, to_index)
        })?;
    }
    Ok(())
}

/// The guest takes the endpoint's MAC and addresses: the endpoint gets a
/// random MAC and loses its addresses, so it never answers for the guest
/// (Kata does the same for bridged and macvtap).
fn hand_identity_over(
    rtnl: &Rtnl,
    record: &mut NetworkRecord,
    nic: usize,
    endpoint: &Endpoint,
    recorder: &mut dyn NetRecorder,
) -> Result<(), Error> {
    let set = Mac::random_local().map_err(|source| Error::RandomMac { source })?;
    let mac = Change::Mac {
        original: endpoint.mac,
        set,
    };
    change(record, nic, mac, recorder, || {
        rtnl.set_mac(endpoint.ifindex, set)
    })?;
    let facts = rtnl.address_facts(endpoint.ifindex)?;
    let addresses = Change::Addresses {
        addresses: facts
            .into_iter()
            .filter(|f| endpoint.addresses.contains(&f.net))
            .collect(),
        routes: endpoint.routes.clone(),
    };
    change(record, nic, addresses, recorder, || {
        endpoint
            .addresses
            .iter()
            .try_for_each(|a| rtnl.del_address(endpoint.ifindex, *a))
    })
}

fn connect_bridged(
    rtnl: &Rtnl,
    record: &mut NetworkRecord,
    nic: usize,
    endpoint: &Endpoint,
    tap: &str,
    recorder: &mut dyn NetRecorder,
) -> Result<(), Error> {
    let bridge = bridge_name(record.nics[nic].slot);
    let tag = record.tag.clone();
    make(
        record,
        nic,
        Made::Bridge {
            name: bridge.clone(),
        },
        recorder,
        || rtnl.add_bridge(&bridge, &tag, endpoint.mtu),
    )?;
    let bridge_index = link_index(rtnl, &bridge)?;
    // The alias given at creation is not applied by every kernel.
    rtnl.set_alias(bridge_index, &tag)?;
    hand_identity_over(rtnl, record, nic, endpoint, recorder)?;
    rtnl.set_controller(link_index(rtnl, tap)?, bridge_index)?;
    let port = Change::Port {
        bridge: bridge.clone(),
    };
    change(record, nic, port, recorder, || {
        rtnl.set_controller(endpoint.ifindex, bridge_index)
    })
}

fn connect_macvtap(
    rtnl: &Rtnl,
    record: &mut NetworkRecord,
    nic: usize,
    endpoint: &Endpoint,
    recorder: &mut dyn NetRecorder,
) -> Result<NicDevice, Error> {
    let name = macvtap_name(record.nics[nic].slot);
    let tag = record.tag.clone();
    hand_identity_over(rtnl, record, nic, endpoint, recorder)?;
    make(
        record,
        nic,
        Made::Macvtap { name: name.clone() },
        recorder,
        || rtnl.add_macvtap(&name, endpoint.ifindex, endpoint.mac, &tag),
    )?;
    let index = link_index(rtnl, &name)?;
    rtnl.set_alias(index, &tag)?;
    Ok(NicDevice::Macvtap {
        name,
        ifindex: index,
    })
}
