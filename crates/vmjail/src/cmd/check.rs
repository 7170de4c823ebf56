//! `vmjail check [--json]`: validate the configuration and probe the host.
//! Exit code 0 only when a sandbox can be created; every failing check
//! says what to do. The whole report is built before it is printed.

use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;
use vmjail_config::{CgroupVersionSetting, HostFacts, HypervisorKind, RuntimeConfig};

use crate::cli::JsonArgs;
use crate::cmd::env::{load_config, print_warnings};
use crate::probe::{binaries, cgroups, devices, dirs, namespaces};
use vmjail_vmm::kvm;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Warn,
    Fail,
}

/// One check's outcome.
#[derive(Debug, Serialize)]
struct Finding {
    check: String,
    status: Status,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    remedy: Option<String>,
}

fn ok(check: &str, detail: impl Into<String>) -> Finding {
    Finding {
        check: check.into(),
        status: Status::Ok,
        detail: detail.into(),
        remedy: None,
    }
}

fn warn(check: &str, detail: impl Into<String>, remedy: impl Into<String>) -> Finding {
    Finding {
        check: check.into(),
        status: Status::Warn,
        detail: detail.into(),
        remedy: Some(remedy.into()),
    }
}

fn fail(check: &str, detail: impl Into<String>, remedy: impl Into<String>) -> Finding {
    Finding {
        check: check.into(),
        status: Status::Fail,
        detail: detail.into(),
        remedy: Some(remedy.into()),
    }
}

#[derive(Serialize)]
struct Report {
    config: Option<String>,
    hypervisor: Option<&'static str>,
    sandbox_can_be_created: bool,
    checks: Vec<Finding>,
}

