//! QEMU's `shared_fs = "virtio-fs"`: a per-sandbox `virtiofsd` (the
//! configured `virtio_fs_daemon`) serving a tree built for the sandbox
//! (its containers' bundles: config, rootfs and bind sources bound in),
//! reached by QEMU's `vhost-user-fs` device over a vhost-user socket.
//!
//! Why it is not in a jail like QEMU's: it must read and write the
//! container's files whatever their owners and modes (chown, setuid/setgid
//! of created files, writes to root's files) as the guest's root does, so
//! it runs as root with the capabilities that needs. It is confined all
//! the same:
//! - recorded before anything is made (a helper entry of the VMM record
//!   with a jail record of its own) and torn down from that record;
//! - its tree in a jail directory of its own (`<base>/virtiofsd/<id>/root`,
//!   a tmpfs), every bind mount recorded before it is made;
//! - started in the sandbox's netns and in its cgroup, joined before it
//!   execs: with `[jail] parent_cgroup` set, QEMU's own leaf (it counts
//!   against the sandbox's limits, as the vsock helper does), else a leaf
//!   of its own, `virtiofsd/<id>`, with a copy of `[jail] cgroups`;
//! - its bounding set cut to [`KEEP_CAPS`], no ambient capabilities,
//!   no_new_privs; it then sandboxes itself (`--sandbox namespace`: new
//!   mount, pid and net namespaces, pivot_root into the shared tree so it
//!   sees nothing else, a seccomp filter) and keeps only the capabilities
//!   of file serving (CAP_MKNOD and CAP_SETFCAP dropped with `--modcaps`).

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use vmjail_config::RuntimeConfig;
use vmjail_jail::cgroup::{CgroupMounts, CgroupPlan, Leaf};
use vmjail_jail::{Jail, JailRecord, Jailer, Placement, Recorder};

use super::helper_socket::HelperSocket;
use super::{layout, vhost_vsock::HelperChain, Error};
use crate::hypervisor::{HelperRecord, ShareEntry, SharedDir, VmmRecord, VmmRecorder};

/// The helper's name: its record's and its jail directory's.
pub const HELPER: &str = "virtiofsd";
/// The virtio-fs tag the guest mounts.
pub const TAG: &str = "vmjail";
/// The shared tree, in the helper's jail.
const SHARE_DIR: &str = "/share";
/// The vhost-user socket's directory, in the helper's jail.
const SOCKET_DIR: &str = "/socket";
/// The helper's output, in its jail, quoted in errors.
const OUTPUT: &str = "/virtiofsd.out";
/// How long the helper may take to open its socket.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// The daemon's socket, as [`super::helper_socket`] waits for and binds it.
const SOCKET: HelperSocket = HelperSocket {
    helper: HELPER,
    socket_dir: SOCKET_DIR,
    output: OUTPUT,
    ready_timeout: READY_TIMEOUT,
};
/// The file descriptors it may open (one per inode the guest holds).
const NOFILE: u64 = 65_536;

/// The capabilities virtiofsd may hold at all: file serving (CHOWN,
/// DAC_OVERRIDE, FOWNER, FSETID, SETGID, SETUID: it acts as the guest's
/// uid/gid on each request), SYS_ADMIN to build its own namespaces at
/// start, SETPCAP to drop its bounding set once it has. It gives up
/// SYS_ADMIN and SETPCAP itself after sandboxing.
const KEEP_CAPS: &[u32] = &[0, 1, 3, 4, 6, 7, 8, 21];

/// The vhost-user socket QEMU connects to, inside QEMU's jail.
pub fn socket_in_qemu_jail() -> PathBuf {
    Path::new(layout::VIRTIOFS_DIR).join("vhost.sock")
}

/// The configured daemon, which must be a file.
fn daemon(config: &RuntimeConfig) -> Result<PathBuf, Error> {
    let path = config
        .hypervisor
        .virtio_fs_daemon
        .clone()
        .unwrap_or_default();
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::VirtiofsdMissing { path })
    }
}

