//! Jailed QEMU vs bare QEMU, to the guest's ready marker, in one run.
//!
//! For each round (alternating, so host load hits both alike):
//! - jailed: `Qemu::create` (jail + launch + QMP ready) then `start`, until
//!   `VMJAIL-GUEST-READY` is in the console log;
//! - bare: the same QEMU command line (same kernel, initrd, machine,
//!   accelerator, seccomp, kernel parameters; host paths, no `-S`) run
//!   directly, until the marker is in its console log.
//!
//! Rounds alternate which goes first, so that a drift in host load does not
//! favour one. Prints medians of wall time to the marker, the jailed/bare
//! ratio (target ≤ 1.02), the median of the per-round differences, create →
//! QMP ready, and QEMU's own CPU time to the marker (all its threads, from
//! `schedstat`): on a shared machine the wall times vary by tens of
//! percent, the CPU time far less, and it tells a slower guest apart from
//! time spent around it. Needs root and the `vmjail-jailer` binary
//! (release or debug) in the target dir. `VMJAIL_BENCH_ROUNDS` sets the
//! rounds (default 5); `VMJAIL_BENCH_SPANS=1` prints the time of each
//! `create`/`start` step (tracing spans) on stderr.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vmjail_config::{ConfigSource, HostFacts, RuntimeConfig};
use vmjail_vmm::qemu::cmdline::{self, Options, Paths};
use vmjail_vmm::qemu::{probe, Accel, Qemu};
use vmjail_vmm::{Hypervisor, VmmRecord};

const MARKER: &str = "VMJAIL-GUEST-READY";
const TIMEOUT: Duration = Duration::from_secs(180);

fn jailer_exe() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let target = exe.parent().and_then(Path::parent).expect("target dir");
    for candidate in [
        target.join("vmjail-jailer"),
        target.join("../debug/vmjail-jailer"),
    ] {
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "no vmjail-jailer binary near {}: run `scripts/build-release.sh` first",
        target.display()
    );
}

fn config(chroot_base: &Path) -> RuntimeConfig {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let kernel = repo
        .join("build/guest/vmlinux")
        .canonicalize()
        .expect("build/guest/vmlinux: run scripts/build-guest.sh");
    let initrd = repo
        .join("build/guest/initramfs.cpio.gz")
        .canonicalize()
        .expect("build/guest/initramfs.cpio.gz");
    let text = vmjail_config::EMBEDDED_DEFAULT
        .replace("/usr/share/vmjail/guest/vmlinux", kernel.to_str().unwrap())
        .replace(
            "/usr/share/vmjail/guest/initramfs.cpio.gz",
            initrd.to_str().unwrap(),
        );
    let host = HostFacts {
        cpus: 2,
        has_vhost_vsock: false,
    };
    let mut config = vmjail_config::load_str(&text, ConfigSource::Embedded, &host).expect("config");
    config.jail.chroot_base_dir = chroot_base.to_path_buf();
    config
}

fn has_marker(path: &Path) -> bool {
    let Ok(mut file) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    else {
        return false;
    };
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    text.contains(MARKER)
}

/// CPU time of every thread of `pid` so far, and the time they waited
/// runnable for a CPU (`/proc/<pid>/task/*/schedstat`).
fn cpu_time(pid: i32) -> (Duration, Duration) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return (Duration::ZERO, Duration::ZERO);
    };
    let (mut ran, mut waited) = (0, 0);
    for task in tasks.flatten() {
        let Ok(line) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        let mut fields = line.split(' ').map(|f| f.parse::<u64>().unwrap_or(0));
        ran += fields.next().unwrap_or(0);
        waited += fields.next().unwrap_or(0);
    }
    (Duration::from_nanos(ran), Duration::from_nanos(waited))
}

