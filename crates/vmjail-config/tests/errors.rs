//! Error and warning messages: file:line:column, key names, what is valid.

mod common;

use common::{qemu, Assets, HOST};
use vmjail_config::*;

fn err(a: &Assets, text: &str) -> String {
    a.load(text).unwrap_err().to_string()
}

#[test]
fn wrong_type_names_key_and_place() {
    let a = Assets::new();
    let file = a.file();
    let file = file.display();
    let cases = [
        (qemu("default_memory = \"2G\"", ""), format!("{file}:5:18: hypervisor.qemu.default_memory must be an integer from 0 to 4294967295, found the string \"2G\"")),
        (qemu("enable_debug = 1", ""), format!("{file}:5:16: hypervisor.qemu.enable_debug must be a boolean (true or false), found the integer 1")),
        (qemu("default_vcpus = 1.5", ""), format!("{file}:5:17: hypervisor.qemu.default_vcpus must be an integer from -2147483648 to 2147483647, found the float 1.5")),
        (qemu("", "[runtime]\nenable_debug = \"yes\""), format!("{file}:7:16: runtime.enable_debug must be a boolean")),
        (qemu("kernel_params = [\"a\"]", ""), format!("{file}:5:17: hypervisor.qemu.kernel_params must be a string, found a array")),
        (format!("runtime = 3\n{}", qemu("", "")), format!("{file}:1:11: runtime must be a table")),
    ];
    for (text, want) in cases {
        let got = err(&a, &text);
        assert!(got.starts_with(&want), "\n got: {got}\nwant: {want}");
    }
}

#[test]
fn syntax_error_has_line_and_column() {
    let a = Assets::new();
    let got = err(&a, "[hypervisor.qemu]\npath = \"qemu\"\nkernel = vmlinux\n");
    let want = format!("{}:3:10: TOML syntax error", a.file().display());
    assert!(got.starts_with(&want), "{got}");
    let got = err(&a, "[hypervisor.qemu]\npath = \"a\"\npath = \"b\"\n");
    assert!(
        got.contains(":3:1: TOML syntax error") && got.contains("duplicate key"),
        "{got}"
    );
}

#[test]
fn hypervisor_tables() {
    let a = Assets::new();
    let two = format!(
        "{}\n[hypervisor.firecracker]\npath = \"firecracker\"\n",
        qemu("", "")
    );
    let got = err(&a, &two);
    assert!(got.contains("more than one hypervisor table"), "{got}");
    assert!(
        got.contains("[hypervisor.qemu] at") && got.contains("[hypervisor.firecracker] at"),
        "{got}"
    );
    assert!(got.contains(":1:13") && got.contains(":8:13"), "{got}");

    let got = err(&a, "[hypervisor.kvmtool]\npath = \"x\"\n");
    assert!(
        got.contains(":1:13: unknown hypervisor type \"kvmtool\"; valid: firecracker, qemu, acrn"),
        "{got}"
    );

    let got = err(&a, "[runtime]\n");
    assert!(got.contains("no hypervisor table"), "{got}");

    for (component, name) in [("proxy", "cc"), ("shim", "runc"), ("agent", "hyperstart")] {
        let got = err(
            &a,
            &qemu("", &format!("[{component}.{name}]\npath = \"x\"")),
        );
        assert!(
            got.contains(&format!("unknown {component} type \"{name}\"; valid: kata")),
            "{got}"
        );
    }
}

/// A misspelt key (here `image`) is often why loading then fails: its warning travels
/// with the error instead of being lost.
#[test]
fn warnings_found_before_a_failure_come_with_the_error() {
    let a = Assets::new();
    let text =
        "[hypervisor.qemu]\npath = \"qemu\"\nimgae = \"rootfs.img\"\nkernel = \"vmlinux\"\ninitrd = \"absent.img\"\n";
    let err = a.load(text).unwrap_err();
    assert!(
        matches!(*err.error, ConfigError::NoInitrdOrImage { .. }),
        "{}",
        err.error
    );
    let file = a.file();
    assert_eq!(err.warnings.len(), 1, "{:?}", err.warnings);
    assert_eq!(
        err.warnings[0].location.as_deref(),
        Some(format!("{}:3:1", file.display()).as_str())
    );
    assert!(
        err.warnings[0].message.contains("did you mean \"image\"?"),
        "{:?}",
        err.warnings[0]
    );
    // A failure before any key was read has no warnings.
    let err = load_file(&a.path("none.toml"), &HOST).unwrap_err();
    assert!(err.warnings.is_empty());
}

