//! The jail conformance suite, as root with real namespaces, mounts and
//! cgroups: a probe is jailed instead of a VMM and reports what it sees.
//! Each case runs against the built-in jailer and, when `VMJAIL_JAILER`
//! names one, Firecracker's jailer (vmjail-only guarantees excluded there).

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::Value;
use vmjail_jail::{teardown, CgroupVersion, Jail, JailError, JailRecord, Placement};

fn u64_of(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Launch a jail whose record skips `prepare`'s checks, so the jailer's own
/// validation is what is exercised.
fn launch_unchecked(
    kind: &Kind,
    customize: impl FnOnce(&mut vmjail_jail::JailSpec),
) -> Result<i32, JailError> {
    let base = base_dir();
    let probe = probe_file();
    let mut spec = spec(&unique("u"), &probe.path, base.path());
    customize(&mut spec);
    let record = JailRecord {
        id: spec.id.clone(),
        jail_dir: base.path().join("probe-firecracker").join(&spec.id),
        ..JailRecord::default()
    };
    let saved = Saved::default();
    let mut jail = Jail::from_record(spec, kind.jailer(), record);
    let result = jail.launch(&mut saved.recorder());
    let _ = teardown(&saved.get(), Duration::from_secs(2));
    result
}

#[test]
fn bad_ids_are_rejected_by_prepare_and_by_the_jailer() {
    for_each_jailer("bad_ids", |kind| {
        for id in [
            "",
            &"a".repeat(65),
            "a_b",
            "../etc",
            "a/b",
            "-",
            "--uid",
            "--allow-root",
        ] {
            let base = base_dir();
            let probe = probe_file();
            let spec = spec(id, &probe.path, base.path());
            let err =
                Jail::prepare(spec, kind.jailer(), &mut Saved::default().recorder()).unwrap_err();
            assert!(matches!(err, JailError::InvalidId { .. }), "{id:?}: {err}");
            let err = launch_unchecked(kind, |s| s.id = id.to_owned()).unwrap_err();
            if kind.builtin() {
                assert!(
                    err.to_string().contains("invalid sandbox id"),
                    "{id:?}: {err}"
                );
            }
        }
    });
}

#[test]
fn missing_or_non_regular_exec_files_are_rejected() {
    for_each_jailer("bad_exec_files", |kind| {
        let dir = tempfile::tempdir().unwrap();
        for exec in [
            dir.path().join("absent-firecracker"),
            dir.path().to_path_buf(),
        ] {
            let base = base_dir();
            let spec = spec(&unique("x"), &exec, base.path());
            let err =
                Jail::prepare(spec, kind.jailer(), &mut Saved::default().recorder()).unwrap_err();
            assert!(
                matches!(
                    err,
                    JailError::ExecFileAccess { .. } | JailError::ExecFileNotRegular { .. }
                ),
                "{exec:?}: {err}"
            );
            let err = launch_unchecked(kind, |s| s.exec_file = exec.clone()).unwrap_err();
            if kind.builtin() {
                assert!(err.to_string().contains("exec file"), "{err}");
            }
        }
    });
}

#[test]
fn chroot_base_must_be_a_directory_not_writable_by_others() {
    for_each_jailer("chroot_base", |kind| {
        let probe = probe_file();
        let open = tempfile::tempdir().unwrap();
        std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = Jail::prepare(
            spec(&unique("b"), &probe.path, open.path()),
            kind.jailer(),
            &mut Saved::default().recorder(),
        )
        .unwrap_err();
        assert!(
            matches!(err, JailError::ChrootBaseWorldWritable { .. }),
            "{err}"
        );
        let err = Jail::prepare(
            spec(&unique("b"), &probe.path, &probe.path),
            kind.jailer(),
            &mut Saved::default().recorder(),
        )
        .unwrap_err();
        assert!(matches!(err, JailError::ChrootBaseNotDir { .. }), "{err}");
        if kind.builtin() {
            let err = launch_unchecked(kind, |s| s.chroot_base_dir = open.path().to_path_buf())
                .unwrap_err();
            assert!(err.to_string().contains("writable by root only"), "{err}");
        }
        // Review finding 10: group-writable is as unsafe as world-writable.
        std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o770)).unwrap();
        let err = Jail::prepare(
            spec(&unique("b"), &probe.path, open.path()),
            kind.jailer(),
            &mut Saved::default().recorder(),
        )
        .unwrap_err();
        assert!(
            matches!(err, JailError::ChrootBaseWorldWritable { .. }),
            "{err}"
        );
    });
}

