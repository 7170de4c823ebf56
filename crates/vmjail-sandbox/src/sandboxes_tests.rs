//! Unit tests of the lifecycle logic against the test double hypervisor.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::test_double::{config, TestDoubleFactory};
use crate::{process, ErrorKind};

const T: Duration = Duration::from_secs(5);

struct Fixture {
    _tmp: tempfile::TempDir,
    state_dir: PathBuf,
    jails: PathBuf,
    /// Each fixture pins its sandboxes' namespaces here, not in /run/netns.
    netns_dir: PathBuf,
    factory: TestDoubleFactory,
    config: RuntimeConfig,
}

/// Every sandbox pins a network namespace (a mount): root only. CI runs as
/// root and must not skip.
fn root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run this test as root"
    );
    eprintln!("skipped: needs root to create and pin network namespaces");
    false
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let state_dir = tmp.path().join("state");
        // The double's jails where the real ones are:
        // `<chroot base>/<exec>/<id>` (teardown insists).
        let jails = tmp.path().join("chroot-base/double");
        let netns_dir = tmp.path().join("netns");
        std::fs::create_dir(&netns_dir).unwrap();
        Self {
            factory: TestDoubleFactory::new(&jails),
            config: config(&state_dir),
            state_dir,
            jails,
            netns_dir,
            _tmp: tmp,
        }
    }

    /// A fresh `Sandboxes`, as a new vmjail process would have.
    fn process(&self) -> Sandboxes<TestDoubleFactory> {
        Sandboxes::new(&self.config.jail, self.factory.clone()).with_netns_dir(&self.netns_dir)
    }

    fn create(&self, id: &str) -> SandboxView {
        self.process().create(&sid(id), &self.config, None).unwrap()
    }

    fn on_disk(&self, id: &str) -> SandboxState {
        let text = std::fs::read_to_string(self.state_dir.join(id).join("state.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// Nothing of sandbox `id` is left: state dir, lock file, jail dir.
    fn assert_gone(&self, id: &str) {
        assert!(!self.state_dir.join(id).exists(), "state dir left");
        assert!(
            !self.state_dir.join(format!("{id}.lock")).exists(),
            "lock file left"
        );
        assert!(!self.jails.join(id).exists(), "jail dir left");
    }
}

fn sid(id: &str) -> SandboxId {
    SandboxId::parse(id).unwrap()
}

fn kind(err: &SandboxError) -> ErrorKind {
    err.kind()
}

#[test]
fn full_cycle_reports_each_status_and_leaves_nothing() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    let view = fx.create("cycle");
    assert_eq!(view.status, Status::Created);
    let pid = view.vmm_pid.expect("pid recorded");
    assert!(process::is_alive(pid, None));
    assert_eq!(view.hypervisor, Some(vmjail_config::HypervisorKind::Qemu));
    assert_eq!(view.jail_root, Some(fx.jails.join("cycle/root")));
    assert!(view.created.as_deref().unwrap().ends_with('Z'));

    // Every later command runs as if in a new process: reattach.
    let id = sid("cycle");
    assert_eq!(fx.process().start(&id, T).unwrap().status, Status::Running);
    assert_eq!(fx.process().state(&id).unwrap().status, Status::Running);
    assert_eq!(fx.process().pause(&id).unwrap().status, Status::Paused);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    assert!(stat.contains(") T "), "VMM not stopped by pause: {stat}");
    assert_eq!(fx.process().resume(&id).unwrap().status, Status::Running);
    let stopped = fx.process().stop(&id, T).unwrap();
    assert_eq!(stopped.status, Status::Stopped);
    assert_eq!(stopped.vmm_pid, None);
    assert!(!process::is_alive(pid, None));
    assert_eq!(fx.on_disk("cycle").phase, Phase::Stopped);
    fx.process().delete(&id, false, T).unwrap();
    fx.assert_gone("cycle");
    let calls = fx.factory.calls();
    assert!(
        calls.iter().filter(|c| *c == "reattach").count() >= 5,
        "{calls:?}"
    );
}

#[test]
fn one_process_reuses_its_own_hypervisor() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    let sandboxes = fx.process();
    let id = sid("same-process");
    sandboxes.create(&id, &fx.config, None).unwrap();
    sandboxes.start(&id, T).unwrap();
    sandboxes.stop(&id, T).unwrap();
    sandboxes.delete(&id, false, T).unwrap();
    assert!(!fx.factory.calls().contains(&"reattach".to_owned()));
    fx.assert_gone("same-process");
}

#[test]
fn state_json_records_creator_config_netns_and_vmm() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    fx.create("recorded");
    let state = fx.on_disk("recorded");
    assert_eq!(state.version, STATE_VERSION);
    assert_eq!(state.phase, Phase::Created);
    assert_eq!(state.creator.unwrap().pid, std::process::id() as i32);
    assert_eq!(state.config, fx.config);
    assert_eq!(
        state.netns,
        NetnsRecord {
            path: fx.netns_dir.join("vmjail-recorded"),
            owned: true,
            pinned: false,
        }
    );
    assert!(state.vmm.unwrap().jail.vmm_start_time.is_some());
    assert!(!fx.state_dir.join("recorded/state.json.tmp").exists());
    fx.process().delete(&sid("recorded"), true, T).unwrap();
}