#[test]
fn unknown_keys_warn_with_nearest() {
    let a = Assets::new();
    let file = a.file();
    let cfg = a
        .load(&qemu(
            "default_memroy = 512\nfrobnicate = true",
            "[runtime]\nenable_debugg = true\n[jial]\nuid = 1",
        ))
        .unwrap();
    let warnings: Vec<(String, String)> = cfg
        .warnings
        .iter()
        .map(|w| (w.location.clone().unwrap(), w.message.clone()))
        .collect();
    let f = file.display();
    let expected = [
        (format!("{f}:5:1"), "unknown key \"default_memroy\" in [hypervisor.qemu] is ignored; did you mean \"default_memory\"?"),
        (format!("{f}:6:1"), "unknown key \"frobnicate\" in [hypervisor.qemu] is ignored; valid keys: path, jailer_path"),
        (format!("{f}:8:1"), "unknown key \"enable_debugg\" in [runtime] is ignored; did you mean \"enable_debug\"?"),
        (format!("{f}:9:2"), "unknown top-level key \"jial\" is ignored; did you mean \"jail\"?"),
    ];
    assert_eq!(warnings.len(), expected.len(), "{warnings:?}");
    for ((loc, msg), (want_loc, want_msg)) in warnings.iter().zip(expected.iter()) {
        assert_eq!(loc, want_loc);
        assert!(msg.starts_with(want_msg), "{msg}");
    }
    // The misspelt key had no effect.
    assert_eq!(cfg.hypervisor.default_memory, 2048);
}

#[test]
fn missing_config_file() {
    let a = Assets::new();
    let got = load_file(&a.path("none.toml"), &HOST)
        .unwrap_err()
        .to_string();
    assert!(
        got.contains("cannot read configuration file") && got.contains("none.toml"),
        "{got}"
    );
    let got = load(Some(&a.path("none.toml")), &HOST)
        .unwrap_err()
        .to_string();
    assert!(
        got.contains("(from --config)") && got.contains("none.toml"),
        "{got}"
    );
}

#[test]
fn embedded_default_parses_and_names_setup_when_assets_missing() {
    // The default's own structure is valid: only the guest assets may be
    // missing on this machine.
    match load_str(EMBEDDED_DEFAULT, ConfigSource::Embedded, &HOST) {
        Ok(cfg) => {
            assert_eq!(cfg.hypervisor_kind, HypervisorKind::Qemu);
            assert_eq!(cfg.hypervisor.machine_type, "microvm");
            assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("<embedded default>:"), "{msg}");
            assert!(
                msg.contains("scripts/build-guest.sh") && msg.contains("--config"),
                "{msg}"
            );
        }
    }
}

#[test]
fn embedded_default_loads_with_assets_in_place() {
    // Same text with the asset directory swapped for a temp one: proves the
    // embedded default is complete and valid apart from where its files are.
    let a = Assets::new();
    let text = EMBEDDED_DEFAULT
        .replace(
            "/usr/bin/qemu-system-x86_64",
            a.path("qemu").to_str().unwrap(),
        )
        .replace(
            "/usr/share/vmjail/guest/vmlinux",
            a.path("vmlinux").to_str().unwrap(),
        )
        .replace(
            "/usr/share/vmjail/guest/initramfs.cpio.gz",
            a.path("initrd.img").to_str().unwrap(),
        );
    let cfg = load_str(&text, ConfigSource::Embedded, &HOST).unwrap();
    assert_eq!(cfg.hypervisor.default_memory, 256);
    assert_eq!(
        cfg.hypervisor.block_device_driver,
        BlockDeviceDriver::VirtioMmio
    );
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
}

#[test]
fn config_must_be_a_small_regular_file() {
    let got = load_file(std::path::Path::new("/dev/zero"), &HOST)
        .unwrap_err()
        .to_string();
    assert_eq!(got, "configuration file /dev/zero is not a regular file");
    let a = Assets::new();
    let big = a.write("big.toml", &"# padding\n".repeat(200_000));
    let got = load_file(&big, &HOST).unwrap_err().to_string();
    assert!(got.ends_with("is larger than 1048576 bytes"), "{got}");
    let got = load_file(a.dir.path(), &HOST).unwrap_err().to_string();
    assert!(
        got.contains("is not a regular file") || got.contains("Is a directory"),
        "{got}"
    );
}

/// `load_jail` reads only `[jail]`: a file whose assets are gone (so that
/// `load` fails) still gives the state directory.
#[test]
fn load_jail_needs_only_the_jail_section() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("configuration.toml");
    std::fs::write(
        &file,
        "[hypervisor.qemu]\nkernel = \"/nonexistent/vmlinux\"\ninitrd = \"/nonexistent/initrd\"\n\n[jail]\nstate_dir = \"/run/vmjail-elsewhere\"\n",
    )
    .unwrap();
    let host = vmjail_config::HostFacts {
        cpus: 2,
        has_vhost_vsock: false,
    };
    assert!(vmjail_config::load(Some(&file), &host).is_err());
    let jail = vmjail_config::load_jail(Some(&file)).unwrap();
    assert_eq!(
        jail.state_dir,
        std::path::Path::new("/run/vmjail-elsewhere")
    );
    // A bad [jail] value is still an error with its place.
    std::fs::write(
        &file,
        "[hypervisor.qemu]\n[jail]\nstate_dir = \"relative\"\n",
    )
    .unwrap();
    let err = vmjail_config::load_jail(Some(&file))
        .unwrap_err()
        .to_string();
    assert!(err.contains("state_dir"), "{err}");
}
