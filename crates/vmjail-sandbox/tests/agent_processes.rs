//! Processes through the real agent binary (on a Unix socket, as root):
//! exit statuses, stdio, identity, ptys, parallel sessions.

mod agent_support;

use std::io::{Seek, Write};
use std::sync::Arc;
use std::time::Duration;

use agent_support::{root_or_skip, Agent, SharedBuf};
use vmjail_sandbox::agent::{
    run_session, AgentClient, AgentError, ExitStatus, Output, ProcessHandle, ProcessSpec,
    SessionIo, Stream,
};

fn sh(script: &str) -> ProcessSpec {
    ProcessSpec {
        argv: vec!["sh".into(), "-c".into(), script.into()],
        env: vec!["PATH=/usr/bin:/bin".into()],
        ..Default::default()
    }
}

/// Runs `spec` with `input` as stdin (if any); returns status, stdout, stderr.
fn run(
    client: &Arc<AgentClient>,
    spec: &ProcessSpec,
    input: Option<&[u8]>,
) -> (ExitStatus, SharedBuf, SharedBuf) {
    let (out, err) = (SharedBuf::default(), SharedBuf::default());
    let stdin = input.map(|data| {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(data).unwrap();
        file.rewind().unwrap();
        file
    });
    let mut spec = spec.clone();
    spec.stdin = stdin.is_some();
    let io = SessionIo {
        stdin,
        stdout: Box::new(out.clone()),
        stderr: Box::new(err.clone()),
        terminal: None,
    };
    let status = run_session(client.clone(), &spec, io).unwrap();
    (status, out, err)
}

#[test]
fn exit_codes_and_signals() {
    if !root_or_skip("exit_codes_and_signals") {
        return;
    }
    let agent = Agent::start();
    let client = Arc::new(agent.client());
    for code in [0u8, 1, 255] {
        let (status, _, _) = run(&client, &sh(&format!("exit {code}")), None);
        assert_eq!(status, ExitStatus::Exited(code));
    }
    let (status, _, _) = run(&client, &sh("kill -TERM $$"), None);
    assert_eq!(status, ExitStatus::Signaled(15));
    assert_eq!(status.code(), 143);

    let sleeper = ProcessHandle::start(client.clone(), &sh("exec sleep 100")).unwrap();
    assert_eq!(
        sleeper.wait_timeout(Duration::from_millis(200)).unwrap(),
        None
    );
    sleeper.signal(9).unwrap();
    assert_eq!(sleeper.wait().unwrap(), ExitStatus::Signaled(9));
    sleeper.delete().unwrap();
    assert!(matches!(sleeper.wait(), Err(AgentError::Refused { .. })));
}

#[test]
fn ten_mib_through_stdin_and_back() {
    if !root_or_skip("ten_mib_through_stdin_and_back") {
        return;
    }
    let agent = Agent::start();
    let client = Arc::new(agent.client());
    // Not compressible, not periodic: a small xorshift generator.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let input: Vec<u8> = (0..10 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let (status, out, err) = run(&client, &sh("cat; echo done >&2"), Some(&input));
    assert_eq!(status, ExitStatus::Exited(0));
    assert_eq!(err.text(), "done\n");
    let output = out.bytes();
    assert_eq!(output.len(), input.len());
    assert!(output == input, "the bytes that came back differ");
}

#[test]
fn stdout_and_stderr_stay_apart() {
    if !root_or_skip("stdout_and_stderr_stay_apart") {
        return;
    }
    let agent = Agent::start();
    let client = Arc::new(agent.client());
    let (status, out, err) = run(
        &client,
        &sh("for i in 1 2 3; do echo out$i; echo err$i >&2; done"),
        None,
    );
    assert_eq!(status, ExitStatus::Exited(0));
    assert_eq!(out.text(), "out1\nout2\nout3\n");
    assert_eq!(err.text(), "err1\nerr2\nerr3\n");
}

