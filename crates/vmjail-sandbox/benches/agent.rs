//! Agent benchmark (a bench binary; `cargo bench -p vmjail-sandbox --bench
//! agent`). Runs the real `vmjail-agent` on a Unix socket on the host (no
//! VM: this measures the agent and its protocol, not the transport), as
//! root, with baselines measured in the same run:
//!
//! 0. one call's round trip (`GuestInfo`), median and p99.
//! 1. `true` round trip through `run_session` (create, stdio pumps, wait,
//!    delete), median and p99, vs a bare fork/exec/wait of `true` here.
//! 2. stdout throughput: `cat` of a 64 MiB file through the agent (256 KiB
//!    reads) vs the same `cat` into a local pipe.
//!
//! The agent binary is `$VMJAIL_AGENT_BIN`, else `<target>/release/
//! vmjail-agent`, else `<target>/debug/vmjail-agent` (build it first).

mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vmjail_sandbox::agent::{
    run_session, AgentClient, ProcessHandle, ProcessSpec, SessionIo, Stream,
};

const ROUND_TRIPS: usize = 200;
const FILE_MIB: usize = 64;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("agent.sock");
    let agent_bin = agent_bin();
    println!("agent: {}", agent_bin.display());
    let mut agent = Command::new(&agent_bin)
        .arg("--listen")
        .arg(format!("unix:{}", socket.display()))
        .stdin(Stdio::null())
        .spawn()
        .expect("starting the agent");
    let deadline = Instant::now() + Duration::from_secs(10);
    let stream = loop {
        match UnixStream::connect(&socket) {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "agent not listening: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    let client = Arc::new(AgentClient::new(stream).expect("agent client"));

    let mut call_times = Vec::new();
    for _ in 0..ROUND_TRIPS {
        let t = Instant::now();
        client.guest_info().expect("guest info");
        call_times.push(t.elapsed());
    }
    let (cm, cp) = median_p99(&mut call_times);
    println!(
        "one call (GuestInfo, {ROUND_TRIPS}×): {:.0} µs median, {:.0} µs p99",
        micros(cm),
        micros(cp)
    );

    let true_spec = ProcessSpec {
        argv: vec!["/bin/true".into()],
        ..Default::default()
    };
    let mut agent_times = Vec::new();
    let mut bare_times = Vec::new();
    for _ in 0..ROUND_TRIPS {
        let t = Instant::now();
        let io = SessionIo {
            stdin: None,
            stdout: Box::new(std::io::sink()),
            stderr: Box::new(std::io::sink()),
            terminal: None,
        };
        let status = run_session(client.clone(), &true_spec, io).expect("session");
        assert_eq!(status.code(), 0);
        agent_times.push(t.elapsed());
        let t = Instant::now();
        assert!(Command::new("/bin/true").status().expect("true").success());
        bare_times.push(t.elapsed());
    }
    let (am, ap) = median_p99(&mut agent_times);
    let (bm, bp) = median_p99(&mut bare_times);
    println!(
        "true round trip ({ROUND_TRIPS}×): agent {:.0} µs median, {:.0} µs p99; bare exec {:.0} µs median, {:.0} µs p99; {:.1}× median",
        micros(am),
        micros(ap),
        micros(bm),
        micros(bp),
        am.as_secs_f64() / bm.as_secs_f64()
    );

    let file = dir.path().join("big");
    let mut f = std::fs::File::create(&file).expect("creating the file");
    let block: Vec<u8> = (0..1 << 20).map(|i| (i * 7 + i / 251) as u8).collect();
    for _ in 0..FILE_MIB {
        f.write_all(&block).expect("writing the file");
    }
    drop(f);
    let cat = ProcessSpec {
        argv: vec!["/bin/cat".into(), file.to_string_lossy().into_owned()],
        ..Default::default()
    };
    let t = Instant::now();
    let process = ProcessHandle::start(client.clone(), &cat).expect("starting cat");
    let bytes = process
        .pump_output(Stream::Stdout, &mut std::io::sink())
        .expect("reading cat's output");
    assert_eq!(process.wait().expect("wait").code(), 0);
    let through_agent = t.elapsed();
    process.delete().expect("delete");
    assert_eq!(bytes, (FILE_MIB << 20) as u64);

    let t = Instant::now();
    let mut local = Command::new("/bin/cat")
        .arg(&file)
        .stdout(Stdio::piped())
        .spawn()
        .expect("cat");
    let mut out = local.stdout.take().expect("pipe");
    let mut buf = vec![0u8; 256 * 1024];
    let mut local_bytes = 0;
    loop {
        match out.read(&mut buf).expect("reading the pipe") {
            0 => break,
            n => local_bytes += n,
        }
    }
    assert!(local.wait().expect("wait").success());
    let bare = t.elapsed();
    assert_eq!(local_bytes, FILE_MIB << 20);
    let rate = |d: Duration| FILE_MIB as f64 / d.as_secs_f64();
    println!(
        "stdout of cat ({FILE_MIB} MiB): agent {:.0} MiB/s; local pipe {:.0} MiB/s; {:.2}×",
        rate(through_agent),
        rate(bare),
        rate(through_agent) / rate(bare)
    );

    drop(client);
    let _ = agent.kill();
    let _ = agent.wait();
}

fn median_p99(times: &mut [Duration]) -> (Duration, Duration) {
    times.sort();
    let p99 = ((times.len() * 99).div_ceil(100)).saturating_sub(1);
    (times[times.len() / 2], times[p99])
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn agent_bin() -> PathBuf {
    support::built_binary("vmjail-agent", "VMJAIL_AGENT_BIN")
}
