//! What the network layer made and changed in a sandbox netns, recorded
//! before each step so that teardown (by any later process) undoes exactly
//! that and nothing else.

use serde::{Deserialize, Serialize};

use super::facts::{AddressFact, Endpoint, Mac, RouteFact};

/// The internetworking model in force (the configuration's `default`
/// already resolved to macvtap, as in Kata).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetModel {
    /// Ingress qdiscs and u32 + mirred redirect filters, veth ⇄ tap.
    Tcfilter,
    /// A macvtap on the veth; its character device goes to the VMM.
    Macvtap,
    /// A bridge with the veth and the tap as ports.
    Bridged,
    /// The tap only; the user connects it.
    None,
}

impl NetModel {
    pub fn name(self) -> &'static str {
        match self {
            NetModel::Tcfilter => "tcfilter",
            NetModel::Macvtap => "macvtap",
            NetModel::Bridged => "bridged",
            NetModel::None => "none",
        }
    }
}

/// Something vmjail created in the netns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Made {
    /// A persistent tap owned by the jail's uid/gid.
    Tap { name: String },
    /// A bridge.
    Bridge { name: String },
    /// A macvtap on the endpoint.
    Macvtap { name: String },
    /// An ingress qdisc on `link` (the endpoint or our tap).
    IngressQdisc { link: String },
    /// vmjail's redirect filter on `from`'s ingress, towards `to`.
    Redirect { from: String, to: String },
}

/// A change vmjail made to the endpoint (restored on teardown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Change {
    /// Its MAC went to the guest; it got `set` in its place.
    Mac { original: Mac, set: Mac },
    /// Its addresses (and with them its routes) went to the guest.
    Addresses {
        addresses: Vec<AddressFact>,
        routes: Vec<RouteFact>,
    },
    /// It became a port of our bridge.
    Port { bridge: String },
}

/// What the VMM opens for a NIC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum NicDevice {
    /// A tap, attached by name (`/dev/net/tun` in the jail).
    Tap { name: String },
    /// A macvtap: its `/dev/tap<ifindex>` is opened by vmjail and handed
    /// to the VMM as a descriptor.
    Macvtap { name: String, ifindex: u32 },
}

/// One endpoint of the netns connected to the VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicRecord {
    /// The number in our link names (`vmj<slot>tap`, ...) and the guest
    /// NIC's id (`net<slot>`).
    pub slot: u32,
    /// The endpoint as found (the identity the guest takes).
    pub endpoint: Endpoint,
    /// Created, in order; teardown goes backwards.
    pub made: Vec<Made>,
    /// Changes to the endpoint, in order; restored backwards.
    pub changed: Vec<Change>,
    /// Set once everything is made.
    pub device: Option<NicDevice>,
}

impl NicRecord {
    /// The guest NIC's id for the VMM.
    pub fn nic_id(&self) -> String {
        format!("net{}", self.slot)
    }
}

/// Everything the network layer made for one sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub model: NetModel,
    /// The alias (`ifalias`) every link vmjail creates carries, so that
    /// teardown can tell ours from a stranger's of the same name.
    pub tag: String,
    /// The jail's uid/gid, owner of the taps.
    pub uid: u32,
    pub gid: u32,
    pub nics: Vec<NicRecord>,
}

/// Our link names for `slot`: at most 15 bytes for any slot below 10^6.
pub fn tap_name(slot: u32) -> String {
    format!("vmj{slot}tap")
}

pub fn bridge_name(slot: u32) -> String {
    format!("vmj{slot}br")
}

pub fn macvtap_name(slot: u32) -> String {
    format!("vmj{slot}mvt")
}

/// Whether a link name has the shape of one vmjail makes (these are never
/// taken for an endpoint of the sandbox).
pub fn is_our_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("vmj") else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && matches!(&rest[digits..], "tap" | "br" | "mvt")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_names_fit_and_are_recognised() {
        for slot in [0, 7, 999_999] {
            for name in [tap_name(slot), bridge_name(slot), macvtap_name(slot)] {
                assert!(name.len() <= 15, "{name}");
                assert!(is_our_name(&name), "{name}");
                assert!(super::super::validate_tap_name(&name).is_ok());
            }
        }
        for other in ["eth0", "vmjtap", "vmj1", "vmj1tapx", "veth-vmj0tap"] {
            assert!(!is_our_name(other), "{other}");
        }
    }
}