#[test]
fn env_cwd_user_and_groups() {
    if !root_or_skip("env_cwd_user_and_groups") {
        return;
    }
    let agent = Agent::start();
    let client = Arc::new(agent.client());
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut spec = sh("echo \"$GREETING\"; pwd; id -u; id -g; id -G; echo \"${HOME-unset}\"");
    spec.env.push("GREETING=hello world".into());
    spec.cwd = Some(dir.path().to_string_lossy().into_owned());
    spec.uid = 1234;
    spec.gid = 2345;
    spec.additional_gids = vec![3456, 4567];
    let (status, out, err) = run(&client, &spec, None);
    assert_eq!(status, ExitStatus::Exited(0), "stderr: {}", err.text());
    let expected = format!(
        "hello world\n{}\n1234\n2345\n2345 3456 4567\nunset\n",
        dir.path().display()
    );
    assert_eq!(out.text(), expected);
}

#[test]
fn failures_to_start_are_named() {
    if !root_or_skip("failures_to_start_are_named") {
        return;
    }
    let agent = Agent::start();
    let client = Arc::new(agent.client());
    let mut spec = sh("true");
    spec.cwd = Some("/no/such/dir".into());
    let err = ProcessHandle::start(client.clone(), &spec)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("chdir") && err.contains("/no/such/dir"),
        "{err}"
    );
    let spec = ProcessSpec {
        argv: vec!["no-such-program".into()],
        ..Default::default()
    };
    let err = ProcessHandle::start(client.clone(), &spec)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("not found in PATH"), "{err}");
    // Neither left anything behind.
    assert_eq!(client.list_processes().unwrap(), vec![]);
}

#[test]
fn a_real_pty_that_follows_resizes() {
    if !root_or_skip("a_real_pty_that_follows_resizes") {
        return;
    }
    let agent = Agent::start();
    let client = Arc::new(agent.client());
    let mut spec = sh("tty; stty size; test -t 0 && test -t 2 && echo all-tty");
    spec.tty = Some((24, 80));
    let (status, out, err) = run(&client, &spec, None);
    assert_eq!(status, ExitStatus::Exited(0));
    assert_eq!(err.text(), "");
    let text = out.text();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("/dev/pts/"), "{text:?}");
    // "\r\n": the pty's line discipline turned each newline around.
    assert_eq!(text, format!("{}\r\n24 80\r\nall-tty\r\n", lines[0]));

    let mut spec = sh("stty -echo; echo ready; read line; stty size");
    spec.tty = Some((24, 80));
    spec.stdin = true;
    let process = ProcessHandle::start(client.clone(), &spec).unwrap();
    let mut seen = String::new();
    while !seen.contains("ready") {
        match process
            .read(Stream::Stdout, Duration::from_secs(5))
            .unwrap()
        {
            Output::Data(d) => seen.push_str(&String::from_utf8_lossy(&d)),
            Output::Eof => panic!("ended early: {seen:?}"),
        }
    }
    process.resize(40, 100).unwrap();
    process.write_stdin(b"go\n").unwrap();
    let mut rest = SharedBuf::default();
    process.pump_output(Stream::Stdout, &mut rest).unwrap();
    assert_eq!(process.wait().unwrap(), ExitStatus::Exited(0));
    assert_eq!(rest.text().trim(), "40 100");
    process.delete().unwrap();
}

#[test]
fn ten_processes_in_parallel() {
    if !root_or_skip("ten_processes_in_parallel") {
        return;
    }
    let agent = Agent::start();
    let client = Arc::new(agent.client());
    let threads: Vec<_> = (0..10u8)
        .map(|n| {
            let client = client.clone();
            std::thread::spawn(move || {
                let (status, out, _) = run(
                    &client,
                    &sh(&format!("sleep 0.5; echo {n}; exit {n}")),
                    None,
                );
                (n, status, out.text())
            })
        })
        .collect();
    let start = std::time::Instant::now();
    for t in threads {
        let (n, status, out) = t.join().unwrap();
        assert_eq!(status, ExitStatus::Exited(n));
        assert_eq!(out, format!("{n}\n"));
    }
    // In parallel, not one after another (10 × 0.5 s).
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(client.list_processes().unwrap(), vec![]);
}

