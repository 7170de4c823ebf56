//! A sandbox's record is read from disk, so before anything is stopped,
//! unmounted, removed or chowned from it, it must describe this sandbox and
//! nothing else (the security review's finding 3: a forged `state.json`
//! made teardown unmount a host mount named as the sandbox's netns and
//! delete a host tree named as its jail). The jail crate checks each path
//! of the jail record against the jail's own directory; this checks that
//! the record is this sandbox's.

use std::path::Path;

use vmjail_config::JailConfig;
use vmjail_jail::scope::{check_scope, Scope};
use vmjail_vmm::net::NetworkRecord;

use crate::netns;
use crate::state::SandboxState;
use crate::{SandboxError, SandboxId};

/// Every name the record gives must be this sandbox's: a pinned netns is
/// `<netns_dir>/vmjail-<id>`, the VMM record and its jail are the
/// sandbox's id, and the VMM was given the sandbox's netns; and what the
/// record says of the jail must lie inside what `current` (this process's
/// `[jail]` configuration, not the record's) allows.
pub fn check(
    state: &SandboxState,
    netns_dir: &Path,
    current: &JailConfig,
) -> Result<(), SandboxError> {
    let id = SandboxId::parse(&state.id)?;
    let forged = |reason: String| SandboxError::ForgedRecord {
        id: state.id.clone(),
        reason,
    };
    let pin = netns::path_for(netns_dir, &id);
    if state.netns.is_ours() && state.netns.path != pin {
        return Err(forged(format!(
            "its network namespace is recorded as vmjail's at {}, which is not {}",
            state.netns.path.display(),
            pin.display()
        )));
    }
    if let Some(vmm) = &state.vmm {
        if !vmm.id.is_empty() && vmm.id != state.id {
            return Err(forged(format!("its VMM record is sandbox {:?}'s", vmm.id)));
        }
        let jail = &vmm.jail;
        let names_a_jail = !jail.jail_dir.as_os_str().is_empty() || !jail.id.is_empty();
        if names_a_jail && jail.id != state.id {
            return Err(forged(format!(
                "its jail record is sandbox {:?}'s",
                jail.id
            )));
        }
        if names_a_jail && jail.jail_dir.file_name() != Some(std::ffi::OsStr::new(&state.id)) {
            return Err(forged(format!(
                "its jail dir {} is not named after it",
                jail.jail_dir.display()
            )));
        }
        for helper in &vmm.helpers {
            let jail = &helper.jail;
            if jail.names_anything() && jail.id != state.id {
                return Err(forged(format!(
                    "its {} helper's jail record is sandbox {:?}'s",
                    helper.name, jail.id
                )));
            }
        }
        if !vmm.netns.as_os_str().is_empty() && vmm.netns != state.netns.path {
            return Err(forged(format!(
                "its VMM is recorded in network namespace {}, not its own {}",
                vmm.netns.display(),
                state.netns.path.display()
            )));
        }
    }
    if let Some(network) = &state.network {
        check_network(network, &state.id).map_err(forged)?;
    }
    check_against_configuration(state, current)
}

/// The record's `[jail]` must be the one `current` describes (paths and
/// cgroups where this configuration puts them, a uid from its range), and
/// the jail record must stay inside it.
fn check_against_configuration(
    state: &SandboxState,
    current: &JailConfig,
) -> Result<(), SandboxError> {
    let recorded = &state.config.jail;
    let changed = |key: &'static str, was: String, now: String| SandboxError::ConfigMismatch {
        id: state.id.clone(),
        key,
        was,
        now,
    };
    if recorded.chroot_base_dir != current.chroot_base_dir {
        return Err(changed(
            "chroot_base_dir",
            recorded.chroot_base_dir.display().to_string(),
            current.chroot_base_dir.display().to_string(),
        ));
    }
    if recorded.parent_cgroup != current.parent_cgroup {
        return Err(changed(
            "parent_cgroup",
            recorded.parent_cgroup.clone(),
            current.parent_cgroup.clone(),
        ));
    }
    let in_range = |id: u32, first: u32| id >= first && id - first < current.id_range_size.max(1);
    if !in_range(recorded.uid, current.uid) || !in_range(recorded.gid, current.gid) {
        return Err(changed(
            "uid/gid",
            format!("{}:{}", recorded.uid, recorded.gid),
            format!(
                "{}:{} and {} after them",
                current.uid,
                current.gid,
                current.id_range_size.saturating_sub(1)
            ),
        ));
    }
    let Some(vmm) = &state.vmm else {
        return Ok(());
    };
    let scope = Scope {
        id: &state.id,
        chroot_base_dir: &current.chroot_base_dir,
        parent_cgroup: (!current.parent_cgroup.is_empty())
            .then_some(current.parent_cgroup.as_str()),
        uid: recorded.uid,
        gid: recorded.gid,
    };
    let forged = |e: vmjail_jail::JailError| SandboxError::ForgedRecord {
        id: state.id.clone(),
        reason: e.to_string(),
    };
    check_scope(&vmm.jail, &scope).map_err(forged)?;
    // Helpers (QEMU's vsock back-end) are jailed like the VMM: the same
    // scope (base, cgroups, uid) holds for each of their jails.
    for helper in &vmm.helpers {
        check_scope(&helper.jail, &scope).map_err(forged)?;
    }
    Ok(())
}

/// The network record names only links vmjail makes (its link names,
/// tagged with this sandbox) and, for filters and qdiscs, the endpoint it
/// found; nothing else in the netns is teardown's to touch.
fn check_network(network: &NetworkRecord, id: &str) -> Result<(), String> {
    use vmjail_vmm::net::record::{is_our_name, Made};
    if network.tag != crate::sandboxes::network_tag(id) {
        return Err(format!("its network tag is {:?}", network.tag));
    }
    for nic in &network.nics {
        let endpoint = nic.endpoint.name.as_str();
        let ok = |name: &str| is_our_name(name) || name == endpoint;
        for made in &nic.made {
            let fine = match made {
                Made::Tap { name } | Made::Bridge { name } | Made::Macvtap { name } => {
                    is_our_name(name)
                }
                Made::IngressQdisc { link } => ok(link),
                Made::Redirect { from, to } => ok(from) && ok(to),
            };
            if !fine {
                return Err(format!("its network record names {made:?} as vmjail's"));
            }
        }
    }
    Ok(())
}