#[test]
fn over_long_api_socket_path_is_rejected() {
    for_each_jailer("socket_length", |kind| {
        let base = base_dir();
        let probe = probe_file();
        let mut s = spec(&unique("s"), &probe.path, base.path());
        s.api_socket_in_jail = Some(PathBuf::from(format!("/run/{}.sock", "x".repeat(100))));
        let err = Jail::prepare(s, kind.jailer(), &mut Saved::default().recorder()).unwrap_err();
        assert!(matches!(err, JailError::SocketPathTooLong { .. }), "{err}");
        assert!(err.to_string().contains("107"), "{err}");
    });
}

/// A victim file on the host the jail must never write through.
fn victim() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("victim");
    std::fs::write(&path, b"host data").unwrap();
    (dir, path)
}

#[test]
fn symlink_or_hard_link_at_the_exec_destination_is_refused() {
    for_each_jailer("exec_destination", |kind| {
        for use_symlink in [true, false] {
            let (_victim_dir, host_victim) = victim();
            let base = base_dir();
            let probe = probe_file();
            let saved = Saved::default();
            let mut recorder = saved.recorder();
            let mut jail = Jail::prepare(
                spec(&unique("d"), &probe.path, base.path()),
                kind.jailer(),
                &mut recorder,
            )
            .unwrap();
            jail.place_shared_libraries(&mut recorder).unwrap();
            let dest = jail.root().join(jail.exec_name());
            // A symlink may point anywhere on the host; a hard link can only
            // be made within the jail's mount (a file the VMM could reach).
            let victim = if use_symlink {
                std::os::unix::fs::symlink(&host_victim, &dest).unwrap();
                host_victim.clone()
            } else {
                let inner = jail.root().join("victim");
                std::fs::write(&inner, b"host data").unwrap();
                std::fs::hard_link(&inner, &dest).unwrap();
                inner
            };
            jail.set_copy_exec_file(true);
            let result = jail.launch(&mut recorder);
            let content = std::fs::read(&victim).unwrap();
            teardown(&saved.get(), Duration::from_millis(500)).unwrap();
            let case = format!("symlink={use_symlink}");
            let err = result
                .err()
                .unwrap_or_else(|| panic!("{case}: launched through a planted destination"));
            assert_eq!(content, b"host data", "{case}");
            if kind.builtin() {
                let expected = if use_symlink { "symlink" } else { "hard links" };
                assert!(err.to_string().contains(expected), "{case}: {err}");
            }
        }
    });
}

#[test]
fn default_hierarchy_modes_and_owners() {
    for_each_jailer("default_hierarchy", |kind| {
        let run = launch(kind, |_| {}).unwrap();
        run.report();
        let root = run.jail.root();
        // `<exec>` and `<id>`: root's alone (review finding 1: nobody else
        // lists sandboxes or reaches into a jail); `prepare` makes them so
        // for either jailer, where Firecracker's has the umask's mode.
        for dir in [
            root.parent().unwrap(),
            root.parent().unwrap().parent().unwrap(),
        ] {
            let meta = std::fs::metadata(dir).unwrap();
            assert_eq!((meta.uid(), meta.gid()), (0, 0), "{}", dir.display());
            assert_eq!(meta.mode() & 0o7777, 0o700, "{}", dir.display());
        }
        // The root: a tmpfs, nosuid (and nodev with the built-in jailer,
        // whose device nodes live on a /dev of the jail's own).
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let line = mountinfo
            .lines()
            .find(|l| l.split(' ').nth(4) == root.to_str())
            .unwrap_or_else(|| panic!("the jail root is not a mount"));
        let options = line.split(' ').nth(5).unwrap();
        assert!(line.contains(" - tmpfs "), "{line}");
        assert!(options.contains("nosuid"), "{line}");
        assert_eq!(options.contains("nodev"), kind.builtin(), "{line}");
        let mut dirs = vec![root.clone(), root.join("dev"), root.join("run")];
        if !kind.builtin() {
            dirs.push(root.join("dev/net"));
        }
        for dir in dirs {
            let meta = std::fs::metadata(&dir).unwrap();
            assert_eq!(meta.mode() & 0o7777, 0o700, "{}", dir.display());
            assert_eq!((meta.uid(), meta.gid()), (UID, GID), "{}", dir.display());
        }
        let pid_file = std::fs::read_to_string(run.jail.pid_file());
        if kind.builtin() {
            assert_eq!(pid_file.unwrap().trim(), run.pid.to_string());
        }
    });
}

