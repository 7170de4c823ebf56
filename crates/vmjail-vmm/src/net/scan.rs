//! Finding the endpoints of a sandbox netns: the interfaces its caller set
//! up (a veth from Docker, Podman or a CNI plugin) whose identity the VM
//! takes over.

use std::net::IpAddr;

use super::facts::{Endpoint, IpNet, Mac};
use super::record::is_our_name;
use super::rtnl::{Link, Rtnl};
use super::Error;

/// Bounds on what a namespace may ask vmjail to carry into the guest (it
/// all travels on the kernel command line, which is 2 KiB on x86).
pub const MAX_ENDPOINTS: usize = 8;
pub const MAX_ADDRESSES: usize = 8;
pub const MAX_ROUTES: usize = 16;
pub const MAX_NEIGHBOURS: usize = 8;

/// Link kinds that are never an endpoint: our own building blocks and
/// devices of other VMs.
const NOT_ENDPOINTS: &[&str] = &["bridge", "tun", "macvtap", "ipvtap"];

/// Whether `link` is an endpoint: Ethernet, not loopback, not one of ours
/// (by name or by `known`), not a port of a bridge, not a VM's device.
fn is_endpoint(link: &Link, known: &[u32]) -> bool {
    link.ether
        && link.name != "lo"
        && !is_our_name(&link.name)
        && !known.contains(&link.index)
        && link.controller.is_none()
        && !link
            .kind
            .as_deref()
            .is_some_and(|k| NOT_ENDPOINTS.contains(&k))
}

/// Addresses the guest takes: not link-local IPv6 (the guest derives its
/// own from the same MAC), multicast, loopback or unspecified.
fn carried(ip: IpAddr) -> bool {
    let special = ip.is_loopback() || ip.is_multicast() || ip.is_unspecified();
    let link_local_v6 = matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80);
    !special && !link_local_v6
}

fn invalid(name: &str, reason: String) -> Error {
    Error::InvalidEndpoint {
        name: name.to_owned(),
        reason,
    }
}

/// Every endpoint of the netns `rtnl` speaks to, except the links in
/// `known` (already connected).
pub fn endpoints(rtnl: &Rtnl, known: &[u32]) -> Result<Vec<Endpoint>, Error> {
    let links: Vec<Link> = rtnl
        .links()?
        .into_iter()
        .filter(|l| is_endpoint(l, known))
        .collect();
    if links.len() > MAX_ENDPOINTS {
        return Err(Error::TooMany {
            what: "interfaces",
            name: "the sandbox netns".into(),
            found: links.len(),
            max: MAX_ENDPOINTS,
        });
    }
    let routes = rtnl.routes()?;
    links
        .into_iter()
        .map(|link| {
            super::validate_tap_name(&link.name)
                .map_err(|_| invalid(&link.name, "its name is not [A-Za-z0-9_.-]{1,15}".into()))?;
            let mac = link
                .mac
                .as_deref()
                .and_then(Mac::from_bytes)
                .ok_or_else(|| invalid(&link.name, "it has no unicast MAC address".into()))?;
            if !(68..=65535).contains(&link.mtu) {
                return Err(invalid(
                    &link.name,
                    format!("its MTU {} is outside 68..=65535", link.mtu),
                ));
            }
            let addresses: Vec<IpNet> = rtnl
                .addresses(link.index)?
                .into_iter()
                .filter(|a| carried(a.addr))
                .collect();
            let routes: Vec<_> = routes
                .iter()
                .filter(|r| r.oif == link.index && !r.kernel)
                .filter(|r| r.fact.destination.is_none_or(|d| carried(d.addr)))
                .map(|r| r.fact)
                .collect();
            let neighbours = rtnl.static_neighbours(link.index)?;
            for (what, found, max) in [
                ("addresses", addresses.len(), MAX_ADDRESSES),
                ("routes", routes.len(), MAX_ROUTES),
                ("static neighbours", neighbours.len(), MAX_NEIGHBOURS),
            ] {
                if found > max {
                    return Err(Error::TooMany {
                        what,
                        name: link.name.clone(),
                        found,
                        max,
                    });
                }
            }
            Ok(Endpoint {
                name: link.name,
                ifindex: link.index,
                mac,
                mtu: link.mtu,
                addresses,
                routes,
                neighbours,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(name: &str) -> Link {
        Link {
            index: 5,
            name: name.into(),
            ether: true,
            mac: Some(vec![2, 0, 0, 0, 0, 1]),
            mtu: 1500,
            kind: Some("veth".into()),
            alias: None,
            controller: None,
            lower: None,
        }
    }

    #[test]
    fn only_foreign_ethernet_links_are_endpoints() {
        assert!(is_endpoint(&link("eth0"), &[]));
        assert!(!is_endpoint(&link("eth0"), &[5]));
        assert!(!is_endpoint(&link("vmj0tap"), &[]));
        let mut port = link("eth1");
        port.controller = Some(9);
        assert!(!is_endpoint(&port, &[]));
        let mut tap = link("tap9");
        tap.kind = Some("tun".into());
        assert!(!is_endpoint(&tap, &[]));
        let mut lo = link("lo");
        lo.ether = false;
        assert!(!is_endpoint(&lo, &[]));
    }

    #[test]
    fn link_local_and_special_addresses_stay_behind() {
        assert!(carried("10.1.2.3".parse().unwrap()));
        assert!(carried("fd00::2".parse().unwrap()));
        for ip in ["fe80::1", "127.0.0.1", "::", "ff02::1", "224.0.0.1"] {
            assert!(!carried(ip.parse().unwrap()), "{ip}");
        }
    }
}
