//! `vmjail check` on this host, for real: every probe runs (KVM ioctls,
//! device nodes, cgroup mounts, unshare, `--version`). The exit code must
//! agree with the report, a broken configuration must fail, and a failing
//! check must say what to do.

use std::path::Path;
use std::process::{Command, Output};

fn vmjail(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vmjail"))
        .args(args)
        .env_remove("VMJAIL_CONFIG")
        .env_remove("KATA_CONF_FILE")
        .output()
        .unwrap()
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A QEMU config whose binary is a script answering `--version`.
fn qemu_config(dir: &Path, extra: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let qemu = dir.join("qemu");
    std::fs::write(&qemu, "#!/bin/sh\necho 'QEMU emulator version 0.0-test'\n").unwrap();
    std::fs::set_permissions(&qemu, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.join("vmlinux"), vec![1u8; 64]).unwrap();
    std::fs::write(dir.join("initrd.img"), vec![1u8; 64]).unwrap();
    let config = dir.join("c.toml");
    std::fs::write(
        &config,
        format!("[hypervisor.qemu]\npath = \"qemu\"\nkernel = \"vmlinux\"\ninitrd = \"initrd.img\"\n{extra}\n"),
    )
    .unwrap();
    config
}

#[test]
fn json_report_agrees_with_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let config = qemu_config(dir.path(), "");
    let out = vmjail(&["--config", config.to_str().unwrap(), "check", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = report["checks"].as_array().unwrap();
    let names: Vec<&str> = checks
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    for want in [
        "config",
        "privileges",
        "kvm",
        "vhost-vsock",
        "tun",
        "cgroups",
        "namespace mount",
        "namespace pid",
        "namespace net",
        "namespace user",
        "hypervisor binary",
        "guest kernel",
        "guest initrd",
        "chroot base dir",
        "state dir",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let any_fail = checks.iter().any(|c| c["status"] == "fail");
    assert_eq!(report["sandbox_can_be_created"], !any_fail);
    assert_eq!(out.status.success(), !any_fail);
    for c in checks {
        if c["status"] != "ok" {
            assert!(c["remedy"].as_str().is_some_and(|r| !r.is_empty()), "{c}");
        }
    }
    let binary = checks
        .iter()
        .find(|c| c["check"] == "hypervisor binary")
        .unwrap();
    assert_eq!(binary["status"], "ok");
    assert!(binary["detail"]
        .as_str()
        .unwrap()
        .contains("QEMU emulator version 0.0-test"));
    if is_root() {
        // As root on a host with namespaces, these must work for real.
        for ns in ["namespace mount", "namespace pid", "namespace net"] {
            let c = checks.iter().find(|c| c["check"] == ns).unwrap();
            assert_eq!(c["status"], "ok", "{c}");
        }
    } else {
        assert!(std::env::var_os("CI").is_none(), "CI runs as root");
        println!("not root: namespace results not asserted");
    }
}

#[test]
fn broken_config_fails_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let config = qemu_config(dir.path(), "block_device_driver = \"floppy\"");
    let out = vmjail(&["--config", config.to_str().unwrap(), "check"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("FAIL  config"), "{text}");
    assert!(
        text.contains("block_device_driver = \"floppy\" is not valid"),
        "{text}"
    );
    assert!(text.contains("do: fix the configuration"), "{text}");
    assert!(text.ends_with("failed check(s))\n"), "{text}");
}

#[test]
fn failing_binary_fails_the_check() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let config = qemu_config(dir.path(), "");
    std::fs::write(
        dir.path().join("qemu"),
        "#!/bin/sh\necho broken >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(
        dir.path().join("qemu"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let out = vmjail(&["--config", config.to_str().unwrap(), "check"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("FAIL  hypervisor binary"), "{text}");
    assert!(text.contains("--version failed"), "{text}");
}

#[test]
fn unavailable_cgroup_controller_fails() {
    let dir = tempfile::tempdir().unwrap();
    let config = qemu_config(
        dir.path(),
        "[jail]\ncgroup_version = \"2\"\ncgroups = [\"nosuchctl.max=1\"]",
    );
    let out = vmjail(&["--config", config.to_str().unwrap(), "check"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("FAIL  cgroups") && text.contains("needs [nosuchctl]"),
        "{text}"
    );
    // The setting as the file spells it, not a Rust debug name.
    assert!(text.contains("cgroup_version = \"2\";"), "{text}");
    let config = qemu_config(dir.path(), "[jail]\ncgroups = [\"nosuchctl.max=1\"]");
    let out = vmjail(&["--config", config.to_str().unwrap(), "check"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("cgroup_version = \"auto\";"), "{text}");
    assert!(!text.contains("Auto"), "{text}");
}

#[test]
fn directories_say_whether_they_exist_or_will_be_created() {
    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().join("jails");
    std::fs::create_dir(&existing).unwrap();
    let missing = dir.path().join("state/sub");
    let config = qemu_config(
        dir.path(),
        &format!(
            "[jail]\nchroot_base_dir = \"{}\"\nstate_dir = \"{}\"",
            existing.display(),
            missing.display()
        ),
    );
    let out = vmjail(&["--config", config.to_str().unwrap(), "check"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let line = |check: &str| {
        text.lines()
            .find(|l| l.contains(check))
            .unwrap_or_else(|| panic!("no {check} in {text}"))
            .to_owned()
    };
    assert!(
        line("chroot base dir").ends_with(&format!(
            "{} exists, is writable and is root's alone",
            existing.display()
        )),
        "{text}"
    );
    assert!(
        line("state dir").ends_with(&format!(
            "{} does not exist yet; creatable under {}",
            missing.display(),
            dir.path().display()
        )),
        "{text}"
    );
}

/// Review finding 2: a state dir other users can change (or one below a
/// directory they can change) fails the check, with what to do.
#[test]
fn a_state_dir_other_users_can_change_fails() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let config = qemu_config(
        dir.path(),
        &format!("[jail]\nstate_dir = \"{}\"", open.join("state").display()),
    );
    let out = vmjail(&["--config", config.to_str().unwrap(), "check"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_ne!(out.status.code(), Some(0), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("state dir"))
        .unwrap_or_else(|| panic!("no state dir check in {text}"));
    assert!(line.starts_with("FAIL"), "{line}");
    assert!(line.contains("not safe from other users"), "{line}");
}

/// With `use_vsock = true`, QEMU's vsock helper is checked like a binary
/// (found where the backend looks, answering `--version`).
#[test]
fn qemu_with_vsock_checks_its_helper() {
    let dir = tempfile::tempdir().unwrap();
    let config = qemu_config(dir.path(), "use_vsock = true");
    let out = vmjail(&["--config", config.to_str().unwrap(), "check", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let helper = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "vsock helper")
        .unwrap_or_else(|| panic!("no vsock helper check: {report:#}"));
    let installed = std::path::Path::new("/usr/local/bin/vhost-device-vsock").is_file();
    assert_eq!(helper["status"] == "ok", installed, "{helper:#}");
    if installed {
        assert!(
            helper["detail"]
                .as_str()
                .unwrap()
                .contains("vhost-device-vsock"),
            "{helper:#}"
        );
    }
    let plain = qemu_config(dir.path(), "");
    let out = vmjail(&["--config", plain.to_str().unwrap(), "check", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["check"] == "vsock helper"));
}