pub fn run(config: Option<&Path>, args: &JsonArgs) -> anyhow::Result<ExitCode> {
    let host = HostFacts::detect();
    let loaded = load_config(config, &host);
    let mut checks = Vec::new();
    let cfg = match &loaded {
        Ok(cfg) => {
            print_warnings(&cfg.warnings);
            let warned = if cfg.warnings.is_empty() {
                String::new()
            } else {
                format!(" ({} warning(s) on stderr)", cfg.warnings.len())
            };
            checks.push(ok(
                "config",
                format!("{} loaded{warned}", vmjail_config::origin_name(&cfg.source)),
            ));
            Some(cfg)
        }
        Err(e) => {
            checks.push(fail(
                "config",
                format!("{e:#}"),
                "fix the configuration (see docs/configuration.md); `vmjail --show-default-config-paths` lists where it is looked for",
            ));
            None
        }
    };
    checks.push(privileges());
    let kind = cfg.map(|c| c.hypervisor_kind);
    checks.push(kvm_check(kind));
    checks.push(vhost_vsock_check(kind));
    checks.push(tun_check());
    if let Some(cfg) = cfg {
        checks.push(cgroup_check(cfg));
    }
    checks.extend(namespace_checks(cfg.is_none_or(|c| c.jail.new_pid_ns)));
    if let Some(cfg) = cfg {
        checks.extend(binary_checks(cfg));
        checks.extend(asset_checks(cfg));
        checks.extend(dir_checks(cfg));
    }

    let can = checks.iter().all(|c| c.status != Status::Fail);
    let report = Report {
        config: cfg.map(|c| vmjail_config::origin_name(&c.source)),
        hypervisor: kind.map(kind_name),
        sandbox_can_be_created: can,
        checks,
    };
    let out = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        render_text(&report)
    };
    crate::out::out!("{out}");
    Ok(if can {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn kind_name(kind: HypervisorKind) -> &'static str {
    match kind {
        HypervisorKind::Firecracker => "firecracker",
        HypervisorKind::Qemu => "qemu",
        HypervisorKind::Acrn => "acrn",
    }
}

fn render_text(report: &Report) -> String {
    let mut out = String::new();
    for c in &report.checks {
        let tag = match c.status {
            Status::Ok => "ok  ",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        };
        out.push_str(&format!(
            "{tag}  {:<22} {}\n",
            c.check,
            c.detail.replace('\n', "\n      ")
        ));
        if let Some(remedy) = &c.remedy {
            out.push_str(&format!("      {:<22} do: {remedy}\n", ""));
        }
    }
    let failed = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .count();
    if report.sandbox_can_be_created {
        out.push_str("result: a sandbox can be created\n");
    } else {
        out.push_str(&format!(
            "result: a sandbox cannot be created ({failed} failed check(s))\n"
        ));
    }
    out
}

fn privileges() -> Finding {
    if nix::unistd::geteuid().is_root() {
        ok("privileges", "running as root")
    } else {
        fail(
            "privileges",
            format!("running as uid {}", nix::unistd::geteuid()),
            "run vmjail as root: it mounts, pivots into the jail, writes cgroups and drops to the jail's uid",
        )
    }
}

fn kvm_check(kind: Option<HypervisorKind>) -> Finding {
    let facts = kvm::probe();
    let nested = if facts.nested {
        "; this host is itself a VM"
    } else {
        ""
    };
    let kind_text = facts.kind.describe();
    let paravirtual_advice = match kind {
        Some(HypervisorKind::Qemu) => "none needed for QEMU (it boots guests under TCG); for speed use a host with kvm_intel/kvm_amd",
        Some(_) => "the guest kernel must support PVM to boot; prefer a host with hardware virtualisation (kvm_intel/kvm_amd)",
        None => "QEMU boots guests under TCG; Firecracker needs a PVM-capable guest kernel or a host with kvm_intel/kvm_amd",
    };
    const ENABLE_KVM: &str = "enable VT-x/AMD-V, `modprobe kvm_intel` (or kvm_amd) and make /dev/kvm read-writable by root";
    match (&facts.usable, facts.kind) {
        (Ok(api), kvm::KvmKind::Paravirtual) => warn(
            "kvm",
            format!("/dev/kvm usable (API {api}, VM and vCPU created); kind: {kind_text}{nested}"),
            paravirtual_advice,
        ),
        (Ok(api), _) => ok(
            "kvm",
            format!("/dev/kvm usable (API {api}, VM and vCPU created); kind: {kind_text}{nested}"),
        ),
        (Err(e), _) => match kind {
            Some(HypervisorKind::Firecracker | HypervisorKind::Acrn) => {
                fail("kvm", format!("{e}; kind: {kind_text}{nested}"), ENABLE_KVM)
            }
            Some(HypervisorKind::Qemu) => warn(
                "kvm",
                format!("{e}; kind: {kind_text}{nested}"),
                format!("QEMU will use TCG (slow); for KVM: {ENABLE_KVM}"),
            ),
            None => warn(
                "kvm",
                format!("{e}; kind: {kind_text}{nested}"),
                format!("Firecracker and ACRN need KVM, QEMU falls back to TCG; {ENABLE_KVM}"),
            ),
        },
    }
}

fn vhost_vsock_check(kind: Option<HypervisorKind>) -> Finding {
    match (devices::open_rw(Path::new("/dev/vhost-vsock")), kind) {
        (Ok(()), _) => ok("vhost-vsock", "/dev/vhost-vsock opens"),
        (Err(e), Some(HypervisorKind::Firecracker)) => ok(
            "vhost-vsock",
            format!("{e} (not needed: Firecracker's hybrid vsock is a host Unix socket)"),
        ),
        (Err(e), _) => ok(
            "vhost-vsock",
            format!("{e} (not needed: QEMU's vsock is served by the jailed vhost-device-vsock)"),
        ),
    }
}

fn tun_check() -> Finding {
    match devices::open_rw(Path::new("/dev/net/tun")) {
        Ok(()) => ok("tun", "/dev/net/tun opens"),
        Err(e) => fail(
            "tun",
            e,
            "`modprobe tun` (and `mkdir -p /dev/net && mknod /dev/net/tun c 10 200` if the node is missing)",
        ),
    }
}

/// The controllers `[jail] cgroups` writes to (`cpu.shares` → `cpu`; v2
/// core `cgroup.*` files need none) — the jail's own rule for `auto`.
fn needed_controllers(cfg: &RuntimeConfig) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (file, _) in &cfg.jail.cgroups {
        let Some((controller, _)) = file.split_once('.') else {
            continue;
        };
        if controller != "cgroup" && !out.iter().any(|c| c == controller) {
            out.push(controller.to_string());
        }
    }
    out
}

fn cgroup_check(cfg: &RuntimeConfig) -> Finding {
    let mounts = match cgroups::probe() {
        Ok(m) => m,
        Err(e) => return fail("cgroups", e, "mount /proc"),
    };
    let needed = needed_controllers(cfg);
    let v1 = mounts.v1_controllers();
    let v1_ok = !v1.is_empty() && needed.iter().all(|c| v1.contains(&c.as_str()));
    let v2_ok = mounts.v2.is_some() && needed.iter().all(|c| mounts.v2_controllers.contains(c));
    let detail = format!(
        "v1 controllers: [{}]; v2: {} controllers [{}]; [jail] cgroups needs [{}]",
        v1.join(", "),
        mounts
            .v2
            .as_deref()
            .map_or("not mounted".to_string(), |p| format!("at {}", p.display())),
        mounts.v2_controllers.join(", "),
        needed.join(", ")
    );
    let (usable, version) = match cfg.jail.cgroup_version {
        CgroupVersionSetting::Auto if v2_ok => (true, "v2 (auto)"),
        CgroupVersionSetting::Auto => (v1_ok, "v1 (auto)"),
        CgroupVersionSetting::V1 => (v1_ok, "v1"),
        CgroupVersionSetting::V2 => (v2_ok, "v2"),
    };
    if usable {
        ok("cgroups", format!("jail uses {version}; {detail}"))
    } else {
        fail(
            "cgroups",
            format!(
                "no usable hierarchy for cgroup_version = \"{}\"; {detail}",
                cfg.jail.cgroup_version.as_str()
            ),
            "mount the cgroup hierarchy with the controllers [jail] cgroups names, or set [jail] cgroup_version to the version that has them",
        )
    }
}

