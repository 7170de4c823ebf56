//! Docker (Debian's dockerd + containerd, started on private paths as the
//! `docker_qemu` tests do) with vmjail and with runc in the same run:
//! `docker run --rm IMAGE true` (median of 5) and a `docker exec ID true`
//! round trip (median of 10), each as a ratio to runc's; and the peak RSS
//! of vmjail's per-container host process.
//!
//! `scripts/build-release.sh && scripts/build-guest.sh build/guest &&
//! cargo bench -p vmjail --bench docker`
//! (root; cargo builds the release `vmjail` it runs).

#[path = "../tests/clients_support/mod.rs"]
mod clients_support;
#[path = "../tests/lifecycle_support/mod.rs"]
mod lifecycle_support;

use std::time::{Duration, Instant};

use clients_support::{Docker, IMAGE};

const RUNS: usize = 5;
const EXECS: usize = 10;

/// Median of `n` timed runs of `f`.
fn median_of(n: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[n / 2]
}

/// VmHWM of `pid`, in KiB.
fn peak_rss_kib(pid: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

struct Figures {
    run: Duration,
    exec: Duration,
    /// The container's pid on the host: runc's is the container's own
    /// process, vmjail's its host process.
    pid_rss_kib: Option<u64>,
}

fn measure(d: &Docker, runtime: &str) -> Figures {
    // One untimed run: the image's layers and the runtime's files cached.
    d.ok(&["run", "--rm", "--runtime", runtime, IMAGE, "true"]);
    let run = median_of(RUNS, || {
        d.ok(&["run", "--rm", "--runtime", runtime, IMAGE, "true"]);
    });
    let id = d
        .ok(&["run", "-d", "--runtime", runtime, IMAGE, "sleep", "600"])
        .trim()
        .to_string();
    let exec = median_of(EXECS, || {
        d.ok(&["exec", &id, "true"]);
    });
    let pid = d.ok(&["inspect", "-f", "{{.State.Pid}}", &id]);
    let pid_rss_kib = peak_rss_kib(pid.trim());
    d.ok(&["rm", "-f", &id]);
    Figures {
        run,
        exec,
        pid_rss_kib,
    }
}

fn main() {
    assert!(
        lifecycle_support::euid() == 0,
        "the docker bench needs root (it starts dockerd and QEMU guests)"
    );
    let d = Docker::start("dockbench");
    let runc = measure(&d, "runc");
    let vmjail = measure(&d, "vmjail");
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "docker run --rm IMAGE true (median of {RUNS}): runc {:.3} s, vmjail {:.3} s ({:.1}x)",
        runc.run.as_secs_f64(),
        vmjail.run.as_secs_f64(),
        ratio(vmjail.run, runc.run)
    );
    println!(
        "docker exec ID true (median of {EXECS}): runc {:.1} ms, vmjail {:.1} ms ({:.1}x)",
        runc.exec.as_secs_f64() * 1e3,
        vmjail.exec.as_secs_f64() * 1e3,
        ratio(vmjail.exec, runc.exec)
    );
    let kib =
        |k: Option<u64>| k.map_or("?".to_string(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
    println!(
        "peak RSS of the container's host pid: vmjail's host process {} (runc: the container's own `sleep`, {})",
        kib(vmjail.pid_rss_kib),
        kib(runc.pid_rss_kib)
    );
    d.finish(&[]);
}
