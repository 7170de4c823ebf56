//! The host side of entering a jail: [`Entry::build`].

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;

use super::{Device, Entry, ExecFile};
use crate::args::{JailerArgs, DEFAULT_DEVICES};
use crate::cgroup::{CgroupMounts, CgroupPlan};
use crate::error::JailError;
use crate::fsat::{self, Owner};
use crate::{exec_only, seccomp, validate};

impl Entry {
    /// Validate `args` and prepare everything on the host side.
    pub fn build(args: &JailerArgs) -> Result<Entry, JailError> {
        validate::validate_id(&args.id)?;
        let (exec_file, exec_name) = validate::validate_exec_file(&args.exec_file)?;
        let base = validate::validate_chroot_base(&args.chroot_base_dir)?;
        let root = base.join(&exec_name).join(&args.id).join("root");
        if let Some(sock) = &args.api_sock {
            validate::validate_socket_path(&root, sock)?;
        }
        let owner = Owner {
            uid: args.uid,
            gid: args.gid,
        };
        let exec_path = cstring(OsStr::new(&format!("/{exec_name}")))?;
        let vmm_argv = std::iter::once(Ok(exec_path.clone()))
            .chain(args.vmm_args.iter().map(|arg| cstring(arg)))
            .collect::<Result<Vec<_>, _>>()?;
        make_layout(&base, &exec_name, &args.id, owner)?;
        let netns = match &args.netns {
            Some(path) => Some((open_netns(path)?, path.clone())),
            None => None,
        };
        let dev_null =
            nix::fcntl::open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
                .map(fsat::own)
                .map_err(|e| JailError::fs("opening", "/dev/null", e))?;
        let root_fd = fsat::open_dir(&root)?;
        let (exec_place, exec_file_kind) = place_exec_file(
            &exec_file,
            &base,
            (&root_fd, &root),
            &exec_name,
            args.copy_exec_file,
        )?;
        // Made after the exec file: copying it from inside a small memory
        // cgroup would charge its page cache there.
        let cgroup_joins = prepare_cgroups(args, &exec_name)?;
        for dir in ["dev", "run"] {
            fsat::walk_create(&root_fd, &root, &[OsStr::new(dir)], Some(owner))?;
        }
        let wanted: Vec<&Path> = match &args.devices {
            Some(devices) => devices.iter().map(PathBuf::as_path).collect(),
            None => DEFAULT_DEVICES.iter().map(Path::new).collect(),
        };
        let devices = host_devices(&wanted)?;
        let c = |p: &Path| cstring(p.as_os_str());
        let argv_ptrs = vmm_argv
            .iter()
            .map(|a| a.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        Ok(Entry {
            root: c(&root)?,
            exec_shown: root.join(&exec_name),
            root_shown: root,
            exec_name: cstring(OsStr::new(&exec_name))?,
            exec_place,
            exec_file: exec_file_kind,
            cgroup_joins,
            dev_tmpfs: !wanted.is_empty(),
            devices,
            owner,
            netns,
            dev_null,
            daemonize: args.daemonize,
            rlimit_fsize: args.rlimit_fsize.unwrap_or(libc::RLIM_INFINITY),
            rlimit_no_file: args.rlimit_no_file,
            seccomp: seccomp::program(),
            pid_file: c(&crate::pid_file::path(Path::new("/"), &exec_name))?,
            exec_path,
            _argv: vmm_argv,
            argv_ptrs,
        })
    }
}

fn cstring(s: &OsStr) -> Result<CString, JailError> {
    CString::new(s.as_bytes()).map_err(|_| JailError::Argument {
        arg: s.to_string_lossy().into_owned(),
        reason: "contains a NUL byte".into(),
    })
}

/// `<base>/<exec_name>/<id>/root`, kept as is when `Jail::prepare` made it.
fn make_layout(base: &Path, exec_name: &str, id: &str, owner: Owner) -> Result<(), JailError> {
    let base_fd = fsat::open_dir(base)?;
    let exec_dir_path = base.join(exec_name);
    let exec_dir = fsat::ensure_subdir(
        &base_fd,
        OsStr::new(exec_name),
        &exec_dir_path,
        crate::jail::JAIL_DIR_MODE,
        None,
    )?;
    fsat::check_root_only(&exec_dir, &exec_dir_path)?;
    let id_path = exec_dir_path.join(id);
    // root:root like `Jail::prepare` makes it; only `root` is the jail user's.
    let id_dir = fsat::ensure_subdir(
        &exec_dir,
        OsStr::new(id),
        &id_path,
        crate::jail::JAIL_DIR_MODE,
        None,
    )?;
    fsat::ensure_subdir(
        &id_dir,
        OsStr::new("root"),
        &id_path.join("root"),
        0o700,
        Some(owner),
    )?;
    Ok(())
}

fn open_netns(path: &Path) -> Result<File, JailError> {
    File::open(path).map_err(|e| JailError::JoinNetns {
        path: path.to_path_buf(),
        source: fsat::errno_of(&e),
    })
}

/// Put the exec file at `<root>/<exec_name>`: never through a symlink,
/// never onto a file with other hard links; root's and exec-only for the
/// jail user, which makes the VMM non-dumpable (see `exec_only`) — a copy
/// of its own, or (bound later, in the jail's mount namespace) the
/// exec-only copy shared by every jail of this binary under `base`.
/// Returns the placed file's device and inode.
fn place_exec_file(
    exec_file: &Path,
    base: &Path,
    (root_fd, root): (&OwnedFd, &Path),
    exec_name: &str,
    copy: bool,
) -> Result<((u64, u64), ExecFile), JailError> {
    let shown = root.join(exec_name);
    let dest = openat(
        Some(root_fd.as_raw_fd()),
        OsStr::new(exec_name),
        // O_NONBLOCK: a FIFO left there must not hang us (ENXIO instead).
        OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_WRONLY,
        Mode::from_bits_truncate(0o700),
    )
    .map_err(|e| match e {
        Errno::ELOOP | Errno::ENXIO | Errno::EISDIR => JailError::UnexpectedFileType {
            path: shown.clone(),
            expected: "regular file",
        },
        e => JailError::fs("creating the exec file", &shown, e),
    })?;
    let dest = fsat::own(dest);
    let st = fsat::stat_fd(&dest, &shown)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(JailError::UnexpectedFileType {
            path: shown,
            expected: "regular file",
        });
    }
    if st.st_nlink > 1 {
        return Err(JailError::HardLinkedDestination {
            path: shown,
            links: st.st_nlink,
        });
    }
    let place = (st.st_dev, st.st_ino);
    if copy {
        nix::unistd::ftruncate(&dest, 0).map_err(|e| JailError::fs("truncating", &shown, e))?;
        let mut to = File::from(dest);
        let mut from = File::open(exec_file).map_err(|e| JailError::ExecFileAccess {
            path: exec_file.to_path_buf(),
            source: e,
        })?;
        std::io::copy(&mut from, &mut to).map_err(|e| JailError::Copy {
            source_path: exec_file.to_path_buf(),
            target: shown.clone(),
            source: e,
        })?;
        nix::sys::stat::fchmod(to.as_raw_fd(), Mode::from_bits_truncate(0o111))
            .map_err(|e| JailError::fs("chmod", &shown, e))?;
        return Ok((place, ExecFile::Copied));
    }
    let (copy_fd, copy_path) = exec_only::exec_only_copy(base, exec_file, exec_name)?;
    let copy_st = fsat::stat_fd(&copy_fd, &copy_path)?;
    Ok((
        place,
        ExecFile::Bound {
            source: cstring(copy_path.as_os_str())?,
            source_shown: copy_path,
            id: (copy_st.st_dev, copy_st.st_ino),
        },
    ))
}

