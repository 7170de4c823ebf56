//! The full VMM-side lifecycle every jailed-Firecracker test drives: create
//! in a netns, tap, start, state, pause/resume, attach/detach twice, stop
//! from a reattached record, then check nothing is left.

use std::cell::RefCell;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::time::Duration;

use vmjail_config::RuntimeConfig;
use vmjail_vmm::firecracker::Firecracker;
use vmjail_vmm::{BlockDevice, Hypervisor, NetInterface, VmState, VmmRecord};

use super::host::{mounts_under, Netns};
use super::logs;

/// Returns how long the stop took; `stop_timeout` bounds each of its waits
/// (for the VMM to end after Ctrl-Alt-Del, after SIGTERM, after SIGKILL).
pub fn full_lifecycle(
    config: &RuntimeConfig,
    jailer_exe: &Path,
    id: &str,
    netns: &Netns,
    disk: &Path,
    stop_timeout: Duration,
) -> Duration {
    logs::capture();
    let saved: RefCell<Vec<VmmRecord>> = RefCell::new(Vec::new());
    let mut recorder = |r: &VmmRecord| {
        saved.borrow_mut().push(r.clone());
        Ok(())
    };
    let mut fc = Firecracker::new(config, jailer_exe)
        .unwrap()
        .with_placeholder_drives(2);
    let console = tempfile::NamedTempFile::new().unwrap();
    let console_fd = console.as_file().try_clone().unwrap().into();
    fc.create(id, &netns.path(), console_fd, &mut recorder)
        .unwrap();

    let record = fc.record().clone();
    let pid = fc.pid().expect("a VMM pid");
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    // Runs as the jail's uid in the sandbox netns.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains("65534")),
        "{status}"
    );
    let vmm_netns = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let netns_inode = nix::sys::stat::stat(&netns.path()).unwrap().st_ino;
    assert!(
        vmm_netns
            .to_string_lossy()
            .contains(&netns_inode.to_string()),
        "{vmm_netns:?}"
    );
    // Recorded before it was created: the last save knows the pid and mounts.
    let last = saved.borrow().last().cloned().unwrap();
    assert_eq!(last.jail.vmm_pid, Some(pid));
    assert!(!last.jail.mounts.is_empty());
    assert!(record.api_socket.starts_with(record.jail.root()));
    // The console is the descriptor it was given, as stdout and stderr.
    for fd in [1, 2] {
        let target = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap();
        assert_eq!(target, console.path(), "fd {fd}");
    }

    // The hybrid vsock, configured (PUT /vsock) before InstanceStart: the
    // record names its socket in the jail, which Firecracker serves.
    let vsock = last.vsock.clone().expect("a vsock record");
    assert_eq!(vsock.guest_cid, 3);
    let uds = vmjail_jail::host_path(&record.jail.root(), &vsock.uds_path);
    assert!(
        std::fs::symlink_metadata(&uds)
            .unwrap()
            .file_type()
            .is_socket(),
        "{}",
        uds.display()
    );
    std::os::unix::net::UnixStream::connect(&uds).unwrap();

    assert_eq!(fc.state().unwrap(), VmState::Created);
    fc.add_network_interface(
        &NetInterface {
            id: "eth0".into(),
            tap_name: "fctap0".into(),
            guest_mac: Some("AA:FC:00:00:00:01".into()),
        },
        &mut recorder,
    )
    .unwrap();
    // The tap reached the saved record (it was saved before the tap was made).
    assert!(saved
        .borrow()
        .last()
        .unwrap()
        .taps
        .contains(&"fctap0".to_string()));
    assert!(vmjail_vmm::net::link_exists(&netns.path(), "fctap0").unwrap());

    fc.start(Duration::from_secs(5)).unwrap();
    assert_eq!(fc.state().unwrap(), VmState::Running);
    // Both FIFOs reach vmjail's log: the logger's lines, and the metrics
    // line each flush writes (Firecracker may have written some already).
    let waited = Duration::from_secs(5);
    assert!(
        logs::wait_for_lines(id, "log", "", 1, waited),
        "nothing from the log FIFO: {}",
        logs::all()
    );
    let flushed = logs::lines(id, "metrics", "utc_timestamp_ms").len();
    fc.flush_metrics().unwrap();
    assert!(
        logs::wait_for_lines(id, "metrics", "utc_timestamp_ms", flushed + 1, waited),
        "no metrics line after FlushMetrics: {}",
        logs::all()
    );
    fc.pause().unwrap();
    assert_eq!(fc.state().unwrap(), VmState::Paused);
    fc.resume().unwrap();
    assert_eq!(fc.state().unwrap(), VmState::Running);

    // Attach: bind-mounted into the jail, swapped in by PATCH; detach
    // restores the placeholder and unmounts, so attaches do not stack.
    for round in 0..2 {
        fc.attach_block(
            &BlockDevice {
                id: "vol1".into(),
                host_path: disk.to_path_buf(),
                read_only: false,
            },
            &mut recorder,
        )
        .unwrap_or_else(|e| panic!("attach round {round}: {e}"));
        let (_, in_jail) = fc.record().drives[0].clone();
        let host = vmjail_jail::host_path(&record.jail.root(), &in_jail);
        assert!(mounts_under(&record.jail.jail_dir).contains(&host.to_string_lossy().into_owned()));
        assert!(saved.borrow().last().unwrap().jail.mounts.contains(&host));
        fc.detach_block("vol1", &mut recorder).unwrap();
        assert!(fc.record().drives.is_empty());
        assert!(saved.borrow().last().unwrap().drives.is_empty());
        assert!(!mounts_under(&record.jail.jail_dir).contains(&host.to_string_lossy().into_owned()));
    }
    let err = fc.detach_block("vol1", &mut recorder).unwrap_err();
    assert!(err.to_string().contains("vol1"), "{err}");

    // Another process stops it from the saved record.
    let mut other = Firecracker::from_record(fc.record().clone(), config, jailer_exe);
    let stopping = std::time::Instant::now();
    other.stop(stop_timeout).unwrap();
    let stopped_after = stopping.elapsed();
    // Gone, or at most a zombie its reaper has not collected yet.
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = state
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .next()
        .unwrap_or("gone");
    assert!(
        matches!(state, "gone" | "Z" | "X"),
        "VMM still running (state {state}) after stop took {stopped_after:?}"
    );
    // And not just its leader: no thread of it is left holding its fds.
    assert!(
        !vmjail_jail::process::is_alive(pid, record.jail.vmm_start_time),
        "VMM threads still exiting after stop took {stopped_after:?}: {:?}",
        vmjail_jail::process::threads(pid)
    );
    assert_eq!(other.state().unwrap(), VmState::Stopped);
    assert!(mounts_under(&record.jail.jail_dir).is_empty());
    assert!(!record.jail.jail_dir.exists(), "jail dir left behind");
    for cgroup in &other.record().jail.cgroups {
        assert!(!cgroup.exists(), "cgroup {} left behind", cgroup.display());
    }
    assert!(!vmjail_vmm::net::link_exists(&netns.path(), "fctap0").unwrap());
    other.stop(Duration::from_secs(1)).unwrap();
    stopped_after
}
