//! Jailed QEMU vs bare QEMU, to the guest's ready marker, in one run.
//!
//! For each round (alternating, so host load hits both alike):
//! - jailed: `Qemu::create` (jail + launch + QMP ready) then `start`, until
//!   `VMJAIL-GUEST-READY` is in the console log;
//! - bare: the same QEMU command line (same kernel, initrd, machine,
//!   accelerator, seccomp, kernel parameters; host paths, no `-S`) run
//!   directly, until the marker is in its console log.
//!
//! Prints medians, the jailed/bare ratio (target ≤ 1.05) and create → QMP
//! ready. Needs root and the `vmjail` binary (release or debug) in the
//! target dir. `VMJAIL_BENCH_ROUNDS` sets the rounds (default 5).

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
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

fn wait_marker(path: &Path, start: Instant) -> Duration {
    loop {
        if has_marker(path) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "no marker in {} within {TIMEOUT:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// One jailed boot: (create → QMP ready, create → marker).
fn jailed(
    config: &RuntimeConfig,
    exe: &Path,
    dir: &Path,
    netns: &Path,
    round: usize,
) -> (Duration, Duration) {
    let mut qemu = Qemu::new(config, exe).expect("Qemu::new");
    let id = format!("bench-{}-{round}", std::process::id());
    let mut sink = |_: &VmmRecord| Ok(());
    let log = dir.join(format!("console-{round}.log"));
    let console = std::fs::File::create(&log).expect("console log");
    let start = Instant::now();
    qemu.create(&id, netns, console.into(), &mut sink)
        .unwrap_or_else(|e| panic!("create: {e}"));
    let ready = start.elapsed();
    qemu.start(TIMEOUT).unwrap_or_else(|e| panic!("start: {e}"));
    let marker = wait_marker(&log, start);
    qemu.stop(Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("stop: {e}"));
    (ready, marker)
}

/// The same command line, bare.
fn bare(config: &RuntimeConfig, dir: &Path, accel: Accel, seccomp: bool) -> Duration {
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
    let mut child = Command::new(&hv.path)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(console_file)
        .spawn()
        .expect("spawn qemu");
    let marker = wait_marker(&console, start);
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
    let (mut ready, mut jailed_t, mut bare_t) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let (r, j) = jailed(&config, &exe, scratch.path(), &netns, round);
        let b = bare(&config, scratch.path(), accel, found.seccomp);
        println!(
            "  round {round}: jailed {:>7.3} s (QMP ready {:.3} s)   bare {:>7.3} s",
            j.as_secs_f64(),
            r.as_secs_f64(),
            b.as_secs_f64()
        );
        ready.push(r);
        jailed_t.push(j);
        bare_t.push(b);
    }
    let (j, b, r) = (median(jailed_t), median(bare_t), median(ready));
    println!(
        "qemu_boot/jailed_to_marker   median {:.3} s",
        j.as_secs_f64()
    );
    println!(
        "qemu_boot/bare_to_marker     median {:.3} s",
        b.as_secs_f64()
    );
    println!(
        "qemu_boot/ratio jailed/bare  {:.3} (target <= 1.05)",
        j.as_secs_f64() / b.as_secs_f64()
    );
    println!(
        "qemu_boot/create_to_qmp_ready median {:.3} s",
        r.as_secs_f64()
    );
    let _ = Command::new("ip")
        .args(["netns", "del", &netns_name])
        .status();
}
