//! OCI containers through the real agent (as root, on the host): a
//! busybox-static rootfs and a config.json made here; the container's
//! process sees itself as pid 1, its hostname, user, groups, env, cwd,
//! rlimits, no_new_privs, a read-only root and its own mounts; it waits
//! for StartContainer; nothing of it reaches the host's mount table.

mod agent_support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use agent_support::{bundle, bundle_with, root_or_skip, Agent, SharedBuf};
use vmjail_sandbox::agent::{AgentError, ExitStatus, Output, ProcessHandle, Stream};

fn output_of(process: &ProcessHandle) -> String {
    let mut out = SharedBuf::default();
    process.pump_output(Stream::Stdout, &mut out).unwrap();
    out.text()
}

#[test]
fn a_container_as_its_config_says() {
    if !root_or_skip("a_container_as_its_config_says") {
        return;
    }
    let agent = Agent::start();
    let client = Arc::new(agent.client());
    let dir = tempfile::tempdir().unwrap();
    bundle(
        dir.path(),
        // Mount options from mountinfo (field 5 the mount point, 6 its
        // options; the last entry for a point is the one on top): the uid
        // alone would make writes fail either way.
        "echo pid=$$; hostname; id -u; id -g; id -G; pwd; echo $FOO; \
         ro() { awk -v p=$1 '$5 == p { o = $6 } END { print (o ~ /^ro/) ? \"ro\" : \"rw\" }' /proc/self/mountinfo; }; \
         echo root-$(ro /) sys-$(ro /proc/sys) tmp-$(ro /tmp); \
         touch /tmp/y && echo tmp-writable; grep NoNewPrivs /proc/self/status; ulimit -n; \
         echo hi > /dev/null && echo devnull; test -s /proc/kcore || echo kcore-masked; \
         grep -E '^Cap(Bnd|Eff|Amb)' /proc/self/status; exit 3",
    );
    let bundle_path = dir.path().to_string_lossy().into_owned();
    let process =
        ProcessHandle::create_container(client.clone(), "c1", &bundle_path, None, false).unwrap();
    // Set up, but its command waits for StartContainer.
    assert_eq!(
        process.wait_timeout(Duration::from_millis(300)).unwrap(),
        None
    );
    assert_eq!(
        process
            .read(Stream::Stdout, Duration::from_millis(100))
            .unwrap(),
        Output::Data(Vec::new())
    );
    let again = client.create_container("c1", &bundle_path, None, false);
    assert!(
        matches!(again, Err(AgentError::Refused { .. })),
        "{again:?}"
    );

    client.start_container("c1").unwrap();
    let text = output_of(&process);
    assert_eq!(process.wait().unwrap(), ExitStatus::Exited(3));
    assert_eq!(
        text,
        "pid=1\nbox\n1000\n1000\n1000 1001\n/tmp\nbar\nroot-ro sys-ro tmp-rw\ntmp-writable\n\
         NoNewPrivs:\t1\n123\ndevnull\nkcore-masked\n\
         CapEff:\t0000000000000000\nCapBnd:\t0000000000000000\nCapAmb:\t0000000000000000\n"
    );
    client.delete_container("c1").unwrap();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&bundle_path),
        "the container's mounts reached the host"
    );
}

#[test]
fn deleted_before_start_and_killed_while_running() {
    if !root_or_skip("deleted_before_start_and_killed_while_running") {
        return;
    }
    let agent = Agent::start();
    let client = Arc::new(agent.client());
    let dir = tempfile::tempdir().unwrap();
    bundle(dir.path(), "echo started; exec sleep 100");
    let bundle_path = dir.path().to_string_lossy().into_owned();

    let never =
        ProcessHandle::create_container(client.clone(), "c2", &bundle_path, None, false).unwrap();
    client.delete_container("c2").unwrap();
    assert!(never.wait().is_err(), "the process outlived its container");

    let running =
        ProcessHandle::create_container(client.clone(), "c3", &bundle_path, None, false).unwrap();
    client.start_container("c3").unwrap();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("started") {
        match running
            .read(Stream::Stdout, Duration::from_secs(5))
            .unwrap()
        {
            Output::Data(d) => seen.extend(d),
            Output::Eof => panic!("ended early"),
        }
    }
    let handle_pid = client.list_processes().unwrap()[0].pid;
    let children =
        std::fs::read_to_string(format!("/proc/{handle_pid}/task/{handle_pid}/children")).unwrap();
    let pid1: u32 = children.trim().parse().unwrap();
    running.signal(9).unwrap();
    assert_eq!(running.wait().unwrap(), ExitStatus::Signaled(9));
    // SIGKILL to the handle kills the container's pid 1 with it, though
    // it changed its uid (which clears a parent-death signal).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{pid1}")).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the container's pid 1 survived"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    client.delete_container("c3").unwrap();
    assert_eq!(client.list_processes().unwrap(), vec![]);
}

