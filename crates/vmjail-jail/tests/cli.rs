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
        let out = Command::new(vmjail_exe())
            .arg("jailer")
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
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
    let mut jail = Jail::prepare(
        spec,
        Jailer::BuiltIn {
            vmjail_exe: vmjail_exe(),
        },
        &mut recorder,
    )
    .unwrap();
    jail.place_shared_libraries(&mut recorder).unwrap();
    let argv = jail.jailer_argv();
    assert_eq!(argv[0], vmjail_exe().into_os_string());
    assert_eq!(argv[1], "jailer");
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
    let mut jail = Jail::prepare(
        spec,
        Jailer::BuiltIn {
            vmjail_exe: vmjail_exe(),
        },
        &mut recorder,
    )
    .unwrap();
    jail.place_shared_libraries(&mut recorder).unwrap();
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let stdio = vmjail_jail::LaunchStdio {
        stdin: std::process::Stdio::null(),
        stdout: std::process::Stdio::from(write),
        stderr: std::process::Stdio::inherit(),
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
