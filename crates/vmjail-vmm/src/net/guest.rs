//! The guest's side of a NIC: the endpoint's MAC, MTU, addresses, routes
//! and static neighbours, as kernel parameters that vmjail's `guest/init`
//! applies with busybox `ip` (the Debian cloud kernel has no
//! `CONFIG_IP_PNP`, so the kernel's own `ip=` is not available). A guest
//! with an agent gets the same facts from it instead.
//!
//! One parameter per fact, each starting with the NIC's id so the guest can
//! apply them in order (every NIC's addresses before any route):
//! `vmjail.nic=net0,02:00:00:00:00:01,1500`, `vmjail.addr=net0,10.0.0.2/24`,
//! `vmjail.route=net0,default,10.0.0.1`, `vmjail.route=net0,10.9.0.0/16,-`,
//! `vmjail.neigh=net0,10.0.0.9,02:00:00:00:00:09`.

use vmjail_config::KernelParam;

use super::record::NicRecord;
use super::Error;

/// The most of the kernel command line (2 KiB on x86, the configuration's
/// own parameters included) the network facts may take.
pub const MAX_PARAMS_LEN: usize = 1536;

fn param(key: &str, value: String) -> KernelParam {
    KernelParam {
        key: key.to_owned(),
        value: Some(value),
    }
}

/// The kernel parameters describing `nics` to the guest; too many facts
/// for the command line are an error, not a truncated network.
pub fn kernel_params(nics: &[NicRecord]) -> Result<Vec<KernelParam>, Error> {
    let params = all_params(nics);
    let len: usize = params
        .iter()
        .map(|p| p.key.len() + 2 + p.value.as_deref().map_or(0, str::len))
        .sum();
    if len > MAX_PARAMS_LEN {
        return Err(Error::GuestParamsTooLong {
            len,
            max: MAX_PARAMS_LEN,
        });
    }
    Ok(params)
}

fn all_params(nics: &[NicRecord]) -> Vec<KernelParam> {
    let mut params = Vec::new();
    for nic in nics {
        let id = nic.nic_id();
        let e = &nic.endpoint;
        params.push(param("vmjail.nic", format!("{id},{},{}", e.mac, e.mtu)));
        for a in &e.addresses {
            params.push(param("vmjail.addr", format!("{id},{a}")));
        }
    }
    for nic in nics {
        let id = nic.nic_id();
        for r in &nic.endpoint.routes {
            let destination = r
                .destination
                .map_or_else(|| "default".to_owned(), |d| d.to_string());
            let gateway = r.gateway.map_or_else(|| "-".to_owned(), |g| g.to_string());
            params.push(param(
                "vmjail.route",
                format!("{id},{destination},{gateway}"),
            ));
        }
        for n in &nic.endpoint.neighbours {
            params.push(param("vmjail.neigh", format!("{id},{},{}", n.ip, n.mac)));
        }
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::facts::{Endpoint, NeighbourFact, RouteFact};

    #[test]
    fn every_fact_becomes_one_parameter() {
        let nic = NicRecord {
            slot: 0,
            endpoint: Endpoint {
                name: "eth0".into(),
                ifindex: 2,
                mac: "02:00:00:00:00:01".parse().unwrap(),
                mtu: 1400,
                addresses: vec![
                    "10.0.0.2/24".parse().unwrap(),
                    "fd00::2/64".parse().unwrap(),
                ],
                routes: vec![
                    RouteFact {
                        destination: None,
                        gateway: Some("10.0.0.1".parse().unwrap()),
                        protocol: 4,
                        scope: 0,
                        metric: None,
                    },
                    RouteFact {
                        destination: Some("10.9.0.0/16".parse().unwrap()),
                        gateway: None,
                        protocol: 4,
                        scope: 253,
                        metric: Some(10),
                    },
                ],
                neighbours: vec![NeighbourFact {
                    ip: "10.0.0.9".parse().unwrap(),
                    mac: "02:00:00:00:00:09".parse().unwrap(),
                }],
            },
            made: vec![],
            changed: vec![],
            device: None,
        };
        let many = vec![nic.clone(); 20];
        assert!(matches!(
            kernel_params(&many),
            Err(Error::GuestParamsTooLong { .. })
        ));
        let words: Vec<String> = kernel_params(&[nic])
            .unwrap()
            .into_iter()
            .map(|p| format!("{}={}", p.key, p.value.unwrap()))
            .collect();
        assert_eq!(
            words,
            [
                "vmjail.nic=net0,02:00:00:00:00:01,1400",
                "vmjail.addr=net0,10.0.0.2/24",
                "vmjail.addr=net0,fd00::2/64",
                "vmjail.route=net0,default,10.0.0.1",
                "vmjail.route=net0,10.9.0.0/16,-",
                "vmjail.neigh=net0,10.0.0.9,02:00:00:00:00:09",
            ]
        );
    }
}
