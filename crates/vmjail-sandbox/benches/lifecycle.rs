//! Lifecycle benchmark (a bench binary; `cargo bench -p vmjail-sandbox
//! --bench lifecycle`). Drives the real `vmjail` binary with QEMU and the
//! repository's guest (`build/guest/*`), as root:
//!
//! 1. `create` → ready: wall time of `vmjail create` (returns once the
//!    jailed QEMU answers QMP), then `delete --force`; `ITER` rounds.
//! 2. 10 sandboxes created in parallel, then deleted in parallel: wall time
//!    of each phase, then a leak check (state dir, mounts, processes,
//!    netns).
//!
//! The binary is `$VMJAIL_BIN`, else `<target>/release/vmjail`, else
//! `<target>/debug/vmjail` (build it first: `cargo build --bins`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const ITER: usize = 5;
const PARALLEL: usize = 10;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let vmjail = vmjail_bin();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let guest = repo.join("build/guest");
    let dir = tempfile::Builder::new()
        .prefix("vmjail-bench-")
        .tempdir_in("/tmp")
        .expect("temp dir");
    let config = write_config(dir.path(), &guest);
    std::fs::create_dir(dir.path().join("jail")).expect("creating the jail base");
    let run = |args: &[&str]| -> Output {
        Command::new(&vmjail)
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .expect("running vmjail")
    };
    let check = |out: Output, what: &str| {
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    println!("vmjail: {}", vmjail.display());

    let mut creates = Vec::new();
    let mut deletes = Vec::new();
    for i in 0..ITER {
        let id = format!("bench-{i}-{}", std::process::id());
        let t = Instant::now();
        check(run(&["create", "--id", &id]), "create");
        creates.push(t.elapsed());
        let t = Instant::now();
        check(run(&["delete", "--force", &id]), "delete --force");
        deletes.push(t.elapsed());
    }
    report("create -> ready (QMP up)", &mut creates);
    report("delete --force of a created sandbox", &mut deletes);

    let ids: Vec<String> = (0..PARALLEL)
        .map(|i| format!("par-{i}-{}", std::process::id()))
        .collect();
    // Spawn all, then wait for all: the phases really overlap.
    let spawn_all = |args: &dyn Fn(&str) -> Vec<String>| -> Duration {
        let t = Instant::now();
        let children: Vec<_> = ids
            .iter()
            .map(|id| {
                Command::new(&vmjail)
                    .arg("--config")
                    .arg(&config)
                    .args(args(id))
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawning vmjail")
            })
            .collect();
        for child in children {
            check(child.wait_with_output().expect("waiting"), "parallel step");
        }
        t.elapsed()
    };
    let created = spawn_all(&|id| vec!["create".into(), "--id".into(), id.into()]);
    let listed = run(&["list", "--json"]);
    let listing: serde_json::Value =
        serde_json::from_slice(&listed.stdout).expect("list --json output");
    assert_eq!(listing.as_array().map(Vec::len), Some(PARALLEL));
    let deleted = spawn_all(&|id| vec!["delete".into(), "--force".into(), id.into()]);
    println!(
        "{PARALLEL} sandboxes created in parallel: {:.3} s",
        created.as_secs_f64()
    );
    println!(
        "{PARALLEL} sandboxes deleted in parallel: {:.3} s",
        deleted.as_secs_f64()
    );
    let leaks = leaks(dir.path(), &ids);
    println!(
        "leaks after parallel delete: {}",
        if leaks.is_empty() {
            "none".to_owned()
        } else {
            leaks.join("; ")
        }
    );
    assert!(leaks.is_empty());
}

fn report(what: &str, times: &mut [Duration]) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what}: n={} min {:.1} ms, median {:.1} ms, max {:.1} ms",
        times.len(),
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    );
}

fn leaks(dir: &Path, ids: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    let state = dir.join("state");
    if let Ok(entries) = std::fs::read_dir(&state) {
        for e in entries.flatten() {
            found.push(format!("state entry {}", e.path().display()));
        }
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in mountinfo.lines() {
        if let Some(m) = line.split(' ').nth(4) {
            if Path::new(m).starts_with(dir) {
                found.push(format!("mount {m}"));
            }
        }
    }
    for id in ids {
        let ns = Path::new("/run/netns").join(format!("vmjail-{id}"));
        if ns.exists() {
            found.push(format!("netns {}", ns.display()));
        }
    }
    let needle = dir.to_string_lossy().into_owned();
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for p in procs.flatten() {
            let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&needle) {
                found.push(format!("process {}", p.file_name().to_string_lossy()));
            }
        }
    }
    found
}

fn write_config(dir: &Path, guest: &Path) -> PathBuf {
    let path = dir.join("config.toml");
    let text = format!(
        r#"[hypervisor.qemu]
path = "/usr/bin/qemu-system-x86_64"
kernel = "{kernel}"
initrd = "{initrd}"
machine_type = "microvm"
default_vcpus = 1
default_memory = 256
block_device_driver = "virtio-mmio"
use_vsock = false

[agent.kata]

[jail]
uid = 30124
gid = 30124
chroot_base_dir = "{dir}/jail"
state_dir = "{dir}/state"
parent_cgroup = "vmjail-bench-{pid}"
"#,
        kernel = guest.join("vmlinux").display(),
        initrd = guest.join("initramfs.cpio.gz").display(),
        dir = dir.display(),
        pid = std::process::id(),
    );
    std::fs::write(&path, text).expect("writing the bench config");
    path
}

fn vmjail_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("VMJAIL_BIN") {
        return bin.into();
    }
    // <target>/release/deps/lifecycle-<hash> → <target>
    let exe = std::env::current_exe().expect("current_exe");
    let target = exe
        .ancestors()
        .nth(3)
        .expect("bench binary under <target>/<profile>/deps");
    for profile in ["release", "debug"] {
        let bin = target.join(profile).join("vmjail");
        if bin.exists() {
            return bin;
        }
    }
    panic!(
        "no vmjail binary under {}: run `cargo build --bins` (or set VMJAIL_BIN)",
        target.display()
    );
}