#[test]
fn wrong_transitions_fail_and_change_nothing() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    let id = sid("wrong");
    fx.create("wrong");
    let before = fx.on_disk("wrong");
    for err in [
        fx.process().pause(&id).unwrap_err(),
        fx.process().resume(&id).unwrap_err(),
        fx.process().delete(&id, false, T).unwrap_err(),
    ] {
        assert_eq!(kind(&err), ErrorKind::WrongState, "{err}");
        assert!(err.to_string().contains("it is created"), "{err}");
    }
    assert_eq!(fx.on_disk("wrong"), before);

    fx.process().start(&id, T).unwrap();
    let running = fx.on_disk("wrong");
    let err = fx.process().start(&id, T).unwrap_err();
    assert_eq!(kind(&err), ErrorKind::WrongState);
    assert_eq!(
        err.to_string(),
        "cannot start sandbox \"wrong\": it is running; start needs a created sandbox"
    );
    let err = fx.process().delete(&id, false, T).unwrap_err();
    assert!(err.to_string().contains("use --force"), "{err}");
    assert_eq!(fx.on_disk("wrong"), running);
    assert!(fx.process().state(&id).unwrap().vmm_pid.is_some());

    fx.process().stop(&id, T).unwrap();
    let stopped = fx.on_disk("wrong");
    let calls = fx.factory.calls().len();
    // Stopping a stopped sandbox succeeds and does nothing.
    assert_eq!(fx.process().stop(&id, T).unwrap().status, Status::Stopped);
    assert_eq!(fx.on_disk("wrong"), stopped);
    assert_eq!(fx.factory.calls().len(), calls, "{:?}", fx.factory.calls());
    let err = fx.process().start(&id, T).unwrap_err();
    assert_eq!(kind(&err), ErrorKind::WrongState, "{err}");
    fx.process().delete(&id, false, T).unwrap();
}

#[test]
fn unknown_ids_are_not_found_and_leave_no_lock_file() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    let id = sid("ghost");
    let sandboxes = fx.process();
    let errors = [
        sandboxes.start(&id, T).unwrap_err(),
        sandboxes.pause(&id).unwrap_err(),
        sandboxes.resume(&id).unwrap_err(),
        sandboxes.stop(&id, T).unwrap_err(),
        sandboxes.delete(&id, true, T).unwrap_err(),
        sandboxes.state(&id).unwrap_err(),
    ];
    for err in errors {
        assert_eq!(kind(&err), ErrorKind::NotFound, "{err}");
        assert!(err.to_string().contains("no sandbox \"ghost\""), "{err}");
    }
    fx.assert_gone("ghost");
}

#[test]
fn a_second_create_of_one_id_fails_and_keeps_the_first() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    let first = fx.create("twice");
    let err = fx
        .process()
        .create(&sid("twice"), &fx.config, None)
        .unwrap_err();
    assert_eq!(kind(&err), ErrorKind::AlreadyExists, "{err}");
    let view = fx.process().state(&sid("twice")).unwrap();
    assert_eq!(view.vmm_pid, first.vmm_pid);
    assert_eq!(view.status, Status::Created);
    fx.process().delete(&sid("twice"), true, T).unwrap();
}

#[test]
fn concurrent_creates_of_one_id_have_exactly_one_winner() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    fx.process()
                        .create(&sid("race"), &fx.config, None)
                        .map(|v| v.vmm_pid)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for err in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(kind(err), ErrorKind::AlreadyExists, "{err}");
    }
    // Only the winner launched a VMM.
    let spawned = fx.factory.calls().iter().filter(|c| *c == "create").count();
    assert_eq!(spawned, 1);
    fx.process().delete(&sid("race"), true, T).unwrap();
    fx.assert_gone("race");
}

#[test]
fn a_failed_create_undoes_everything_it_made() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    fx.factory.fail_at("create-after-spawn");
    let err = fx
        .process()
        .create(&sid("rollback"), &fx.config, None)
        .unwrap_err();
    assert!(
        matches!(
            err,
            SandboxError::Hypervisor {
                step: "creating the VMM",
                ..
            }
        ),
        "{err}"
    );
    assert!(fx.factory.calls().contains(&"stop".to_owned()));
    fx.assert_gone("rollback");
    // The id is free again.
    fx.factory.script.lock().unwrap().fail_at = None;
    fx.create("rollback");
    fx.process().delete(&sid("rollback"), true, T).unwrap();
}

