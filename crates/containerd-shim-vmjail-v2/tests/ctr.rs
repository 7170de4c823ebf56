//! The shim under Debian's real containerd, driven by `ctr` as a user
//! would, each task in a real QEMU guest with the real agent: output and
//! exit status, stdin, `ctr task exec`, `ctr task kill` (also `--all`),
//! `ctr run -t`,
//! pause/resume (the container's processes stop taking CPU), metrics, five
//! tasks at once, the runtime options' ConfigPath, and a shim SIGKILLed
//! mid-task cleaned by containerd's `delete`. After each: nothing left.

mod support;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use support::*;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn ctr_run_prints_output_and_returns_the_exit_status() {
    if !require_root() {
        return;
    }
    let c = Containerd::start("run", true);
    let out = c.run("hi", &["echo", "hi"]);
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), c.log());
    assert_eq!(text(&out.stdout), "hi\n");
    c.assert_clean("hi");

    let out = c.run("status", &["sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "out\n");
    assert!(
        text(&out.stderr).starts_with("err\n"),
        "{}",
        text(&out.stderr)
    );
    c.assert_clean("status");

    // stdin through its FIFO, to its end.
    let mut child = c
        .ctr_command(&[
            "run",
            "--rm",
            "--runtime",
            RUNTIME,
            IMAGE,
            "stdin",
            "wc",
            "-c",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&vec![b'x'; 100_000])
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "100000");
    c.assert_clean("stdin");

    // What the shim does not do, it says.
    let out = c.ctr(&[
        "run",
        "-d",
        "--runtime",
        RUNTIME,
        IMAGE,
        "cp",
        "sleep",
        "100",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let checkpoint = c.ctr(&["task", "checkpoint", "cp"]);
    assert!(!checkpoint.status.success());
    assert!(
        text(&checkpoint.stderr).contains("checkpoint is not supported by vmjail"),
        "{}",
        text(&checkpoint.stderr)
    );
    c.ctr_ok(&["task", "kill", "-s", "SIGKILL", "cp"]);
    c.wait_task_status("cp", Some("STOPPED"), Duration::from_secs(30));
    c.ctr_ok(&["task", "rm", "cp"]);
    c.ctr_ok(&["containers", "rm", "cp"]);
    c.assert_clean("cp");
}

#[test]
fn ctr_task_kill_ends_the_task_with_the_signal() {
    if !require_root() {
        return;
    }
    let c = Containerd::start("kill", true);
    for (id, all) in [("killed", false), ("killall", true)] {
        let run = c
            .ctr_command(&[
                "run",
                "--rm",
                "--runtime",
                RUNTIME,
                IMAGE,
                id,
                "sleep",
                "1000",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.wait_task_status(id, Some("RUNNING"), Duration::from_secs(60));
        let mut kill = vec!["task", "kill", "-s", "SIGKILL"];
        if all {
            kill.push("--all");
        }
        kill.push(id);
        c.ctr_ok(&kill);
        let out = run.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(137), "{}", text(&out.stderr));
        c.assert_clean(id);
    }
}

#[test]
fn ctr_task_exec_runs_a_process_in_the_container() {
    if !require_root() {
        return;
    }
    let c = Containerd::start("exec", true);
    let id = "host";
    c.ctr_ok(&[
        "run",
        "-d",
        "--runtime",
        RUNTIME,
        IMAGE,
        id,
        "sleep",
        "1000",
    ]);
    c.wait_task_status(id, Some("RUNNING"), Duration::from_secs(60));
    // In the container: its pid namespace, whose pid 1 is its sleep.
    let out = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        id,
        "sh",
        "-c",
        "echo pid1=$(tr '\\0' ' ' < /proc/1/cmdline); echo oops >&2; exit 5",
    ]);
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}\n{}",
        text(&out.stderr),
        c.log()
    );
    assert_eq!(text(&out.stdout), "pid1=sleep 1000\n");
    assert!(
        text(&out.stderr).starts_with("oops\n"),
        "{}",
        text(&out.stderr)
    );
    // stdin, to its end.
    let mut child = c
        .ctr_command(&["task", "exec", "--exec-id", "e2", id, "wc", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&[b'y'; 5000])
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "5000");
    c.ctr_ok(&["task", "kill", "-s", "SIGKILL", id]);
    c.wait_task_status(id, Some("STOPPED"), Duration::from_secs(30));
    c.ctr_ok(&["task", "rm", id]);
    c.ctr_ok(&["containers", "rm", id]);
    c.assert_clean(id);
}