fn namespace_checks(need_pid: bool) -> Vec<Finding> {
    namespaces::NAMESPACES
        .iter()
        .map(|(name, flag)| {
            let check = format!("namespace {name}");
            match namespaces::try_unshare(*flag) {
                Ok(()) => ok(&check, "unshare works"),
                // The jail does not use a user namespace: informative only.
                Err(e) if *name == "user" => warn(
                    &check,
                    e,
                    "not needed by the jail; check /proc/sys/user/max_user_namespaces",
                ),
                Err(e) if *name == "pid" && !need_pid => {
                    warn(&check, e, "not needed with [jail] new_pid_ns = false")
                }
                Err(e) => fail(
                    &check,
                    e,
                    format!(
                        "run as root on a kernel with CONFIG_{}_NS",
                        name.to_uppercase()
                    ),
                ),
            }
        })
        .collect()
}

fn binary_checks(cfg: &RuntimeConfig) -> Vec<Finding> {
    let h = &cfg.hypervisor;
    let mut bins = vec![("hypervisor binary", h.path.as_path())];
    if let Some(j) = &h.jailer_path {
        bins.push(("jailer binary", j));
    }
    if let Some(d) = &h.virtio_fs_daemon {
        bins.push(("virtio-fs daemon", d));
    }
    // QEMU's vsock back-end, looked up where the backend looks.
    let helper = (cfg.hypervisor_kind == HypervisorKind::Qemu && h.use_vsock)
        .then(vmjail_vmm::qemu::vhost_vsock::find);
    let missing = match &helper {
        Some(Ok(path)) => {
            bins.push(("vsock helper", path));
            None
        }
        Some(Err(e)) => Some(fail(
            "vsock helper",
            e.to_string(),
            "run scripts/deps.sh, or set use_vsock = false",
        )),
        None => None,
    };
    bins.into_iter()
        .map(
            |(check, path)| match binaries::version(path, binaries::VERSION_TIMEOUT) {
                Ok(v) => ok(check, format!("{}: {v}", path.display())),
                Err(e) => fail(
                    check,
                    e,
                    format!("install a working {check} or fix its path in the configuration"),
                ),
            },
        )
        .chain(missing)
        .collect()
}

fn asset_checks(cfg: &RuntimeConfig) -> Vec<Finding> {
    let h = &cfg.hypervisor;
    let mut assets = vec![("guest kernel", &h.kernel)];
    if let Some(i) = &h.initrd {
        assets.push(("guest initrd", i));
    }
    if let Some(i) = &h.image {
        assets.push(("guest image", i));
    }
    assets
        .into_iter()
        .map(
            |(check, path)| match std::fs::File::open(path).and_then(|f| f.metadata()) {
                Ok(m) => ok(check, format!("{} ({} bytes)", path.display(), m.len())),
                Err(e) => fail(
                    check,
                    format!("{}: {e}", path.display()),
                    "rebuild the guest assets (scripts/build-guest.sh)",
                ),
            },
        )
        .collect()
}

fn dir_checks(cfg: &RuntimeConfig) -> Vec<Finding> {
    [
        ("chroot base dir", &cfg.jail.chroot_base_dir),
        ("state dir", &cfg.jail.state_dir),
    ]
    .into_iter()
    .map(|(check, path)| {
        // Root acts on what is in these dirs: nobody else may change them
        // or any directory above them (for a missing one, its parents).
        let trusted = if path.exists() {
            vmjail_jail::trust::check_trusted_dir(path, check).map(drop)
        } else {
            vmjail_jail::trust::check_trusted_parent(path, check).map(drop)
        };
        if let Err(e) = trusted {
            return fail(
                check,
                e.to_string(),
                format!(
                    "make {} and every directory above it root-owned and writable by root only, or pick another in [jail]",
                    path.display()
                ),
            );
        }
        dir_finding(check, path)
    })
    .collect()
}

fn dir_finding(check: &'static str, path: &Path) -> Finding {
    match dirs::writable_ancestor(path) {
        Ok(at) if at == path => ok(
            check,
            format!("{} exists, is writable and is root's alone", path.display()),
        ),
        Ok(at) => ok(
            check,
            format!(
                "{} does not exist yet; creatable under {}",
                path.display(),
                at.display()
            ),
        ),
        Err(e) => fail(
            check,
            e,
            format!(
                "make {} creatable by root or change it in [jail]",
                path.display()
            ),
        ),
    }
}