#[test]
fn a_failed_start_leaves_the_sandbox_created() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    fx.create("nostart");
    fx.factory.fail_at("start");
    let err = fx.process().start(&sid("nostart"), T).unwrap_err();
    assert!(err.to_string().contains("starting the guest"), "{err}");
    assert_eq!(fx.on_disk("nostart").phase, Phase::Created);
    fx.process().delete(&sid("nostart"), true, T).unwrap();
}

#[test]
fn delete_force_stops_a_running_sandbox() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    let pid = fx.create("forced").vmm_pid.unwrap();
    fx.process().start(&sid("forced"), T).unwrap();
    fx.process().delete(&sid("forced"), true, T).unwrap();
    assert!(!process::is_alive(pid, None));
    fx.assert_gone("forced");
}

#[test]
fn a_vmm_that_exited_on_its_own_is_stopped_and_deletable() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    let pid = fx.create("exited").vmm_pid.unwrap();
    fx.process().start(&sid("exited"), T).unwrap();
    kill_and_reap(pid);
    let view = fx.process().state(&sid("exited")).unwrap();
    assert_eq!(view.status, Status::Stopped);
    assert_eq!(view.vmm_pid, None);
    // The record still says running: delete tears the jail down anyway.
    assert_eq!(fx.on_disk("exited").phase, Phase::Running);
    fx.process().delete(&sid("exited"), false, T).unwrap();
    fx.assert_gone("exited");
}

#[test]
fn stop_after_the_guest_powered_off_by_itself_tears_down_and_succeeds() {
    let fx = Fixture::new();
    let id = sid("poweroff");
    let pid = fx.create("poweroff").vmm_pid.unwrap();
    fx.process().start(&id, T).unwrap();
    kill_and_reap(pid);
    assert!(fx.jails.join("poweroff").exists());
    let view = fx.process().stop(&id, T).unwrap();
    assert_eq!(view.status, Status::Stopped);
    assert_eq!(fx.on_disk("poweroff").phase, Phase::Stopped);
    assert!(!fx.jails.join("poweroff").exists(), "jail not torn down");
    assert!(fx.factory.calls().contains(&"stop".to_owned()));
    // And again: nothing left to do, still a success.
    fx.process().stop(&id, T).unwrap();
    fx.process().delete(&id, false, T).unwrap();
    fx.assert_gone("poweroff");
}

#[test]
fn gc_removes_dead_and_half_made_sandboxes_and_keeps_live_ones() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    let live = fx.create("live").vmm_pid.unwrap();
    let dead = fx.create("dead").vmm_pid.unwrap();
    kill_and_reap(dead);
    // A creation whose creator died, recorded but without a VMM.
    let mut half = fx.on_disk("live");
    half.id = "half".into();
    half.netns.path = fx.netns_dir.join("vmjail-half");
    half.phase = Phase::Creating;
    half.vmm = None;
    half.console = None;
    half.network = None;
    half.creator = Some(process::ProcessId {
        pid: dead,
        start_time: 1,
    });
    std::fs::create_dir(fx.state_dir.join("half")).unwrap();
    Store::new(&fx.state_dir).save(&half).unwrap();
    // A creation that died right after claiming the id.
    std::fs::create_dir(fx.state_dir.join("claimed")).unwrap();
    // A lock file whose sandbox is gone.
    std::fs::write(fx.state_dir.join("orphan.lock"), "").unwrap();
    // A directory that is no sandbox id is left alone.
    std::fs::create_dir(fx.state_dir.join("not_an_id")).unwrap();

    assert_eq!(
        fx.process().state(&sid("claimed")).unwrap().status,
        Status::Creating
    );
    let report = fx.process().gc(T).unwrap();
    assert_eq!(report.removed, ["claimed", "dead", "half"]);
    assert!(
        report.busy.is_empty() && report.failed.is_empty(),
        "{report:?}"
    );
    for id in ["claimed", "dead", "half", "orphan"] {
        fx.assert_gone(id);
    }
    assert!(fx.state_dir.join("not_an_id").is_dir());
    assert!(process::is_alive(live, None));
    assert_eq!(fx.process().list().unwrap().sandboxes.len(), 1);
    fx.process().delete(&sid("live"), true, T).unwrap();
}

#[test]
fn gc_skips_a_sandbox_another_command_holds() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    std::fs::create_dir_all(fx.state_dir.join("held")).unwrap();
    let store = Store::new(&fx.state_dir);
    let lock = store.lock(&sid("held")).unwrap();
    let report = fx.process().gc(T).unwrap();
    assert_eq!(report.busy, ["held"]);
    assert!(fx.state_dir.join("held").is_dir());
    drop(lock);
    assert_eq!(fx.process().gc(T).unwrap().removed, ["held"]);
}