#[test]
fn identity_privileges_environment_and_fds() {
    for_each_jailer("identity", |kind| {
        let run = launch(kind, |s| {
            for p in [
                "/etc/passwd",
                "/proc",
                "/sys",
                "/old_root",
                "/usr/bin",
                "/tmp",
            ] {
                s.vmm_args.push("--check".into());
                s.vmm_args.push(p.into());
            }
        })
        .unwrap();
        let r = run.report();
        assert_eq!(r["uid"], serde_json::json!([UID, UID, UID]));
        assert_eq!(r["gid"], serde_json::json!([GID, GID, GID]));
        assert_eq!(r["groups"], serde_json::json!([]));
        let caps = &r["capabilities"];
        for set in ["effective", "permitted", "inheritable"] {
            assert_eq!(u64_of(&caps[set]), 0, "{set}: {caps}");
        }
        for (path, visible) in r["visible"].as_object().unwrap() {
            assert_eq!(
                visible,
                &Value::Bool(false),
                "{path} is visible in the jail: {r}"
            );
        }
        assert_eq!(r["cwd"], "/");
        // The host's view of the VMM's mount namespace: nothing of the old root.
        let mountinfo = std::fs::read_to_string(format!("/proc/{}/mountinfo", run.pid)).unwrap();
        for line in mountinfo.lines() {
            let mount_point = line.split(' ').nth(4).unwrap();
            assert!(!mount_point.contains("old_root"), "{line}");
            assert!(
                !["/proc", "/sys", "/etc", "/tmp"].contains(&mount_point),
                "{line}"
            );
        }
        assert_eq!(
            std::fs::read_link(format!("/proc/{}/root", run.pid)).unwrap(),
            Path::new("/"),
            "the VMM's root is its jail"
        );
        if kind.builtin() {
            assert_eq!(u64_of(&caps["bounding"]), 0, "{caps}");
            assert_eq!(u64_of(&caps["ambient"]), 0, "{caps}");
            assert_eq!(r["no_new_privs"], true);
            assert_eq!(r["env"], serde_json::json!([]));
            assert_eq!(r["fds"], serde_json::json!([0, 1, 2]));
            // The probe's own runtime ignores SIGPIPE, so only the mask is observable.
            assert_eq!(status_field(run.pid, "SigBlk"), "0000000000000000");
        }
    });
}

#[test]
fn device_nodes_have_host_numbers_mode_0600_and_the_jail_owner() {
    for_each_jailer("devices", |kind| {
        let run = launch(kind, |_| {}).unwrap();
        let r = run.report();
        let dev = r["dev"].as_array().unwrap();
        let find = |p: &str| dev.iter().find(|d| d["path"] == p).cloned();
        let mut expected = vec!["/dev/kvm", "/dev/net/tun"];
        if kind.builtin() {
            expected.push("/dev/urandom");
        }
        for path in expected {
            let host = std::fs::metadata(path);
            let Ok(host) = host else { continue };
            let d = find(path).unwrap_or_else(|| panic!("{path} missing in {dev:?}"));
            assert_eq!(d["kind"], "char", "{d}");
            assert_eq!(u64_of(&d["mode"]), 0o600, "{d}");
            assert_eq!(
                (u64_of(&d["uid"]), u64_of(&d["gid"])),
                (UID as u64, GID as u64),
                "{d}"
            );
            assert_eq!(
                u64_of(&d["major"]),
                nix::sys::stat::major(host.rdev()),
                "{d}"
            );
            assert_eq!(
                u64_of(&d["minor"]),
                nix::sys::stat::minor(host.rdev()),
                "{d}"
            );
        }
        if kind.builtin() {
            // Only what was asked for (and exists on the host).
            let nodes: Vec<_> = dev.iter().filter(|d| d["kind"] == "char").collect();
            assert_eq!(nodes.len(), 3, "{nodes:?}");
        }
    });
}

/// Review finding 5: an empty device list (QEMU under TCG) is no device
/// at all — above all no /dev/userfaultfd or /dev/kvm.
#[test]
fn an_empty_device_list_makes_no_device_node() {
    if !root_or_skip("no_devices") {
        return;
    }
    let run = launch(&Kind::BuiltIn, |s| s.devices.clear()).unwrap();
    let r = run.report();
    let nodes: Vec<_> = r["dev"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == "char")
        .collect();
    assert!(nodes.is_empty(), "{nodes:?}");
}

#[test]
fn explicit_device_list_is_honoured() {
    if !root_or_skip("explicit_devices") {
        return;
    }
    let run = launch(&Kind::BuiltIn, |s| {
        s.devices = vec!["/dev/kvm".into(), "/dev/vhost-vsock".into()]
    })
    .unwrap();
    let r = run.report();
    let chars: Vec<&str> = r["dev"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == "char")
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    let mut expected = vec!["/dev/kvm"];
    if Path::new("/dev/vhost-vsock").exists() {
        expected.push("/dev/vhost-vsock");
    }
    assert_eq!(chars, expected);
}

struct Netns(String);

