//! Exec → probe-ready time: bare exec against the jails, as ratios, in one
//! run; then 20 jails launched in parallel; then bind-mount vs copy of the
//! exec file. A bench binary (`harness = false`): `cargo bench -p vmjail-jail`.
//!
//! Beside wall times, the CPU time each launch costs up to "ready": the
//! launching thread's own (the host side of the jail, spawning, following
//! the jailer) plus the launched process's (`/proc/<pid>/schedstat`: the
//! child entering the jail, or the jailer program, and the probe it became;
//! with a new pid namespace the parent jailer's share is not counted). On a
//! loaded machine wall times swing by milliseconds, CPU times far less.
//! Needs root and release builds of `vmjail` and `vmjail-probe`
//! (`scripts/build-release.sh`).

use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vmjail_jail::{
    teardown, CgroupVersion, ChildIo, Jail, JailRecord, JailSpec, Jailer, LaunchStdio,
};

/// Rounds per case (`VMJAIL_BENCH_ROUNDS` overrides).
fn rounds() -> usize {
    std::env::var("VMJAIL_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(40)
}
const PARALLEL: usize = 20;

fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("<target>/<profile>/deps");
    let target = profile_dir.parent().expect("<target>");
    for dir in [
        profile_dir.to_path_buf(),
        target.join("release"),
        target.join("debug"),
    ] {
        let path = dir.join(name);
        if path.is_file() {
            return path;
        }
    }
    panic!("{name} not found next to the bench: run scripts/build-release.sh");
}

fn pipe() -> (std::fs::File, OwnedFd) {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
    (std::fs::File::from(read), write)
}

