//! `Jail::prepare`, `place`, `unplace`, `make_*` and teardown of a jail that
//! never launched: real mounts and files as root.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use common::*;
use vmjail_jail::{teardown, Jail, JailError, JailRecord, Jailer, Placement};

/// Tears the jail down when dropped, so a failing assertion leaves nothing.
struct Guard(Saved);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = teardown(&self.0.get(), Duration::from_millis(100));
    }
}

fn prepared() -> (tempfile::TempDir, ProbeFile, Saved, Jail) {
    let base = base_dir();
    let probe = probe_file();
    let saved = Saved::default();
    let jail = Jail::prepare(
        spec(&unique("pl"), &probe.path, base.path()),
        Jailer::BuiltIn {
            jailer_exe: "/nonexistent/vmjail".into(),
        },
        &mut saved.recorder(),
    )
    .unwrap();
    (base, probe, saved, jail)
}

#[test]
fn prepare_records_first_and_refuses_an_existing_jail_dir() {
    if !root_or_skip("prepare") {
        return;
    }
    let (base, probe, saved, jail) = prepared();
    let _guard = Guard(saved.clone());
    let record = saved.get();
    assert_eq!(
        record.jail_dir,
        base.path().join("probe-firecracker").join(&record.id)
    );
    assert_eq!(
        record.mounts,
        vec![jail.root()],
        "the root (a tmpfs) is the one mount prepare makes, recorded"
    );
    let meta = std::fs::metadata(jail.root()).unwrap();
    assert_eq!(
        (meta.mode() & 0o7777, meta.uid(), meta.gid()),
        (0o700, UID, GID)
    );

    let again = Jail::prepare(
        spec(&record.id, &probe.path, base.path()),
        Jailer::BuiltIn {
            jailer_exe: "/x".into(),
        },
        &mut Saved::default().recorder(),
    )
    .unwrap_err();
    assert!(matches!(again, JailError::JailDirExists { .. }), "{again}");
    assert!(
        again.to_string().contains("tear the old jail down"),
        "{again}"
    );

    teardown(&record, Duration::from_millis(100)).unwrap();
    assert!(!record.jail_dir.exists());
    assert!(host_mounts_under(&record.jail_dir).is_empty());
    // Now the id is free again.
    let saved2 = Saved::default();
    Jail::prepare(
        spec(&record.id, &probe.path, base.path()),
        Jailer::BuiltIn {
            jailer_exe: "/x".into(),
        },
        &mut saved2.recorder(),
    )
    .unwrap();
    teardown(&saved2.get(), Duration::from_millis(100)).unwrap();
}