impl Netns {
    fn new() -> Netns {
        let name = unique("vmjail-jt");
        let ok = std::process::Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(ok.success(), "ip netns add {name}");
        Netns(name)
    }

    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/var/run/netns/{}", self.0))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}

#[test]
fn joins_the_target_network_namespace() {
    for_each_jailer("netns", |kind| {
        let ns = Netns::new();
        let run = launch(kind, |s| s.netns = Some(ns.path())).unwrap();
        run.report();
        let inside = std::fs::metadata(format!("/proc/{}/ns/net", run.pid))
            .unwrap()
            .ino();
        assert_eq!(inside, std::fs::metadata(ns.path()).unwrap().ino());
        assert_ne!(
            inside,
            std::fs::metadata("/proc/self/ns/net").unwrap().ino()
        );
    });
}

#[test]
fn default_rlimits() {
    for_each_jailer("default_rlimits", |kind| {
        let run = launch(kind, |_| {}).unwrap();
        let r = run.report();
        assert_eq!(
            r["rlimit_nofile"],
            serde_json::json!({"soft": 2048, "hard": 2048})
        );
        assert_eq!(
            r["rlimit_fsize"],
            serde_json::json!({"soft": null, "hard": null})
        );
        assert_eq!(
            r["nofile_test"]["errno"],
            nix::errno::Errno::EMFILE as i32,
            "{}",
            r["nofile_test"]
        );
        assert_eq!(r["nofile_test"]["highest_fd"], 2047, "{}", r["nofile_test"]);
    });
}

#[test]
fn explicit_rlimits_bite() {
    for_each_jailer("explicit_rlimits", |kind| {
        let run = launch(kind, |s| {
            s.rlimit_fsize = Some(1 << 20);
            s.rlimit_no_file = 100;
        })
        .unwrap();
        let r = run.report();
        assert_eq!(
            r["rlimit_fsize"],
            serde_json::json!({"soft": 1 << 20, "hard": 1 << 20})
        );
        assert_eq!(
            r["fsize_test"]["signal"],
            libc::SIGXFSZ,
            "{}",
            r["fsize_test"]
        );
        assert_eq!(
            r["nofile_test"]["errno"],
            libc::EMFILE,
            "{}",
            r["nofile_test"]
        );
        assert_eq!(r["nofile_test"]["highest_fd"], 99, "{}", r["nofile_test"]);
    });
}

fn proc_cgroups(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap()
}

#[test]
fn cgroup_v1_values_parents_and_cpuset_inheritance() {
    for_each_jailer("cgroup_v1", |kind| {
        // Nested two deep, both levels new and unique to this run (another
        // suite on the host may be using a shared name at the same time).
        let parent = format!("{}/nested", unique("vmjail-jt"));
        let run = launch(kind, |s| {
            s.cgroup_version = CgroupVersion::V1;
            s.parent_cgroup = Some(parent.clone());
            s.cgroups = vec![
                ("cpu.shares".into(), "123".into()),
                ("cpuset.cpus".into(), "0".into()),
                ("pids.max".into(), "50".into()),
            ];
        })
        .unwrap();
        run.report();
        let id = &run.jail.record().id;
        let membership = proc_cgroups(run.pid);
        for controller in ["cpu", "cpuset", "pids"] {
            let leaf = format!("/sys/fs/cgroup/{controller}/{parent}/{id}");
            let line = format!(":{controller}:/{parent}/{id}");
            assert!(
                membership.lines().any(|l| l.ends_with(&line)),
                "{line} not in {membership}"
            );
            assert!(Path::new(&leaf).is_dir());
        }
        let read = |p: &str| {
            std::fs::read_to_string(format!("/sys/fs/cgroup/{p}/{parent}/{id}/{}", p_file(p)))
                .unwrap()
        };
        fn p_file(c: &str) -> &'static str {
            match c {
                "cpu" => "cpu.shares",
                "pids" => "pids.max",
                _ => "cpuset.mems",
            }
        }
        assert_eq!(read("cpu").trim(), "123");
        assert_eq!(read("pids").trim(), "50");
        // cpuset.mems was not given: inherited from the root.
        assert_eq!(
            read("cpuset").trim(),
            std::fs::read_to_string("/sys/fs/cgroup/cpuset/cpuset.mems")
                .unwrap()
                .trim()
        );
        let record = run.saved.get();
        drop(run);
        for dir in &record.cgroups {
            assert!(!dir.exists(), "{} left behind", dir.display());
        }
        assert!(!Path::new("/sys/fs/cgroup/cpu")
            .join(parent.split('/').next().unwrap())
            .exists());
    });
}

fn v2_root() -> PathBuf {
    PathBuf::from("/sys/fs/cgroup/unified")
}

