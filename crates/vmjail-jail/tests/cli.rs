//! `vmjail jailer` as a command: argument errors exit 1 naming the argument,
//! and `Jail::jailer_argv` is what the command accepts.

mod common;

use std::process::Command;

use common::*;
use vmjail_jail::{Jail, Jailer};

#[test]
fn argument_errors_name_the_argument_and_exit_1() {
    for (args, needle) in [
        (vec!["--bogus"], "--bogus"),
        (vec!["--id", "x"], "--exec-file"),
        (
            vec!["--id", "a", "--exec-file", "/bin/true", "--uid", "nope"],
            "--uid",
        ),
        (vec!["--status-fd", "1"], "--status-fd"),
    ] {
        let out = Command::new(jailer_exe()).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[test]
fn help_prints_the_usage_and_exits_0() {
    // `vmjail jailer` is the same jailer as `vmjail-jailer` (which starts
    // without the Rust runtime and flushes its output itself).
    let commands = [
        vec![vmjail_exe().into_os_string(), "jailer".into()],
        vec![jailer_exe().into_os_string()],
    ];
    for (command, flag) in commands
        .iter()
        .flat_map(|c| ["--help", "-h"].map(|flag| (c, flag)))
    {
        let out = Command::new(&command[0])
            .args(&command[1..])
            .arg(flag)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{flag}: {stdout}");
        assert!(stdout.starts_with("Usage: vmjail-jailer --id"), "{stdout}");
        assert!(stdout.contains("--chroot-base-dir"), "{stdout}");
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn jailer_argv_is_firecracker_shaped_and_accepted() {
    if !root_or_skip("jailer_argv") {
        return;
    }
    let base = base_dir();
    let probe = probe_file();
    let saved = Saved::default();
    let mut recorder = saved.recorder();
    let mut spec = spec(&unique("argv"), &probe.path, base.path());
    spec.vmm_args = vec!["--ready-stdout".into()];
    let jail = builtin_jail(spec, &mut recorder);
    let argv = jail.jailer_argv();
    assert_eq!(argv[0], jailer_exe().into_os_string());
    assert_eq!(argv[1], "--id");
    let out = Command::new(&argv[0]).args(&argv[1..]).output().unwrap();
    vmjail_jail::teardown(&saved.get(), std::time::Duration::from_millis(200)).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ready\n");

    let fc = Jail::from_record(
        jail.spec().clone(),
        Jailer::Firecracker {
            jailer_path: "/usr/bin/jailer".into(),
        },
        saved.get(),
    );
    let fc_argv: Vec<String> = fc
        .jailer_argv()
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    assert_eq!(fc_argv[0], "/usr/bin/jailer");
    for flag in [
        "--id",
        "--exec-file",
        "--uid",
        "--gid",
        "--chroot-base-dir",
        "--cgroup-version",
    ] {
        assert!(
            fc_argv.contains(&flag.to_owned()),
            "{flag} missing: {fc_argv:?}"
        );
    }
    assert!(
        !fc_argv
            .iter()
            .any(|a| a == "--device" || a == "--status-fd"),
        "{fc_argv:?}"
    );
}

#[test]
fn qemu_runs_jailed_with_its_shared_libraries() {
    if !root_or_skip("qemu_jailed") {
        return;
    }
    let qemu = std::path::Path::new("/usr/bin/qemu-system-x86_64");
    if !qemu.exists() {
        eprintln!("skipped: {} not installed", qemu.display());
        return;
    }
    let base = base_dir();
    let saved = Saved::default();
    let mut recorder = saved.recorder();
    let mut spec = spec(&unique("qemu"), qemu, base.path());
    spec.vmm_args = vec!["--version".into()];
    let mut jail = builtin_jail(spec, &mut recorder);
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let stdio = vmjail_jail::LaunchStdio {
        stdin: vmjail_jail::ChildIo::Null,
        stdout: vmjail_jail::ChildIo::Fd(write),
        stderr: vmjail_jail::ChildIo::Inherit,
    };
    let launched = jail.launch_with(&mut recorder, stdio);
    let mut out = String::new();
    if launched.is_ok() {
        use std::io::Read;
        std::fs::File::from(read).read_to_string(&mut out).unwrap();
    }
    vmjail_jail::teardown(&saved.get(), std::time::Duration::from_millis(500)).unwrap();
    launched.unwrap();
    assert!(out.contains("QEMU emulator version"), "{out:?}");
}

/// A jailer started with stdin, stdout and stderr closed (by hand, from a
/// shell) opens them on /dev/null first, as the Rust runtime it goes
/// without would: no file it opens lands on 0–2 and reaches the VMM as its
/// stdio, and the VMM starts with exactly those three open.
#[test]
fn a_jailer_started_with_stdio_closed_gives_the_vmm_dev_null() {
    use std::os::unix::process::CommandExt;

    if !root_or_skip("closed_stdio") {
        return;
    }
    let base = base_dir();
    let probe = probe_file();
    let saved = Saved::default();
    let mut recorder = saved.recorder();
    let mut spec = spec(&unique("stdio"), &probe.path, base.path());
    spec.vmm_args = vec!["--report".into(), "/report.json".into()];
    let jail = builtin_jail(spec, &mut recorder);
    let argv = jail.jailer_argv();
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]);
    // SAFETY: close(2) is async-signal-safe and all that runs before exec.
    unsafe {
        command.pre_exec(|| {
            for fd in 0..=2 {
                libc::close(fd);
            }
            Ok(())
        });
    }
    let status = command.status().unwrap();
    let report = std::fs::read_to_string(jail.root().join("report.json"));
    vmjail_jail::teardown(&saved.get(), std::time::Duration::from_millis(200)).unwrap();
    assert!(status.success(), "{status:?}");
    let report: serde_json::Value = serde_json::from_str(&report.unwrap()).unwrap();
    assert_eq!(report["fds"], serde_json::json!([0, 1, 2]), "{report}");
}

/// A caller that dies after reading `pid <n>` but before recording it (and
/// so before answering) must not leave a VMM running that nothing knows
/// about: the jailer holds the forked VMM back until the answer comes.
#[test]
fn a_vmm_pid_nobody_recorded_never_runs() {
    use std::io::{BufRead, BufReader};
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;

    if !root_or_skip("pid_ack") {
        return;
    }
    let base = base_dir();
    let probe = probe_file();
    let saved = Saved::default();
    let mut recorder = saved.recorder();
    let mut spec = spec(&unique("ack"), &probe.path, base.path());
    spec.new_pid_ns = true;
    let jail = builtin_jail(spec, &mut recorder);
    let argv = jail.jailer_argv();
    let (ours, theirs) = nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::Stream,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
    .unwrap();
    let raw = theirs.as_raw_fd();
    let mut command = Command::new(&argv[0]);
    command.args(["--status-fd", "3"]).args(&argv[1..]);
    // SAFETY: dup2 is async-signal-safe and the only call before exec.
    unsafe {
        command.pre_exec(move || {
            if libc::dup2(raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut jailer = command.spawn().unwrap();
    drop(theirs);
    let mut line = String::new();
    BufReader::new(std::fs::File::from(ours))
        .read_line(&mut line)
        .unwrap();
    // The reader (and our end of the socket) is gone here: the "caller
    // crashed" before recording the pid.
    let vmm: i32 = line.trim().strip_prefix("pid ").unwrap().parse().unwrap();
    let exit = jailer.wait().unwrap();
    // Long enough for a released probe to write its report.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let ran = jail.root().join("report.json").exists();
    let alive = std::path::Path::new(&format!("/proc/{vmm}")).exists();
    vmjail_jail::teardown(&saved.get(), std::time::Duration::from_millis(500)).unwrap();
    assert!(!exit.success(), "the jailer reported success: {exit}");
    assert!(!ran, "the VMM ran although its pid was never recorded");
    assert!(!alive, "the held-back VMM process {vmm} is still there");
}

/// A jail of `spec` for the built-in jailer binary, its VMM's shared
/// libraries placed; each step recorded through `recorder`.
fn builtin_jail(spec: vmjail_jail::JailSpec, recorder: &mut dyn vmjail_jail::Recorder) -> Jail {
    let mut jail = Jail::prepare(
        spec,
        Jailer::BuiltIn {
            jailer_exe: jailer_exe(),
        },
        recorder,
    )
    .unwrap();
    jail.place_shared_libraries(recorder).unwrap();
    jail
}
