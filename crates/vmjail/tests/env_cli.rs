//! `vmjail env` and `--show-default-config-paths` from the command line:
//! discovery through the environment, errors on stderr with nothing on
//! stdout, the embedded default.

use std::path::Path;
use std::process::{Command, Output};

fn vmjail(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vmjail"));
    cmd.args(args)
        .env_remove("VMJAIL_CONFIG")
        .env_remove("KATA_CONF_FILE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn assets() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["qemu", "vmlinux", "initrd.img"] {
        std::fs::write(dir.path().join(name), vec![1u8; 64]).unwrap();
    }
    std::fs::write(
        dir.path().join("c.toml"),
        "[hypervisor.qemu]\npath = \"qemu\"\nkernel = \"vmlinux\"\ninitrd = \"initrd.img\"\n",
    )
    .unwrap();
    dir
}

#[test]
fn show_default_config_paths_lists_them_in_order() {
    let out = vmjail(&["--show-default-config-paths"], &[]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "/etc/vmjail/configuration.toml\n\
         /usr/share/defaults/vmjail/configuration.toml\n\
         /etc/kata-containers/configuration.toml\n\
         /usr/share/defaults/kata-containers/configuration.toml\n"
    );
}

#[test]
fn config_from_environment() {
    let dir = assets();
    let file = dir.path().join("c.toml");
    for var in ["VMJAIL_CONFIG", "KATA_CONF_FILE"] {
        let out = vmjail(&["env", "--json"], &[(var, &file)]);
        assert!(
            out.status.success(),
            "{var}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            v["Runtime"]["Config"]["Path"],
            file.canonicalize().unwrap().to_str().unwrap()
        );
    }
    // --config wins over the environment.
    let out = vmjail(
        &["--config", "/nonexistent/x.toml", "env"],
        &[("VMJAIL_CONFIG", &file)],
    );
    assert!(!out.status.success());
}

#[test]
fn errors_go_to_stderr_and_nothing_to_stdout() {
    let dir = assets();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[hypervisor.qemu]\npath = \"qemu\"\nkernel = \"vmlinux\"\ninitrd = \"initrd.img\"\ndefault_memory = \"lots\"\n").unwrap();
    let out = vmjail(&["--config", bad.to_str().unwrap(), "env"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("bad.toml:5:18: hypervisor.qemu.default_memory must be an integer"),
        "{stderr}"
    );

    let out = vmjail(&["--config", "/nonexistent/x.toml", "env"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/x.toml (from --config)"));
}

#[test]
fn embedded_default_when_no_file() {
    // Only meaningful when no default path exists on this host.
    if vmjail_config::default_config_paths()
        .iter()
        .any(|p| p.exists())
    {
        println!("skipped: a default configuration file exists on this host");
        return;
    }
    let out = vmjail(&["env"], &[]);
    if out.status.success() {
        let v: toml::Value = toml::from_str(std::str::from_utf8(&out.stdout).unwrap()).unwrap();
        assert_eq!(v["Runtime"]["Config"]["Source"].as_str(), Some("embedded"));
        assert!(v["Runtime"]["Config"]["EmbeddedDefault"]
            .as_str()
            .unwrap()
            .contains("[hypervisor.qemu]"));
    } else {
        // Guest assets not installed: the error says how to fix it and shows the default.
        assert!(out.stdout.is_empty());
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.contains("scripts/build-guest.sh --install"),
            "{stderr}"
        );
        assert!(stderr.contains("machine_type = \"microvm\""), "{stderr}");
    }
}

/// A misspelt key's warning comes before the error it probably caused, for
/// every command that loads the whole configuration.
#[test]
fn warnings_come_before_the_error_they_may_explain() {
    let dir = assets();
    let bad = dir.path().join("imgae.toml");
    std::fs::write(
        &bad,
        "[hypervisor.qemu]\npath = \"qemu\"\nimgae = \"rootfs.img\"\nkernel = \"vmlinux\"\ninitrd = \"absent.img\"\n",
    )
    .unwrap();
    for command in ["env", "check", "create"] {
        let mut args = vec!["--config", bad.to_str().unwrap(), command];
        if command == "create" {
            args.extend(["--id", "never-created"]);
        }
        let out = vmjail(&args, &[]);
        assert_eq!(out.status.code(), Some(1), "{command}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        let warning = stderr
            .find("imgae.toml:3:1: unknown key \"imgae\" in [hypervisor.qemu] is ignored; did you mean \"image\"?")
            .unwrap_or_else(|| panic!("{command}: no warning in:\n{stderr}"));
        // `check` reports the failure on stdout, after the warning went out.
        if command == "check" {
            let stdout = String::from_utf8(out.stdout).unwrap();
            assert!(stdout.contains("FAIL  config"), "{stdout}");
            assert!(stdout.contains("absent.img"), "{stdout}");
            continue;
        }
        let error = stderr
            .find("vmjail: error: ")
            .unwrap_or_else(|| panic!("{command}: no error in:\n{stderr}"));
        assert!(
            warning < error,
            "{command}: warning after the error:\n{stderr}"
        );
        assert!(stderr[error..].contains("absent.img"), "{stderr}");
    }
}

#[test]
fn vsock_daemon_is_shown_for_qemu_with_vsock_only() {
    let dir = assets();
    let file = dir.path().join("c.toml");
    let daemon = |use_vsock: bool| {
        let text = std::fs::read_to_string(&file).unwrap();
        let text = text.replace("\nuse_vsock = true", "");
        let text = if use_vsock {
            text.replace("initrd.img\"\n", "initrd.img\"\nuse_vsock = true\n")
        } else {
            text
        };
        std::fs::write(&file, text).unwrap();
        let out = vmjail(&["env", "--json"], &[("VMJAIL_CONFIG", &file)]);
        assert!(out.status.success(), "{out:?}");
        let env: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        env["Hypervisor"]["VsockDaemon"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(daemon(false), "");
    // scripts/deps.sh installs it where vmjail looks first.
    let installed = Path::new("/usr/local/bin/vhost-device-vsock");
    let expected = if installed.is_file() {
        installed.to_str().unwrap()
    } else {
        "<missing>"
    };
    assert_eq!(daemon(true), expected);
}