#[test]
fn concurrent_creates_of_one_id_make_one_container() {
    if !root_or_skip("concurrent_creates_of_one_id_make_one_container") {
        return;
    }
    let agent = Agent::start();
    let dir = tempfile::tempdir().unwrap();
    bundle(dir.path(), "exit 0");
    let bundle_path = dir.path().to_string_lossy().into_owned();
    let barrier = std::sync::Barrier::new(4);
    let outcomes: Vec<Result<u64, String>> = std::thread::scope(|s| {
        let racers: Vec<_> = (0..4)
            .map(|_| {
                let client = agent.client();
                let (barrier, bundle_path) = (&barrier, &bundle_path);
                s.spawn(move || {
                    barrier.wait();
                    client
                        .create_container("same", bundle_path, None, false)
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    for refused in outcomes.iter().filter_map(|o| o.as_ref().err()) {
        assert!(refused.contains("exists already"), "{refused}");
    }
    let client = agent.client();
    client.delete_container("same").unwrap();
    assert_eq!(client.list_processes().unwrap(), vec![]);
}

#[test]
fn a_bad_bundle_is_named() {
    if !root_or_skip("a_bad_bundle_is_named") {
        return;
    }
    let agent = Agent::start();
    let client = Arc::new(agent.client());
    let dir = tempfile::tempdir().unwrap();
    let err = client
        .create_container("c4", &dir.path().to_string_lossy(), None, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("config.json"), "{err}");
    let err = client
        .create_container("bad id!", "/x", None, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("container id"), "{err}");
    assert_eq!(client.list_processes().unwrap(), vec![]);
}

#[test]
fn capabilities_as_the_spec_lists_them() {
    if !root_or_skip("capabilities_as_the_spec_lists_them") {
        return;
    }
    let agent = Agent::start();
    let client = Arc::new(agent.client());
    let dir = tempfile::tempdir().unwrap();
    let script = "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status; \
                  chown 1234 /tmp && echo chown-ok; mknod /tmp/n c 1 3 2>/dev/null || echo mknod-denied";
    bundle_with(dir.path(), script, |config| {
        config["process"]["user"] = serde_json::json!({ "uid": 0, "gid": 0 });
        config["process"]["capabilities"] = serde_json::json!({
            "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "effective": ["CAP_CHOWN", "CAP_KILL"],
            "permitted": ["CAP_CHOWN", "CAP_KILL"],
            "inheritable": ["CAP_KILL"],
            "ambient": ["CAP_KILL"]
        });
    });
    let bundle_path = dir.path().to_string_lossy().into_owned();
    let process =
        ProcessHandle::create_container(client.clone(), "caps", &bundle_path, None, false).unwrap();
    client.start_container("caps").unwrap();
    let text = output_of(&process);
    assert_eq!(process.wait().unwrap(), ExitStatus::Exited(0));
    // CHOWN is bit 0, KILL 5, NET_BIND_SERVICE 10: exactly the spec's sets
    // (no_new_privs keeps a root exec from taking the whole bounding set).
    assert_eq!(
        text,
        "CapInh:\t0000000000000020\nCapPrm:\t0000000000000021\nCapEff:\t0000000000000021\n\
         CapBnd:\t0000000000000421\nCapAmb:\t0000000000000020\nchown-ok\nmknod-denied\n"
    );
    client.delete_container("caps").unwrap();
}

#[test]
fn a_container_on_a_pty() {
    if !root_or_skip("a_container_on_a_pty") {
        return;
    }
    let agent = Agent::start();
    let client = Arc::new(agent.client());
    let dir = tempfile::tempdir().unwrap();
    bundle(
        dir.path(),
        "stty size; test -t 0 && test -t 1 && echo on-a-tty",
    );
    let bundle_path = dir.path().to_string_lossy().into_owned();
    let process =
        ProcessHandle::create_container(client.clone(), "tty", &bundle_path, Some((33, 99)), false)
            .unwrap();
    client.start_container("tty").unwrap();
    let text = output_of(&process);
    assert_eq!(process.wait().unwrap(), ExitStatus::Exited(0));
    assert_eq!(text, "33 99\r\non-a-tty\r\n");
    client.delete_container("tty").unwrap();
}

/// A symlink in the rootfs pointing outside it (another container's tree,
/// a host path) is resolved inside the rootfs for every mount point the
/// agent makes or mounts on: nothing is created or mounted outside it.
#[test]
fn symlinks_in_the_rootfs_cannot_place_mounts_outside_it() {
    if !root_or_skip("symlinks_in_the_rootfs_cannot_place_mounts_outside_it") {
        return;
    }
    let agent = Agent::start();
    let client = Arc::new(agent.client());
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let (away, made) = (outside.path().join("away"), outside.path().join("made"));
    std::fs::create_dir(&away).unwrap();
    let script = format!(
        "grep -c ' {} ' /proc/self/mountinfo; test -d {}/x && echo made-inside",
        away.display(),
        made.display()
    );
    bundle_with(dir.path(), &script, |config| {
        let mounts = config["mounts"].as_array_mut().unwrap();
        mounts.push(serde_json::json!(
            { "destination": "/mnt", "type": "tmpfs", "source": "tmpfs" }
        ));
        mounts.push(serde_json::json!(
            { "destination": "/mnt2/x", "type": "tmpfs", "source": "tmpfs" }
        ));
    });
    let rootfs = dir.path().join("rootfs");
    std::os::unix::fs::symlink(&away, rootfs.join("mnt")).unwrap();
    std::os::unix::fs::symlink(&made, rootfs.join("mnt2")).unwrap();
    let bundle_path = dir.path().to_string_lossy().into_owned();
    let process =
        ProcessHandle::create_container(client.clone(), "links", &bundle_path, None, false)
            .unwrap();
    client.start_container("links").unwrap();
    let text = output_of(&process);
    assert_eq!(process.wait().unwrap(), ExitStatus::Exited(0), "{text}");
    // The tmpfs is on the link's target as seen from inside the rootfs...
    assert_eq!(text, "1\nmade-inside\n");
    // ...and the real outside paths were never touched.
    assert!(
        !made.exists(),
        "a mount point was created outside the rootfs"
    );
    assert_eq!(std::fs::read_dir(&away).unwrap().count(), 0);
    client.delete_container("links").unwrap();
}

#[test]
fn binds_come_only_from_the_bundles_binds_dir() {
    if !root_or_skip("binds_come_only_from_the_bundles_binds_dir") {
        return;
    }
    let agent = Agent::start();
    let client = Arc::new(agent.client());
    let dir = tempfile::tempdir().unwrap();
    let script = "cat /etc/hosts /data/in; echo w > /data/out && echo data=rw; \
                  if touch /ro/x 2>/dev/null; then echo ro=rw; else echo ro=ro; fi";
    bundle_with(dir.path(), script, |config| {
        config["process"]["user"] = serde_json::json!({"uid": 0, "gid": 0});
        let mounts = config["mounts"].as_array_mut().unwrap();
        for (dest, source, options) in [
            (
                "/etc/hosts",
                "binds/0",
                serde_json::json!(["rbind", "rprivate"]),
            ),
            ("/data", "binds/1", serde_json::json!(["rbind", "rw"])),
            ("/ro", "binds/2", serde_json::json!(["bind", "ro"])),
        ] {
            mounts.push(serde_json::json!(
                {"destination": dest, "type": "bind", "source": source, "options": options}
            ));
        }
    });
    let binds = dir.path().join("binds");
    std::fs::create_dir_all(binds.join("1")).unwrap();
    std::fs::create_dir_all(binds.join("2")).unwrap();
    std::fs::write(binds.join("0"), "10.0.0.9 bound\n").unwrap();
    std::fs::write(binds.join("1/in"), "in\n").unwrap();
    let bundle_path = dir.path().to_string_lossy().into_owned();
    let process =
        ProcessHandle::create_container(client.clone(), "binds", &bundle_path, None, false)
            .unwrap();
    client.start_container("binds").unwrap();
    let text = output_of(&process);
    assert_eq!(process.wait().unwrap(), ExitStatus::Exited(0), "{text}");
    assert_eq!(text, "10.0.0.9 bound\nin\ndata=rw\nro=ro\n");
    assert_eq!(std::fs::read_to_string(binds.join("1/out")).unwrap(), "w\n");
    client.delete_container("binds").unwrap();

    // Any other source (a guest path, a path out of binds/) is refused,
    // and so is a binds/<n> that is a symlink (it could name anything).
    let outside = tempfile::tempdir().unwrap();
    for (n, source) in ["/etc", "rootfs/bin", "binds/0/../../rootfs", "binds/3"]
        .into_iter()
        .enumerate()
    {
        let dir = tempfile::tempdir().unwrap();
        bundle_with(dir.path(), "true", |config| {
            config["mounts"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!(
                    {"destination": "/x", "type": "bind", "source": source}
                ));
        });
        std::fs::create_dir(dir.path().join("binds")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("binds/3")).unwrap();
        let id = format!("bad{n}");
        let err = client
            .create_container(&id, &dir.path().to_string_lossy(), None, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("mount /x"), "{source}: {err}");
    }
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    assert_eq!(client.list_processes().unwrap(), vec![]);
}
