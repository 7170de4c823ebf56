//! A small synchronous face on rtnetlink for one network namespace.
//!
//! An [`Rtnl`] is made on a thread that already joined the sandbox netns
//! (see [`super::netns::run_in`]): the netlink socket belongs to the
//! namespace of the thread that opens it, so every request it sends acts
//! there and nowhere else. Each call runs the request to completion on a
//! current-thread runtime private to that thread.

use std::net::IpAddr;

use futures_util::{StreamExt, TryStreamExt};
use netlink_packet_route::address::{AddressAttribute, AddressFlags};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage, MacVtapMode};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourState};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol};
use netlink_packet_route::tc::{
    TcAction, TcActionAttribute, TcActionMirrorOption, TcActionOption, TcAttribute, TcHandle,
    TcMessage, TcOption,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST};
use rtnetlink::{Handle, LinkBridge, LinkMacVtap, LinkUnspec, RouteMessageBuilder};

use super::facts::{AddressFact, IpNet, Mac, NeighbourFact, RouteFact};
use super::Error;

/// `ETH_P_ALL` in network byte order, as tc expects the protocol.
const PROTOCOL_ALL: u16 = 0x0003u16.to_be();
/// The priority vmjail's redirect filters get ("vm"), so they can be told
/// apart from (and deleted without touching) anyone else's.
pub const FILTER_PRIORITY: u16 = 0x766d;
/// The address flags an address is put back with (what `ip addr add`
/// can set): nodad, homeaddress, mngtmpaddr, noprefixroute.
const KEPT_ADDRESS_FLAGS: u32 = 0x02 | 0x10 | 0x100 | 0x200;
/// The main routing table.
const MAIN_TABLE: u8 = 254;

/// A link as vmjail needs to see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub ether: bool,
    pub mac: Option<Vec<u8>>,
    pub mtu: u32,
    pub kind: Option<String>,
    pub alias: Option<String>,
    pub controller: Option<u32>,
    /// The lower link (a macvtap's veth).
    pub lower: Option<u32>,
}

/// A route of the main table through one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub oif: u32,
    pub fact: RouteFact,
    /// Made by the kernel for an address (the guest makes its own).
    pub kernel: bool,
}

/// A tc filter as listed: its priority and where its mirred action
/// redirects to (when it has one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub priority: u16,
    pub kind: Option<String>,
    pub redirect_to: Option<u32>,
}

pub struct Rtnl {
    runtime: tokio::runtime::Runtime,
    handle: Handle,
}

