//! `vmjail run --bundle` (the real binary: image made, jailed QEMU and
//! vsock helper, guest booted, agent reached, container set up from its
//! disk) to the container's first output, against the same kernel and
//! initramfs booted by a bare QEMU (no jail, no vmjail) to the guest's
//! marker, and `vmjail run` (no bundle) to the marker; and `run --bundle`
//! with QEMU's `shared_fs = "virtio-fs"` (no image: virtiofsd serves the
//! bundle) against the image path. Medians of rounds in rotating order, ratios
//! in the same run.
//!
//! `scripts/build-release.sh && cargo bench -p vmjail --bench bundle`
//! (root; the guest from `scripts/build-guest.sh build/guest`): the
//! release `vmjail`, as users run it.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vmjail_config::{ConfigSource, HostFacts};
use vmjail_vmm::qemu::cmdline::{self, Options, Paths};
use vmjail_vmm::qemu::{probe, Accel};

const MARKER: &str = "VMJAIL-GUEST-READY";
/// Rounds per case (`VMJAIL_BENCH_ROUNDS` overrides): a TCG guest's boot
/// varies by ±0.15 s from one boot to the next on this kind of host, so
/// a ratio of medians moves by a few hundredths between runs of 8.
fn rounds() -> usize {
    std::env::var("VMJAIL_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(8)
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn vmjail_bin() -> PathBuf {
    let bin = repo().join("target/release/vmjail");
    assert!(bin.is_file(), "run `scripts/build-release.sh` first");
    bin
}

fn config_text(dir: &Path, use_vsock: bool, virtio_fs: bool) -> String {
    let shared = match virtio_fs {
        true => "shared_fs = \"virtio-fs\"\nvirtio_fs_daemon = \"/usr/local/bin/virtiofsd\"\n",
        false => "",
    };
    let guest = repo()
        .join("build/guest")
        .canonicalize()
        .expect("build/guest");
    format!(
        r#"[hypervisor.qemu]
path = "/usr/bin/qemu-system-x86_64"
kernel = "{guest}/vmlinux"
initrd = "{guest}/initramfs.cpio.gz"
machine_type = "microvm"
default_vcpus = 1
default_memory = 256
use_vsock = {use_vsock}
{shared}
[agent.kata]

[jail]
uid = 46000
gid = 46000
id_range_size = 16
chroot_base_dir = "{dir}/jail"
state_dir = "{dir}/state"
parent_cgroup = "vmjail-bench-bundle"
"#,
        guest = guest.display(),
        dir = dir.display(),
    )
}

fn make_bundle(dir: &Path) -> PathBuf {
    let bundle = dir.join("bundle");
    std::fs::create_dir_all(bundle.join("rootfs/bin")).unwrap();
    std::fs::copy("/bin/busybox", bundle.join("rootfs/bin/busybox")).unwrap();
    assert!(Command::new("chroot")
        .arg(bundle.join("rootfs"))
        .args(["/bin/busybox", "--install", "-s", "/bin"])
        .status()
        .unwrap()
        .success());
    std::fs::create_dir_all(bundle.join("rootfs/proc")).unwrap();
    let config = r#"{"ociVersion":"1.0.2","process":{"user":{"uid":0,"gid":0},"args":["/bin/echo","first"],"env":["PATH=/bin"],"cwd":"/"},"root":{"path":"rootfs","readonly":true},"hostname":"bench","mounts":[{"destination":"/proc","type":"proc","source":"proc"}],"linux":{"namespaces":[{"type":"pid"},{"type":"mount"},{"type":"uts"},{"type":"ipc"}]}}"#;
    std::fs::write(bundle.join("config.json"), config).unwrap();
    bundle
}

/// Spawns `command` and returns when its stdout contains `needle`; the
/// process is then left to finish (and is waited for). Its output is read
/// as vmjail's console pump reads a guest's (a pause after each short
/// read): a bare QEMU writes its serial console a byte at a time, and a
/// reader woken for each byte slows a TCG guest on a small host, which
/// would charge the bare baseline with what vmjail avoids.
fn to_line(mut command: Command, needle: &str) -> Duration {
    let start = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn");
    let mut out = child.stdout.take().unwrap();
    let needle = needle.as_bytes();
    let (mut seen, mut buf) = (Vec::new(), [0u8; 4096]);
    let took = loop {
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            panic!("ended before {:?}", String::from_utf8_lossy(needle));
        }
        seen.extend_from_slice(&buf[..n]);
        if seen.windows(needle.len()).any(|w| w == needle) {
            break start.elapsed();
        }
        // Only a possible start of the needle needs keeping.
        seen.drain(..seen.len().saturating_sub(needle.len()));
        if n < buf.len() {
            std::thread::sleep(COALESCE);
        }
    };
    let _ = out.read_to_end(&mut Vec::new());
    let _ = child.wait();
    took
}

/// The pause vmjail's console pump makes after a short read.
const COALESCE: Duration = Duration::from_millis(10);

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let dir = tempfile::Builder::new()
        .prefix("vmjail-bb-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::create_dir(dir.path().join("jail")).unwrap();
    let with_agent = dir.path().join("agent.toml");
    std::fs::write(&with_agent, config_text(dir.path(), true, false)).unwrap();
    let shared = dir.path().join("shared.toml");
    std::fs::write(&shared, config_text(dir.path(), true, true)).unwrap();
    let plain = dir.path().join("plain.toml");
    std::fs::write(&plain, config_text(dir.path(), false, false)).unwrap();
    let bundle = make_bundle(dir.path());

    let host = HostFacts {
        cpus: 2,
        has_vhost_vsock: false,
    };
    let config = vmjail_config::load_str(
        &config_text(dir.path(), false, false),
        ConfigSource::Embedded,
        &host,
    )
    .expect("config");
    let hv = &config.hypervisor;
    let paths = Paths {
        kernel: hv.kernel.clone(),
        initrd: hv.initrd.clone(),
        image: None,
        firmware: None,
        data_dir: "/usr/share/qemu".into(),
        qmp_socket: dir.path().join("qmp.sock"),
        vhost_vsock_socket: None,
        virtiofs_socket: None,
    };
    let options = Options {
        accel: Accel::Tcg,
        seccomp: probe::probe(&hv.path).seccomp,
        stopped: false,
        tsc_khz: cmdline::host_tsc_khz(),
    };
    let bare_args = cmdline::build(hv, &paths, &options).expect("command line");

    // Each round starts at another case, so each case follows each other
    // one equally often: on this host a VM's start is slower right after
    // another VM's memory was freed (the host is itself a VM that gives
    // freed pages back), which a fixed order charges to one case.
    let mut times: [Vec<Duration>; 4] = Default::default();
    let rounds = rounds();
    for round in 0..rounds {
        for case in (0..4).map(|k| (k + round) % 4) {
            let took = match case {
                0 => {
                    let _ = std::fs::remove_file(dir.path().join("qmp.sock"));
                    let mut qemu = Command::new(&hv.path);
                    qemu.args(&bare_args);
                    // A session of its own, as the jailed QEMU has (the
                    // jailer's setsid): with the kernel's autogroups each
                    // session is scheduled as one group, and a bare QEMU
                    // left in the bench's session would be scheduled
                    // unlike the jailed one.
                    // SAFETY: setsid(2) is async-signal-safe and the only
                    // call made.
                    unsafe {
                        qemu.pre_exec(|| {
                            nix::unistd::setsid()
                                .map(drop)
                                .map_err(std::io::Error::from)
                        });
                    }
                    to_line(qemu, MARKER)
                }
                1 => {
                    let mut plain_run = Command::new(vmjail_bin());
                    plain_run.arg("--config").arg(&plain).args([
                        "run",
                        "--id",
                        &format!("bbr{round}"),
                    ]);
                    to_line(plain_run, MARKER)
                }
                _ => {
                    let (config, id) = match case {
                        2 => (&with_agent, format!("bbb{round}")),
                        _ => (&shared, format!("bbs{round}")),
                    };
                    let mut bundle_run = Command::new(vmjail_bin());
                    bundle_run.arg("--config").arg(config).args([
                        "run",
                        "--bundle",
                        bundle.to_str().unwrap(),
                        "--id",
                        &id,
                    ]);
                    to_line(bundle_run, "first")
                }
            };
            times[case].push(took);
        }
    }
    for (name, samples) in ["bare", "run", "bundle", "virtio-fs"].iter().zip(&times) {
        let mut sorted = samples.clone();
        sorted.sort();
        println!(
            "{name:>10}: min {:?}, quartiles {:?} / {:?}, max {:?}",
            sorted[0],
            sorted[sorted.len() / 4],
            sorted[sorted.len() * 3 / 4],
            sorted[sorted.len() - 1]
        );
    }
    // Each round's cases ran back to back: a round's own ratio is spared
    // the host's drift between rounds (the bare boot's own median moved
    // between 1.7 and 2.3 s across runs of one afternoon).
    let per_round = |case: usize| {
        let mut ratios: Vec<f64> = (0..rounds)
            .map(|r| times[case][r].as_secs_f64() / times[0][r].as_secs_f64())
            .collect();
        ratios.sort_by(f64::total_cmp);
        ratios[rounds / 2]
    };
    println!(
        "median of the rounds' own ratios to bare QEMU: run --bundle {:.2}x, virtio-fs {:.2}x, vmjail run {:.2}x",
        per_round(2),
        per_round(3),
        per_round(1)
    );
    let [bare, run, bundled, virtio_fs] = times;
    let (bare, run, bundled) = (median(bare), median(run), median(bundled));
    let virtio_fs = median(virtio_fs);
    println!(
        "bare QEMU to the guest marker:            {bare:?} (median of {rounds}, rotating order)"
    );
    println!("vmjail run to the guest marker:           {run:?}");
    println!("vmjail run --bundle to the first output:  {bundled:?}");
    println!(
        "ratio run --bundle / bare QEMU: {:.2}x; / vmjail run: {:.2}x",
        bundled.as_secs_f64() / bare.as_secs_f64(),
        bundled.as_secs_f64() / run.as_secs_f64()
    );
    println!("vmjail run --bundle, virtio-fs:           {virtio_fs:?}");
    println!(
        "ratio virtio-fs / image path: {:.2}x; / bare QEMU: {:.2}x",
        virtio_fs.as_secs_f64() / bundled.as_secs_f64(),
        virtio_fs.as_secs_f64() / bare.as_secs_f64()
    );
}
