//! Guest ↔ outside throughput and round-trip latency per internetworking
//! model, against veth ↔ veth without a VM, in the same run (root).
//!
//! For each model a q35 guest (TCG) runs busybox `nc -ll -p 7 -e cat` (see
//! guest/net.sh); a Rust client in the test's "outside" netns streams
//! bytes through it both ways and times 1-byte round trips. The baseline
//! is the same client against a Rust echo server in the sandbox netns
//! itself. Absolute figures are TCG's; the ratios are what matter.
//!
//! `cargo build --workspace --bins && scripts/build-guest.sh build/guest &&
//! cargo bench -p vmjail --bench guestnet`

#[path = "../tests/guestnet_support/mod.rs"]
mod guestnet_support;
#[path = "../tests/lifecycle_support/mod.rs"]
mod lifecycle_support;
#[path = "../../vmjail-vmm/tests/net_support/mod.rs"]
mod net_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};

use guestnet_support::{connect, echo_through, in_netns, net_world, GUEST_ECHO_PORT};
use net_support::Pair;

const STREAM_BYTES: usize = 8 * 1024 * 1024;
const ROUND_TRIPS: usize = 200;

struct Figures {
    /// MiB/s each way (the echo carries the stream back).
    throughput: f64,
    /// Median and 90th percentile 1-byte round trip.
    rtt: (Duration, Duration),
}

fn measure(outside: &Path, addr: SocketAddr) -> Figures {
    // Warm up (ARP, the guest's first fork of cat).
    echo_through(outside, addr, 64 * 1024);
    let started = Instant::now();
    let (sent, received) = echo_through(outside, addr, STREAM_BYTES);
    let elapsed = started.elapsed();
    assert_eq!((sent, received), (STREAM_BYTES, STREAM_BYTES));
    let rtts = in_netns(outside, move || {
        let mut s = connect(addr, Duration::from_secs(30));
        s.set_nodelay(true).unwrap();
        let mut rtts = Vec::with_capacity(ROUND_TRIPS);
        let mut byte = [0u8; 1];
        for _ in 0..ROUND_TRIPS {
            let t = Instant::now();
            s.write_all(b"x").unwrap();
            s.read_exact(&mut byte).unwrap();
            rtts.push(t.elapsed());
        }
        rtts
    });
    let mut rtts = rtts;
    rtts.sort();
    Figures {
        throughput: STREAM_BYTES as f64 / (1024.0 * 1024.0) / elapsed.as_secs_f64(),
        rtt: (rtts[ROUND_TRIPS / 2], rtts[ROUND_TRIPS * 9 / 10]),
    }
}

/// An echo server in the netns at `ns` on `addr`, one thread per client.
fn echo_server(ns: &Path, addr: SocketAddr) {
    let listener = in_netns(ns, move || TcpListener::bind(addr).unwrap());
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                stream.set_nodelay(true).unwrap();
                let mut buf = [0u8; 65536];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
}

fn baseline() -> Figures {
    let pair = Pair::new("bnveth", 41);
    let addr: SocketAddr = format!("{}:{GUEST_ECHO_PORT}", pair.guest_ip())
        .parse()
        .unwrap();
    echo_server(&pair.sandbox.path(), addr);
    measure(&pair.outside.path(), addr)
}

fn with_guest(model: &str, n: u8) -> Figures {
    let pair = Pair::new(&format!("bn{model}"), n);
    let w = net_world(
        &format!("bn{model}"),
        model,
        &format!("{}:9", pair.outside_ip()),
        "",
    );
    let id = lifecycle_support::unique_id(&format!("bn{model}"));
    let netns = pair.sandbox.path();
    w.ok(&["create", "--id", &id, "--netns", netns.to_str().unwrap()]);
    w.ok(&["start", &id]);
    w.wait_console(&id, "VMJAIL-NET-IF", Duration::from_secs(90));
    let addr: SocketAddr = format!("{}:{GUEST_ECHO_PORT}", pair.guest_ip())
        .parse()
        .unwrap();
    let figures = measure(&pair.outside.path(), addr);
    w.ok(&["delete", "--force", &id]);
    figures
}

fn main() {
    if !lifecycle_support::require_root() {
        return;
    }
    let base = baseline();
    let rows = [
        ("veth <-> veth (no VM)", base),
        ("tcfilter (guest)", with_guest("tcfilter", 42)),
        ("bridged (guest)", with_guest("bridged", 43)),
    ];
    println!(
        "{:<24} {:>12} {:>10} {:>12} {:>12} {:>10}",
        "path", "MiB/s each", "ratio", "rtt median", "rtt p90", "ratio"
    );
    let (base_tp, base_rtt) = (rows[0].1.throughput, rows[0].1.rtt.0);
    for (name, f) in &rows {
        println!(
            "{:<24} {:>12.1} {:>9.3}x {:>12?} {:>12?} {:>9.1}x",
            name,
            f.throughput,
            f.throughput / base_tp,
            f.rtt.0,
            f.rtt.1,
            f.rtt.0.as_secs_f64() / base_rtt.as_secs_f64()
        );
    }
}