fn nl<E>(step: &'static str, target: &str) -> impl FnOnce(E) -> Error
where
    E: std::fmt::Display,
{
    let target = target.to_owned();
    move |e| Error::Netlink {
        step,
        target,
        message: e.to_string(),
    }
}

impl Rtnl {
    /// Open a netlink socket in the calling thread's network namespace.
    pub fn open() -> Result<Rtnl, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|source| Error::NetlinkRuntime { source })?;
        let (connection, handle, _) = {
            let _guard = runtime.enter();
            rtnetlink::new_connection().map_err(|source| Error::NetlinkSocket { source })?
        };
        runtime.spawn(connection);
        Ok(Rtnl { runtime, handle })
    }

    pub fn links(&self) -> Result<Vec<Link>, Error> {
        let stream = self.handle.link().get().execute();
        let messages: Vec<LinkMessage> = self
            .runtime
            .block_on(stream.try_collect())
            .map_err(nl("listing links", "all"))?;
        Ok(messages.into_iter().map(link_of).collect())
    }

    /// Link `name`, asked of the kernel by name (not a dump of every link).
    pub fn link(&self, name: &str) -> Result<Option<Link>, Error> {
        let stream = self.handle.link().get().match_name(name).execute();
        match self.runtime.block_on(stream.try_collect::<Vec<_>>()) {
            Ok(messages) => Ok(messages.into_iter().map(link_of).find(|l| l.name == name)),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -nix::libc::ENODEV => {
                Ok(None)
            }
            Err(e) => Err(nl("looking up a link", name)(e)),
        }
    }

    pub fn addresses(&self, index: u32) -> Result<Vec<IpNet>, Error> {
        Ok(self
            .address_facts(index)?
            .into_iter()
            .map(|f| f.net)
            .collect())
    }

    pub fn address_facts(&self, index: u32) -> Result<Vec<AddressFact>, Error> {
        let stream = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        let messages: Vec<_> = self
            .runtime
            .block_on(stream.try_collect())
            .map_err(nl("listing addresses", &index.to_string()))?;
        Ok(messages
            .into_iter()
            .filter(|m| m.header.index == index)
            .filter_map(|m| {
                let mut fact = AddressFact {
                    net: IpNet::new(
                        m.attributes.iter().find_map(|a| match a {
                            AddressAttribute::Address(ip) => Some(*ip),
                            _ => None,
                        })?,
                        m.header.prefix_len,
                    )?,
                    broadcast: None,
                    flags: 0,
                };
                for a in &m.attributes {
                    match a {
                        AddressAttribute::Broadcast(b) => fact.broadcast = Some(*b),
                        AddressAttribute::Flags(f) => fact.flags = f.bits() & KEPT_ADDRESS_FLAGS,
                        _ => {}
                    }
                }
                Some(fact)
            })
            .collect())
    }

    /// Routes of the main table, IPv4 and IPv6, each with its output link.
    pub fn routes(&self) -> Result<Vec<Route>, Error> {
        let mut routes = Vec::new();
        for family in [
            RouteMessageBuilder::<std::net::Ipv4Addr>::new().build(),
            RouteMessageBuilder::<std::net::Ipv6Addr>::new().build(),
        ] {
            let stream = self.handle.route().get(family).execute();
            let messages: Vec<RouteMessage> = self
                .runtime
                .block_on(stream.try_collect())
                .map_err(nl("listing routes", "main table"))?;
            routes.extend(messages.into_iter().filter_map(route_of));
        }
        Ok(routes)
    }

    /// Permanent (static) neighbour entries on link `index`.
    pub fn static_neighbours(&self, index: u32) -> Result<Vec<NeighbourFact>, Error> {
        let stream = self.handle.neighbours().get().execute();
        let messages: Vec<_> = self
            .runtime
            .block_on(stream.try_collect())
            .map_err(nl("listing neighbours", &index.to_string()))?;
        Ok(messages
            .into_iter()
            .filter(|m| m.header.ifindex == index && m.header.state == NeighbourState::Permanent)
            .filter_map(|m| {
                let mut ip = None;
                let mut mac = None;
                for a in &m.attributes {
                    match a {
                        NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                            ip = Some(IpAddr::V4(*v4))
                        }
                        NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                            ip = Some(IpAddr::V6(*v6))
                        }
                        NeighbourAttribute::LinkLayerAddress(bytes) => mac = Mac::from_bytes(bytes),
                        _ => {}
                    }
                }
                Some(NeighbourFact { ip: ip?, mac: mac? })
            })
            .collect())
    }

    pub fn add_bridge(&self, name: &str, alias: &str, mtu: u32) -> Result<(), Error> {
        let message = LinkBridge::new(name).alias(alias).mtu(mtu).up().build();
        self.runtime
            .block_on(self.handle.link().add(message).execute())
            .map_err(nl("creating bridge", name))
    }

    pub fn add_macvtap(&self, name: &str, lower: u32, mac: Mac, alias: &str) -> Result<(), Error> {
        let message = LinkMacVtap::new(name, lower, MacVtapMode::Bridge)
            .address(mac.0.to_vec())
            .alias(alias)
            .up()
            .build();
        self.runtime
            .block_on(self.handle.link().add(message).execute())
            .map_err(nl("creating macvtap", name))
    }

    pub fn set_alias(&self, index: u32, alias: &str) -> Result<(), Error> {
        self.set(index, "setting the alias of", |b| b.alias(alias))
    }

    pub fn set_mtu(&self, index: u32, mtu: u32) -> Result<(), Error> {
        self.set(index, "setting the MTU of", |b| b.mtu(mtu))
    }

    pub fn set_mac(&self, index: u32, mac: Mac) -> Result<(), Error> {
        self.set(index, "setting the MAC address of", |b| {
            b.address(mac.0.to_vec())
        })
    }

    pub fn set_controller(&self, index: u32, controller: u32) -> Result<(), Error> {
        self.set(index, "adding a port to a bridge", |b| {
            b.controller(controller)
        })
    }

    pub fn set_no_controller(&self, index: u32) -> Result<(), Error> {
        self.set(index, "releasing a bridge port", |b| b.nocontroller())
    }

    fn set(
        &self,
        index: u32,
        step: &'static str,
        build: impl FnOnce(
            rtnetlink::LinkMessageBuilder<LinkUnspec>,
        ) -> rtnetlink::LinkMessageBuilder<LinkUnspec>,
    ) -> Result<(), Error> {
        let message = build(LinkUnspec::new_with_index(index)).build();
        self.runtime
            .block_on(self.handle.link().set(message).execute())
            .map_err(nl(step, &index.to_string()))
    }

    pub fn del_link(&self, index: u32, name: &str) -> Result<(), Error> {
        self.runtime
            .block_on(self.handle.link().del(index).execute())
            .map_err(nl("deleting link", name))
    }

    /// Put `fact` back on link `index` as it was (broadcast, flags).
    pub fn restore_address(&self, index: u32, fact: &AddressFact) -> Result<(), Error> {
        let mut request = self
            .handle
            .address()
            .add(index, fact.net.addr, fact.net.prefix)
            .replace();
        let message = request.message_mut();
        message
            .attributes
            .retain(|a| !matches!(a, AddressAttribute::Broadcast(_)));
        if let Some(b) = fact.broadcast {
            message.attributes.push(AddressAttribute::Broadcast(b));
        }
        message
            .attributes
            .push(AddressAttribute::Flags(AddressFlags::from_bits_retain(
                fact.flags,
            )));
        self.runtime
            .block_on(request.execute())
            .map_err(nl("restoring address", &fact.net.to_string()))
    }

    pub fn del_address(&self, index: u32, net: IpNet) -> Result<(), Error> {
        let stream = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .set_address_filter(net.addr)
            .set_prefix_length_filter(net.prefix)
            .execute();
        let messages: Vec<_> = self
            .runtime
            .block_on(stream.try_collect())
            .map_err(nl("finding address", &net.to_string()))?;
        for message in messages.into_iter().filter(|m| m.header.index == index) {
            self.runtime
                .block_on(self.handle.address().del(message).execute())
                .map_err(nl("removing address", &net.to_string()))?;
        }
        Ok(())
    }

    /// Add `route` through link `index`; one that exists already is fine.
    pub fn add_route(&self, index: u32, route: RouteFact) -> Result<(), Error> {
        let target = format!("{route:?}");
        let message = route_message(index, route).map_err(nl("building route", &target))?;
        match self
            .runtime
            .block_on(self.handle.route().add(message).execute())
        {
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -nix::libc::EEXIST => Ok(()),
            other => other.map_err(nl("adding route", &target)),
        }
    }

    /// Kinds of the qdiscs on link `index` with parent `ffff:fff1`
    /// (ingress/clsact).
    pub fn ingress_qdisc(&self, index: u32) -> Result<Option<String>, Error> {
        let stream = self.handle.qdisc().get().index(index as i32).execute();
        let messages: Vec<TcMessage> = self
            .runtime
            .block_on(stream.try_collect())
            .map_err(nl("listing qdiscs", &index.to_string()))?;
        Ok(messages
            .into_iter()
            .filter(|m| m.header.index == index as i32 && m.header.parent == TcHandle::INGRESS)
            .find_map(|m| {
                m.attributes.into_iter().find_map(|a| match a {
                    TcAttribute::Kind(kind) => Some(kind),
                    _ => None,
                })
            }))
    }

    pub fn add_ingress_qdisc(&self, index: u32) -> Result<(), Error> {
        let mut qdisc = self.handle.qdisc();
        self.runtime
            .block_on(qdisc.add(index as i32).ingress().execute())
            .map_err(nl("adding an ingress qdisc to", &index.to_string()))
    }

    pub fn del_ingress_qdisc(&self, index: u32) -> Result<(), Error> {
        let mut qdisc = self.handle.qdisc();
        let mut request = qdisc.del(index as i32);
        request.message_mut().header.parent = TcHandle::INGRESS;
        request.message_mut().header.handle = TcHandle::from(0xffff_0000);
        self.runtime
            .block_on(request.execute())
            .map_err(nl("removing the ingress qdisc of", &index.to_string()))
    }

    /// `tc filter add dev <from> ingress prio FILTER_PRIORITY protocol all
    /// u32 match u32 0 0 action mirred egress redirect dev <to>`: the u32
    /// match-all (the host kernel may lack `matchall`).
    pub fn add_redirect(&self, from: u32, to: u32) -> Result<(), Error> {
        let target = format!("{from} -> {to}");
        let request = self
            .handle
            .traffic_filter(from as i32)
            .add()
            .ingress()
            .priority(FILTER_PRIORITY)
            .protocol(PROTOCOL_ALL)
            .redirect(to)
            .map_err(nl("building the redirect filter", &target))?;
        self.runtime
            .block_on(request.execute())
            .map_err(nl("adding the redirect filter", &target))
    }

    /// The filters on link `index`'s ingress.
    pub fn ingress_filters(&self, index: u32) -> Result<Vec<Filter>, Error> {
        let request = self.handle.traffic_filter(index as i32).get();
        let request = request.ingress();
        let messages: Vec<TcMessage> = self
            .runtime
            .block_on(request.execute().try_collect())
            .map_err(nl("listing filters of", &index.to_string()))?;
        Ok(messages
            .into_iter()
            .filter(|m| m.header.index == index as i32)
            .map(|m| filter_of(&m))
            .collect())
    }

    /// Delete vmjail's filter (by its priority) from link `index`'s ingress.
    pub fn del_redirect(&self, index: u32) -> Result<(), Error> {
        let mut message = TcMessage::with_index(index as i32);
        message.header.parent = TcHandle::INGRESS;
        message.header.info = (u32::from(FILTER_PRIORITY) << 16) | u32::from(PROTOCOL_ALL);
        let mut request = NetlinkMessage::from(RouteNetlinkMessage::DelTrafficFilter(message));
        request.header.flags = NLM_F_REQUEST | NLM_F_ACK;
        let mut handle = self.handle.clone();
        let target = index.to_string();
        self.runtime.block_on(async {
            let mut response = handle
                .request(request)
                .map_err(nl("removing the redirect filter of", &target))?;
            while let Some(message) = response.next().await {
                if let NetlinkPayload::Error(e) = message.payload {
                    if e.code.is_some() {
                        return Err(nl("removing the redirect filter of", &target)(
                            rtnetlink::Error::NetlinkError(e),
                        ));
                    }
                }
            }
            Ok(())
        })
    }
}

