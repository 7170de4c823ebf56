//! The built-in jail entered by a child that shares the launcher's memory
//! (`in_process.rs`): the launcher — multi-threaded, with handlers of its
//! own — comes out of every launch exactly as it went in, and a step that
//! fails in the child is reported with its cause and leaves no process.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use vmjail_jail::JailError;

static HANDLED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count(_: libc::c_int) {
    HANDLED.fetch_add(1, Ordering::SeqCst);
}

/// What a jail's entry could have changed in the launcher, and the launcher
/// thread that is not launching.
#[derive(Debug, PartialEq)]
struct LauncherState {
    status: Vec<String>,
    other_thread_status: Vec<String>,
    namespaces: Vec<std::path::PathBuf>,
    cwd: std::path::PathBuf,
    root: std::path::PathBuf,
    env: Vec<(std::ffi::OsString, std::ffi::OsString)>,
    no_file: (u64, u64),
    handler: usize,
}

/// The `/proc/.../status` lines of ids, groups, capabilities, seccomp,
/// no_new_privs and the signal mask.
fn status_lines(path: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| {
            [
                "Uid:",
                "Gid:",
                "Groups:",
                "Cap",
                "Seccomp:",
                "NoNewPrivs:",
                "SigBlk:",
                "SigCgt:",
            ]
            .iter()
            .any(|k| l.starts_with(k))
        })
        .map(str::to_owned)
        .collect()
}

fn launcher_state(other_tid: i32) -> LauncherState {
    let tid = nix::unistd::gettid();
    // SAFETY: a query only (no new action), into a zeroed sigaction.
    let handler = unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(
            libc::sigaction(libc::SIGUSR1, std::ptr::null(), &mut old),
            0
        );
        old.sa_sigaction
    };
    LauncherState {
        status: status_lines(&format!("/proc/self/task/{tid}/status")),
        other_thread_status: status_lines(&format!("/proc/self/task/{other_tid}/status")),
        namespaces: ["mnt", "ipc", "uts", "net", "pid"]
            .iter()
            .map(|ns| std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap())
            .collect(),
        cwd: std::env::current_dir().unwrap(),
        root: std::fs::read_link("/proc/self/root").unwrap(),
        env: std::env::vars_os().collect(),
        no_file: nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .unwrap(),
        handler,
    }
}

#[test]
fn the_launcher_and_its_other_threads_are_untouched() {
    if !root_or_skip("in_process_launcher") {
        return;
    }
    // A handler of the launcher's own: it must never run in the child, and
    // it must still be installed afterwards.
    let action = SigAction::new(
        SigHandler::Handler(count),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only increments an atomic.
    unsafe { sigaction(Signal::SIGUSR1, &action) }.unwrap();
    // Another thread of the launcher, allocating all along (its heap is the
    // child's memory too).
    let stop = Arc::new(AtomicBool::new(false));
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let busy = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            tid_tx.send(nix::unistd::gettid().as_raw()).unwrap();
            let mut kept = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                kept.push(vec![0u8; 4096]);
                if kept.len() > 256 {
                    kept.clear();
                }
            }
        })
    };
    let other = tid_rx.recv().unwrap();
    let before = launcher_state(other);
    for n in 0..20 {
        let run = launch(&Kind::BuiltIn, |s| {
            s.cgroups = vec![("pids.max".into(), "16".into())];
        })
        .unwrap();
        let report = run.report();
        assert_eq!(
            report["uid"],
            serde_json::json!([UID, UID, UID]),
            "launch {n}"
        );
        assert_eq!(before, launcher_state(other), "after launch {n}");
    }
    stop.store(true, Ordering::Relaxed);
    busy.join().unwrap();
    assert_eq!(
        HANDLED.load(Ordering::SeqCst),
        0,
        "the launcher's handler ran"
    );
}

#[test]
fn a_step_failing_in_the_child_is_reported_and_leaves_no_process() {
    if !root_or_skip("in_process_failure") {
        return;
    }
    // Above the kernel's fs.nr_open: setrlimit fails in the child, after
    // the namespaces and pivot_root.
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let err = launch(&Kind::BuiltIn, |s| s.rlimit_no_file = nr_open + 1)
        .err()
        .expect("a launch beyond fs.nr_open fails");
    assert!(
        matches!(
            err,
            JailError::SetRlimit {
                resource: "no-file",
                source: nix::Error::EPERM
            }
        ),
        "{err:?}"
    );
    // The child was reaped: this process has no child left.
    assert_eq!(
        nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)),
        Err(nix::Error::ECHILD)
    );
}

/// Tears the jail recorded so far down when dropped, also when a check
/// panics.
struct TeardownOnDrop(Saved);

impl Drop for TeardownOnDrop {
    fn drop(&mut self) {
        let _ = vmjail_jail::teardown(&self.0.get(), std::time::Duration::from_millis(500));
    }
}

#[test]
fn threads_of_one_launcher_enter_jails_at_once() {
    if !root_or_skip("in_process_threads") {
        return;
    }
    // One chroot base and one binary: the first launches race to make its
    // exec-only copy.
    const THREADS: usize = 8;
    let base = base_dir();
    let probe = probe_file();
    let start = std::sync::Barrier::new(THREADS);
    std::thread::scope(|s| {
        for n in 0..THREADS {
            let (base, probe, start) = (base.path(), &probe.path, &start);
            s.spawn(move || {
                let saved = Saved::default();
                let _teardown = TeardownOnDrop(saved.clone());
                let mut recorder = saved.recorder();
                let spec = spec(&unique(&format!("t{n}")), probe, base);
                let prepared =
                    vmjail_jail::Jail::prepare(spec, Kind::BuiltIn.jailer(), &mut recorder)
                        .and_then(|mut jail| {
                            jail.place_shared_libraries(&mut recorder)?;
                            Ok(jail)
                        });
                // Every thread launches at once.
                start.wait();
                let launched = prepared.and_then(|mut jail| {
                    jail.launch(&mut recorder)?;
                    Ok(jail)
                });
                let result = launched.map(|jail| wait_report(&jail.root().join("report.json")));
                let report = result.unwrap_or_else(|e| panic!("thread {n}: {e}"));
                assert_eq!(
                    report["uid"],
                    serde_json::json!([UID, UID, UID]),
                    "thread {n}"
                );
            });
        }
    });
}

/// Whether `pid` has exited (a zombie not yet reaped by its parent counts).
fn exited(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

#[test]
fn teardown_finds_a_vmm_whose_pid_never_reached_the_record() {
    if !root_or_skip("in_process_unrecorded") {
        return;
    }
    // Entered in this process, and through the program (new pid namespace).
    for new_pid_ns in [false, true] {
        let run = launch(&Kind::BuiltIn, |s| s.new_pid_ns = new_pid_ns).unwrap();
        run.report();
        // As a launcher killed between the VMM's start and the record's
        // save leaves it.
        let mut record = run.saved.get();
        record.vmm_pid = None;
        record.vmm_start_time = None;
        vmjail_jail::teardown(&record, std::time::Duration::from_millis(500)).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !exited(run.pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(
            exited(run.pid),
            "new_pid_ns {new_pid_ns}: the VMM outlived teardown"
        );
    }
}