#[test]
fn list_reports_every_sandbox_and_broken_state() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    fx.create("b-one");
    fx.create("a-two");
    fx.process().start(&sid("a-two"), T).unwrap();
    std::fs::create_dir(fx.state_dir.join("broken")).unwrap();
    std::fs::write(fx.state_dir.join("broken/state.json"), "{").unwrap();
    let listing = fx.process().list().unwrap();
    let got: Vec<_> = listing
        .sandboxes
        .iter()
        .map(|v| (v.id.as_str(), v.status))
        .collect();
    assert_eq!(
        got,
        [("a-two", Status::Running), ("b-one", Status::Created)]
    );
    assert_eq!(listing.problems.len(), 1);
    assert!(
        listing.problems[0].contains("broken/state.json"),
        "{:?}",
        listing.problems
    );
    for id in ["a-two", "b-one"] {
        fx.process().delete(&sid(id), true, T).unwrap();
    }
}

#[test]
fn a_symlinked_sandbox_dir_is_refused() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    std::fs::create_dir_all(&fx.state_dir).unwrap();
    let elsewhere = fx.state_dir.parent().unwrap().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, fx.state_dir.join("link")).unwrap();
    let err = fx.process().state(&sid("link")).unwrap_err();
    assert!(matches!(err, SandboxError::NotADirectory { .. }), "{err}");
    let err = fx
        .process()
        .create(&sid("link"), &fx.config, None)
        .unwrap_err();
    assert_eq!(kind(&err), ErrorKind::AlreadyExists, "{err}");
    assert!(elsewhere.read_dir().unwrap().next().is_none());
}

fn kill_and_reap(pid: i32) {
    use nix::sys::signal::{kill, Signal};
    let pid = nix::unistd::Pid::from_raw(pid);
    kill(pid, Signal::SIGKILL).unwrap();
    nix::sys::wait::waitpid(pid, None).unwrap();
}

/// A sandbox without `--netns` gets its own namespace, removed on delete.
#[test]
fn an_owned_netns_is_created_and_removed() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    let view = fx.create("owned");
    let ns = view.netns.unwrap();
    assert_eq!(ns, fx.netns_dir.join("vmjail-owned"));
    let fs = nix::sys::statfs::statfs(&ns).unwrap();
    assert_eq!(fs.filesystem_type(), nix::sys::statfs::NSFS_MAGIC);
    assert_ne!(ns_inode(&ns), ns_inode(Path::new("/proc/self/ns/net")));
    fx.process().delete(&sid("owned"), true, T).unwrap();
    assert!(!ns.exists());
    fx.assert_gone("owned");
}

fn ns_inode(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().ino()
}

/// `--netns /proc/<pid>/ns/net` is pinned at create: the sandbox keeps the
/// namespace after that process is gone (and its pid may be reused), and
/// delete removes only the pin, not the namespace's other users' view.
#[test]
fn a_given_proc_netns_is_pinned_and_outlives_its_process() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    let mut holder = std::process::Command::new("unshare")
        .args(["--net", "sleep", "60"])
        .spawn()
        .unwrap();
    let given = PathBuf::from(format!("/proc/{}/ns/net", holder.id()));
    // unshare execs sleep once it is in its new namespace.
    let comm = format!("/proc/{}/comm", holder.id());
    let deadline = std::time::Instant::now() + T;
    while std::fs::read_to_string(&comm).unwrap_or_default().trim() != "sleep" {
        assert!(std::time::Instant::now() < deadline, "unshare never ran");
        std::thread::sleep(Duration::from_millis(5));
    }
    let inode = ns_inode(&given);
    let view = fx
        .process()
        .create(&sid("pinned"), &fx.config, Some(&given))
        .unwrap();
    let pin = fx.netns_dir.join("vmjail-pinned");
    assert_eq!(view.netns.as_deref(), Some(pin.as_path()));
    let state = fx.on_disk("pinned");
    assert!(
        state.netns.pinned && !state.netns.owned,
        "{:?}",
        state.netns
    );
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert_eq!(ns_inode(&pin), inode, "the pin lost the namespace");
    fx.process().delete(&sid("pinned"), true, T).unwrap();
    assert!(!pin.exists());
    fx.assert_gone("pinned");
}

/// The host's own namespace is refused unless the configuration says
/// `disable_new_netns = true`; then the VMM's sandbox pins vmjail's own.
#[test]
fn the_host_netns_only_with_disable_new_netns() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    let host = Path::new("/proc/self/ns/net");
    let err = fx
        .process()
        .create(&sid("host"), &fx.config, Some(host))
        .unwrap_err();
    assert_eq!(kind(&err), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("disable_new_netns"), "{err}");
    fx.assert_gone("host");

    let mut config = fx.config.clone();
    config.runtime.disable_new_netns = true;
    for given in [Some(host), None] {
        let view = fx.process().create(&sid("host"), &config, given).unwrap();
        let pin = view.netns.unwrap();
        assert_eq!(ns_inode(&pin), ns_inode(host));
        fx.process().delete(&sid("host"), true, T).unwrap();
        fx.assert_gone("host");
    }
}