fn link_of(m: LinkMessage) -> Link {
    let mut link = Link {
        index: m.header.index,
        name: String::new(),
        ether: m.header.link_layer_type == netlink_packet_route::link::LinkLayerType::Ether,
        mac: None,
        mtu: 0,
        kind: None,
        alias: None,
        controller: None,
        lower: None,
    };
    for a in m.attributes {
        match a {
            LinkAttribute::IfName(n) => link.name = n,
            LinkAttribute::Address(a) => link.mac = Some(a),
            LinkAttribute::Mtu(mtu) => link.mtu = mtu,
            LinkAttribute::IfAlias(a) => link.alias = Some(a),
            LinkAttribute::Controller(c) => link.controller = Some(c),
            LinkAttribute::Link(l) => link.lower = Some(l),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let LinkInfo::Kind(kind) = info {
                        link.kind = Some(kind_name(&kind));
                    }
                }
            }
            _ => {}
        }
    }
    link
}

fn kind_name(kind: &InfoKind) -> String {
    match kind {
        InfoKind::Bridge => "bridge".into(),
        InfoKind::Veth => "veth".into(),
        InfoKind::MacVtap => "macvtap".into(),
        InfoKind::Tun => "tun".into(),
        other => format!("{other}"),
    }
}

fn ip_of(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn route_of(m: RouteMessage) -> Option<Route> {
    let table = m
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(m.header.table));
    if table != u32::from(MAIN_TABLE)
        || m.header.kind != netlink_packet_route::route::RouteType::Unicast
    {
        return None;
    }
    let mut oif = None;
    let mut destination = None;
    let mut gateway = None;
    let mut metric = None;
    for a in &m.attributes {
        match a {
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Priority(p) => metric = Some(*p),
            RouteAttribute::Destination(d) => destination = ip_of(d),
            RouteAttribute::Gateway(g) => gateway = ip_of(g),
            _ => {}
        }
    }
    let destination = match destination {
        Some(ip) => Some(IpNet::new(ip, m.header.destination_prefix_length)?),
        None if m.header.destination_prefix_length == 0 => None,
        None => return None,
    };
    Some(Route {
        oif: oif?,
        fact: RouteFact {
            destination,
            gateway,
            protocol: m.header.protocol.into(),
            scope: m.header.scope.into(),
            metric,
        },
        kernel: m.header.protocol == RouteProtocol::Kernel,
    })
}

