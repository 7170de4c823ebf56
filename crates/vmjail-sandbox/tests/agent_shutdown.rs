//! `Shutdown` for real: the agent syncs and calls reboot(POWER_OFF). Run
//! as pid 1 of its own PID namespace, that ends the namespace (the kernel
//! kills its init) instead of the machine.

mod agent_support;

use std::time::{Duration, Instant};

use agent_support::{root_or_skip, Agent};

fn pid_namespace(pid: u32) -> std::path::PathBuf {
    std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap()
}

#[test]
fn shutdown_powers_off_the_agents_pid_namespace() {
    if !root_or_skip("shutdown_powers_off_the_agents_pid_namespace") {
        return;
    }
    let mut agent = Agent::start_in_pid_namespace();
    let client = agent.client();
    assert!(client.guest_info().is_ok());
    let children =
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", agent.pid())).unwrap();
    let agent_pid: u32 = children.split_whitespace().next().unwrap().parse().unwrap();
    // Never power off the test machine: only go on inside another namespace.
    assert_ne!(pid_namespace(agent_pid), pid_namespace(std::process::id()));

    client.shutdown().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = agent.try_wait() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the agent's namespace still runs"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // unshare re-raises the signal its child died of: the kernel reports a
    // pid namespace's power-off as its init killed by SIGINT.
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(2),
        "{status:?}"
    );
}