#[test]
fn cgroup_v2_values_and_parents() {
    for_each_jailer("cgroup_v2", |kind| {
        let parent = unique("vmjail-jt2");
        let run = launch(kind, |s| {
            s.cgroup_version = CgroupVersion::V2;
            s.parent_cgroup = Some(format!("{parent}/sub"));
            s.cgroups = vec![
                ("hugetlb.2MB.max".into(), "0".into()),
                ("cgroup.max.descendants".into(), "3".into()),
            ];
        })
        .unwrap();
        run.report();
        let id = &run.jail.record().id;
        let leaf = v2_root().join(&parent).join("sub").join(id);
        assert!(
            proc_cgroups(run.pid)
                .lines()
                .any(|l| l == format!("0::/{parent}/sub/{id}")),
            "{}",
            proc_cgroups(run.pid)
        );
        assert_eq!(
            std::fs::read_to_string(leaf.join("cgroup.max.descendants"))
                .unwrap()
                .trim(),
            "3"
        );
        assert_eq!(
            std::fs::read_to_string(leaf.join("hugetlb.2MB.max"))
                .unwrap()
                .trim(),
            "0"
        );
        let sub_control =
            std::fs::read_to_string(v2_root().join(&parent).join("sub/cgroup.subtree_control"))
                .unwrap();
        assert!(sub_control.contains("hugetlb"), "{sub_control}");
        assert_eq!(
            std::fs::read_to_string(leaf.join("cgroup.procs"))
                .unwrap()
                .trim(),
            run.pid.to_string()
        );
        drop(run);
        assert!(!v2_root().join(&parent).exists(), "v2 cgroups left behind");
    });
}

/// Only core (`cgroup.*`) files: no controller involved. Firecracker's
/// jailer cannot write them (it takes `cgroup` for a controller); vmjail
/// writes them and has it join the prepared leaf.
#[test]
fn cgroup_v2_core_files_alone_still_place_the_vmm_in_its_leaf() {
    for_each_jailer("cgroup_v2_core", |kind| {
        let parent = unique("vmjail-jt2c");
        let run = launch(kind, |s| {
            s.cgroup_version = CgroupVersion::V2;
            s.parent_cgroup = Some(parent.clone());
            s.cgroups = vec![("cgroup.max.descendants".into(), "2".into())];
        })
        .unwrap();
        run.report();
        let id = &run.jail.record().id;
        let leaf = v2_root().join(&parent).join(id);
        assert!(
            proc_cgroups(run.pid)
                .lines()
                .any(|l| l == format!("0::/{parent}/{id}")),
            "{}",
            proc_cgroups(run.pid)
        );
        assert_eq!(
            std::fs::read_to_string(leaf.join("cgroup.max.descendants"))
                .unwrap()
                .trim(),
            "2"
        );
        drop(run);
        assert!(!v2_root().join(&parent).exists(), "v2 cgroups left behind");
    });
}

#[test]
fn cgroup_v2_busy_parent_is_a_clear_error() {
    for_each_jailer("cgroup_v2_busy", |kind| {
        let parent = unique("vmjail-jt-busy");
        let dir = v2_root().join(&parent);
        std::fs::create_dir(&dir).unwrap();
        let mut sleeper = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        std::fs::write(dir.join("cgroup.procs"), sleeper.id().to_string()).unwrap();
        let result = launch(kind, |s| {
            s.cgroup_version = CgroupVersion::V2;
            s.parent_cgroup = Some(parent.clone());
            s.cgroups = vec![("hugetlb.2MB.max".into(), "0".into())];
        });
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let _ = std::fs::remove_dir(&dir);
        let err = result.err().expect("a busy parent must fail");
        if kind.builtin() {
            let msg = err.to_string();
            assert!(msg.contains("busy") && msg.contains(&parent), "{msg}");
        }
    });
}

#[test]
fn unavailable_controllers_are_named() {
    for_each_jailer("unavailable_controllers", |kind| {
        for (version, setting) in [
            (CgroupVersion::V1, "bogus.value"),
            (CgroupVersion::V2, "memory.max"),
        ] {
            let err = launch(kind, |s| {
                s.cgroup_version = version;
                s.parent_cgroup = Some(unique("vmjail-jt-na"));
                s.cgroups = vec![(setting.into(), "1".into())];
            })
            .err()
            .expect("an unavailable controller must fail");
            if kind.builtin() {
                let controller = setting.split('.').next().unwrap();
                assert!(
                    err.to_string().contains(&format!("\"{controller}\"")),
                    "{err}"
                );
            }
        }
    });
}

