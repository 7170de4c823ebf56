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

mod report;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut report_path = None;
    let mut ready_stdout = false;
    let mut hold = false;
    let mut checks = Vec::new();
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--report" => report_path = iter.next().cloned(),
            "--check" => checks.extend(iter.next().cloned()),
            "--ready-stdout" => ready_stdout = true,
            "--hold" => hold = true,
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
    if hold {
        loop {
            nix::unistd::pause();
        }
    }
}
