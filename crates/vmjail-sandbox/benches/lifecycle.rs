//! Lifecycle benchmark (a bench binary; `cargo bench -p vmjail-sandbox
//! --bench lifecycle`). Drives the real `vmjail` binary with QEMU and the
//! repository's guest (`build/guest/*`), as root:
//!
//! 1. `create` → ready: wall time of `vmjail create` (returns once the
//!    jailed QEMU answers QMP), then `delete --force`; `ITER` rounds. The
//!    baseline, measured in the same run: the same QEMU started bare with
//!    the same kernel and initrd until it answers `query-status` (what
//!    `create` waits for).
//! 2. 50 sandboxes created in parallel, then deleted in parallel: wall time
//!    of each phase and per sandbox (against 50 bare QEMUs to QMP in
//!    parallel), then a leak check (state dir, mounts, processes, netns).
//!
//! The binary is `$VMJAIL_BIN`, else `<target>/release/vmjail`, else
//! `<target>/debug/vmjail` (build it first: `cargo build --bins`).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const ITER: usize = 5;
const PARALLEL: usize = 50;

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
    let mut bare = Vec::new();
    for i in 0..ITER {
        bare.push(bare_qemu_to_qmp(&guest, dir.path(), 1));
        let id = format!("bench-{i}-{}", std::process::id());
        let t = Instant::now();
        check(run(&["create", "--id", &id]), "create");
        creates.push(t.elapsed());
        let t = Instant::now();
        check(run(&["delete", "--force", &id]), "delete --force");
        deletes.push(t.elapsed());
    }
    let bare_median = report(
        "bare QEMU -> QMP query-status answered (baseline)",
        &mut bare,
    );
    let create_median = report("create -> ready (QMP up)", &mut creates);
    println!(
        "ratio create/bare (medians): {:.2}x",
        create_median.as_secs_f64() / bare_median.as_secs_f64()
    );
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
    let bare_parallel = bare_qemu_to_qmp(&guest, dir.path(), PARALLEL);
    let created = spawn_all(&|id| vec!["create".into(), "--id".into(), id.into()]);
    let listed = run(&["list", "--json"]);
    let listing: serde_json::Value =
        serde_json::from_slice(&listed.stdout).expect("list --json output");
    assert_eq!(listing.as_array().map(Vec::len), Some(PARALLEL));
    let deleted = spawn_all(&|id| vec!["delete".into(), "--force".into(), id.into()]);
    println!(
        "{PARALLEL} sandboxes created in parallel: {:.3} s ({:.2}x {PARALLEL} bare QEMUs to QMP in parallel: {:.3} s)",
        created.as_secs_f64(),
        created.as_secs_f64() / bare_parallel.as_secs_f64(),
        bare_parallel.as_secs_f64()
    );
    println!(
        "  per sandbox: {:.1} ms created, {:.1} ms deleted (wall / {PARALLEL})",
        created.as_secs_f64() * 1e3 / PARALLEL as f64,
        deleted.as_secs_f64() * 1e3 / PARALLEL as f64
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

/// Wall time for `count` bare QEMUs (same kernel and initrd, `-S`, as the
/// sandboxes) to all greet on QMP; they are killed afterwards.
fn bare_qemu_to_qmp(guest: &Path, dir: &Path, count: usize) -> Duration {
    use std::io::{BufRead, BufReader};
    let t = Instant::now();
    let started: Vec<_> = (0..count)
        .map(|i| {
            let socket = dir.join(format!("bare-{i}.sock"));
            let _ = std::fs::remove_file(&socket);
            let child = Command::new("qemu-system-x86_64")
                .args(["-machine", "microvm,accel=tcg", "-cpu", "max", "-m", "256M"])
                .args(["-nodefaults", "-no-user-config", "-nographic", "-S"])
                .arg("-kernel")
                .arg(guest.join("vmlinux"))
                .arg("-initrd")
                .arg(guest.join("initramfs.cpio.gz"))
                .args(["-append", "console=ttyS0", "-serial", "null", "-qmp"])
                .arg(format!("unix:{},server=on,wait=off", socket.display()))
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("starting bare QEMU");
            (child, socket)
        })
        .collect();
    // The point `vmjail create` returns at: QMP negotiated and `query-status`
    // answered — which QEMU's main loop does only once its own start-up
    // (loading the kernel and initrd) is done; the greeting alone comes
    // earlier, from QMP's I/O thread.
    for (_, socket) in &started {
        let deadline = Instant::now() + Duration::from_secs(30);
        let stream = loop {
            if let Ok(stream) = std::os::unix::net::UnixStream::connect(socket) {
                break stream;
            }
            assert!(Instant::now() < deadline, "bare QEMU never opened QMP");
            std::thread::sleep(Duration::from_millis(1));
        };
        let mut writer = stream.try_clone().expect("cloning the QMP stream");
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).expect("QMP greeting");
        assert!(line.contains("QMP"), "{line}");
        for command in ["qmp_capabilities", "query-status"] {
            std::io::Write::write_all(
                &mut writer,
                format!("{{\"execute\":\"{command}\"}}\n").as_bytes(),
            )
            .expect("QMP command");
            line.clear();
            reader.read_line(&mut line).expect("QMP answer");
            assert!(line.contains("return"), "{command}: {line}");
        }
    }
    let elapsed = t.elapsed();
    for (mut child, socket) in started {
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_file(socket);
    }
    elapsed
}

/// Print min/median/max of `times`; returns the median.
fn report(what: &str, times: &mut [Duration]) -> Duration {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what}: n={} min {:.1} ms, median {:.1} ms, max {:.1} ms",
        times.len(),
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    );
    times[times.len() / 2]
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
    support::built_binary("vmjail", "VMJAIL_BIN")
}