#[test]
fn invalid_parent_cgroup_is_rejected() {
    for_each_jailer("parent_cgroup", |kind| {
        for parent in ["../escape", "/abs", "a/./b"] {
            let err = launch(kind, |s| {
                s.parent_cgroup = Some(parent.into());
                s.cgroups = vec![("cpu.shares".into(), "2".into())];
            })
            .err()
            .expect("bad parent accepted");
            assert!(
                matches!(err, JailError::InvalidParentCgroup { .. }),
                "{parent}: {err}"
            );
        }
    });
}

/// (session id, controlling tty number) of `pid`, from the host's
/// `/proc/<pid>/stat` (fields 6 and 7).
fn session_and_tty(pid: i32) -> (i32, i32) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    (fields[3].parse().unwrap(), fields[4].parse().unwrap())
}

#[test]
fn new_pid_ns_and_daemonize_matrix_with_kill_by_pid_file() {
    for_each_jailer("pid_ns_daemonize", |kind| {
        for (new_pid_ns, daemonize) in [(false, false), (true, false), (false, true), (true, true)]
        {
            let run = launch(kind, |s| {
                s.new_pid_ns = new_pid_ns;
                s.daemonize = daemonize;
            })
            .unwrap();
            let r = run.report();
            let case = format!("new_pid_ns={new_pid_ns} daemonize={daemonize}");
            let nstgid = status_field(run.pid, "NStgid");
            let ids: Vec<&str> = nstgid.split_whitespace().collect();
            assert_eq!(ids[0], run.pid.to_string(), "{case}: host pid");
            if new_pid_ns {
                assert_eq!(ids, [run.pid.to_string().as_str(), "1"], "{case}");
                assert_eq!(r["pid"], 1, "{case}");
            } else {
                assert_eq!(ids.len(), 1, "{case}: {nstgid}");
            }
            if new_pid_ns || kind.builtin() {
                let in_file = std::fs::read_to_string(run.jail.pid_file()).unwrap();
                assert_eq!(in_file.trim(), run.pid.to_string(), "{case}: pid file");
            }
            if daemonize {
                // Detached from the caller: a session of its own, no
                // controlling terminal.
                let (session, tty) = session_and_tty(run.pid);
                assert_ne!(
                    session,
                    session_and_tty(std::process::id() as i32).0,
                    "{case}"
                );
                assert_eq!(tty, 0, "{case}: a controlling terminal");
                if kind.builtin() {
                    assert_eq!(r["sid"], r["pid"], "{case}: a session leader");
                } else {
                    // Firecracker's jailer daemonizes by the classic double
                    // fork: the VMM runs in the session its parent made, and
                    // is not its leader (so it cannot acquire a terminal).
                    // The built-in jailer makes the VMM the leader itself.
                    assert_ne!(session, run.pid, "{case}");
                }
                for s in r["stdio"].as_array().unwrap() {
                    assert_eq!(
                        (u64_of(&s["major"]), u64_of(&s["minor"])),
                        (1, 3),
                        "{case}: {s}"
                    );
                }
            }
            let start = vmjail_jail::process::start_time(run.pid);
            assert_eq!(run.saved.get().vmm_start_time, start);
            run.teardown();
            assert!(
                !vmjail_jail::process::is_running(run.pid),
                "{case}: VMM survived teardown"
            );
        }
    });
}

#[test]
fn host_mounts_after_launch_propagate_into_the_jail() {
    for_each_jailer("propagation", |kind| {
        let mut run = launch(kind, |_| {}).unwrap();
        run.report();
        let asset_dir = tempfile::tempdir().unwrap();
        let asset = asset_dir.path().join("late-asset");
        std::fs::write(&asset, b"placed after launch").unwrap();
        let mut recorder = run.saved.recorder();
        run.jail
            .place(
                &mut recorder,
                &asset,
                Path::new("/late/asset"),
                Placement::ReadOnlyBind,
            )
            .unwrap();
        let seen = std::fs::read(format!("/proc/{}/root/late/asset", run.pid)).unwrap();
        assert_eq!(seen, b"placed after launch");
    });
}

#[test]
fn teardown_leaves_nothing_and_is_idempotent() {
    for_each_jailer("teardown", |kind| {
        let parent = unique("vmjail-jt-td");
        let run = launch(kind, |s| {
            s.new_pid_ns = true;
            s.parent_cgroup = Some(parent.clone());
            s.cgroups = vec![("cpu.shares".into(), "200".into())];
        })
        .unwrap();
        run.report();
        let record = run.saved.get();
        assert!(!record.cgroups.is_empty() && !record.mounts.is_empty());
        teardown(&record, Duration::from_secs(2)).unwrap();
        teardown(&record, Duration::from_secs(2)).unwrap();
        assert!(!vmjail_jail::process::is_running(run.pid));
        assert!(
            host_mounts_under(&record.jail_dir).is_empty(),
            "{:?}",
            host_mounts_under(&record.jail_dir)
        );
        for dir in &record.cgroups {
            assert!(!dir.exists(), "{}", dir.display());
        }
        assert!(!record.jail_dir.exists());
        assert!(!Path::new("/sys/fs/cgroup/cpu").join(&parent).exists());
    });
}