#[test]
fn list_shows_running_and_ended_processes() {
    if !root_or_skip("list_shows_running_and_ended_processes") {
        return;
    }
    let agent = Agent::start();
    let client = Arc::new(agent.client());
    let done = ProcessHandle::start(client.clone(), &sh("exit 3")).unwrap();
    assert_eq!(done.wait().unwrap(), ExitStatus::Exited(3));
    let running = ProcessHandle::start(client.clone(), &sh("exec sleep 100")).unwrap();
    let list = client.list_processes().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].id, done.id());
    assert_eq!(list[0].status, Some(ExitStatus::Exited(3)));
    assert_eq!(list[1].id, running.id());
    assert_eq!(list[1].status, None);
    assert_eq!(list[1].argv[0], "sh");
    running.delete().unwrap();
    done.delete().unwrap();
    assert_eq!(client.list_processes().unwrap(), vec![]);
}

#[test]
fn an_agent_gone_under_a_running_session_is_a_prompt_clear_error() {
    if !root_or_skip("an_agent_gone_under_a_running_session_is_a_prompt_clear_error") {
        return;
    }
    let mut agent = Agent::start();
    let client = Arc::new(agent.client());
    let out = SharedBuf::default();
    let io = SessionIo {
        stdin: None,
        stdout: Box::new(out.clone()),
        stderr: Box::new(std::io::sink()),
        terminal: None,
    };
    let session = {
        let client = client.clone();
        std::thread::spawn(move || run_session(client, &sh("echo started; exec sleep 3"), io))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !out.text().contains("started") {
        assert!(
            std::time::Instant::now() < deadline,
            "the process never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let killed = std::time::Instant::now();
    agent.kill();
    let err = session.join().unwrap().unwrap_err();
    // Well before the call deadline: the hang-up ends every pending call.
    assert!(
        killed.elapsed() < Duration::from_secs(2),
        "{:?}",
        killed.elapsed()
    );
    assert!(matches!(err, AgentError::Transport { .. }), "{err}");
    assert!(err.to_string().contains("the connection failed"), "{err}");
    assert!(client.guest_info().is_err());
}

#[test]
fn processes_inherit_only_their_stdio() {
    if !root_or_skip("processes_inherit_only_their_stdio") {
        return;
    }
    let agent = Agent::start();
    let client = Arc::new(agent.client());
    // Busy the agent with another connection and process first: none of
    // their descriptors may leak into the next process.
    let other = agent.client();
    let _sleeper = ProcessHandle::start(Arc::new(other), &sh("exec sleep 5")).unwrap();
    let mut spec = sh("exec ls /proc/self/fd");
    spec.stdin = true;
    let (status, out, _) = run(&client, &spec, Some(b""));
    assert_eq!(status, ExitStatus::Exited(0));
    // 3 is the directory ls reads.
    assert_eq!(
        out.text().split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3"]
    );
}

#[test]
fn stdin_closed_or_abandoned() {
    if !root_or_skip("stdin_closed_or_abandoned") {
        return;
    }
    let agent = Agent::start();
    let client = Arc::new(agent.client());
    // No stdin: /dev/null, so cat ends at once.
    let (status, out, _) = run(&client, &sh("cat; echo end"), None);
    assert_eq!(status, ExitStatus::Exited(0));
    assert_eq!(out.text(), "end\n");
    // A process that stops reading early: the session still ends with its
    // status, the rest of the input dropped.
    let input = vec![b'y'; 4 << 20];
    let (status, out, _) = run(&client, &sh("head -c 10"), Some(&input));
    assert_eq!(status, ExitStatus::Exited(0));
    assert_eq!(out.text(), "yyyyyyyyyy");
}
