//! `vmjail-probe`: a stand-in VMM for the jail tests and benchmarks.
//!
//! Jailed instead of a VMM, it reports everything a process can learn about
//! its own confinement through syscalls (the jail has no `/proc`) as one JSON
//! object, then signals readiness. The host side of a test adds what only the
//! host can see (`/proc/<pid>/{mountinfo,ns/net,cgroup,status}`).
//!
//! Arguments (unknown ones, like the `--id`/`--start-time-us` Firecracker's
//! jailer adds, are ignored):
//!   --report <path>     write the JSON report there (atomically)
//!   --ready-stdout      print `ready` on stdout once reported
//!   --check <path>      report whether <path> exists (repeatable)
//!   --hold              then wait for a signal instead of exiting
//!   --leader-exits-first <ms>
//!                       then end like a multi-threaded VMM can: the main
//!                       thread exits alone (a zombie leader) while a second
//!                       thread lives on for <ms> milliseconds

mod report;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut report_path = None;
    let mut ready_stdout = false;
    let mut hold = false;
    let mut leader_exits_first = None;
    let mut checks = Vec::new();
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--report" => report_path = iter.next().cloned(),
            "--check" => checks.extend(iter.next().cloned()),
            "--ready-stdout" => ready_stdout = true,
            "--hold" => hold = true,
            "--leader-exits-first" => {
                leader_exits_first = iter.next().and_then(|ms| ms.parse::<u64>().ok());
            }
            _ => {}
        }
    }

    // The open fds first: anything the probe opens later is not inherited.
    let fds = report::open_fds();
    if let Some(path) = &report_path {
        let json = report::collect(&args, fds, &checks);
        if let Err(e) = report::write_atomically(path, &json) {
            eprintln!("vmjail-probe: writing {path}: {e}");
            std::process::exit(1);
        }
    }
    if ready_stdout {
        use std::io::Write;
        let mut out = std::io::stdout();
        let _ = out.write_all(b"ready\n");
        let _ = out.flush();
    }
    if let Some(ms) = leader_exits_first {
        leader_exits_first_then_linger(ms);
    }
    if hold {
        loop {
            nix::unistd::pause();
        }
    }
}

/// The main thread exits on its own (`exit(2)`, not `exit_group(2)`), so
/// the host sees a zombie leader with a live thread, which ends the process
/// `ms` milliseconds later.
fn leader_exits_first_then_linger(ms: u64) -> ! {
    let linger = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(ms));
        std::process::exit(0);
    });
    // Keep the handle alive: the thread must not be joined.
    std::mem::forget(linger);
    // SAFETY: ends only the calling thread; nix has no wrapper for the
    // thread-only exit(2). Nothing of this thread's stack is used afterwards.
    unsafe { libc::syscall(libc::SYS_exit, 0) };
    unreachable!("exit(2) returned")
}
