//! The real agent binary, on a Unix socket and on vsock loopback: version
//! handshake and guest info.

mod agent_support;

use agent_support::{root_or_skip, Agent};

#[test]
fn version_and_guest_info_over_a_unix_socket() {
    if !root_or_skip("version_and_guest_info_over_a_unix_socket") {
        return;
    }
    let agent = Agent::start();
    let client = agent.client();
    let info = client.guest_info().unwrap();
    let release = nix::sys::utsname::uname().unwrap();
    assert_eq!(info.kernel_release, release.release().to_string_lossy());
    assert!(info.cpus >= 1);
    assert!(info.memory_total_bytes > info.memory_free_bytes);
    assert!(info.uptime.as_secs() > 0);
}

/// The mounts at the places a guest's agent mounts on (`--setup-guest`).
fn guest_setup_mount_points() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|line| {
            let point = line.split(' ').nth(4).unwrap_or("");
            point == "/dev/pts" || point == "/sys/fs/cgroup"
        })
        .map(str::to_owned)
        .collect()
}

/// The guest's listener: AF_VSOCK on any CID. This host has no vsock
/// loopback transport to connect through (the end-to-end test runs in a
/// VM), so this checks that the agent binds and keeps serving, and that
/// without `--setup-guest` it leaves the host's /dev/pts and /sys/fs/cgroup
/// alone (it once mounted over both whenever it listened on vsock).
#[test]
fn listens_on_vsock() {
    if !root_or_skip("listens_on_vsock") {
        return;
    }
    let mounts_before = guest_setup_mount_points();
    let port = 20_000 + std::process::id() % 20_000;
    let mut agent = Agent::start_vsock(port);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(
        agent.try_wait(),
        None,
        "the agent quit instead of listening on vsock:{port}"
    );
    let second = Agent::start_vsock(port).wait_exit();
    assert!(
        !second.success(),
        "a second agent bound the same vsock port"
    );
    drop(agent);
    assert_eq!(
        guest_setup_mount_points(),
        mounts_before,
        "an agent without --setup-guest mounted on the host"
    );
}