/// Checks the daemon before anything is made.
pub fn check(config: &RuntimeConfig) -> Result<(), Error> {
    daemon(config).map(drop)
}

/// `virtio_fs_cache` (Kata's values) as virtiofsd's `--cache`.
fn cache_mode(cache: &str) -> &'static str {
    match cache {
        "always" => "always",
        "none" | "never" => "never",
        "metadata" => "metadata",
        _ => "auto",
    }
}

fn helper_args(root: &Path, cache: &str) -> Vec<OsString> {
    let mut shared = OsString::from("--shared-dir=");
    shared.push(root.join(SHARE_DIR.trim_start_matches('/')));
    // Relative to its working directory, the socket directory: the
    // absolute path under chroot_base_dir with a 64-character id (Docker's)
    // is longer than a socket address may be (108 bytes).
    let socket = OsString::from("--socket-path=vhost.sock");
    vec![
        shared,
        socket,
        "--sandbox=namespace".into(),
        "--seccomp=kill".into(),
        "--modcaps=-mknod:-setfcap".into(),
        // O_PATH descriptors rather than file handles: no
        // CAP_DAC_READ_SEARCH (which opens any file by handle).
        "--inode-file-handles=never".into(),
        // One filesystem in the guest: submounts announced would be
        // automount points the agent's O_PATH lookups do not trigger.
        "--no-announce-submounts".into(),
        format!("--cache={}", cache_mode(cache)).into(),
        "--rlimit-nofile=0".into(),
        "--log-level=warn".into(),
    ]
}

/// A relative path of plain components, or an error naming it.
fn plain(path: &Path) -> Result<&Path, Error> {
    let ok = !path.as_os_str().is_empty()
        && path.components().all(|c| matches!(c, Component::Normal(_)));
    ok.then_some(path).ok_or_else(|| Error::BadShareEntry {
        path: path.to_path_buf(),
    })
}

/// Launch the daemon for sandbox `record.id` serving `shared`, recorded in
/// `record.helpers` before anything is created, and wait (bounded) until
/// its socket is up. Returns its jail (whose socket directory
/// [`bind_into`] gives QEMU).
pub(super) fn launch(
    record: &mut VmmRecord,
    recorder: &mut dyn VmmRecorder,
    config: &RuntimeConfig,
    jailer_exe: &Path,
    shared: &SharedDir,
) -> Result<Jail, Error> {
    let exe = daemon(config)?;
    let spec = crate::jail_spec::jail_spec(
        &record.id,
        &exe,
        &record.netns,
        &config.jail,
        Vec::new(),
        Vec::new(),
    );
    record.helpers.push(HelperRecord {
        name: HELPER.into(),
        jail: JailRecord::default(),
    });
    let index = record.helpers.len() - 1;
    recorder.record(record).map_err(|source| Error::Record {
        step: "preparing virtiofsd's directory",
        source,
    })?;
    let mut chain = HelperChain {
        record,
        index,
        outer: recorder,
    };
    let jail_err = |step: &'static str| {
        move |e: vmjail_jail::JailError| Error::Helper {
            helper: HELPER,
            step,
            source: Box::new(e),
        }
    };
    let jailer = Jailer::BuiltIn {
        jailer_exe: jailer_exe.to_path_buf(),
    };
    let mut jail =
        Jail::prepare(spec, jailer, &mut chain).map_err(jail_err("preparing its directory"))?;
    for dir in [SOCKET_DIR, SHARE_DIR] {
        jail.make_dir(Path::new(dir))
            .map_err(jail_err("making its directories"))?;
    }
    build_tree(&mut jail, &mut chain, shared)?;
    let output_path = jail
        .make_file(Path::new(OUTPUT))
        .map_err(jail_err("making its output file"))?;
    let output = std::fs::OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&output_path)
        .map_err(|source| Error::OutputFile {
            path: output_path.clone(),
            source,
        })?;
    let stderr = output.try_clone().map_err(|source| Error::OutputFile {
        path: output_path,
        source,
    })?;
    // From here the helper's record is completed by hand: its cgroup and
    // its pid are not the jail's doing.
    let mut helper = jail.record().clone();
    let plan = cgroup_plan(config, &jail, &record_id(&chain))?;
    for dir in plan
        .dirs_to_create()
        .into_iter()
        .chain(plan.leaves.iter().map(|l| l.path.clone()))
    {
        if !helper.cgroups.contains(&dir) {
            helper.cgroups.push(dir);
        }
    }
    save(&mut chain, &helper, "creating virtiofsd's cgroup")?;
    let root = jail.root();
    let mut command = Command::new(&exe);
    command
        .args(helper_args(&root, &config.hypervisor.virtio_fs_cache))
        .current_dir(root.join(SOCKET_DIR.trim_start_matches('/')))
        .env_clear()
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(stderr);
    let pid = spawn_confined(command, &chain.record.netns, &plan)?;
    // A crash before this record leaves the daemon unrecorded but in its
    // recorded cgroup, where teardown kills it.
    helper.vmm_pid = Some(pid);
    helper.vmm_start_time = vmjail_jail::process::start_time(pid);
    save(&mut chain, &helper, "starting virtiofsd")?;
    SOCKET.wait_ready(&helper)?;
    // QEMU runs as the jail's user: the socket (root's) must be its.
    let socket = root
        .join(SOCKET_DIR.trim_start_matches('/'))
        .join("vhost.sock");
    std::os::unix::fs::lchown(&socket, Some(config.jail.uid), Some(config.jail.gid)).map_err(
        |source| Error::OutputFile {
            path: socket.clone(),
            source,
        },
    )?;
    Ok(jail)
}