#[test]
fn netns_must_be_a_network_namespace() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    for bad in [
        "/proc/self/ns/mnt",
        "/proc/self/ns/pid",
        "/etc/hostname",
        "relative",
        "/nonexistent/ns",
    ] {
        let err = fx
            .process()
            .create(&sid("badns"), &fx.config, Some(Path::new(bad)))
            .unwrap_err();
        assert_eq!(kind(&err), ErrorKind::InvalidInput, "{bad}: {err}");
        fx.assert_gone("badns");
    }
}

#[test]
fn create_makes_a_missing_chroot_base_root_owned_and_closed_to_others() {
    use std::os::unix::fs::MetadataExt;
    if !root() {
        return;
    }
    let fx = Fixture::new();
    let base = fx.config.jail.chroot_base_dir.clone();
    assert!(!base.exists());
    fx.create("base");
    let meta = std::fs::metadata(&base).unwrap();
    assert!(meta.is_dir());
    assert_eq!(meta.mode() & 0o022, 0, "writable by group or others");
    assert_eq!(meta.uid(), nix::unistd::geteuid().as_raw());
    fx.process().delete(&sid("base"), true, T).unwrap();
    assert!(
        base.exists(),
        "the shared base is not the sandbox's to remove"
    );
}

/// Review finding 2: a state dir other users can write lets them forge
/// records that root's `gc` acts on. Such a state dir is refused outright,
/// and a forged entry left by another user is never acted on.
#[test]
fn a_state_dir_or_entry_other_users_control_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    if !root() {
        return;
    }
    let fx = Fixture::new();
    fx.create("honest");
    let victim = fx.state_dir.parent().unwrap().join("victim");
    std::fs::write(&victim, "root's file").unwrap();
    let forge = |dir: &Path| {
        std::fs::create_dir(dir).unwrap();
        let mut state = fx.on_disk("honest");
        state.id = dir.file_name().unwrap().to_str().unwrap().to_owned();
        state.phase = Phase::Stopped;
        state.netns.path = victim.clone();
        std::fs::write(dir.join("state.json"), serde_json::to_vec(&state).unwrap()).unwrap();
        let nobody = Some(nix::unistd::Uid::from_raw(65534));
        nix::unistd::chown(dir, nobody, None).unwrap();
        nix::unistd::chown(&dir.join("state.json"), nobody, None).unwrap();
    };

    // An entry owned by another user: gc leaves it and says why.
    forge(&fx.state_dir.join("evil"));
    let report = fx.process().gc(T).unwrap();
    assert!(
        report
            .failed
            .iter()
            .any(|(id, why)| id == "evil" && why.contains("65534")),
        "{report:?}"
    );
    assert!(victim.exists(), "gc acted on a forged record");
    let err = fx.process().delete(&sid("evil"), true, T).unwrap_err();
    assert!(err.to_string().contains("not root"), "{err}");
    assert!(victim.exists());
    std::fs::remove_dir_all(fx.state_dir.join("evil")).unwrap();

    // A state dir others may write: nothing is read from it at all.
    std::fs::set_permissions(&fx.state_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = fx.process().gc(T).unwrap_err();
    assert!(matches!(err, SandboxError::UntrustedState { .. }), "{err}");
    assert!(fx.process().list().is_err());
    std::fs::set_permissions(&fx.state_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    fx.process().delete(&sid("honest"), true, T).unwrap();
    fx.assert_gone("honest");
}

/// Review finding 3: a forged record (edited by root, or a bug) that names
/// host paths as the sandbox's netns or jail is refused, not acted on.
#[test]
fn a_record_naming_what_is_not_the_sandboxs_is_refused() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    fx.create("forged");
    let honest = fx.on_disk("forged");
    let victim = fx.state_dir.parent().unwrap().join("victim");
    std::fs::create_dir_all(victim.join("forged")).unwrap();
    type Forgery<'a> = Box<dyn Fn(&mut SandboxState) + 'a>;
    let forgeries: Vec<(&str, Forgery)> = vec![
        ("netns", Box::new(|s| s.netns.path = victim.join("forged"))),
        (
            "jail id",
            Box::new(|s| s.vmm.as_mut().unwrap().jail.id = "other".into()),
        ),
        (
            "jail dir",
            Box::new(|s| {
                let jail = &mut s.vmm.as_mut().unwrap().jail;
                jail.jail_dir = victim.join("x");
            }),
        ),
        (
            "vmm netns",
            Box::new(|s| s.vmm.as_mut().unwrap().netns = victim.clone()),
        ),
        (
            "helper jail of another sandbox",
            Box::new(|s| {
                let vmm = s.vmm.as_mut().unwrap();
                let mut jail = vmm.jail.clone();
                jail.id = "other".into();
                vmm.helpers.push(vmjail_vmm::HelperRecord {
                    name: "vhost-device-vsock".into(),
                    jail,
                });
            }),
        ),
        (
            "helper jail dir outside the chroot base",
            Box::new(|s| {
                let vmm = s.vmm.as_mut().unwrap();
                let mut jail = vmm.jail.clone();
                jail.jail_dir = victim.join("vhost-device-vsock/forged");
                jail.mounts.clear();
                vmm.helpers.push(vmjail_vmm::HelperRecord {
                    name: "vhost-device-vsock".into(),
                    jail,
                });
            }),
        ),
        (
            "network tag",
            Box::new(|s| s.network.as_mut().unwrap().tag = "vmjail:other".into()),
        ),
        (
            "network names a link that is not vmjail's",
            Box::new(|s| {
                use vmjail_vmm::net::{record::Made, Endpoint, NicRecord};
                s.network.as_mut().unwrap().nics.push(NicRecord {
                    slot: 0,
                    endpoint: Endpoint {
                        name: "eth0".into(),
                        ifindex: 2,
                        mac: "02:00:00:00:00:01".parse().unwrap(),
                        mtu: 1500,
                        addresses: vec![],
                        routes: vec![],
                        neighbours: vec![],
                    },
                    made: vec![Made::Bridge {
                        name: "docker0".into(),
                    }],
                    changed: vec![],
                    device: None,
                });
            }),
        ),
    ];
    for (what, forge) in forgeries {
        let mut state = honest.clone();
        forge(&mut state);
        std::fs::write(
            fx.state_dir.join("forged/state.json"),
            serde_json::to_vec(&state).unwrap(),
        )
        .unwrap();
        let err = fx.process().delete(&sid("forged"), true, T).unwrap_err();
        assert!(
            matches!(err, SandboxError::ForgedRecord { .. }),
            "{what}: {err}"
        );
        assert!(
            victim.join("forged").exists(),
            "{what}: acted on the forgery"
        );
    }
    std::fs::write(
        fx.state_dir.join("forged/state.json"),
        serde_json::to_vec(&honest).unwrap(),
    )
    .unwrap();
    fx.process().delete(&sid("forged"), true, T).unwrap();
    fx.assert_gone("forged");
}

