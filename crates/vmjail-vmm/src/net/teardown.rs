//! Undoing what [`super::connect`] made, from the record alone: only
//! objects the record names, each checked to still be ours (its name, its
//! kind, vmjail's tag as its alias, the endpoint's ifindex) before it is
//! deleted; a stranger's object under one of our names is left alone. The
//! endpoint gets back its MAC, addresses and routes.

use super::record::{Change, Made, NetworkRecord};
use super::rtnl::{Link, Rtnl, FILTER_PRIORITY};
use super::{Error, NetRecorder};

fn save(record: &NetworkRecord, recorder: &mut dyn NetRecorder) -> Result<(), Error> {
    recorder
        .record(record)
        .map_err(|source| Error::Record { source })
}

/// Undo every NIC of `record`, last first, forgetting each step once done.
pub(super) fn undo_all(
    rtnl: &Rtnl,
    record: &mut NetworkRecord,
    recorder: &mut dyn NetRecorder,
) -> Result<(), Error> {
    while !record.nics.is_empty() {
        undo_nic(rtnl, record, record.nics.len() - 1, recorder)?;
    }
    Ok(())
}

/// Undo NIC `nic` and remove it from the record.
pub(super) fn undo_nic(
    rtnl: &Rtnl,
    record: &mut NetworkRecord,
    nic: usize,
    recorder: &mut dyn NetRecorder,
) -> Result<(), Error> {
    while let Some(made) = record.nics[nic].made.last().cloned() {
        unmake(rtnl, record, nic, &made)?;
        record.nics[nic].made.pop();
        save(record, recorder)?;
    }
    while let Some(change) = record.nics[nic].changed.last().cloned() {
        restore(rtnl, record, nic, &change)?;
        record.nics[nic].changed.pop();
        save(record, recorder)?;
    }
    record.nics.remove(nic);
    save(record, recorder)
}

/// A link we made: its recorded name, the kind we made, and our tag (or no
/// alias at all: a crash may have come between creating and tagging).
fn ours<'a>(links: &'a [Link], name: &str, kind: &str, tag: &str) -> Option<&'a Link> {
    let link = links.iter().find(|l| l.name == name)?;
    let tagged = link.alias.as_deref().is_none_or(|a| a == tag);
    if link.kind.as_deref() == Some(kind) && tagged {
        Some(link)
    } else {
        tracing::warn!(
            link = name,
            kind = ?link.kind,
            alias = ?link.alias,
            "a link with vmjail's recorded name is not vmjail's: left alone"
        );
        None
    }
}

/// The link `name` as the record knows it: the endpoint only while it
/// keeps its ifindex (a new link of the same name is not ours to touch).
fn recorded_link<'a>(
    links: &'a [Link],
    record: &NetworkRecord,
    nic: usize,
    name: &str,
) -> Option<&'a Link> {
    let endpoint = &record.nics[nic].endpoint;
    let link = links.iter().find(|l| l.name == name)?;
    if name == endpoint.name && link.index != endpoint.ifindex {
        return None;
    }
    Some(link)
}

fn unmake(rtnl: &Rtnl, record: &NetworkRecord, nic: usize, made: &Made) -> Result<(), Error> {
    let links = rtnl.links()?;
    let tag = record.tag.as_str();
    match made {
        Made::Tap { name } => {
            if let Some(link) = ours(&links, name, "tun", tag) {
                rtnl.del_link(link.index, name)?;
            }
        }
        Made::Bridge { name } => {
            if let Some(link) = ours(&links, name, "bridge", tag) {
                rtnl.del_link(link.index, name)?;
            }
        }
        Made::Macvtap { name } => {
            let lower = record.nics[nic].endpoint.ifindex;
            if let Some(link) =
                ours(&links, name, "macvtap", tag).filter(|l| l.lower == Some(lower))
            {
                rtnl.del_link(link.index, name)?;
            }
        }
        Made::Redirect { from, .. } => {
            if let Some(link) = recorded_link(&links, record, nic, from) {
                let filters = rtnl.ingress_filters(link.index)?;
                if filters.iter().any(|f| f.priority == FILTER_PRIORITY) {
                    rtnl.del_redirect(link.index)?;
                }
            }
        }
        Made::IngressQdisc { link } => {
            if let Some(found) = recorded_link(&links, record, nic, link) {
                if rtnl.ingress_qdisc(found.index)?.as_deref() == Some("ingress") {
                    // Filters someone added since are theirs: then the
                    // qdisc that holds them stays too.
                    let foreign = rtnl
                        .ingress_filters(found.index)?
                        .iter()
                        .any(|f| f.priority != FILTER_PRIORITY && f.kind.is_some());
                    if foreign {
                        tracing::warn!(
                            link,
                            "ingress qdisc holds filters not vmjail's: left in place"
                        );
                    } else {
                        rtnl.del_ingress_qdisc(found.index)?;
                    }
                }
            }
        }
    }
    Ok(())
}

fn restore(rtnl: &Rtnl, record: &NetworkRecord, nic: usize, change: &Change) -> Result<(), Error> {
    let endpoint = &record.nics[nic].endpoint;
    let links = rtnl.links()?;
    let Some(link) = recorded_link(&links, record, nic, &endpoint.name) else {
        // The endpoint is gone (its peer deleted, the netns going away).
        return Ok(());
    };
    match change {
        Change::Mac { original, set } => {
            if link.mac.as_deref() == Some(&set.0[..]) {
                rtnl.set_mac(link.index, *original)?;
            } else {
                tracing::warn!(link = %endpoint.name, "its MAC changed since vmjail set it: left as it is");
            }
        }
        Change::Addresses { addresses, routes } => {
            for address in addresses {
                rtnl.restore_address(link.index, address)?;
            }
            for route in routes {
                rtnl.add_route(link.index, *route)?;
            }
        }
        Change::Port { bridge } => {
            let ours = links.iter().find(|l| &l.name == bridge).map(|l| l.index);
            if ours.is_some() && link.controller == ours {
                rtnl.set_no_controller(link.index)?;
            }
        }
    }
    Ok(())
}
