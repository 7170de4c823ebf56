//! `vmjail env` golden output: a rich configuration, its TOML output
//! compared line by line with `golden/env-qemu.toml` (temp paths and host
//! facts normalised), and `--json` carrying the same data.
//! `VMJAIL_UPDATE_GOLDEN=1` rewrites the golden file.

use std::path::{Path, PathBuf};
use std::process::Command;

const CONFIG: &str = r#"
[hypervisor.qemu]
path = "qemu"
kernel = "guest/vmlinux"
initrd = "guest/initramfs.cpio.gz"
machine_type = "microvm"
machine_accelerators = "nofw, nosmm, accel=tcg"
kernel_params = "panic=5 quiet agent.log=info"
default_vcpus = 1
default_maxvcpus = 1
default_memory = 256
default_bridges = 9
block_device_driver = "virtio-mmio"
use_vsock = false
enable_debug = true
default_memroy = 1

[agent.kata]
enable_debug = true
enable_tracing = true
trace_mode = "static"
kernel_modules = ["vsock"]

[runtime]
internetworking_model = "tcfilter"
experimental = ["newstore"]

[factory]
vm_cache_number = 1

[jail]
uid = 31000
gid = 31001
chroot_base_dir = "/srv/vmjail-golden"
cgroup_version = "1"
cgroups = ["cpu.shares=512", "pids.max=64"]
rlimit_fsize = 1048576
"#;

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    std::fs::create_dir(base.join("guest")).unwrap();
    std::fs::write(base.join("qemu"), "fake").unwrap();
    std::fs::write(base.join("guest/vmlinux"), vec![1u8; 4096]).unwrap();
    std::fs::write(base.join("guest/initramfs.cpio.gz"), vec![1u8; 4096]).unwrap();
    let config = base.join("configuration.toml");
    std::fs::write(&config, CONFIG).unwrap();
    (dir, config)
}

fn vmjail(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vmjail"))
        .args(args)
        .env_remove("VMJAIL_CONFIG")
        .env_remove("KATA_CONF_FILE")
        .output()
        .unwrap()
}

/// Replace what depends on the run: the temp dir, host facts (the TSC
/// frequency QEMU's TCG guests are told), version.
fn normalise(text: &str, dir: &Path) -> String {
    text.replace(dir.to_str().unwrap(), "@DIR@")
        .lines()
        .map(|l| {
            if let Some((head, tail)) = l.split_once(" tsc_early_khz=") {
                let digits = tail.trim_start_matches(|c: char| c.is_ascii_digit());
                return format!("{head} tsc_early_khz=@HOST@{digits}");
            }
            for key in ["Cpus = ", "VhostVsock = "] {
                if l.starts_with(key) {
                    return format!("{key}@HOST@");
                }
            }
            if l.starts_with("Version = ") && l != "Version = \"1\"" {
                return "Version = @VERSION@".to_string();
            }
            l.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn env_toml_matches_golden() {
    let (dir, config) = setup();
    let base = config.parent().unwrap();
    let out = vmjail(&["--config", config.to_str().unwrap(), "env"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = normalise(&String::from_utf8(out.stdout).unwrap(), base);
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/env-qemu.toml");
    if std::env::var_os("VMJAIL_UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &got).unwrap();
    }
    let want = std::fs::read_to_string(&golden).unwrap();
    for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(g, w, "line {}", i + 1);
    }
    assert_eq!(got.lines().count(), want.lines().count());

    // The misspelt key is a warning on stderr, with its place.
    let stderr = String::from_utf8(out.stderr).unwrap();
    let stderr = stderr.replace(base.to_str().unwrap(), "@DIR@");
    assert_eq!(
        stderr,
        "vmjail: warning: @DIR@/configuration.toml:16:1: unknown key \"default_memroy\" in [hypervisor.qemu] is ignored; did you mean \"default_memory\"?\n"
    );
    drop(dir);
}

#[test]
fn env_json_carries_the_same_data() {
    let (_dir, config) = setup();
    let toml_out = vmjail(&["--config", config.to_str().unwrap(), "env"]);
    let json_out = vmjail(&["--config", config.to_str().unwrap(), "env", "--json"]);
    assert!(json_out.status.success());
    let from_toml: toml::Value =
        toml::from_str(std::str::from_utf8(&toml_out.stdout).unwrap()).unwrap();
    let from_json: serde_json::Value = serde_json::from_slice(&json_out.stdout).unwrap();
    assert_eq!(serde_json::to_value(from_toml).unwrap(), from_json);
    // What QEMU's backend passes: its console first, the configuration's
    // parameters, the TSC hint under TCG (forced by accel=tcg) last.
    let params = from_json["Kernel"]["Parameters"].as_str().unwrap();
    assert!(params.starts_with("console=ttyS0 reboot=k "), "{params}");
    let words: Vec<&str> = params.split(' ').collect();
    assert_eq!(words[words.len() - 2], "agent.log=info", "{params}");
    assert!(
        words[words.len() - 1].starts_with("tsc_early_khz="),
        "{params}"
    );
}

/// Firecracker's line is its backend's own: its defaults first, the
/// configuration overriding one in place.
#[test]
fn env_shows_firecrackers_boot_args() {
    let (dir, _) = setup();
    let base = dir.path().canonicalize().unwrap();
    std::fs::write(base.join("firecracker"), "fake").unwrap();
    let config = base.join("fc.toml");
    std::fs::write(
        &config,
        "[hypervisor.firecracker]\npath = \"firecracker\"\nkernel = \"guest/vmlinux\"\ninitrd = \"guest/initramfs.cpio.gz\"\nkernel_params = \"panic=7 quiet\"\n",
    )
    .unwrap();
    let out = vmjail(&["--config", config.to_str().unwrap(), "env", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let params = v["Kernel"]["Parameters"].as_str().unwrap();
    assert!(
        params.starts_with("console=ttyS0 reboot=k panic=7 pci=off i8042.noaux"),
        "{params}"
    );
    assert!(params.ends_with(" quiet"), "{params}");
    assert!(!params.contains("tsc_early_khz"), "{params}");
}