/// The console log outlives `stop` (in the state dir, named by `state`)
/// until `delete`; `state` never names a path that is gone.
#[test]
fn the_console_log_is_kept_until_delete_and_state_names_only_what_exists() {
    let fx = Fixture::new();
    let id = sid("console");
    let view = fx.create("console");
    let log = fx.state_dir.join("console").join(crate::console::LOG);
    assert_eq!(view.console_log.as_deref(), Some(log.as_path()));
    assert!(view.jail_root.as_deref().is_some_and(Path::is_dir));
    fx.process().start(&id, T).unwrap();

    let stopped = fx.process().stop(&id, T).unwrap();
    assert_eq!(stopped.jail_root, None, "the jail is gone after stop");
    assert_eq!(stopped.console_log.as_deref(), Some(log.as_path()));
    assert_eq!(fx.process().state(&id).unwrap(), stopped);
    let mut out = Vec::new();
    fx.process()
        .console(&id, &mut out, false, &mut || false)
        .unwrap();
    assert_eq!(out, b"booting\n");
    let pump = fx.on_disk("console").console.unwrap().pump.unwrap();
    assert!(!pump.is_alive(), "the pump outlived the VMM");

    fx.process().delete(&id, false, T).unwrap();
    assert!(!log.exists());
    fx.assert_gone("console");
}

/// Following stops once the sandbox stops and its log is complete.
#[test]
fn following_the_console_ends_when_the_sandbox_stops() {
    let fx = Fixture::new();
    let id = sid("follow");
    fx.create("follow");
    fx.process().start(&id, T).unwrap();
    let (out, polls) = std::thread::scope(|scope| {
        let follower = scope.spawn(|| {
            let mut out = Vec::new();
            let mut polls = 0;
            fx.process()
                .console(&id, &mut out, true, &mut || {
                    polls += 1;
                    false
                })
                .unwrap();
            (out, polls)
        });
        std::thread::sleep(Duration::from_millis(300));
        assert!(!follower.is_finished(), "returned while the VM ran");
        fx.process().stop(&id, T).unwrap();
        follower.join().unwrap()
    });
    assert_eq!(out, b"booting\n");
    assert!(polls > 1, "{polls}");
    fx.process().delete(&id, false, T).unwrap();
    // give_up ends a follow of a live sandbox.
    let id = sid("giveup");
    fx.create("giveup");
    let mut out = Vec::new();
    fx.process()
        .console(&id, &mut out, true, &mut || true)
        .unwrap();
    assert_eq!(fx.process().state(&id).unwrap().status, Status::Created);
    fx.process().delete(&id, true, T).unwrap();
}