/// Make the cgroups and write their settings; returns the files to write
/// `0` to in the jail (each opened now: the jail cannot see /sys).
fn prepare_cgroups(args: &JailerArgs, exec_name: &str) -> Result<Vec<(File, PathBuf)>, JailError> {
    let parent = args
        .parent_cgroup
        .clone()
        .unwrap_or_else(|| exec_name.to_owned());
    let joins_v2_parent =
        args.cgroup_version == crate::CgroupVersion::V2 && args.parent_cgroup.is_some();
    if args.cgroups.is_empty() && !joins_v2_parent {
        return Ok(Vec::new());
    }
    // Looked up only when there is cgroup work: `mountinfo` is costly on a
    // host with many mounts, and this is the start-up path of every VMM.
    let mounts = CgroupMounts::discover();
    let plan = CgroupPlan::new(
        &mounts,
        args.cgroup_version,
        &args.cgroups,
        &parent,
        &args.id,
    )?;
    let mut files: Vec<PathBuf> = Vec::new();
    if plan.leaves.is_empty() {
        // Firecracker's rule for v2 without settings: join `<unified>/<parent>`
        // if it exists (the caller prepared it), create nothing.
        if let (true, Some(hierarchy)) = (joins_v2_parent, &mounts.v2) {
            let dir = hierarchy.join(&parent);
            if dir.is_dir() {
                files.push(dir.join("cgroup.procs"));
            }
        }
    } else {
        plan.prepare()?;
        files.extend(
            plan.leaves
                .iter()
                .map(|leaf| leaf.path.join(plan.join_file())),
        );
    }
    files
        .into_iter()
        .map(|path| {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|source| JailError::Cgroup {
                    step: "attaching to",
                    path: path.clone(),
                    source,
                })?;
            Ok((file, path))
        })
        .collect()
}

/// The host's nodes of `devices` (absolute `/dev/...` paths) that exist:
/// each checked allowed and a character device, never through a symlink.
fn host_devices(devices: &[&Path]) -> Result<Vec<Device>, JailError> {
    let mut found = Vec::new();
    for &device in devices {
        crate::devices::check_allowed(device)?;
        let Ok(meta) = std::fs::symlink_metadata(device) else {
            continue; // "where the host has it"
        };
        if !meta.file_type().is_char_device() {
            return Err(JailError::UnexpectedFileType {
                path: device.to_path_buf(),
                expected: "character device node",
            });
        }
        let mut names: Vec<CString> = Vec::new();
        for component in device.components() {
            if let Component::Normal(name) = component {
                names.push(cstring(name)?);
            }
        }
        // Below /dev: the jail's /dev is the tmpfs itself.
        if names.first().map(|n| n.as_bytes()) == Some(b"dev".as_slice()) {
            names.remove(0);
        }
        let Some(name) = names.pop() else { continue };
        found.push(Device {
            parents: names,
            name,
            rdev: meta.rdev(),
            shown: device.to_path_buf(),
        });
    }
    Ok(found)
}