/// Review finding 3: RLIMIT_FSIZE used to be installed before the exec file
/// was copied, so the jailer died of SIGXFSZ mid-copy — and its closed status
/// pipe was taken for a successful exec. The limit now comes last, and a
/// jailer that ends without reaching exec is a failed launch. Firecracker's
/// jailer copies first too. The limit is half the probe's size, whatever
/// the build profile made that (megabytes in debug, far less in release).
#[test]
fn an_fsize_limit_below_the_exec_file_size_still_launches_with_a_copy() {
    for_each_jailer("fsize_copy", |kind| {
        let base = base_dir();
        let probe = probe_file();
        let size = std::fs::metadata(&probe.path).unwrap().len();
        // Page-aligned, and far above the probe's report (a few KiB).
        let limit = (size / 2) & !0xfff;
        assert!(
            limit >= 64 << 10 && size > limit,
            "the probe ({size} bytes) must exceed the limit ({limit}) by far"
        );
        let mut spec = spec(&unique("fs"), &probe.path, base.path());
        spec.rlimit_fsize = Some(limit);
        let saved = Saved::default();
        let mut recorder = saved.recorder();
        let mut jail = Jail::prepare(spec, kind.jailer(), &mut recorder).unwrap();
        // Firecracker's jailer always copies; the built-in one on request.
        jail.set_copy_exec_file(true);
        jail.place_shared_libraries(&mut recorder).unwrap();
        let launched = jail.launch(&mut recorder);
        if launched.is_err() {
            teardown(&saved.get(), Duration::from_millis(500)).unwrap();
        }
        let pid = launched.unwrap();
        assert_eq!(saved.get().vmm_pid, Some(pid));
        let run = Running {
            jail,
            saved,
            pid,
            _base: base,
            _probe: probe,
        };
        // Before the fix: launch said ok, but the jailer had died mid-copy.
        let r = run.report();
        assert_eq!(
            r["rlimit_fsize"],
            serde_json::json!({"soft": limit, "hard": limit})
        );
        // The copy is whole: the VMM runs from a file of the original's size.
        let copied = std::fs::metadata(run.jail.root().join(run.jail.exec_name())).unwrap();
        assert_eq!(copied.len(), size);
    });
}

/// Review finding 4: with a new pid namespace, a parent jailer that failed
/// after forking (here: the pid file is already there) left its child to exec
/// the VMM as an orphan nobody recorded. The child now waits for the parent's
/// go, and the parent kills it on failure.
#[test]
fn a_failed_pid_handover_leaves_no_orphan_vmm() {
    if !root_or_skip("pid_handover") {
        return;
    }
    let base = base_dir();
    let probe = probe_file();
    let mut spec = spec(&unique("oh"), &probe.path, base.path());
    spec.new_pid_ns = true;
    let saved = Saved::default();
    let mut recorder = saved.recorder();
    let mut jail = Jail::prepare(spec, Kind::BuiltIn.jailer(), &mut recorder).unwrap();
    jail.place_shared_libraries(&mut recorder).unwrap();
    std::fs::write(jail.pid_file(), b"1").unwrap();
    let result = jail.launch(&mut recorder);
    // Long enough for an orphaned probe to write its report.
    std::thread::sleep(Duration::from_millis(1500));
    let orphan_ran = jail.root().join("report.json").exists();
    let recorded = saved.get().vmm_pid;
    teardown(&saved.get(), Duration::from_millis(500)).unwrap();
    let err = result.expect_err("launch with a planted pid file must fail");
    assert!(err.to_string().contains("pid file"), "{err}");
    assert!(!orphan_ran, "the VMM ran although the launch failed");
    assert!(
        recorded.is_some(),
        "the jailer's pid was not recorded at spawn"
    );
}

