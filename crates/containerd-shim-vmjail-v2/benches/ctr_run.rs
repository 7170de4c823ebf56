//! `ctr run --rm IMAGE id true` through vmjail's shim vs runc, in the same
//! run on one containerd, and the shim's peak RSS while a task runs.
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

    // The serving shim's peak RSS over a task's whole life, read just
    // before the task ends.
    let id = "rss";
    c.ctr_ok(&[
        "run",
        "-d",
        "--runtime",
        RUNTIME,
        IMAGE,
        id,
        "sh",
        "-c",
        "echo started; sleep 3",
    ]);
    c.wait_task_status(id, Some("RUNNING"), Duration::from_secs(60));
    let shim = c.shim_pid(id).expect("the task's shim");
    c.ctr_ok(&["task", "metrics", id]);
    c.ctr_ok(&["task", "pause", id]);
    c.ctr_ok(&["task", "resume", id]);
    let peak = status_kib(shim, "VmHWM").unwrap_or(0);
    let anon = status_kib(shim, "RssAnon").unwrap_or(0);
    let file = status_kib(shim, "RssFile").unwrap_or(0);
    c.wait_task_status(id, Some("STOPPED"), Duration::from_secs(60));
    c.ctr_ok(&["task", "rm", id]);
    c.ctr_ok(&["containers", "rm", id]);
    // File-backed pages (mostly the shim's own text) are page cache
    // shared by every shim; the anonymous ones are each task's own.
    println!(
        "shim peak RSS (VmHWM) over a task: {peak} KiB ({:.1} MiB); at its end \
         anonymous {anon} KiB, file-backed (shared text) {file} KiB",
        peak as f64 / 1024.0
    );
}
