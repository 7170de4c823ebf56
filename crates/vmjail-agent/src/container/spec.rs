//! A bundle's `config.json` (OCI runtime spec, via `oci-spec`) checked and
//! turned into a [`Plan`] of what the container init does. What the agent
//! does not honour yet is refused by name rather than ignored.

use std::path::{Component, Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::resource::Resource;
use oci_spec::runtime::{LinuxNamespaceType, PosixRlimitType, Spec};

use super::caps::CapSets;

/// Largest config.json read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

#[derive(Debug)]
pub struct MountPlan {
    /// Under the rootfs (checked: no `..`).
    pub destination: PathBuf,
    pub fstype: Option<String>,
    pub source: Option<PathBuf>,
    pub options: Vec<String>,
    /// A bind mount of the bundle's `binds/<n>` (see binds.rs).
    pub bind: Option<usize>,
}

#[derive(Debug)]
pub struct Plan {
    /// The bundle: `config.json`, `rootfs/`, `binds/`.
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub readonly_root: bool,
    pub namespaces: CloneFlags,
    pub hostname: Option<String>,
    pub mounts: Vec<MountPlan>,
    pub masked_paths: Vec<PathBuf>,
    pub readonly_paths: Vec<PathBuf>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub rlimits: Vec<(Resource, u64, u64)>,
    pub no_new_privileges: bool,
    pub capabilities: CapSets,
    /// Its cgroup's limits (see cgroup.rs).
    pub limits: super::cgroup::Limits,
    /// In a container's pid 1: read end of a pipe its parent holds open.
    pub parent_alive: Option<std::os::fd::OwnedFd>,
    /// In a container's pid 1 on a terminal: its end of the console
    /// channel (see console.rs).
    pub console: Option<std::os::fd::OwnedFd>,
}

pub fn load(bundle: &Path) -> Result<Plan, String> {
    let config = bundle.join("config.json");
    let size = std::fs::metadata(&config)
        .map_err(|e| format!("{}: {e}", config.display()))?
        .len();
    if size > MAX_CONFIG_BYTES {
        return Err(format!(
            "{}: {size} bytes, more than {MAX_CONFIG_BYTES}",
            config.display()
        ));
    }
    let spec = Spec::load(&config).map_err(|e| format!("{}: {e}", config.display()))?;
    plan(&spec, bundle).map_err(|e| format!("{}: {e}", config.display()))
}

fn plan(spec: &Spec, bundle: &Path) -> Result<Plan, String> {
    let root = spec.root().as_ref().ok_or("no root")?;
    let rootfs = bundle.join(root.path());
    let process = spec.process().as_ref().ok_or("no process")?;
    let args = process.args().clone().unwrap_or_default();
    if args.is_empty() {
        return Err("process.args is empty".into());
    }
    let mut namespaces = CloneFlags::empty();
    let linux = spec.linux().as_ref();
    for ns in linux
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
    {
        // The spec's network namespace is the sandbox's on the host (its
        // path, or the one the runtime made): the VM's NICs come from it,
        // so in the guest the container keeps the VM's own network
        // namespace, as Kata's containers do.
        if ns.typ() == LinuxNamespaceType::Network {
            continue;
        }
        if ns.path().is_some() {
            return Err(format!(
                "joining an existing {} namespace is not supported",
                ns.typ()
            ));
        }
        namespaces |= match ns.typ() {
            LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
            LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
            LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
            LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
            LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            other => return Err(format!("a {other} namespace is not supported")),
        };
    }
    // The guest has cgroup v2 only: every container gets a cgroup
    // namespace rooted at its own cgroup (as Docker and Podman ask for on
    // a cgroup v2 host), so a cgroup mount shows its own limits even when
    // a spec written for a cgroup v1 host does not ask for one.
    namespaces |= CloneFlags::CLONE_NEWCGROUP;
    if !namespaces.contains(CloneFlags::CLONE_NEWNS) {
        return Err("linux.namespaces needs a mount namespace".into());
    }
    let hostname = spec.hostname().clone();
    if hostname.is_some() && !namespaces.contains(CloneFlags::CLONE_NEWUTS) {
        return Err("hostname needs a uts namespace".into());
    }
    let mounts = spec
        .mounts()
        .iter()
        .flatten()
        .map(|m| {
            let options = m.options().clone().unwrap_or_default();
            let is_bind = m.typ().as_deref() == Some("bind")
                || options.iter().any(|o| o == "bind" || o == "rbind");
            let bind = match is_bind {
                true => Some(super::binds::check(
                    m.destination(),
                    m.source().as_deref(),
                    &options,
                )?),
                false => None,
            };
            Ok(MountPlan {
                destination: inside(m.destination())?,
                fstype: m.typ().clone(),
                // Other sources are names ("proc", "tmpfs").
                source: m.source().clone(),
                options,
                bind,
            })
        })
        .collect::<Result<_, String>>()?;
    let paths = |list: Option<&Vec<String>>| -> Result<Vec<PathBuf>, String> {
        list.into_iter()
            .flatten()
            .map(|p| inside(Path::new(p)))
            .collect()
    };
    let user = process.user();
    Ok(Plan {
        bundle: bundle.to_path_buf(),
        rootfs,
        readonly_root: root.readonly().unwrap_or(false),
        namespaces,
        hostname,
        mounts,
        masked_paths: paths(linux.and_then(|l| l.masked_paths().as_ref()))?,
        readonly_paths: paths(linux.and_then(|l| l.readonly_paths().as_ref()))?,
        args,
        env: process.env().clone().unwrap_or_default(),
        cwd: process.cwd().clone(),
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        rlimits: process
            .rlimits()
            .iter()
            .flatten()
            .map(|r| (resource(r.typ()), r.soft(), r.hard()))
            .collect(),
        no_new_privileges: process.no_new_privileges().unwrap_or(false),
        capabilities: CapSets::from_spec(process.capabilities().as_ref())?,
        limits: super::cgroup::Limits::from_spec(spec)?,
        parent_alive: None,
        console: None,
    })
}

/// `path` (absolute, as in config.json) relative to the rootfs, refusing
/// `..` so nothing lands outside it.
pub(super) fn inside(path: &Path) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => out.push(part),
            _ => return Err(format!("{}: must stay inside the rootfs", path.display())),
        }
    }
    Ok(out)
}