fn route_message(index: u32, route: RouteFact) -> Result<RouteMessage, String> {
    let v4 = match (route.destination, route.gateway) {
        (Some(d), _) => d.addr.is_ipv4(),
        (None, Some(g)) => g.is_ipv4(),
        (None, None) => true,
    };
    let mut builder = RouteMessageBuilder::<IpAddr>::new();
    // A default route has no destination to take the family from.
    builder.get_mut().header.address_family = if v4 {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    if let Some(d) = route.destination {
        builder = builder
            .destination_prefix(d.addr, d.prefix)
            .map_err(|e| e.to_string())?;
    }
    if let Some(g) = route.gateway {
        builder = builder.gateway(g).map_err(|e| e.to_string())?;
    }
    if let Some(metric) = route.metric {
        builder = builder.priority(metric);
    }
    Ok(builder
        .protocol(RouteProtocol::from(route.protocol))
        .scope(route.scope.into())
        .output_interface(index)
        .build())
}

fn filter_of(m: &TcMessage) -> Filter {
    let mut filter = Filter {
        priority: (m.header.info >> 16) as u16,
        kind: None,
        redirect_to: None,
    };
    for a in &m.attributes {
        match a {
            TcAttribute::Kind(k) => filter.kind = Some(k.clone()),
            TcAttribute::Options(options) => {
                for o in options {
                    if let TcOption::U32(netlink_packet_route::tc::TcFilterU32Option::Action(
                        actions,
                    )) = o
                    {
                        filter.redirect_to = filter.redirect_to.or_else(|| redirect_of(actions));
                    }
                }
            }
            _ => {}
        }
    }
    filter
}

fn redirect_of(actions: &[TcAction]) -> Option<u32> {
    actions.iter().find_map(|action| {
        action.attributes.iter().find_map(|a| match a {
            TcActionAttribute::Options(options) => options.iter().find_map(|o| match o {
                TcActionOption::Mirror(TcActionMirrorOption::Parms(p)) => Some(p.ifindex),
                _ => None,
            }),
            _ => None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_is_looked_up_by_name_and_a_missing_one_is_none() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root for a network namespace");
            return;
        }
        // A thread of its own in a fresh netns: only `lo` is there.
        std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let rtnl = Rtnl::open().unwrap();
            let lo = rtnl.link("lo").unwrap().expect("lo");
            assert_eq!(lo.name, "lo");
            assert_eq!(rtnl.link("vmjail-none").unwrap(), None);
        })
        .join()
        .unwrap();
    }
}