#[test]
fn every_placement_kind() {
    if !root_or_skip("placements") {
        return;
    }
    let (_base, _probe, saved, mut jail) = prepared();
    let _guard = Guard(saved.clone());
    let mut rec = saved.recorder();
    let assets = tempfile::tempdir().unwrap();
    let file = |name: &str| {
        let p = assets.path().join(name);
        std::fs::write(&p, name.as_bytes()).unwrap();
        p
    };
    let (ro, rw, copy) = (file("ro"), file("rw"), file("copy"));
    let root = jail.root();

    assert_eq!(
        jail.place(&mut rec, &ro, Path::new("/a/b/ro"), Placement::ReadOnlyBind)
            .unwrap(),
        Path::new("/a/b/ro")
    );
    let err = std::fs::write(root.join("a/b/ro"), b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    let parent = std::fs::metadata(root.join("a/b")).unwrap();
    assert_eq!(
        (parent.uid(), parent.gid(), parent.mode() & 0o777),
        (UID, GID, 0o700)
    );

    // Only a drive may be writable (its owner becomes the jail's user): not
    // a directory, not a file with another name on the host.
    let other_name = assets.path().join("other-name");
    let linked = file("linked");
    std::fs::hard_link(&linked, &other_name).unwrap();
    for bad in [assets.path().to_path_buf(), linked] {
        let err = jail
            .place(&mut rec, &bad, Path::new("/bad"), Placement::ReadWriteBind)
            .unwrap_err();
        assert!(
            matches!(err, vmjail_jail::JailError::WritableAssetNotADrive { .. }),
            "{err}"
        );
    }
    assert!(!root.join("bad").exists());

    jail.place(&mut rec, &rw, Path::new("/rw"), Placement::ReadWriteBind)
        .unwrap();
    std::fs::write(root.join("rw"), b"written in jail").unwrap();
    // Review finding 7: a writable bind carries no setuid file or device.
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let rw_line = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(root.join("rw").to_str().unwrap()))
        .unwrap();
    let options = rw_line.split(' ').nth(5).unwrap();
    assert!(
        options.contains("nosuid") && options.contains("nodev"),
        "{rw_line}"
    );
    assert_eq!(std::fs::read(&rw).unwrap(), b"written in jail");
    let rw_owner = |p: &Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(rw_owner(&rw), (UID, GID), "writable assets are chowned");
    assert_eq!(
        saved.get().chowned[0].uid,
        0,
        "the owner before is recorded"
    );
    // A share (virtiofsd's tree): a directory bound read-write, owner kept.
    let share = assets.path().join("share");
    std::fs::create_dir(&share).unwrap();
    jail.place(
        &mut rec,
        &share,
        Path::new("/share/0"),
        Placement::ReadWriteShare,
    )
    .unwrap();
    std::fs::write(root.join("share/0/new"), b"x").unwrap();
    assert_eq!(std::fs::read(share.join("new")).unwrap(), b"x");
    assert_eq!(rw_owner(&share), (0, 0), "a share keeps its owner");
    assert_eq!(saved.get().chowned.len(), 1, "nothing more chowned");

    jail.place(&mut rec, &copy, Path::new("/copy"), Placement::Copy)
        .unwrap();
    let copied = std::fs::metadata(root.join("copy")).unwrap();
    assert_ne!(copied.ino(), std::fs::metadata(&copy).unwrap().ino());
    assert_eq!((copied.uid(), copied.gid()), (UID, GID));

    let err = jail
        .place(&mut rec, &copy, Path::new("/copy"), Placement::Copy)
        .unwrap_err();
    assert!(matches!(err, JailError::AlreadyPlaced { .. }), "{err}");

    let record = saved.get();
    assert!(
        record.mounts.contains(&root.join("a/b/ro")) && record.mounts.contains(&root.join("rw"))
    );

    // unplace is idempotent and removes the mount point.
    jail.unplace(&mut rec, Path::new("/a/b/ro")).unwrap();
    jail.unplace(&mut rec, Path::new("/a/b/ro")).unwrap();
    assert!(!root.join("a/b/ro").exists());
    assert!(!saved.get().mounts.contains(&root.join("a/b/ro")));

    // Teardown with a read-write bind still mounted must not delete the host asset.
    teardown(&saved.get(), Duration::from_millis(100)).unwrap();
    assert_eq!(std::fs::read(&rw).unwrap(), b"written in jail");
    assert_eq!(rw_owner(&rw), (0, 0), "teardown gives the asset back");
    assert!(ro.exists() && copy.exists());
    assert!(!record.jail_dir.exists());
}

#[test]
fn symlinks_planted_in_the_jail_are_never_followed() {
    if !root_or_skip("planted_symlinks") {
        return;
    }
    let (_base, _probe, saved, mut jail) = prepared();
    let _guard = Guard(saved.clone());
    let mut rec = saved.recorder();
    let host_dir = tempfile::tempdir().unwrap();
    let asset = host_dir.path().join("asset");
    std::fs::write(&asset, b"asset").unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), jail.root().join("evil")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("target"), jail.root().join("leaf")).unwrap();
    for (how, path) in [
        (Placement::Copy, "/evil/x"),
        (Placement::ReadOnlyBind, "/evil/x"),
        (Placement::Copy, "/leaf"),
        (Placement::ReadOnlyBind, "/leaf"),
    ] {
        assert!(
            jail.place(&mut rec, &asset, Path::new(path), how).is_err(),
            "{how:?} {path}"
        );
    }
    assert!(jail.make_dir(Path::new("/evil/d")).is_err());
    assert!(jail.make_file(Path::new("/leaf")).is_err());
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "something was written outside the jail"
    );
    for bad in ["relative", "/a/../b", "/"] {
        let err = jail
            .place(&mut rec, &asset, Path::new(bad), Placement::Copy)
            .unwrap_err();
        assert!(
            matches!(err, JailError::InvalidPathInJail { .. }),
            "{bad}: {err}"
        );
    }
    teardown(&saved.get(), Duration::from_millis(100)).unwrap();
}

#[test]
fn make_dir_file_and_fifo_are_owned_by_the_jail_user() {
    if !root_or_skip("make_entries") {
        return;
    }
    let (_base, _probe, saved, mut jail) = prepared();
    let _guard = Guard(saved.clone());
    for (path, kind) in [
        (
            jail.make_dir(Path::new("/run/sock")).unwrap(),
            libc::S_IFDIR,
        ),
        (
            jail.make_file(Path::new("/logs/fc.log")).unwrap(),
            libc::S_IFREG,
        ),
        (
            jail.make_fifo(Path::new("/metrics.fifo")).unwrap(),
            libc::S_IFIFO,
        ),
    ] {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!(meta.mode() & libc::S_IFMT, kind, "{}", path.display());
        assert_eq!((meta.uid(), meta.gid()), (UID, GID), "{}", path.display());
    }
    teardown(&saved.get(), Duration::from_millis(100)).unwrap();
}