/// Review finding 3, against the configuration: a record whose jail dir,
/// cgroups or `[jail]` lie outside what this process's configuration says
/// is refused (a hierarchy's root named like the sandbox, a host tree as
/// its jail, another base); an honest one goes.
#[test]
fn a_record_outside_the_configured_jail_is_refused() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    fx.create("scoped");
    let honest = fx.on_disk("scoped");
    let victim = fx.state_dir.parent().unwrap().join("victim/double/scoped");
    std::fs::create_dir_all(&victim).unwrap();
    let pids_root = vmjail_jail::cgroup::CgroupMounts::discover()
        .v1
        .get("pids")
        .cloned();
    type Forgery<'a> = Box<dyn Fn(&mut SandboxState) + 'a>;
    let mut forgeries: Vec<(&str, Forgery)> = vec![
        (
            "jail dir elsewhere",
            Box::new(|s| s.vmm.as_mut().unwrap().jail.jail_dir = victim.clone()),
        ),
        (
            "another chroot base",
            Box::new(|s| s.config.jail.chroot_base_dir = victim.clone()),
        ),
        (
            "a uid outside the range",
            Box::new(|s| s.config.jail.uid = 0),
        ),
    ];
    if let Some(root) = pids_root {
        forgeries.push((
            "a hierarchy root",
            Box::new(move |s| s.vmm.as_mut().unwrap().jail.cgroups = vec![root.clone()]),
        ));
    }
    for (what, forge) in forgeries {
        let mut state = honest.clone();
        forge(&mut state);
        std::fs::write(
            fx.state_dir.join("scoped/state.json"),
            serde_json::to_vec(&state).unwrap(),
        )
        .unwrap();
        let err = fx.process().delete(&sid("scoped"), true, T).unwrap_err();
        assert!(
            matches!(
                err,
                SandboxError::ForgedRecord { .. } | SandboxError::ConfigMismatch { .. }
            ),
            "{what}: {err}"
        );
        assert!(victim.exists(), "{what}: acted on the forgery");
    }
    std::fs::write(
        fx.state_dir.join("scoped/state.json"),
        serde_json::to_vec(&honest).unwrap(),
    )
    .unwrap();
    fx.process().delete(&sid("scoped"), true, T).unwrap();
    fx.assert_gone("scoped");
}

/// A bundle with a one-file rootfs and a minimal config.json.
fn test_bundle(dir: &Path) -> PathBuf {
    let bundle = dir.join("bundle");
    std::fs::create_dir_all(bundle.join("rootfs")).unwrap();
    std::fs::write(bundle.join("rootfs/hello"), b"hi").unwrap();
    std::fs::write(
        bundle.join("config.json"),
        r#"{"ociVersion":"1.0.2","process":{"cwd":"/","args":["/hello"],"user":{"uid":0,"gid":0}},"root":{"path":"rootfs"}}"#,
    )
    .unwrap();
    bundle
}

#[test]
fn containers_are_recorded_with_their_image_and_go_with_the_sandbox() {
    if !root() {
        return;
    }
    let f = Fixture::new();
    let mut config = f.config.clone();
    config.hypervisor.use_vsock = true;
    let bundle = test_bundle(f._tmp.path());
    let spec = ContainerSpec {
        id: "web".into(),
        bundle: bundle.clone(),
        pod: false,
    };
    let sandboxes = f.process();
    sandboxes
        .create_with_containers(&sid("c1"), &config, None, std::slice::from_ref(&spec))
        .unwrap();
    let state = f.on_disk("c1");
    assert_eq!(state.containers.len(), 1);
    let c = &state.containers[0];
    assert_eq!(c.id, "web");
    assert_eq!(c.bundle, bundle.canonicalize().unwrap());
    assert_eq!(c.status, crate::ContainerStatus::Ready);
    assert_eq!(c.disk_serial, "vmjail-c0");
    assert_eq!(c.image, f.state_dir.join("c1/container-0.img"));
    assert!(c.image.is_file() && !c.staging.exists());
    // Not a running sandbox yet: no container operation.
    let client_less = sandboxes.agent_client(&sid("c1"), Duration::from_millis(10));
    assert_eq!(kind(&client_less.err().unwrap()), ErrorKind::WrongState);
    sandboxes.delete(&sid("c1"), true, T).unwrap();
    f.assert_gone("c1");
}

#[test]
fn bad_container_specs_are_refused_before_anything_is_claimed() {
    if !root() {
        return;
    }
    let f = Fixture::new();
    let bundle = test_bundle(f._tmp.path());
    let spec = |id: &str, bundle: &Path| ContainerSpec {
        id: id.into(),
        bundle: bundle.to_path_buf(),
        pod: false,
    };
    // Without the agent's vsock.
    let err = f
        .process()
        .create_with_containers(&sid("c2"), &f.config, None, &[spec("a", &bundle)])
        .unwrap_err();
    assert!(err.to_string().contains("use_vsock"), "{err}");
    let mut config = f.config.clone();
    config.hypervisor.use_vsock = true;
    for (specs, needle) in [
        (vec![spec("..", &bundle)], "container id"),
        (vec![spec("a/b", &bundle)], "container id"),
        (vec![spec("a", &bundle), spec("a", &bundle)], "twice"),
        (vec![spec("a", Path::new("/nonexistent"))], "bundle"),
        (
            (0..9).map(|i| spec(&format!("c{i}"), &bundle)).collect(),
            "at most",
        ),
    ] {
        let err = f
            .process()
            .create_with_containers(&sid("c2"), &config, None, &specs)
            .unwrap_err();
        assert_eq!(kind(&err), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains(needle), "{needle}: {err}");
        f.assert_gone("c2");
    }
}

