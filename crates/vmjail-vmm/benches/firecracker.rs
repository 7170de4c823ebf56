//! Firecracker backend benchmarks.
//!
//! - `fc_config_round_trips/api_double`: every configuration request up to
//!   and including `InstanceStart`, against the in-process API double (the
//!   HTTP-over-Unix-socket client cost, not Firecracker's own work).
//! - `fc_create_to_api/<mode>`: from `create` to the VMM's API answering —
//!   `builtin_jail_fake_vmm` always (root), `builtin_jail`, `external_jailer`
//!   and `bare` with real binaries from `VMJAIL_FIRECRACKER` /
//!   `VMJAIL_JAILER` (+ `VMJAIL_FC_KERNEL`, `VMJAIL_FC_INITRD`).
//!
//! `cargo bench -p vmjail-vmm --bench firecracker` (the vmjail binary must be
//! built: `cargo build -p vmjail`, or set `VMJAIL_EXE`).

#[path = "../tests/firecracker_support/mod.rs"]
mod firecracker_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use firecracker_support::api_double::ApiDouble;
use firecracker_support::config::runtime_config;
use firecracker_support::host::Netns;
use vmjail_vmm::firecracker::{api, configure, ApiClient, Firecracker};
use vmjail_vmm::{Hypervisor, VmmRecord};

fn config_round_trips(c: &mut Criterion) {
    let p = Path::new("/nonexistent");
    let plan = Firecracker::new(&runtime_config(p, None, p, p, p), p)
        .unwrap()
        .boot_plan();
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    c.bench_function("fc_config_round_trips/api_double", |b| {
        b.iter_batched(
            || {
                n += 1;
                let double = ApiDouble::start(&dir.path().join(format!("api-{n}.sock")));
                let client = ApiClient::new(&double.socket).unwrap();
                client
                    .wait_for_socket(Duration::from_secs(5), || true)
                    .unwrap();
                (double, client)
            },
            |(double, client)| {
                configure(&client, &plan, Duration::from_secs(5)).unwrap();
                client
                    .send(
                        &api::put_action(api::ActionType::InstanceStart),
                        Duration::from_secs(5),
                    )
                    .unwrap();
                double
            },
            BatchSize::PerIteration,
        )
    });
}

fn bin_dir() -> PathBuf {
    // benches run from <target>/release/deps (or debug/deps).
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

fn jailer_exe() -> Option<PathBuf> {
    let exe = std::env::var_os("VMJAIL_JAILER_EXE")
        .map(PathBuf::from)
        .unwrap_or_else(|| bin_dir().join("vmjail-jailer"));
    exe.is_file().then_some(exe)
}

/// Time `create` → API answering for one configuration, stopping after each.
fn bench_create(
    c: &mut Criterion,
    name: &str,
    firecracker: &Path,
    jailer: Option<&Path>,
    kernel: &Path,
    initrd: &Path,
) {
    let Some(vmjail) = jailer_exe() else {
        println!("{name}: skipped: no vmjail binary (build it or set VMJAIL_EXE)");
        return;
    };
    let netns = Netns::new("bench");
    let work = tempfile::tempdir().unwrap();
    let base = work.path().join("jails");
    std::fs::create_dir(&base).unwrap();
    let config = runtime_config(firecracker, jailer, kernel, initrd, &base);
    let mut n = 0;
    c.bench_function(&format!("fc_create_to_api/{name}"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let mut fc = Firecracker::new(&config, &vmjail).unwrap();
                let mut recorder = |_: &VmmRecord| Ok(());
                let console = std::fs::File::create(work.path().join("console.log")).unwrap();
                fc.create(
                    &format!("bench-{n}"),
                    &netns.path(),
                    console.into(),
                    &mut recorder,
                )
                .unwrap();
                total += fc.create_timings().unwrap().api_answering;
                fc.stop(Duration::from_secs(2)).unwrap();
            }
            total
        })
    });
}

/// Bare Firecracker: spawn it with an API socket, wait until it answers.
fn bench_bare(c: &mut Criterion, firecracker: &Path) {
    let dir = tempfile::tempdir().unwrap();
    c.bench_function("fc_create_to_api/bare", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for i in 0..iters {
                let socket = dir.path().join(format!("bare-{i}.sock"));
                let _ = std::fs::remove_file(&socket);
                let started = Instant::now();
                let mut child = std::process::Command::new(firecracker)
                    .arg("--api-sock")
                    .arg(&socket)
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap();
                let client = ApiClient::new(&socket).unwrap();
                client
                    .wait_for_socket(Duration::from_secs(10), || true)
                    .unwrap();
                total += started.elapsed();
                let _ = child.kill();
                let _ = child.wait();
            }
            total
        })
    });
}

fn create_to_api(c: &mut Criterion) {
    if !nix::unistd::geteuid().is_root() {
        println!("fc_create_to_api: skipped: needs root");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let kernel = work.path().join("vmlinux");
    let initrd = work.path().join("initrd");
    std::fs::write(&kernel, b"kernel").unwrap();
    std::fs::write(&initrd, b"initrd").unwrap();
    let fake = bin_dir().join("examples/fake_firecracker");
    if fake.is_file() {
        bench_create(c, "builtin_jail_fake_vmm", &fake, None, &kernel, &initrd);
    } else {
        println!("builtin_jail_fake_vmm: skipped: {} missing", fake.display());
    }
    let Some(firecracker) = std::env::var_os("VMJAIL_FIRECRACKER").map(PathBuf::from) else {
        println!("fc_create_to_api real modes: skipped: VMJAIL_FIRECRACKER not set");
        return;
    };
    let kernel = std::env::var_os("VMJAIL_FC_KERNEL")
        .map(PathBuf::from)
        .unwrap_or(kernel);
    let initrd = std::env::var_os("VMJAIL_FC_INITRD")
        .map(PathBuf::from)
        .unwrap_or(initrd);
    bench_bare(c, &firecracker);
    bench_create(c, "builtin_jail", &firecracker, None, &kernel, &initrd);
    match std::env::var_os("VMJAIL_JAILER").map(PathBuf::from) {
        Some(jailer) => bench_create(
            c,
            "external_jailer",
            &firecracker,
            Some(&jailer),
            &kernel,
            &initrd,
        ),
        None => println!("external_jailer: skipped: VMJAIL_JAILER not set"),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(5));
    targets = config_round_trips, create_to_api
}
criterion_main!(benches);
