//! `vmjail exec` against a real QEMU guest (TCG) and its agent over the
//! VM's vsock, with baselines measured in the same run (root):
//! - round trip of `vmjail exec ID -- true` (median, p99) against
//!   `vmjail state ID` (the same binary, config and state, no guest);
//! - stdout throughput of `cat` of a guest file against `cat` of a host
//!   file of the same size through a pipe;
//! - peak RSS of the `vmjail exec` process and of the jailed
//!   `vhost-device-vsock` helper.
//!
//! `cargo build --workspace --bins && scripts/build-guest.sh build/guest &&
//! cargo bench -p vmjail --bench exec`

#[path = "../tests/lifecycle_support/mod.rs"]
mod lifecycle_support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lifecycle_support::{require_root, unique_id, World};

const ROUNDS: usize = 50;
const FILE_MIB: usize = 32;

/// Median and 99th percentile of `samples`.
fn median_p99(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let p99 = (samples.len() * 99).div_ceil(100).saturating_sub(1);
    (samples[samples.len() / 2], samples[p99])
}

fn time_each(rounds: usize, mut once: impl FnMut()) -> (Duration, Duration) {
    let samples = (0..rounds)
        .map(|_| {
            let started = Instant::now();
            once();
            started.elapsed()
        })
        .collect();
    median_p99(samples)
}

/// Run `cmd` with stdout piped; returns (bytes read, seconds, peak RSS KiB).
// Reaped by `wait4` (for its rusage), not `Child::wait`.
#[allow(clippy::zombie_processes)]
fn stream(mut cmd: Command) -> (usize, f64, i64) {
    let started = Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).spawn().expect("spawn");
    let mut out = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0;
    loop {
        match out.read(&mut buf).expect("read stdout") {
            0 => break,
            n => total += n,
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let (status, rss) = wait_with_rusage(child.id() as i32);
    assert_eq!(status, 0, "{cmd:?} failed");
    (total, secs, rss)
}

/// Reap `pid`: its exit status and peak RSS in KiB.
fn wait_with_rusage(pid: i32) -> (i32, i64) {
    let mut status = 0;
    // SAFETY: plain out-parameters for wait4.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4");
    (libc::WEXITSTATUS(status), usage.ru_maxrss)
}

/// Peak RSS (VmHWM, KiB) of the running `vhost-device-vsock` processes.
fn helper_peak_rss() -> Option<u64> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm"))
                .is_ok_and(|c| c.trim_end().starts_with("vhost-device-vs"))
        })
        .filter_map(|e| {
            let status = std::fs::read_to_string(e.path().join("status")).ok()?;
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .max()
}

fn mib_per_s(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / secs
}

fn main() {
    if !require_root() {
        return;
    }
    let w = World::new("bexec");
    w.use_vsock();
    let id = unique_id("bexec");
    w.ok(&["create", "--id", &id]);
    w.ok(&["start", &id]);
    w.wait_console(&id, "VMJAIL-GUEST-READY", Duration::from_secs(120));
    let exec = |args: &[&str]| {
        let mut all = vec!["exec", id.as_str(), "--"];
        all.extend_from_slice(args);
        w.vmjail(&all)
    };
    let out = exec(&["true"]);
    assert!(out.status.success(), "the agent never answered: {out:?}");

    let state = time_each(ROUNDS, || {
        assert!(w.vmjail(&["state", &id]).status.success())
    });
    let round_trip = time_each(ROUNDS, || assert!(exec(&["true"]).status.success()));

    let size = FILE_MIB * 1024 * 1024;
    let out = exec(&[
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/bench.bin",
        "bs=1048576",
        &format!("count={FILE_MIB}"),
    ]);
    assert!(out.status.success(), "{out:?}");
    let host_file = w.dir.path().join("bench.bin");
    std::fs::write(&host_file, vec![0u8; size]).unwrap();
    let mut host_cat = Command::new("cat");
    host_cat.arg(&host_file);
    let (host_bytes, host_secs, _) = stream(host_cat);
    let (guest_bytes, guest_secs, exec_rss) =
        stream(w.command(&["exec", &id, "--", "cat", "/bench.bin"]));
    assert_eq!((host_bytes, guest_bytes), (size, size));
    let helper_rss = helper_peak_rss();
    w.ok(&["delete", "--force", &id]);

    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!("vmjail exec, {ROUNDS} rounds each: median | p99 (ratio of medians to the baseline)");
    println!(
        "  vmjail state ID (baseline)     {:>10.2?} | {:>10.2?}",
        state.0, state.1
    );
    println!(
        "  vmjail exec ID -- true         {:>10.2?} | {:>10.2?}  {:.1}x",
        round_trip.0,
        round_trip.1,
        ratio(round_trip.0, state.0)
    );
    let (host_tp, guest_tp) = (
        mib_per_s(host_bytes, host_secs),
        mib_per_s(guest_bytes, guest_secs),
    );
    println!("stdout of cat, {FILE_MIB} MiB:");
    println!("  host file through a pipe (baseline)  {host_tp:>9.1} MiB/s");
    println!(
        "  guest file through vmjail exec       {guest_tp:>9.1} MiB/s  {:.4}x",
        guest_tp / host_tp
    );
    println!("peak RSS: vmjail exec {:.1} MiB", exec_rss as f64 / 1024.0);
    match helper_rss {
        Some(kib) => println!(
            "peak RSS: vhost-device-vsock {:.1} MiB",
            kib as f64 / 1024.0
        ),
        None => println!("peak RSS: vhost-device-vsock not found"),
    }
}
