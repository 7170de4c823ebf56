//! The guest's NICs on QEMU's command line and over QMP.
//!
//! A tap is attached by name (QEMU opens `/dev/net/tun` in its jail; the
//! tap is owned by the jail's uid) and is on the command line. A macvtap's
//! device cannot be opened from the jail: vmjail opens it and passes the
//! descriptor over QMP (`getfd`, which QEMU accepts only once the machine
//! exists, so not in `--preconfig`), then adds its netdev and device while
//! the guest is still stopped (`-S`): a PCI machine only.

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::path::Path;

use serde_json::json;

use super::cmdline::Machine;
use super::qmp::Qmp;
use super::Error;
use crate::hypervisor::GuestNic;
use crate::net::NicDevice;

fn check(nic: &GuestNic) -> Result<(), Error> {
    let valid_id = (1..=32).contains(&nic.id.len())
        && nic
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let name = match &nic.device {
        NicDevice::Tap { name } | NicDevice::Macvtap { name, .. } => name,
    };
    if !valid_id || crate::net::validate_tap_name(name).is_err() {
        return Err(Error::InvalidNic {
            id: nic.id.clone(),
            device: name.clone(),
        });
    }
    Ok(())
}

/// Whether any NIC is a macvtap (plugged over QMP before the guest runs).
pub fn has_macvtap(nics: &[GuestNic]) -> bool {
    nics.iter()
        .any(|n| matches!(n.device, NicDevice::Macvtap { .. }))
}

/// Whether any NIC is a tap (QEMU then needs `/dev/net/tun` in its jail).
pub fn needs_tun(nics: &[GuestNic]) -> bool {
    nics.iter()
        .any(|n| matches!(n.device, NicDevice::Tap { .. }))
}

/// The tap netdev's options (QMP form).
fn tap_netdev(id: &str, name: &str) -> serde_json::Value {
    json!({"type": "tap", "id": id, "ifname": name, "script": "no", "downscript": "no", "vhost": false})
}

/// PCIe root ports q35 gets for NICs plugged over QMP (its root bus takes
/// no hotplug): one per NIC slot, as many as a sandbox may have NICs.
const HOTPLUG_PORTS: u32 = crate::net::MAX_ENDPOINTS as u32;

/// The root port for NIC `id` (`net<slot>`) on q35; `None` elsewhere (the
/// `pc` machine's root bus takes hotplug itself).
fn hotplug_bus(machine: Machine, id: &str) -> Result<Option<String>, Error> {
    if machine != Machine::Pc("q35") {
        return Ok(None);
    }
    match id.strip_prefix("net").and_then(|n| n.parse::<u32>().ok()) {
        Some(slot) if slot < HOTPLUG_PORTS => Ok(Some(format!("vmj-rp{slot}"))),
        _ => Err(Error::NoHotplugPort {
            id: id.to_owned(),
            ports: HOTPLUG_PORTS,
        }),
    }
}

/// `-netdev` and `-device` arguments for the taps among `nics` (macvtaps
/// come over QMP: [`plug_macvtaps`]), and q35's hotplug ports.
pub fn args(machine: Machine, nics: &[GuestNic]) -> Result<Vec<OsString>, Error> {
    if machine == Machine::Microvm && has_macvtap(nics) {
        return Err(Error::MacvtapNeedsPci);
    }
    let mut args = Vec::new();
    if machine == Machine::Pc("q35") {
        for port in 0..HOTPLUG_PORTS {
            args.push("-device".into());
            args.push(format!(
                "pcie-root-port,id=vmj-rp{port},chassis={},slot=0",
                port + 1
            ));
        }
    }
    for nic in nics {
        check(nic)?;
        if let NicDevice::Tap { name } = &nic.device {
            args.push("-netdev".into());
            args.push(format!(
                "tap,id={},ifname={name},script=no,downscript=no,vhost=off",
                nic.id
            ));
            args.push("-device".into());
            args.push(device(machine, nic));
        }
    }
    Ok(args.into_iter().map(OsString::from).collect())
}

fn device(machine: Machine, nic: &GuestNic) -> String {
    // No option ROM (iPXE's efi-virtio.rom is not in the jail, and the
    // guest boots from its kernel, never from the network).
    let rom = match machine {
        Machine::Pc(_) => ",romfile=",
        Machine::Microvm => "",
    };
    format!(
        "virtio-net-{},netdev={},mac={},id={}-nic{rom}",
        machine.virtio_suffix(),
        nic.id,
        nic.mac,
        nic.id
    )
}