/// Review finding 14: a signal ignored by whoever started the jailer stays
/// ignored across exec; every standard signal is reset to its default.
#[test]
fn signals_ignored_by_the_caller_are_reset_for_the_vmm() {
    if !root_or_skip("signals_reset") {
        return;
    }
    // This test's own process (nextest runs one per test) ignores them.
    for sig in [
        nix::sys::signal::Signal::SIGHUP,
        nix::sys::signal::Signal::SIGUSR1,
    ] {
        // SAFETY: installing SIG_IGN, no handler code.
        unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigIgn) }.unwrap();
    }
    let run = launch(&Kind::BuiltIn, |_| {}).unwrap();
    run.report();
    let ignored = u64::from_str_radix(&status_field(run.pid, "SigIgn"), 16).unwrap();
    for sig in [libc::SIGHUP, libc::SIGUSR1] {
        assert_eq!(
            ignored & (1 << (sig - 1)),
            0,
            "signal {sig} still ignored: {ignored:x}"
        );
    }
}

/// Review finding 5: bound on itself, the jail root joined the peer group of
/// the (shared) host mount it lives on, so mounts under the root propagated
/// there and back. It now gets a peer group of its own.
#[test]
fn the_shared_jail_root_has_its_own_peer_group() {
    if !root_or_skip("own_peer_group") {
        return;
    }
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    let base = base_dir();
    mount(
        Some(base.path()),
        base.path(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    let shared = mount(
        None::<&str>,
        base.path(),
        None::<&str>,
        MsFlags::MS_SHARED,
        None::<&str>,
    );
    let probe = probe_file();
    let saved = Saved::default();
    let mut recorder = saved.recorder();
    let launched = shared
        .map_err(|e| panic!("making the base shared: {e}"))
        .and_then(|()| {
            let spec = spec(&unique("pg"), &probe.path, base.path());
            let mut jail = Jail::prepare(spec, Kind::BuiltIn.jailer(), &mut recorder)?;
            jail.place_shared_libraries(&mut recorder)?;
            jail.launch(&mut recorder).map(|_| jail)
        });
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let group = |point: &Path| {
        info.lines()
            .rfind(|l| l.split(' ').nth(4) == point.to_str())
            .and_then(|l| l.split(' ').find(|f| f.starts_with("shared:")))
            .map(str::to_owned)
    };
    let groups = launched
        .as_ref()
        .ok()
        .map(|jail| (group(base.path()), group(&jail.root())));
    let _ = teardown(&saved.get(), Duration::from_millis(500));
    let _ = umount2(base.path(), MntFlags::MNT_DETACH);
    launched.unwrap();
    let (base_group, root_group) = groups.unwrap();
    assert!(
        base_group.is_some() && root_group.is_some(),
        "{base_group:?} {root_group:?}"
    );
    assert_ne!(
        base_group, root_group,
        "the jail root is a peer of its host mount"
    );
}

fn shared_parent(parent: &str) -> impl FnOnce(&mut vmjail_jail::JailSpec) + '_ {
    move |s| {
        s.cgroup_version = CgroupVersion::V1;
        s.parent_cgroup = Some(parent.to_owned());
        s.cgroups = vec![("cpu.shares".into(), "200".into())];
    }
}

/// Review (minor): a cgroup parent shared by jails was removed only by the
/// jail that happened to create it. Each jail now records the parents it
/// found as well, and the last teardown removes them.
#[test]
fn a_shared_cgroup_parent_goes_with_the_last_jail() {
    if !root_or_skip("shared_parent") {
        return;
    }
    let parent = unique("vmjail-jt-shared");
    let first = launch(&Kind::BuiltIn, shared_parent(&parent)).unwrap();
    let second = launch(&Kind::BuiltIn, shared_parent(&parent)).unwrap();
    first.report();
    second.report();
    let dir = Path::new("/sys/fs/cgroup/cpu").join(&parent);
    first.teardown();
    assert!(dir.exists(), "removed while the second jail uses it");
    second.teardown();
    assert!(!dir.exists(), "{} left behind", dir.display());
}

/// Review (minor): a FIFO left at the exec destination hung the jailer on
/// its blocking open (until the launch timeout); it is refused at once.
#[test]
fn a_fifo_at_the_exec_destination_is_refused_at_once() {
    if !root_or_skip("fifo_exec") {
        return;
    }
    let base = base_dir();
    let probe = probe_file();
    let saved = Saved::default();
    let mut recorder = saved.recorder();
    let spec = spec(&unique("ff"), &probe.path, base.path());
    let mut jail = Jail::prepare(spec, Kind::BuiltIn.jailer(), &mut recorder).unwrap();
    jail.place_shared_libraries(&mut recorder).unwrap();
    let dest = jail.root().join(jail.exec_name());
    nix::unistd::mkfifo(&dest, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    jail.set_copy_exec_file(true);
    let started = std::time::Instant::now();
    let result = jail.launch(&mut recorder);
    let took = started.elapsed();
    teardown(&saved.get(), Duration::from_millis(500)).unwrap();
    let err = result.expect_err("launched through a FIFO");
    assert!(err.to_string().contains("regular file"), "{err}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}