#[test]
fn teardown_of_partial_or_empty_records_succeeds() {
    if !root_or_skip("partial_teardown") {
        return;
    }
    let base = base_dir();
    let record = JailRecord {
        id: "never-made".into(),
        jail_dir: base.path().join("x/never-made"),
        mounts: vec![base.path().join("x/never-made/root")],
        cgroups: vec!["/sys/fs/cgroup/cpu/vmjail-never-made/never-made".into()],
        vmm_pid: Some(i32::MAX - 1),
        vmm_start_time: Some(1),
        ..JailRecord::default()
    };
    teardown(&record, Duration::from_millis(100)).unwrap();
    teardown(&record, Duration::from_millis(100)).unwrap();
    teardown(&JailRecord::default(), Duration::from_millis(100)).unwrap();
}

#[test]
fn a_recycled_pid_is_never_killed() {
    if !root_or_skip("recycled_pid") {
        return;
    }
    let mut bystander = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = bystander.id() as i32;
    let real = vmjail_jail::process::start_time(pid).unwrap();
    let record = JailRecord {
        vmm_pid: Some(pid),
        vmm_start_time: Some(real + 1),
        ..JailRecord::default()
    };
    teardown(&record, Duration::from_millis(100)).unwrap();
    assert!(
        bystander.try_wait().unwrap().is_none(),
        "teardown killed a process that was not the VMM"
    );
    bystander.kill().unwrap();
    bystander.wait().unwrap();
}

#[test]
fn shared_libraries_let_a_dynamic_probe_run() {
    if !root_or_skip("shared_libraries") {
        return;
    }
    let (_base, _probe, saved, mut jail) = prepared();
    let _guard = Guard(saved.clone());
    jail.place_shared_libraries(&mut saved.recorder()).unwrap();
    // One bind per library directory (not per library), holding them all.
    let mounts = saved.get().mounts;
    let root = jail.root();
    assert_eq!(
        mounts,
        vec![
            root.clone(),
            root.join("lib/x86_64-linux-gnu"),
            root.join("lib64")
        ],
        "{mounts:?}"
    );
    assert!(root.join("lib/x86_64-linux-gnu/libc.so.6").is_file());
    assert!(root.join("lib64/ld-linux-x86-64.so.2").is_file());
    // Placing twice is harmless.
    jail.place_shared_libraries(&mut saved.recorder()).unwrap();
    teardown(&saved.get(), Duration::from_millis(100)).unwrap();
}