#[test]
fn ctr_run_t_and_exec_t_give_the_process_a_terminal_of_the_callers_size() {
    if !require_root() {
        return;
    }
    let c = Containerd::start("tty", true);
    // `script` gives ctr a terminal, as a user's shell would.
    let ctr = format!(
        "stty rows 33 cols 91; ctr --address {} run -t --rm --runtime {RUNTIME} {IMAGE} tty \
         sh -c 'sleep 1; [ -t 0 ] && [ -t 1 ] && echo on-a-tty; stty size'",
        c.address.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &ctr, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("on-a-tty"), "{stdout}");
    // ctr resizes the task's pty to its terminal once it runs.
    assert!(stdout.contains("33 91"), "{stdout}");
    c.assert_clean("tty");

    // An exec on a terminal of its own.
    let id = "ttyexec";
    c.ctr_ok(&[
        "run",
        "-d",
        "--runtime",
        RUNTIME,
        IMAGE,
        id,
        "sleep",
        "1000",
    ]);
    c.wait_task_status(id, Some("RUNNING"), Duration::from_secs(60));
    let ctr = format!(
        "stty rows 21 cols 77; ctr --address {} task exec -t --exec-id e1 {id} \
         sh -c 'sleep 1; [ -t 0 ] && echo exec-on-a-tty; stty size'",
        c.address.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &ctr, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("exec-on-a-tty"), "{stdout}");
    assert!(stdout.contains("21 77"), "{stdout}");
    c.ctr_ok(&["task", "kill", "-s", "SIGKILL", id]);
    c.wait_task_status(id, Some("STOPPED"), Duration::from_secs(30));
    c.ctr_ok(&["task", "rm", id]);
    c.ctr_ok(&["containers", "rm", id]);
    c.assert_clean(id);
}

/// The task's `cpu.usage_usec` from `ctr task metrics`.
fn cpu_usage(c: &Containerd, id: &str) -> u64 {
    let out = c.ctr_ok(&["task", "metrics", id]);
    out.lines()
        .find_map(|l| l.strip_prefix("cpu.usage_usec"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no cpu.usage_usec in:\n{out}"))
}

#[test]
fn pause_freezes_the_container_and_metrics_show_its_cgroup() {
    if !require_root() {
        return;
    }
    let c = Containerd::start("pause", true);
    let id = "spin";
    c.ctr_ok(&[
        "run",
        "-d",
        "--runtime",
        RUNTIME,
        IMAGE,
        id,
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    c.wait_task_status(id, Some("RUNNING"), Duration::from_secs(60));
    let metrics = c.ctr_ok(&["task", "metrics", id]);
    for key in ["pids.current", "memory.usage", "cpu.user_usec"] {
        assert!(metrics.contains(key), "{key} missing:\n{metrics}");
    }
    let pids: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("pids.current"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(pids >= 1, "{metrics}");

    c.ctr_ok(&["task", "pause", id]);
    assert_eq!(c.task_status(id).as_deref(), Some("PAUSED"));
    let frozen = cpu_usage(&c, id);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(cpu_usage(&c, id), frozen, "a paused container used CPU");

    c.ctr_ok(&["task", "resume", id]);
    assert_eq!(c.task_status(id).as_deref(), Some("RUNNING"));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        cpu_usage(&c, id) > frozen,
        "the resumed container got no CPU"
    );

    c.ctr_ok(&["task", "kill", "-s", "SIGKILL", id]);
    c.wait_task_status(id, Some("STOPPED"), Duration::from_secs(30));
    c.ctr_ok(&["task", "rm", id]);
    c.ctr_ok(&["containers", "rm", id]);
    c.assert_clean(id);
}

#[test]
fn five_tasks_run_at_once() {
    if !require_root() {
        return;
    }
    let c = Containerd::start("five", true);
    let ids: Vec<String> = (0..5).map(|i| format!("par{i}")).collect();
    let children: Vec<_> = ids
        .iter()
        .map(|id| {
            c.ctr_command(&[
                "run",
                "--rm",
                "--runtime",
                RUNTIME,
                IMAGE,
                id,
                "sh",
                "-c",
                &format!("sleep 1; echo I am {id}"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for (id, child) in ids.iter().zip(children) {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{id}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), format!("I am {id}\n"));
    }
    for id in &ids {
        c.assert_clean(id);
    }
}

#[test]
fn runtime_options_config_path_names_the_configuration() {
    if !require_root() {
        return;
    }
    // No VMJAIL_CONFIG in containerd's environment: only the option
    // names the test's configuration (and its state dir).
    let c = Containerd::start("opts", false);
    let config = c.vmjail_config.to_str().unwrap().to_owned();
    let out = c.ctr(&[
        "run",
        "--rm",
        "--runtime",
        RUNTIME,
        "--runtime-config-path",
        &config,
        IMAGE,
        "opts",
        "echo",
        "configured",
    ]);
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), c.log());
    assert_eq!(text(&out.stdout), "configured\n");
    c.assert_clean("opts");
}

#[test]
fn a_shim_killed_mid_task_is_cleaned_up_by_containerd() {
    if !require_root() {
        return;
    }
    let c = Containerd::start("sigkill", true);
    let id = "orphan";
    c.ctr_ok(&[
        "run",
        "-d",
        "--runtime",
        RUNTIME,
        IMAGE,
        id,
        "sleep",
        "1000",
    ]);
    c.wait_task_status(id, Some("RUNNING"), Duration::from_secs(60));
    let sandboxes = std::fs::read_dir(&c.state_dir).unwrap().count();
    assert!(sandboxes > 0, "no sandbox recorded for the running task");
    let shim = c.shim_pid(id).expect("the task's shim");
    let status = std::process::Command::new("kill")
        .args(["-KILL", &shim.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // containerd sees the shim go and runs `containerd-shim-vmjail-v2
    // delete` in the bundle, which tears the sandbox down (containerd may
    // forget the task before that has finished).
    c.wait_task_status(id, None, Duration::from_secs(60));
    c.wait_cleanup(id, Duration::from_secs(60));
    c.ctr_ok(&["containers", "rm", id]);
    c.assert_clean(id);
}