fn wait_ready(read: std::fs::File) {
    let mut line = String::new();
    BufReader::new(read)
        .read_line(&mut line)
        .expect("read ready");
    assert_eq!(line, "ready\n", "probe did not get ready");
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// CPU time process `pid` has used so far (its only thread's).
fn process_cpu(pid: i32) -> Duration {
    std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()
        .and_then(|s| s.split(' ').next()?.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .unwrap_or_default()
}

/// (spawn → ready, CPU time spent on it).
fn bare(probe: &Path) -> (Duration, Cpu) {
    let cpu = thread_cpu();
    let start = Instant::now();
    let mut child = Command::new(probe)
        .arg("--ready-stdout")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn probe");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let took = start.elapsed();
    let cpu = Cpu {
        caller: thread_cpu() - cpu,
        launched: process_cpu(child.id() as i32),
    };
    assert_eq!(line, "ready\n");
    child.wait().unwrap();
    (took, cpu)
}

#[derive(Clone)]
struct Setup {
    jailer: Jailer,
    probe: PathBuf,
    base: PathBuf,
    netns: Option<PathBuf>,
    cgroups: bool,
    new_pid_ns: bool,
    copy_exec: bool,
}

fn spec(setup: &Setup, id: &str) -> JailSpec {
    JailSpec {
        id: id.to_owned(),
        exec_file: setup.probe.clone(),
        uid: 43_210,
        gid: 43_210,
        chroot_base_dir: setup.base.clone(),
        netns: setup.netns.clone(),
        cgroup_version: CgroupVersion::V1,
        cgroups: if setup.cgroups {
            vec![
                ("cpu.shares".into(), "512".into()),
                ("pids.max".into(), "64".into()),
                ("memory.limit_in_bytes".into(), "268435456".into()),
            ]
        } else {
            Vec::new()
        },
        parent_cgroup: Some("vmjail-bench".into()),
        rlimit_fsize: None,
        rlimit_no_file: 2048,
        new_pid_ns: setup.new_pid_ns,
        daemonize: false,
        devices: Vec::new(),
        // Firecracker's jailer has no status channel: vmjail sees it exec
        // the VMM by polling the process's name, and a probe that exits
        // right after "ready" can be gone before a poll sees it (the
        // launch then fails as "exited before starting the VMM"). Under
        // that jailer it holds until teardown kills it.
        vmm_args: match setup.jailer {
            Jailer::Firecracker { .. } => vec!["--ready-stdout".into(), "--hold".into()],
            Jailer::BuiltIn { .. } => vec!["--ready-stdout".into()],
        },
        api_socket_in_jail: None,
    }
}

/// CPU time of one launch: the launching thread's, and the launched
/// process's (the jailer, then the VMM it became).
#[derive(Clone, Copy)]
struct Cpu {
    caller: Duration,
    launched: Duration,
}

impl Cpu {
    fn total(&self) -> Duration {
        self.caller + self.launched
    }
}

/// "total (caller + launched)" of the medians of each.
fn cpu_figures(cpu: &[Cpu]) -> (Duration, String) {
    let total = median(cpu.iter().map(Cpu::total).collect());
    let caller = median(cpu.iter().map(|c| c.caller).collect());
    let launched = median(cpu.iter().map(|c| c.launched).collect());
    (
        total,
        format!(
            "{} = caller {} + launched {}",
            ms(total),
            ms(caller),
            ms(launched)
        ),
    )
}

/// (launch → ready, whole cycle prepare → teardown, CPU time of the launch).
fn jailed(setup: &Setup, id: &str) -> (Duration, Duration, Cpu) {
    let cycle = Instant::now();
    let mut record = JailRecord::default();
    let mut recorder = |r: &JailRecord| {
        record = r.clone();
        Ok(())
    };
    let mut jail =
        Jail::prepare(spec(setup, id), setup.jailer.clone(), &mut recorder).expect("prepare");
    jail.set_copy_exec_file(setup.copy_exec);
    jail.place_shared_libraries(&mut recorder)
        .expect("libraries");
    let (read, write) = pipe();
    let cpu = thread_cpu();
    let start = Instant::now();
    let stdio = LaunchStdio {
        stdin: ChildIo::Null,
        stdout: ChildIo::Fd(write),
        stderr: ChildIo::Inherit,
    };
    let pid = match jail.launch_with(&mut recorder, stdio) {
        Ok(pid) => pid,
        Err(e) => {
            // The prepared jail (its mounts) is undone before giving up.
            let _ = teardown(jail.record(), Duration::from_secs(1));
            panic!("launch {id}: {e:?}");
        }
    };
    let exec_at = start.elapsed();
    wait_ready(read);
    let cpu = Cpu {
        caller: thread_cpu() - cpu,
        launched: process_cpu(pid),
    };
    if std::env::var_os("VMJAIL_BENCH_SPLIT").is_some() {
        eprintln!(
            "launch() returned (VMM exec'd) at {}, ready at {}",
            ms(exec_at),
            ms(start.elapsed())
        );
    }
    let took = start.elapsed();
    teardown(jail.record(), Duration::from_secs(1)).expect("teardown");
    (took, cycle.elapsed(), cpu)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn min(v: &[Duration]) -> Duration {
    v.iter().copied().min().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        println!("skipped: the jail benchmark needs root");
        return;
    }
    let probe = binary("vmjail-probe");
    let vmjail = binary("vmjail-jailer");
    let base = tempfile::Builder::new()
        .prefix("vmjail-bench")
        .tempdir()
        .unwrap();
    let netns_name = format!("vmjail-bench-{}", std::process::id());
    let ok = Command::new("ip")
        .args(["netns", "add", &netns_name])
        .status()
        .unwrap();
    assert!(ok.success());
    // Declared after `base`, so dropped (also when a case panics) before it.
    let _cleanup = Cleanup {
        netns_name: netns_name.clone(),
    };
    let netns = PathBuf::from(format!("/var/run/netns/{netns_name}"));

    let builtin = Setup {
        jailer: Jailer::BuiltIn {
            jailer_exe: vmjail.clone(),
        },
        probe: probe.clone(),
        base: base.path().to_path_buf(),
        netns: None,
        cgroups: false,
        new_pid_ns: false,
        copy_exec: false,
    };
    let mut cases: Vec<(&str, Setup)> = vec![
        ("built-in jail", builtin.clone()),
        (
            "built-in jail, exec file copied",
            Setup {
                copy_exec: true,
                ..builtin.clone()
            },
        ),
        (
            "+ netns",
            Setup {
                netns: Some(netns.clone()),
                ..builtin.clone()
            },
        ),
        (
            "+ cgroup v1 limits (3 hierarchies)",
            Setup {
                cgroups: true,
                ..builtin.clone()
            },
        ),
        (
            "+ netns + cgroup v1 limits",
            Setup {
                netns: Some(netns.clone()),
                cgroups: true,
                ..builtin.clone()
            },
        ),
        (
            "+ netns + cgroup v1 + new pid ns",
            Setup {
                netns: Some(netns.clone()),
                cgroups: true,
                new_pid_ns: true,
                ..builtin.clone()
            },
        ),
    ];
    // Firecracker's jailer wants "firecracker" in the exec file name.
    let fc_probe_dir = tempfile::tempdir().unwrap();
    match std::env::var_os("VMJAIL_JAILER") {
        Some(jailer) => {
            let fc_probe = fc_probe_dir.path().join("probe-firecracker");
            std::fs::copy(&probe, &fc_probe).unwrap();
            cases.push((
                "Firecracker's jailer",
                Setup {
                    jailer: Jailer::Firecracker {
                        jailer_path: jailer.into(),
                    },
                    probe: fc_probe,
                    ..builtin.clone()
                },
            ));
        }
        None => println!("skipped: Firecracker's jailer: VMJAIL_JAILER not set"),
    }

    // Warm the page cache and the binaries.
    for _ in 0..3 {
        bare(&probe);
        jailed(&builtin, &format!("warm-{}", std::process::id()));
    }

    // Rounds interleave the cases so that machine noise hits all alike.
    let (mut bare_times, mut bare_cpu) = (Vec::new(), Vec::new());
    type Times = (Vec<Duration>, Vec<Duration>, Vec<Cpu>);
    let mut times: Vec<Times> = vec![(Vec::new(), Vec::new(), Vec::new()); cases.len()];
    for round in 0..rounds() {
        let (took, cpu) = bare(&probe);
        bare_times.push(took);
        bare_cpu.push(cpu);
        // Each round starts at another case: the first jail after the bare
        // exec costs ~0.1 ms more CPU, whichever it is.
        for k in 0..cases.len() {
            let i = (k + round) % cases.len();
            let setup = &cases[i].1;
            let (launch, cycle, cpu) =
                jailed(setup, &format!("b{i}-{round}-{}", std::process::id()));
            times[i].0.push(launch);
            times[i].1.push(cycle);
            times[i].2.push(cpu);
        }
    }
    let bare_min = min(&bare_times);
    let bare_median = median(bare_times);
    let (bare_cpu, bare_cpu_split) = cpu_figures(&bare_cpu);
    println!("exec → probe ready over {} rounds: median (ratio to bare) | min (ratio to bare) | full cycle median = prepare + libraries + launch + teardown | CPU time median (more than bare) = the launching thread's + the launched process's (the jail's entry, then the probe)", rounds());
    println!(
        "  {:<36} {:>11}  1.00x | {:>11}  1.00x | {:>22} | CPU {}",
        "bare exec",
        ms(bare_median),
        ms(bare_min),
        "",
        bare_cpu_split
    );
    for ((name, _), (launch, cycle, cpu)) in cases.iter().zip(times) {
        let fastest = min(&launch);
        let launch = median(launch);
        let (cpu, cpu_split) = cpu_figures(&cpu);
        println!(
            "  {:<36} {:>11}  {:.2}x | {:>11}  {:.2}x | full cycle {:>11} | CPU +{} ({})",
            name,
            ms(launch),
            launch.as_secs_f64() / bare_median.as_secs_f64(),
            ms(fastest),
            fastest.as_secs_f64() / bare_min.as_secs_f64(),
            ms(median(cycle)),
            ms(cpu.saturating_sub(bare_cpu)),
            cpu_split,
        );
    }

    // 20 in parallel: wall time until all are ready.
    let parallel = |jail: bool| {
        let start = Instant::now();
        std::thread::scope(|s| {
            for n in 0..PARALLEL {
                let builtin = &builtin;
                let probe = &probe;
                s.spawn(move || {
                    if jail {
                        jailed(builtin, &format!("par-{n}-{}", std::process::id()));
                    } else {
                        bare(probe);
                    }
                });
            }
        });
        start.elapsed()
    };
    let bare_par = median((0..5).map(|_| parallel(false)).collect());
    let jail_par = median((0..5).map(|_| parallel(true)).collect());
    println!(
        "{PARALLEL} in parallel (wall, median of 5): bare {} | built-in jails (full cycle) {} ({:.2}x)",
        ms(bare_par),
        ms(jail_par),
        jail_par.as_secs_f64() / bare_par.as_secs_f64()
    );
}

/// What the bench made outside its temporary directory, removed when
/// `main` ends, whether it returns or a case panics.
struct Cleanup {
    netns_name: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns_name])
            .status();
        for controller in ["cpu", "pids", "memory"] {
            let _ = std::fs::remove_dir(format!("/sys/fs/cgroup/{controller}/vmjail-bench"));
        }
    }
}