fn resource(typ: PosixRlimitType) -> Resource {
    match typ {
        PosixRlimitType::RlimitCpu => Resource::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => Resource::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => Resource::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => Resource::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => Resource::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => Resource::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => Resource::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => Resource::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => Resource::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => Resource::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => Resource::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(mounts: &str) -> Spec {
        serde_json::from_str(&format!(
            r#"{{"ociVersion":"1.0.2","process":{{"cwd":"/","args":["/bin/sh"],"user":{{"uid":0,"gid":0}}}},
               "root":{{"path":"rootfs"}},"mounts":{mounts},
               "linux":{{"namespaces":[{{"type":"mount"}}]}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn binds_only_from_the_bundles_binds_dir_and_named_mounts_kept() {
        let bundle = Path::new("/run/vmjail-bundles/a");
        for bind in [
            r#"[{"destination":"/data","type":"bind","source":"/dev/vda"}]"#,
            r#"[{"destination":"/data","type":"none","source":"../b","options":["rbind"]}]"#,
            r#"[{"destination":"/data","type":"bind","source":"binds/0/../../rootfs"}]"#,
        ] {
            let Err(err) = plan(&spec(bind), bundle) else {
                panic!("bind accepted");
            };
            assert!(err.contains("mount /data: bind source"), "{err}");
        }
        let plan_of = |mounts: &str| plan(&spec(mounts), bundle).unwrap_or_else(|e| panic!("{e}"));
        let binds = plan_of(
            r#"[{"destination":"/etc/hosts","type":"bind","source":"binds/0","options":["rbind","rprivate","ro"]},
                {"destination":"/data","type":"none","source":"binds/1","options":["bind"]}]"#,
        );
        assert_eq!(binds.mounts[0].bind, Some(0));
        assert_eq!(binds.mounts[1].bind, Some(1));
        let plan = plan(
            &spec(r#"[{"destination":"/proc","type":"proc","source":"proc"}]"#),
            bundle,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.mounts[0].source.as_deref(), Some(Path::new("proc")));
        assert_eq!(plan.mounts[0].bind, None);
    }

    #[test]
    fn the_network_namespace_is_the_vms_own() {
        let bundle = Path::new("/run/vmjail-bundles/a");
        // Docker's (new) and Podman's (a host path): the sandbox's netns on
        // the host, whose interfaces the VM has; a pid namespace's path is
        // still refused.
        for ns in [
            r#"{"type":"network"}"#,
            r#"{"type":"network","path":"/run/netns/x"}"#,
        ] {
            let text = serde_json::to_string(&spec("[]")).unwrap().replace(
                r#"{"type":"mount"}"#,
                &format!(r#"{{"type":"mount"}},{ns}"#),
            );
            let with: Spec = serde_json::from_str(&text).unwrap();
            let plan = plan(&with, bundle).unwrap_or_else(|e| panic!("{ns}: {e}"));
            assert!(!plan.namespaces.contains(CloneFlags::CLONE_NEWNET), "{ns}");
            assert!(plan.namespaces.contains(CloneFlags::CLONE_NEWNS), "{ns}");
        }
        let text = serde_json::to_string(&spec("[]")).unwrap().replace(
            r#"{"type":"mount"}"#,
            r#"{"type":"mount"},{"type":"pid","path":"/proc/1/ns/pid"}"#,
        );
        let err = plan(&serde_json::from_str(&text).unwrap(), bundle).err();
        assert!(err.is_some_and(|e| e.contains("joining an existing pid namespace")));
    }
}