/// The running daemon's jail, from its entry of `record` (this process
/// may not be the one that launched it), and that entry's index.
fn reopen(
    record: &VmmRecord,
    config: &RuntimeConfig,
    jailer_exe: &Path,
) -> Result<(Jail, usize), Error> {
    let index = record
        .helpers
        .iter()
        .position(|h| h.name == HELPER)
        .ok_or_else(|| Error::NoVirtiofsd {
            id: record.id.clone(),
        })?;
    let spec = crate::jail_spec::jail_spec(
        &record.id,
        &daemon(config)?,
        &record.netns,
        &config.jail,
        Vec::new(),
        Vec::new(),
    );
    let jailer = Jailer::BuiltIn {
        jailer_exe: jailer_exe.to_path_buf(),
    };
    let jail = Jail::from_record(spec, jailer, record.helpers[index].jail.clone());
    Ok((jail, index))
}

/// Adds `shared`'s entries to the tree of the daemon already serving
/// sandbox `record.id`. The jail root is a shared mount and the daemon's
/// own namespace a slave of it (virtiofsd makes its mounts `MS_SLAVE`
/// before it moves into the tree), so each bind made here on the host
/// appears in what the daemon serves; it sees nothing outside the tree.
pub(super) fn add_entries(
    record: &mut VmmRecord,
    recorder: &mut dyn VmmRecorder,
    config: &RuntimeConfig,
    jailer_exe: &Path,
    shared: &SharedDir,
) -> Result<(), Error> {
    let (mut jail, index) = reopen(record, config, jailer_exe)?;
    let mut chain = HelperChain {
        record,
        index,
        outer: recorder,
    };
    build_tree(&mut jail, &mut chain, shared)
}

