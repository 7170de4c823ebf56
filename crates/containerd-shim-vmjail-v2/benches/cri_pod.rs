//! A Kubernetes pod through CRI as kubelet starts one: RunPodSandbox,
//! then two containers created and started (the pod running), with
//! runtime handler `vmjail` vs `runc`, in the same run on one containerd;
//! and each pod shim's peak RSS over the pod's whole life. Run as root
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
        // Each handler's first pod: its shim's peak RSS over its whole
        // life (the pod's create, 2 containers, their stop and removal, the
        // shim's exit), and what it holds with both containers running.
        let mut rss = Vec::new();
        for i in 0..ROUNDS {
            for (handler, times) in [(CRI_HANDLER, &mut vmjail), ("runc", &mut runc)] {
                let name = format!("{handler}-{i}");
                let begun = Instant::now();
                let (pod, _) = start_pod(&c, &mut client, &name, handler).await;
                times.push(begun.elapsed());
                let watch = (i == 0).then(|| {
                    let shim = c.shim_pid(&pod).expect("the pod's shim");
                    let running = (
                        status_kib(shim, "RssAnon").unwrap_or(0),
                        status_kib(shim, "RssFile").unwrap_or(0),
                    );
                    (watch_peak(shim, Duration::from_secs(120)), running)
                });
                remove_pod(&c, &mut client, &pod).await;
                if let Some((watch, (anon, file))) = watch {
                    rss.push((handler, watch.join().unwrap(), anon, file));
                }
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
        for (handler, peak, anon, file) in &rss {
            println!(
                "{handler} pod shim, peak RSS (VmHWM) over its whole life: {peak} KiB \
                 ({:.1} MiB); with 2 containers running anonymous {anon} KiB, \
                 file-backed (shared text) {file} KiB",
                mib(*peak)
            );
        }
        print_rss_goal("pod shim", rss[0].1, &c.log());
    });
}