/// Plug the macvtap NICs into a QEMU whose guest has not started yet.
pub fn plug_macvtaps(
    qmp: &mut Qmp,
    machine: Machine,
    nics: &[GuestNic],
    netns: &Path,
) -> Result<(), Error> {
    nics.iter()
        .filter(|n| matches!(n.device, NicDevice::Macvtap { .. }))
        .try_for_each(|nic| hot_plug(qmp, machine, nic, netns))
}

/// The netdev behind `nic`: a tap by name, a macvtap by descriptor.
fn add_netdev(qmp: &mut Qmp, nic: &GuestNic, netns: &Path) -> Result<(), Error> {
    let qmp_err = |command| {
        let id = nic.id.clone();
        move |source| Error::NicQmp {
            command,
            id,
            source,
        }
    };
    let netdev = match &nic.device {
        NicDevice::Tap { name } => tap_netdev(&nic.id, name),
        NicDevice::Macvtap { name, ifindex } => {
            let fd =
                crate::net::open_macvtap(netns, name, *ifindex).map_err(|source| Error::Nic {
                    id: nic.id.clone(),
                    source,
                })?;
            let fdname = format!("{}-fd", nic.id);
            qmp.send_fd(&fdname, fd.as_fd()).map_err(qmp_err("getfd"))?;
            json!({"type": "tap", "id": nic.id, "fd": fdname, "vhost": false})
        }
    };
    qmp.execute("netdev_add", Some(netdev))
        .map(drop)
        .map_err(qmp_err("netdev_add"))
}

/// Hot-plug `nic` (made in the netns at `netns`) into a PCI machine.
pub fn hot_plug(
    qmp: &mut Qmp,
    machine: Machine,
    nic: &GuestNic,
    netns: &Path,
) -> Result<(), Error> {
    check(nic)?;
    let bus = hotplug_bus(machine, &nic.id)?;
    add_netdev(qmp, nic, netns)?;
    let mut device = json!({
        "driver": format!("virtio-net-{}", machine.virtio_suffix()),
        "netdev": nic.id,
        "mac": nic.mac.to_string(),
        "id": format!("{}-nic", nic.id),
        "romfile": "",
    });
    if let Some(bus) = bus {
        device["bus"] = json!(bus);
    }
    let added = qmp.execute("device_add", Some(device));
    if let Err(source) = added {
        let _ = qmp.execute("netdev_del", Some(json!({ "id": nic.id })));
        return Err(Error::NicQmp {
            command: "device_add",
            id: nic.id.clone(),
            source,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nic(id: &str, device: NicDevice) -> GuestNic {
        GuestNic {
            id: id.into(),
            device,
            mac: "02:00:00:00:00:01".parse().unwrap(),
        }
    }

    #[test]
    fn taps_on_the_command_line_macvtaps_over_qmp() {
        let tap = nic(
            "net0",
            NicDevice::Tap {
                name: "vmj0tap".into(),
            },
        );
        let line: Vec<String> = args(Machine::Microvm, std::slice::from_ref(&tap))
            .unwrap()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            line,
            [
                "-netdev",
                "tap,id=net0,ifname=vmj0tap,script=no,downscript=no,vhost=off",
                "-device",
                "virtio-net-device,netdev=net0,mac=02:00:00:00:00:01,id=net0-nic",
            ]
        );
        let mvt = nic(
            "net1",
            NicDevice::Macvtap {
                name: "vmj1mvt".into(),
                ifindex: 7,
            },
        );
        let line: Vec<String> = args(Machine::Pc("q35"), std::slice::from_ref(&mvt))
            .unwrap()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(line.len(), 2 * HOTPLUG_PORTS as usize, "{line:?}");
        assert_eq!(line[1], "pcie-root-port,id=vmj-rp0,chassis=1,slot=0");
        assert_eq!(
            hotplug_bus(Machine::Pc("q35"), "net3").unwrap().unwrap(),
            "vmj-rp3"
        );
        assert_eq!(hotplug_bus(Machine::Pc("pc"), "net3").unwrap(), None);
        assert!(hotplug_bus(Machine::Pc("q35"), "net99").is_err());
        assert!(matches!(
            args(Machine::Microvm, &[mvt]),
            Err(Error::MacvtapNeedsPci)
        ));
        let hostile = nic("net0,x=y", NicDevice::Tap { name: "t".into() });
        assert!(matches!(
            args(Machine::Microvm, &[hostile]),
            Err(Error::InvalidNic { .. })
        ));
    }
}