/// Removes top-level directory `dir` of the daemon's tree: every recorded
/// mount below it (deepest first; the unmount propagates into the
/// daemon's namespace), then the files and directories left, never
/// crossing into another filesystem.
pub(super) fn remove_dir(
    record: &mut VmmRecord,
    recorder: &mut dyn VmmRecorder,
    config: &RuntimeConfig,
    jailer_exe: &Path,
    dir: &Path,
) -> Result<(), Error> {
    let dir = plain(dir)?;
    if dir.components().count() != 1 {
        return Err(Error::BadShareEntry {
            path: dir.to_path_buf(),
        });
    }
    let (mut jail, index) = reopen(record, config, jailer_exe)?;
    let top_in_jail = Path::new(SHARE_DIR).join(dir);
    let root = jail.root();
    let top = vmjail_jail::host_path(&root, &top_in_jail);
    let mut mounts: Vec<PathBuf> = jail
        .record()
        .mounts
        .iter()
        .filter(|m| m.starts_with(&top))
        .filter_map(|m| m.strip_prefix(&root).ok().map(|r| Path::new("/").join(r)))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    let mut chain = HelperChain {
        record,
        index,
        outer: recorder,
    };
    let remove_err = |e: vmjail_jail::JailError| Error::Helper {
        helper: HELPER,
        step: "removing a shared directory",
        source: Box::new(e),
    };
    for in_jail in mounts {
        jail.unplace(&mut chain, &in_jail).map_err(remove_err)?;
    }
    jail.remove_tree(&top_in_jail).map_err(remove_err)
}

fn record_id(chain: &HelperChain<'_>) -> String {
    chain.record.id.clone()
}

fn save(chain: &mut HelperChain<'_>, helper: &JailRecord, step: &'static str) -> Result<(), Error> {
    chain
        .record(helper)
        .map_err(|source| Error::Record { step, source })
}

/// Makes the shared tree's entries in the jail: directories owned by the
/// jail's user, files written, binds recorded then made.
fn build_tree(
    jail: &mut Jail,
    chain: &mut HelperChain<'_>,
    shared: &SharedDir,
) -> Result<(), Error> {
    let place_err = |path: &Path| {
        let path = path.to_path_buf();
        move |e: vmjail_jail::JailError| Error::Place {
            what: "a shared file",
            path,
            source: Box::new(e),
        }
    };
    for entry in &shared.entries {
        let rel = match entry {
            ShareEntry::File { path, .. } | ShareEntry::Bind { path, .. } => plain(path)?,
        };
        let in_jail = Path::new(SHARE_DIR).join(rel);
        // Parents first (`place` makes its own; a file's are made here).
        let mut parent = PathBuf::from(SHARE_DIR);
        for part in rel.parent().into_iter().flat_map(Path::components) {
            parent.push(part);
            jail.make_dir(&parent).map_err(place_err(&parent))?;
        }
        match entry {
            ShareEntry::File { contents, .. } => {
                let host = jail.make_file(&in_jail).map_err(place_err(&in_jail))?;
                let written = std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&host)
                    .and_then(|mut f| f.write_all(contents));
                written.map_err(|source| Error::OutputFile { path: host, source })?;
            }
            ShareEntry::Bind {
                source, read_only, ..
            } => {
                let how = match read_only {
                    true => Placement::ReadOnlyBind,
                    false => Placement::ReadWriteShare,
                };
                jail.place(chain, source, &in_jail, how)
                    .map_err(place_err(source))?;
            }
        }
    }
    Ok(())
}

/// The helper's cgroup: `<parent_cgroup or virtiofsd>/<id>` with
/// `[jail] cgroups`, or without settings a cgroup v2 leaf (teardown finds
/// and kills the daemon's processes through it).
fn cgroup_plan(config: &RuntimeConfig, jail: &Jail, id: &str) -> Result<CgroupPlan, Error> {
    let mounts = CgroupMounts::discover();
    let parent = match config.jail.parent_cgroup.is_empty() {
        true => HELPER.to_string(),
        false => config.jail.parent_cgroup.clone(),
    };
    let cgroup_err = |e: vmjail_jail::JailError| Error::Helper {
        helper: HELPER,
        step: "planning its cgroup",
        source: Box::new(e),
    };
    let mut plan = CgroupPlan::new(
        &mounts,
        jail.spec().cgroup_version,
        &config.jail.cgroups,
        &parent,
        id,
    )
    .map_err(cgroup_err)?;
    if plan.leaves.is_empty() {
        let v2 = mounts.v2.clone().ok_or(Error::VirtiofsdNoCgroup)?;
        plan.leaves.push(Leaf {
            path: v2.join(&parent).join(id),
            hierarchy: v2,
            cpuset: false,
        });
    }
    Ok(plan)
}

