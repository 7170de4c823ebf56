//! "Gone" means the whole thread group: a multi-threaded VMM whose leader is
//! already a zombie still holds its fds (taps, drives) through its other
//! threads. The probe ends that way with `--leader-exits-first`.

mod common;

use std::time::{Duration, Instant};

use common::probe_exe;
use vmjail_jail::process;

/// Long enough that even a loaded host sees the leader a zombie while the
/// thread still runs.
const LINGER: Duration = Duration::from_secs(3);

#[test]
fn a_zombie_leader_with_a_live_thread_is_alive_until_the_group_exits() {
    let mut child = std::process::Command::new(probe_exe())
        .args(["--leader-exits-first", &LINGER.as_millis().to_string()])
        .spawn()
        .unwrap();
    let launched = Instant::now();
    let pid = child.id() as i32;
    let started = process::start_time(pid);
    assert!(started.is_some());
    // Wait for the leader alone to exit.
    let deadline = Instant::now() + Duration::from_secs(10);
    while process::stat(pid).map(|(state, _)| state) != Some('Z') {
        assert!(
            Instant::now() < deadline,
            "the leader never became a zombie"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(process::threads(pid), Some(2), "the lingering thread");
    assert!(
        process::is_alive(pid, started),
        "a zombie leader with a live thread was taken for gone"
    );
    assert!(process::is_running(pid));
    assert!(process::wait_gone(pid, started, Duration::from_secs(10)));
    assert!(
        launched.elapsed() >= LINGER,
        "gone after {:?}, before the lingering thread ended",
        launched.elapsed()
    );
    assert!(!process::is_alive(pid, started));
    // wait_gone reaped our child.
    assert!(child.try_wait().is_err(), "not reaped");
}