#[test]
fn a_pods_later_containers_are_added_and_removed_over_the_share() {
    if !root() {
        return;
    }
    let f = Fixture::new();
    let mut config = f.config.clone();
    config.hypervisor.use_vsock = true;
    let bundle = test_bundle(f._tmp.path());
    let spec = |id: &str| ContainerSpec {
        id: id.into(),
        bundle: bundle.clone(),
        pod: true,
    };
    let sandboxes = f.process();
    // Bundles as disks: a running VM takes no more.
    sandboxes
        .create_with_containers(&sid("p1"), &config, None, &[spec("pause")])
        .unwrap();
    let err = sandboxes
        .add_container(&sid("p1"), &spec("app"))
        .unwrap_err();
    assert_eq!(kind(&err), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("virtio-fs"), "{err}");
    assert_eq!(f.on_disk("p1").containers.len(), 1);
    sandboxes.delete(&sid("p1"), true, T).unwrap();

    config.hypervisor.shared_fs = vmjail_config::SharedFs::VirtioFs;
    sandboxes
        .create_with_containers(&sid("p2"), &config, None, &[spec("pause")])
        .unwrap();
    sandboxes.start(&sid("p2"), T).unwrap();
    sandboxes.add_container(&sid("p2"), &spec("app")).unwrap();
    let state = f.on_disk("p2");
    let app = state.containers.iter().find(|c| c.id == "app").unwrap();
    assert_eq!(app.share.as_deref(), Some("1"));
    assert_eq!(app.status, crate::ContainerStatus::Ready);
    let err = sandboxes
        .add_container(&sid("p2"), &spec("app"))
        .unwrap_err();
    assert!(err.to_string().contains("twice"), "{err}");
    sandboxes.remove_container(&sid("p2"), "app").unwrap();
    assert_eq!(f.on_disk("p2").containers.len(), 1);
    // A removed container's share directory is never given out again.
    sandboxes.add_container(&sid("p2"), &spec("next")).unwrap();
    let state = f.on_disk("p2");
    let next = state.containers.iter().find(|c| c.id == "next").unwrap();
    assert_eq!(next.share.as_deref(), Some("2"));
    let calls = f.factory.calls();
    let count = |name: &str| calls.iter().filter(|c| *c == name).count();
    assert_eq!((count("add_shared"), count("remove_shared")), (2, 1));
    // Sharing fails half-way: what was shared is taken back, no record.
    f.factory.fail_at("add_shared");
    sandboxes
        .add_container(&sid("p2"), &spec("bad"))
        .unwrap_err();
    let state = f.on_disk("p2");
    assert!(state.containers.iter().all(|c| c.id != "bad"));
    assert_eq!(
        f.factory
            .calls()
            .iter()
            .filter(|c| *c == "remove_shared")
            .count(),
        2
    );
    sandboxes.delete(&sid("p2"), true, T).unwrap();
    f.assert_gone("p2");
}

#[test]
fn a_stop_asks_only_a_ready_qemu_agent_guest_and_keeps_the_rest_of_the_timeout() {
    if !root() {
        return;
    }
    let f = Fixture::new();
    let mut config = f.config.clone();
    config.hypervisor.use_vsock = true;
    let sandboxes = Sandboxes::new(&config.jail, f.factory.clone()).with_netns_dir(&f.netns_dir);
    let id = sid("p1");
    sandboxes.create(&id, &config, None).unwrap();
    sandboxes.start(&id, T).unwrap();
    let state = f.on_disk("p1");
    let timeout = Duration::from_secs(30);
    // No marker yet, so perhaps not vmjail's guest: not asked, and the
    // whole timeout left for the ACPI button.
    assert_eq!(sandboxes.power_off_through_agent(&state, timeout), timeout);
    // Said it was up, but no agent answers (the double has no vsock): the
    // powerdown that follows reaches no listener, so only a short grace.
    let log = f.state_dir.join("p1").join(crate::console::LOG);
    std::fs::write(&log, "VMJAIL-GUEST-READY uptime=1.0s kernel=test\n").unwrap();
    let left = sandboxes.power_off_through_agent(&state, timeout);
    assert!(left <= Duration::from_secs(1), "{left:?}");
    // Firecracker does not end when its guest powers off: never asked.
    let mut firecracker = state.clone();
    firecracker.config.hypervisor_kind = vmjail_config::HypervisorKind::Firecracker;
    assert_eq!(
        sandboxes.power_off_through_agent(&firecracker, timeout),
        timeout
    );
    sandboxes.delete(&id, true, T).unwrap();
    f.assert_gone("p1");
}