/// Spawns `command` in the plan's cgroups (made first; the child joins
/// them before it execs, so nothing it runs is ever outside), in the
/// sandbox's netns, confined (see [`KEEP_CAPS`]).
fn spawn_confined(mut command: Command, netns: &Path, plan: &CgroupPlan) -> Result<i32, Error> {
    let spawn_err = |source| Error::VirtiofsdSpawn { source };
    plan.prepare().map_err(|e| Error::Helper {
        helper: HELPER,
        step: "making its cgroup",
        source: Box::new(e),
    })?;
    let mut procs = Vec::new();
    for leaf in &plan.leaves {
        // The forked child is single-threaded: joining by `0` moves it
        // whole (v1's `tasks` skips the thread-group lock's RCU wait).
        let path = leaf.path.join(plan.join_file());
        let file = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|source| Error::OutputFile { path, source })?;
        procs.push(OwnedFd::from(file));
    }
    let netns = File::open(netns).map_err(spawn_err)?;
    let netns_fd = netns.as_raw_fd();
    // Raised up to the hard limit vmjail has (raising that needs
    // CAP_SYS_RESOURCE, which the daemon does not get).
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_err(|e| spawn_err(std::io::Error::from(e)))?;
    let nofile = NOFILE.min(hard);
    let procs_fds: Vec<i32> = procs.iter().map(AsRawFd::as_raw_fd).collect();
    // SAFETY: the closure makes async-signal-safe syscalls only (write,
    // setns, setrlimit, prctl) and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            for fd in &procs_fds {
                nix::unistd::write(BorrowedFd::borrow_raw(*fd), b"0")?;
            }
            nix::sched::setns(
                BorrowedFd::borrow_raw(netns_fd),
                nix::sched::CloneFlags::CLONE_NEWNET,
            )?;
            nix::sys::resource::setrlimit(
                nix::sys::resource::Resource::RLIMIT_NOFILE,
                nofile,
                hard,
            )?;
            vmjail_jail::confine_root_helper(KEEP_CAPS)?;
            Ok(())
        });
    }
    let child = command.spawn().map_err(spawn_err)?;
    Ok(child.id() as i32)
}

/// Binds the daemon's socket directory read-only into QEMU's jail at
/// [`layout::VIRTIOFS_DIR`].
pub(super) fn bind_into(
    qemu_jail: &mut Jail,
    helper: &JailRecord,
    recorder: &mut dyn Recorder,
) -> Result<(), Error> {
    SOCKET.bind_into(
        qemu_jail,
        helper,
        recorder,
        layout::VIRTIOFS_DIR,
        "virtiofsd's socket directory",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daemon_sees_only_the_share_and_keeps_few_capabilities() {
        let args: Vec<String> = helper_args(Path::new("/srv/j/virtiofsd/a/root"), "")
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args[0], "--shared-dir=/srv/j/virtiofsd/a/root/share");
        assert_eq!(args[1], "--socket-path=vhost.sock");
        for needed in [
            "--sandbox=namespace",
            "--seccomp=kill",
            "--modcaps=-mknod:-setfcap",
            "--inode-file-handles=never",
            "--cache=auto",
        ] {
            assert!(args.iter().any(|a| a == needed), "{needed}: {args:?}");
        }
        // Never CAP_DAC_READ_SEARCH (2), CAP_SYS_PTRACE (19), CAP_NET_ADMIN (12).
        for never in [2, 12, 19] {
            assert!(!KEEP_CAPS.contains(&never));
        }
        assert_eq!(cache_mode("none"), "never");
    }

    #[test]
    fn share_paths_are_plain() {
        assert!(plain(Path::new("0/binds/1")).is_ok());
        for bad in ["", "/abs", "0/../x", "./x"] {
            assert!(plain(Path::new(bad)).is_err(), "{bad}");
        }
    }
}