/// Time to the marker, and QEMU's CPU time (ran, waited) at that moment.
fn wait_marker(path: &Path, start: Instant, pid: i32) -> (Duration, (Duration, Duration)) {
    loop {
        if has_marker(path) {
            let took = start.elapsed();
            return (took, cpu_time(pid));
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "no marker in {} within {TIMEOUT:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// One jailed boot: (create → QMP ready, create → marker, QEMU's CPU time).
fn jailed(
    config: &RuntimeConfig,
    exe: &Path,
    dir: &Path,
    netns: &Path,
    round: usize,
) -> (Duration, Duration, (Duration, Duration)) {
    let mut qemu = Qemu::new(config, exe).expect("Qemu::new");
    let id = format!("bench-{}-{round}", std::process::id());
    let mut pid = 0;
    let mut sink = |record: &VmmRecord| {
        if let Some(p) = record.jail.vmm_pid {
            pid = p;
        }
        Ok(())
    };
    let log = dir.join(format!("console-{round}.log"));
    let console = std::fs::File::create(&log).expect("console log");
    let start = Instant::now();
    qemu.create(&id, netns, console.into(), &mut sink)
        .unwrap_or_else(|e| panic!("create: {e}"));
    let ready = start.elapsed();
    qemu.start(TIMEOUT).unwrap_or_else(|e| panic!("start: {e}"));
    let (marker, cpu) = wait_marker(&log, start, pid);
    qemu.stop(Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("stop: {e}"));
    (ready, marker, cpu)
}

/// The same command line, bare: (spawn → marker, QEMU's CPU time).
fn bare(
    config: &RuntimeConfig,
    dir: &Path,
    accel: Accel,
    seccomp: bool,
) -> (Duration, (Duration, Duration)) {
    let hv = &config.hypervisor;
    let console = dir.join("console.log");
    let console_file = std::fs::File::create(&console).expect("console log");
    let paths = Paths {
        kernel: hv.kernel.clone(),
        initrd: hv.initrd.clone(),
        image: hv.image.clone(),
        firmware: hv.firmware.clone(),
        data_dir: "/usr/share/qemu".into(),
        qmp_socket: dir.join("qmp.sock"),
        vhost_vsock_socket: None,
        virtiofs_socket: None,
    };
    let options = Options {
        accel,
        seccomp,
        stopped: false,
        tsc_khz: cmdline::host_tsc_khz(),
    };
    let args = cmdline::build(hv, &paths, &options).expect("command line");
    let start = Instant::now();
    let mut command = Command::new(&hv.path);
    command
        .args(&args)
        .stdin(Stdio::null())
        .stdout(console_file);
    // A session of its own, as the jailed QEMU has (the jailer's setsid):
    // with the kernel's autogroups each session is scheduled as one group,
    // so a bare QEMU left in the bench's session would share that
    // session's CPU share with whatever else runs there (or have it all).
    // SAFETY: setsid(2) is async-signal-safe and the only call made.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    let mut child = command.spawn().expect("spawn qemu");
    let marker = wait_marker(&console, start, child.id() as i32);
    let _ = child.kill();
    let _ = child.wait();
    marker
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs nothing.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    assert!(
        nix::unistd::geteuid().is_root(),
        "the QEMU benchmark needs root"
    );
    if std::env::var_os("VMJAIL_BENCH_SPANS").is_some() {
        // Each span's busy/idle time when it closes: where `create` and
        // `start` spend theirs.
        tracing_subscriber::fmt()
            .with_env_filter("vmjail_vmm=debug,vmjail_jail=debug")
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_writer(std::io::stderr)
            .init();
    }
    let rounds: usize = std::env::var("VMJAIL_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let base = tempfile::Builder::new()
        .prefix("vmjail-qemu-bench")
        .tempdir()
        .unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let config = config(base.path());
    let exe = jailer_exe();
    let netns_name = format!("vmjail-b-q{}", std::process::id());
    assert!(Command::new("ip")
        .args(["netns", "add", &netns_name])
        .status()
        .unwrap()
        .success());
    let netns = PathBuf::from(format!("/var/run/netns/{netns_name}"));
    let found = probe::probe(&config.hypervisor.path);
    let accel = if found.kvm { Accel::Kvm } else { Accel::Tcg };
    println!(
        "qemu_boot: {rounds} rounds, accel {}, seccomp {}",
        accel.name(),
        found.seccomp
    );

    // One warm-up of each (page cache, probes).
    jailed(&config, &exe, scratch.path(), &netns, 0);
    bare(&config, scratch.path(), accel, found.seccomp);
    let mut ready = Vec::new();
    let (mut jailed_t, mut bare_t, mut diff) = (Vec::new(), Vec::new(), Vec::new());
    let (mut jailed_cpu, mut bare_cpu) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let jailed_run = || jailed(&config, &exe, scratch.path(), &netns, round);
        let bare_run = || bare(&config, scratch.path(), accel, found.seccomp);
        let ((r, j, jc), (b, bc)) = if round % 2 == 0 {
            let b = bare_run();
            (jailed_run(), b)
        } else {
            let j = jailed_run();
            (j, bare_run())
        };
        println!(
            "  round {round}: jailed {:>7.3} s (QMP ready {:.3} s, QEMU CPU {:.3} s, runnable waiting {:.3} s)   bare {:>7.3} s (QEMU CPU {:.3} s, waiting {:.3} s)",
            j.as_secs_f64(),
            r.as_secs_f64(),
            jc.0.as_secs_f64(),
            jc.1.as_secs_f64(),
            b.as_secs_f64(),
            bc.0.as_secs_f64(),
            bc.1.as_secs_f64()
        );
        ready.push(r);
        jailed_t.push(j);
        bare_t.push(b);
        diff.push(j.as_secs_f64() - b.as_secs_f64());
        jailed_cpu.push(jc.0);
        bare_cpu.push(bc.0);
    }
    let (j, b, r) = (median(jailed_t), median(bare_t), median(ready));
    let (jc, bc) = (median(jailed_cpu), median(bare_cpu));
    diff.sort_by(f64::total_cmp);
    println!(
        "qemu_boot/jailed_to_marker   median {:.3} s",
        j.as_secs_f64()
    );
    println!(
        "qemu_boot/bare_to_marker     median {:.3} s",
        b.as_secs_f64()
    );
    println!(
        "qemu_boot/ratio jailed/bare  {:.3} (target <= 1.02); median of per-round differences {:+.3} s",
        j.as_secs_f64() / b.as_secs_f64(),
        diff[diff.len() / 2]
    );
    println!(
        "qemu_boot/create_to_qmp_ready median {:.3} s",
        r.as_secs_f64()
    );
    println!(
        "qemu_boot/QEMU CPU to marker  jailed {:.3} s, bare {:.3} s ({:.3})",
        jc.as_secs_f64(),
        bc.as_secs_f64(),
        jc.as_secs_f64() / bc.as_secs_f64()
    );
    let _ = Command::new("ip")
        .args(["netns", "del", &netns_name])
        .status();
}
