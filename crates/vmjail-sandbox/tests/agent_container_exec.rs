//! Processes inside a running container (`runc exec`) and the container's
//! own process by container id, through the real agent (as root, on the
//! host): an exec sees the container's root, hostname and pid namespace
//! with its own user, cwd and env; a command missing in the container
//! fails the call; signals by container id reach the container's process.

mod agent_support;

use std::sync::Arc;
use std::time::Duration;

use agent_support::{bundle, root_or_skip, Agent, SharedBuf};
use vmjail_sandbox::agent::{
    AgentClient, AgentError, ExitStatus, Output, ProcessHandle, ProcessSpec, Stream,
};

/// Reads `process`'s stdout until it holds `text`.
fn await_output(process: &ProcessHandle, text: &str) {
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains(text) {
        match process
            .read(Stream::Stdout, Duration::from_secs(5))
            .unwrap()
        {
            Output::Data(d) => seen.extend(d),
            Output::Eof => panic!("ended before {text:?}: {}", String::from_utf8_lossy(&seen)),
        }
    }
}

/// A started container `id` whose process runs `setup`, prints `ready`
/// and then runs `rest` of a shell script.
fn started(
    client: &Arc<AgentClient>,
    dir: &std::path::Path,
    id: &str,
    (setup, rest): (&str, &str),
) -> ProcessHandle {
    let dir = dir.join(id);
    bundle(&dir, &format!("{setup} echo ready; {rest}"));
    let bundle_path = dir.to_string_lossy().into_owned();
    let process =
        ProcessHandle::create_container(client.clone(), id, &bundle_path, None, false).unwrap();
    client.start_container(id).unwrap();
    await_output(&process, "ready");
    process
}

fn exec_spec(argv: &[&str]) -> ProcessSpec {
    ProcessSpec {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: vec!["PATH=/bin".into(), "WHO=exec".into()],
        cwd: Some("/tmp".into()),
        uid: 1234,
        gid: 1234,
        ..Default::default()
    }
}

#[test]
fn an_exec_runs_inside_the_container() {
    if !root_or_skip("an_exec_runs_inside_the_container") {
        return;
    }
    let agent = Agent::start();
    let client = Arc::new(agent.client());
    let dir = tempfile::tempdir().unwrap();
    let container = started(&client, dir.path(), "e1", ("", "exec sleep 100"));

    // The container's pid 1 is its sleep (once its shell exec'd it: the
    // exec may come right after `ready`); the exec's own pid is not 1;
    // its root is the container's read-only rootfs.
    let script = "echo host=$(hostname) uid=$(id -u) gid=$(id -g) cwd=$(pwd) who=$WHO; \
                  for i in $(seq 100); do [ $(cat /proc/1/comm) = sleep ] && break; sleep 0.05; done; \
                  echo pid1=$(cat /proc/1/comm) self=$$; \
                  touch /x 2>/dev/null || echo read-only; ls /bin/busybox; exit 7";
    let exec =
        ProcessHandle::exec_in_container(client.clone(), "e1", &exec_spec(&["sh", "-c", script]))
            .unwrap();
    let mut out = SharedBuf::default();
    let mut err = SharedBuf::default();
    exec.pump_output(Stream::Stdout, &mut out).unwrap();
    exec.pump_output(Stream::Stderr, &mut err).unwrap();
    assert_eq!(
        exec.wait().unwrap(),
        ExitStatus::Exited(7),
        "{}",
        err.text()
    );
    let text = out.text();
    assert!(
        text.contains("host=box uid=1234 gid=1234 cwd=/tmp who=exec"),
        "{text}"
    );
    assert!(text.contains("pid1=sleep"), "{text}");
    assert!(!text.contains("self=1\n"), "{text}");
    assert!(text.contains("read-only\n/bin/busybox"), "{text}");
    exec.delete().unwrap();

    // A command the container lacks (the host has it) fails the call,
    // and nothing is left in the agent but the container's process.
    let missing =
        ProcessHandle::exec_in_container(client.clone(), "e1", &exec_spec(&["/usr/bin/env"]));
    match missing {
        Err(AgentError::Refused { message, .. }) => {
            assert!(message.contains("/usr/bin/env"), "{message}")
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a command missing in the container ran"),
    }
    assert_eq!(client.list_processes().unwrap().len(), 1);

    // An exec dies with the container.
    let long =
        ProcessHandle::exec_in_container(client.clone(), "e1", &exec_spec(&["sleep", "100"]))
            .unwrap();
    container.signal(9).unwrap();
    assert_eq!(container.wait().unwrap(), ExitStatus::Signaled(9));
    assert!(long.wait().unwrap() != ExitStatus::Exited(0));
    // No exec into a container whose process ended.
    assert!(ProcessHandle::exec_in_container(client.clone(), "e1", &exec_spec(&["true"])).is_err());
    client.delete_container("e1").unwrap();
}

#[test]
fn signals_by_container_id_reach_its_process() {
    if !root_or_skip("signals_by_container_id_reach_its_process") {
        return;
    }
    let agent = Agent::start();
    let client = Arc::new(agent.client());
    let dir = tempfile::tempdir().unwrap();
    // A signal without a handler in the container's pid 1 would be
    // ignored from inside; this one traps USR1 and TERM.
    let container = started(
        &client,
        dir.path(),
        "s1",
        // The traps are set before `ready`: a signal sent earlier would
        // find no handler and be dropped.
        (
            "trap 'echo got-usr1' USR1; trap 'exit 3' TERM;",
            "while :; do sleep 0.05; done",
        ),
    );
    client
        .signal_container("s1", nix::libc::SIGUSR1, false)
        .unwrap();
    await_output(&container, "got-usr1");
    client
        .signal_container("s1", nix::libc::SIGTERM, false)
        .unwrap();
    assert_eq!(container.wait().unwrap(), ExitStatus::Exited(3));
    client.delete_container("s1").unwrap();

    // A stopped (unknown) container is named.
    match client.signal_container("s1", 9, false) {
        Err(AgentError::Refused { message, .. }) => assert!(message.contains("s1"), "{message}"),
        other => panic!("{other:?}"),
    }

    // `all` reaches every process of the container (here without a
    // cgroup: its process).
    let container = started(&client, dir.path(), "s2", ("", "exec sleep 100"));
    client.signal_container("s2", 9, true).unwrap();
    assert_eq!(container.wait().unwrap(), ExitStatus::Signaled(9));
    client.delete_container("s2").unwrap();
}
