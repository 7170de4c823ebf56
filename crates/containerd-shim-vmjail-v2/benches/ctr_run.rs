//! `ctr run --rm IMAGE id true` through vmjail's shim vs runc, in the same
//! run on one containerd, and each shim's peak RSS over a task's life.
//! Run as root after `cargo build --workspace --bins` and
//! `scripts/build-guest.sh build/guest`:
//! `cargo bench -p containerd-shim-vmjail-v2 --bench ctr_run`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::*;

const ROUNDS: usize = 5;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if !require_root() {
        return;
    }
    let c = Containerd::start("bench", true);
    let mut vmjail = Vec::new();
    let mut runc = Vec::new();
    for i in 0..ROUNDS {
        for (runtime, times) in [(RUNTIME, &mut vmjail), ("io.containerd.runc.v2", &mut runc)] {
            let id = format!("b{i}-{}", times.len());
            let start = Instant::now();
            let out = c.ctr(&["run", "--rm", "--runtime", runtime, IMAGE, &id, "true"]);
            times.push(start.elapsed());
            assert!(out.status.success(), "{runtime}: {out:?}");
        }
    }
    let (v, r) = (median(vmjail), median(runc));
    println!(
        "ctr run --rm … true: vmjail {:.0} ms, runc {:.0} ms (median of {ROUNDS}); ratio {:.1}x",
        v.as_secs_f64() * 1e3,
        r.as_secs_f64() * 1e3,
        v.as_secs_f64() / r.as_secs_f64()
    );

    // Each runtime's serving shim's peak RSS over its whole life (create,
    // metrics, pause/resume, the task's end, delete and the shim's exit).
    let mut peaks = Vec::new();
    for runtime in [RUNTIME, "io.containerd.runc.v2"] {
        let id = format!("rss-{}", peaks.len());
        c.ctr_ok(&[
            "run",
            "-d",
            "--runtime",
            runtime,
            IMAGE,
            &id,
            "sh",
            "-c",
            "echo started; sleep 3",
        ]);
        c.wait_task_status(&id, Some("RUNNING"), Duration::from_secs(60));
        let shim = c.shim_pid(&id).expect("the task's shim");
        let watch = watch_peak(shim, Duration::from_secs(120));
        c.ctr_ok(&["task", "metrics", &id]);
        c.ctr_ok(&["task", "pause", &id]);
        c.ctr_ok(&["task", "resume", &id]);
        let anon = status_kib(shim, "RssAnon").unwrap_or(0);
        let file = status_kib(shim, "RssFile").unwrap_or(0);
        c.wait_task_status(&id, Some("STOPPED"), Duration::from_secs(60));
        c.ctr_ok(&["task", "rm", &id]);
        c.ctr_ok(&["containers", "rm", &id]);
        peaks.push((runtime, watch.join().unwrap(), anon, file));
    }
    // File-backed pages (mostly the shim's own text) are page cache
    // shared by every shim; the anonymous ones are each task's own.
    for (runtime, peak, anon, file) in &peaks {
        println!(
            "{runtime} shim, peak RSS (VmHWM) over its whole life: {peak} KiB ({:.1} MiB); \
             while running anonymous {anon} KiB, file-backed (shared text) {file} KiB",
            mib(*peak)
        );
    }
    print_rss_goal("shim", peaks[0].1, &c.log());
}
