//! A Kubernetes pod through CRI as kubelet starts one: RunPodSandbox,
//! then two containers created and started (the pod running), with
//! runtime handler `vmjail` vs `runc`, in the same run on one containerd;
//! and the pod shim's peak RSS with both containers running. Run as root
//! after `cargo build --workspace --bins` and
//! `scripts/build-guest.sh build/guest`:
//! `cargo bench -p containerd-shim-vmjail-v2 --bench cri_pod`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::cri_client::*;
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
    let c = Containerd::start_cri("bench");
    let rt = runtime();
    rt.block_on(async {
        let mut client = connect(&c.address).await;
        let mut vmjail = Vec::new();
        let mut runc = Vec::new();
        let mut rss = None;
        for i in 0..ROUNDS {
            for (handler, times) in [(CRI_HANDLER, &mut vmjail), ("runc", &mut runc)] {
                let name = format!("{handler}-{i}");
                let begun = Instant::now();
                let (pod, _) = start_pod(&c, &mut client, &name, handler).await;
                times.push(begun.elapsed());
                if handler == CRI_HANDLER && rss.is_none() {
                    // The pod's shim with both containers running.
                    let shim = c.shim_pid(&pod).expect("the pod's shim");
                    rss = Some((
                        status_kib(shim, "VmHWM").unwrap_or(0),
                        status_kib(shim, "RssAnon").unwrap_or(0),
                        status_kib(shim, "RssFile").unwrap_or(0),
                    ));
                }
                remove_pod(&c, &mut client, &pod).await;
            }
        }
        let (v, r) = (median(vmjail), median(runc));
        println!(
            "CRI RunPodSandbox → 2 containers running: vmjail {:.0} ms, runc {:.0} ms \
             (median of {ROUNDS}); ratio {:.1}x",
            v.as_secs_f64() * 1e3,
            r.as_secs_f64() * 1e3,
            v.as_secs_f64() / r.as_secs_f64()
        );
        if let Some((peak, anon, file)) = rss {
            println!(
                "pod shim with 2 containers running: peak RSS (VmHWM) {peak} KiB ({:.1} MiB), \
                 anonymous {anon} KiB, file-backed (shared text) {file} KiB",
                peak as f64 / 1024.0
            );
        }
    });
}
