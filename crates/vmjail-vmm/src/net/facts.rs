//! What vmjail reads about an interface of the sandbox netns (the identity
//! the guest takes over), as plain serialisable values.
//!
//! Everything here came from a namespace someone else set up, so it is
//! checked on the way in ([`Mac::from_bytes`], [`IpNet::new`]) and bounded
//! in number by the scanner.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An Ethernet address: unicast and not all-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// A unicast, non-zero 6-byte address, else `None`.
    pub fn from_bytes(bytes: &[u8]) -> Option<Mac> {
        let mac: [u8; 6] = bytes.try_into().ok()?;
        // Bit 0 of the first octet marks group (multicast) addresses.
        (mac != [0; 6] && mac[0] & 1 == 0).then_some(Mac(mac))
    }

    /// A random locally administered unicast address (for a veth whose own
    /// address the guest takes over).
    pub fn random_local() -> Result<Mac, std::io::Error> {
        let mut mac = [0u8; 6];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut mac)?;
        mac[0] = (mac[0] & 0xfe) | 0x02;
        Ok(Mac(mac))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl FromStr for Mac {
    type Err = String;
    fn from_str(s: &str) -> Result<Mac, String> {
        let bytes: Vec<u8> = s
            .split(':')
            .map(|p| match p.len() {
                2 => u8::from_str_radix(p, 16).ok(),
                _ => None,
            })
            .collect::<Option<_>>()
            .ok_or_else(|| format!("{s:?} is not a MAC address (aa:bb:cc:dd:ee:ff)"))?;
        Mac::from_bytes(&bytes).ok_or_else(|| format!("{s:?} is not a unicast MAC address"))
    }
}

impl Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Mac, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// An address with its prefix length, `10.0.0.2/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    /// `None` when the prefix is longer than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<IpNet> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(IpNet { addr, prefix })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for IpNet {
    type Err = String;
    fn from_str(s: &str) -> Result<IpNet, String> {
        let bad = || format!("{s:?} is not an address with a prefix (10.0.0.2/24)");
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        IpNet::new(
            addr.parse().map_err(|_| bad())?,
            prefix.parse().map_err(|_| bad())?,
        )
        .ok_or_else(bad)
    }
}

impl Serialize for IpNet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A route through the interface: the destination (`None`: the default
/// route) and the gateway (`None`: on-link), which the guest needs; the
/// protocol, scope and metric it had, to put it back exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteFact {
    pub destination: Option<IpNet>,
    pub gateway: Option<IpAddr>,
    #[serde(default)]
    pub protocol: u8,
    #[serde(default)]
    pub scope: u8,
    #[serde(default)]
    pub metric: Option<u32>,
}

/// An address as the endpoint had it, with what `ip addr` shows of it
/// besides the address (its broadcast and flags such as `nodad`), to put it
/// back exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressFact {
    pub net: IpNet,
    #[serde(default)]
    pub broadcast: Option<std::net::Ipv4Addr>,
    #[serde(default)]
    pub flags: u32,
}

/// A static (permanent) neighbour entry on the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighbourFact {
    pub ip: IpAddr,
    pub mac: Mac,
}

/// An interface of the sandbox netns whose identity the guest takes over,
/// as it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub name: String,
    pub ifindex: u32,
    pub mac: Mac,
    pub mtu: u32,
    pub addresses: Vec<IpNet>,
    pub routes: Vec<RouteFact>,
    #[serde(default)]
    pub neighbours: Vec<NeighbourFact>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_unicast_and_round_trip() {
        assert_eq!(
            "02:aa:bb:cc:dd:0e".parse::<Mac>().unwrap().to_string(),
            "02:aa:bb:cc:dd:0e"
        );
        for bad in [
            "01:00:5e:00:00:01",
            "00:00:00:00:00:00",
            "02:aa",
            "zz:aa:bb:cc:dd:ee",
            "",
        ] {
            assert!(bad.parse::<Mac>().is_err(), "{bad}");
        }
        let random = Mac::random_local().unwrap();
        assert_eq!(random.0[0] & 3, 2, "locally administered unicast");
    }

    #[test]
    fn ipnets_are_bounded() {
        assert_eq!(
            "10.0.0.2/24".parse::<IpNet>().unwrap().to_string(),
            "10.0.0.2/24"
        );
        assert!("fd00::2/64".parse::<IpNet>().is_ok());
        for bad in ["10.0.0.2/33", "10.0.0.2", "fd00::1/129", "x/1"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }
}