#[test]
fn an_exec_dir_writable_by_others_is_refused() {
    if !root_or_skip("unsafe_exec_dir") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let base = base_dir();
    let probe = probe_file();
    let exec_dir = base.path().join("probe-firecracker");
    std::fs::create_dir(&exec_dir).unwrap();
    std::fs::set_permissions(&exec_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let saved = Saved::default();
    let err = Jail::prepare(
        spec(&unique("ux"), &probe.path, base.path()),
        Jailer::BuiltIn {
            jailer_exe: "/x".into(),
        },
        &mut saved.recorder(),
    )
    .unwrap_err();
    let _guard = Guard(saved);
    assert!(matches!(err, JailError::UnsafeExecDir { .. }), "{err}");
}

/// Review finding 1: the VMM owns the directories of its jail. After
/// `mv /drives /d2; ln -s <host dir> /drives`, unmounting the recorded
/// `<root>/drives/disk` by path followed the symlink and unmounted a host
/// mount at `<host dir>/disk`. Teardown now walks with O_NOFOLLOW.
#[test]
fn teardown_never_unmounts_through_a_symlinked_parent() {
    if !root_or_skip("symlinked_parent") {
        return;
    }
    let (_base, _probe, saved, mut jail) = prepared();
    let _guard = Guard(saved.clone());
    let mut rec = saved.recorder();
    let assets = tempfile::tempdir().unwrap();
    let disk = assets.path().join("disk");
    std::fs::write(&disk, b"disk").unwrap();
    jail.place(
        &mut rec,
        &disk,
        Path::new("/drives/disk"),
        Placement::ReadOnlyBind,
    )
    .unwrap();

    // Another mount on the host, at `<victim>/disk`.
    let victim = tempfile::tempdir().unwrap();
    let victim_disk = victim.path().join("disk");
    std::fs::write(&victim_disk, b"victim").unwrap();
    nix::mount::mount(
        Some(&victim_disk),
        &victim_disk,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    let root = jail.root();
    std::fs::rename(root.join("drives"), root.join("d2")).unwrap();
    std::os::unix::fs::symlink(victim.path(), root.join("drives")).unwrap();

    let result = teardown(&saved.get(), Duration::from_millis(100));
    let victim_mounted = !host_mounts_under(victim.path()).is_empty();
    let _ = nix::mount::umount2(&victim_disk, nix::mount::MntFlags::MNT_DETACH);
    result.unwrap();
    assert!(
        victim_mounted,
        "teardown unmounted a host mount through a symlink"
    );
    let record = saved.get();
    assert!(
        host_mounts_under(&record.jail_dir).is_empty(),
        "the moved mount is left"
    );
    assert!(!record.jail_dir.exists());
}

/// Review finding 12: a record is read from disk; one that names anything
/// outside its jail is refused before anything is killed or unmounted.
#[test]
fn a_forged_record_is_refused_whole() {
    let base = base_dir();
    let jail_dir = base.path().join("x/forged");
    let ok = JailRecord {
        id: "forged".into(),
        jail_dir: jail_dir.clone(),
        ..JailRecord::default()
    };
    let cases = [
        JailRecord {
            mounts: vec!["/".into()],
            ..ok.clone()
        },
        JailRecord {
            mounts: vec![jail_dir.join("root/../../../etc")],
            ..ok.clone()
        },
        JailRecord {
            jail_dir: "/".into(),
            ..ok.clone()
        },
        JailRecord {
            jail_dir: base.path().join("x/other"),
            ..ok.clone()
        },
        JailRecord {
            id: "../x".into(),
            ..ok.clone()
        },
        JailRecord {
            cgroups: vec!["/sys/fs/cgroup/system.slice".into()],
            ..ok.clone()
        },
        JailRecord {
            cgroups: vec!["/etc/forged".into()],
            ..ok.clone()
        },
        JailRecord {
            cgroup_parents: vec!["/sys/fs/cgroup/cpu/x".into()],
            ..ok.clone()
        },
    ];
    for record in cases {
        let err = teardown(&record, Duration::from_millis(100)).unwrap_err();
        assert!(
            matches!(
                err,
                JailError::UnsafeRecord { .. } | JailError::InvalidId { .. }
            ),
            "{record:?}: {err}"
        );
    }
    std::fs::create_dir_all(jail_dir.join("root")).unwrap();
    teardown(&ok, Duration::from_millis(100)).unwrap();
    assert!(!jail_dir.exists());
}

/// Review finding 12 (crash window): a record saved before `mkdir` of the
/// jail dir succeeded does not own the dir; teardown leaves it.
#[test]
fn a_pending_jail_dir_is_not_removed() {
    let base = base_dir();
    let jail_dir = base.path().join("x/pending");
    std::fs::create_dir_all(&jail_dir).unwrap();
    let record = JailRecord {
        id: "pending".into(),
        jail_dir: jail_dir.clone(),
        jail_dir_pending: true,
        ..JailRecord::default()
    };
    teardown(&record, Duration::from_millis(100)).unwrap();
    assert!(jail_dir.exists());
}

/// Review finding 4: a VMM the record never named (a crash between spawn and
/// record) still sits in the jail's leaf cgroup; teardown kills it there
/// before removing the cgroup.
#[test]
fn teardown_kills_what_is_left_in_the_jail_cgroup() {
    if !root_or_skip("cgroup_kill") {
        return;
    }
    let id = unique("ck");
    let parent = Path::new("/sys/fs/cgroup/pids").join(unique("vmjail-jt-kill"));
    let leaf = parent.join(&id);
    std::fs::create_dir_all(&leaf).unwrap();
    let mut orphan = std::process::Command::new("sleep")
        .arg("100")
        .spawn()
        .unwrap();
    std::fs::write(leaf.join("cgroup.procs"), orphan.id().to_string()).unwrap();
    let record = JailRecord {
        id,
        cgroups: vec![parent.clone(), leaf.clone()],
        ..JailRecord::default()
    };
    let result = teardown(&record, Duration::from_millis(100));
    // Killed by teardown, it is a zombie child of ours by now.
    let status = orphan.try_wait().unwrap();
    if status.is_none() {
        let _ = orphan.kill();
        let _ = orphan.wait();
    }
    let _ = std::fs::remove_dir(&leaf);
    let _ = std::fs::remove_dir(&parent);
    result.unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.and_then(|s| s.signal()), Some(libc::SIGKILL));
    assert!(!leaf.exists() && !parent.exists());
}
