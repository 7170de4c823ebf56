//! `Jail`: the caller-side handle of one jail — its layout on the host, the
//! assets placed into it, and the record of everything created.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sys::stat::{Mode, SFlag};
use nix::unistd::{unlinkat, Gid, Uid, UnlinkatFlags};

use crate::devices;
use crate::error::JailError;
use crate::fsat::{self, Owner};
use crate::mounts;
use crate::ownership;
use crate::spec::{host_path, JailRecord, JailSpec, Jailer, Placement, Recorder};
use crate::validate;

/// Mode of `<base>/<exec_name>` and `<base>/<exec_name>/<id>`, owned
/// root:root. A deliberate difference from Firecracker's jailer, which
/// leaves them with the umask's mode (0755 usually): no other user may list
/// the sandboxes or reach into a jail (a VMM that planted a setuid copy of
/// itself or opened up a device node in its root would otherwise hand them
/// to any local account). Only root walks these paths: the VMM sees its
/// root as `/`. Owned by the jail uid, any host process of that uid could
/// rename `root` away under the host-side steps.
pub(crate) const JAIL_DIR_MODE: u32 = 0o700;

/// The jail root is a tmpfs of this size (plus the exec file's, which a
/// jailer may copy in): what the VMM writes in its jail (console, sockets,
/// logs) cannot fill a host file system.
const ROOT_TMPFS_MIB: u64 = 64;

/// One jail on the host. Cheap to re-create from its [`JailRecord`].
#[derive(Debug, Clone)]
pub struct Jail {
    pub(crate) spec: JailSpec,
    pub(crate) jailer: Jailer,
    pub(crate) record: JailRecord,
    /// The exec file's name: the jail's directory below the base, and the
    /// VMM's path (`/<exec_name>`) inside the jail.
    pub(crate) exec_name: String,
    /// Copy the exec file instead of bind-mounting it read-only (built-in only).
    pub(crate) copy_exec_file: bool,
}

impl Jail {
    /// Validate the spec, then create `<base>/<exec_name>/<id>/root` (0700,
    /// owned uid:gid), recording first. Errors if the jail dir exists.
    pub fn prepare(
        spec: JailSpec,
        jailer: Jailer,
        recorder: &mut dyn Recorder,
    ) -> Result<Jail, JailError> {
        validate::validate_id(&spec.id)?;
        let (_, exec_name) = validate::validate_exec_file(&spec.exec_file)?;
        let base = validate::validate_chroot_base(&spec.chroot_base_dir)?;
        let jail_dir = base.join(&exec_name).join(&spec.id);
        let root = jail_dir.join("root");
        if let Some(socket) = &spec.api_socket_in_jail {
            validate::validate_socket_path(&root, socket)?;
        }
        if let Some(parent) = &spec.parent_cgroup {
            validate::validate_parent_cgroup(parent)?;
        }
        for (file, value) in &spec.cgroups {
            validate::validate_cgroup_setting(file, value)?;
        }
        for device in &spec.devices {
            devices::check_allowed(device)?;
        }
        if jail_dir.symlink_metadata().is_ok() {
            return Err(JailError::JailDirExists { path: jail_dir });
        }

        let mut jail = Jail {
            record: JailRecord {
                id: spec.id.clone(),
                jail_dir: jail_dir.clone(),
                // Until mkdir succeeds the dir may be someone else's:
                // teardown must not remove it after a crash in between.
                jail_dir_pending: true,
                ..JailRecord::default()
            },
            spec,
            jailer,
            exec_name,
            copy_exec_file: false,
        };
        jail.save(recorder, "creating the jail dir")?;
        let owner = jail.owner();

        let base_fd = fsat::open_dir(&base)?;
        let exec_dir_path = base.join(&jail.exec_name);
        // Shared by every jail of this VMM: root's alone.
        let exec_dir = fsat::ensure_subdir(
            &base_fd,
            OsStr::new(&jail.exec_name),
            &exec_dir_path,
            JAIL_DIR_MODE,
            None,
        )?;
        fsat::check_root_only(&exec_dir, &exec_dir_path)?;
        let id_name = OsStr::new(&jail.spec.id);
        match nix::sys::stat::mkdirat(
            Some(exec_dir.as_raw_fd()),
            id_name,
            Mode::from_bits_truncate(JAIL_DIR_MODE),
        ) {
            Ok(()) => {}
            Err(nix::Error::EEXIST) => {
                // Someone else created it since our check: it is not ours to remove.
                jail.record.jail_dir = PathBuf::new();
                jail.record.jail_dir_pending = false;
                jail.save(recorder, "giving up the jail dir")?;
                return Err(JailError::JailDirExists { path: jail_dir });
            }
            Err(e) => return Err(JailError::fs("creating directory", &jail_dir, e)),
        }
        jail.record.jail_dir_pending = false;
        jail.save(recorder, "owning the created jail dir")?;
        let id_dir = fsat::open_subdir(&exec_dir, id_name, &jail_dir)?;
        // mkdir's mode is masked by the umask: set it exactly. The <id> dir
        // stays root's (the VMM only needs to traverse it); only `root` is
        // the jail user's.
        nix::sys::stat::fchmod(id_dir.as_raw_fd(), Mode::from_bits_truncate(JAIL_DIR_MODE))
            .map_err(|e| JailError::fs("chmod", &jail_dir, e))?;
        let root_name = OsStr::new("root");
        let root_fd = fsat::ensure_subdir(&id_dir, root_name, &root, 0o700, Some(owner))?;
        jail.mount_root(recorder, &root_fd)?;
        Ok(jail)
    }

    /// Mount the jail root, recorded first: a size-bounded tmpfs owned by
    /// the jail user, `nosuid` (a setuid file planted there grants
    /// nothing) and, with the built-in jailer, `nodev` (its device nodes
    /// get a /dev of their own in the jail's mount namespace; Firecracker's
    /// jailer makes them in the root itself). Made shared, in a peer group
    /// of its own, so that assets placed on the host after launch
    /// propagate into the jail's slave mount namespace.
    fn mount_root(
        &mut self,
        recorder: &mut dyn Recorder,
        root_fd: &OwnedFd,
    ) -> Result<(), JailError> {
        let root = self.root();
        let exec_size = std::fs::metadata(&self.spec.exec_file).map_or(0, |m| m.len());
        self.record.mounts.push(root.clone());
        self.save(recorder, "mounting the jail root")?;
        mounts::mount_root_tmpfs(
            root_fd,
            &root,
            (ROOT_TMPFS_MIB << 20) + exec_size,
            self.owner(),
            matches!(self.jailer, Jailer::BuiltIn { .. }),
        )?;
        mounts::make_private(&root)?;
        mounts::make_shared(&root)
    }

    /// Re-open a jail from its record (for teardown/attach from another process).
    pub fn from_record(spec: JailSpec, jailer: Jailer, record: JailRecord) -> Jail {
        // `<base>/<exec_name>/<id>`: the name prepare derived from the
        // canonical exec file, even if `exec_file` is a symlink.
        let exec_name = record
            .jail_dir
            .parent()
            .and_then(Path::file_name)
            .or_else(|| spec.exec_file.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Jail {
            spec,
            jailer,
            record,
            exec_name,
            copy_exec_file: false,
        }
    }

    /// Host path of the jail root.
    pub fn root(&self) -> PathBuf {
        self.record.root()
    }

    pub fn record(&self) -> &JailRecord {
        &self.record
    }

    pub fn spec(&self) -> &JailSpec {
        &self.spec
    }

    /// The exec file's name (`/<exec_name>` is the VMM inside the jail).
    pub fn exec_name(&self) -> &str {
        &self.exec_name
    }

    /// Host path of `<jail root>/<exec_name>.pid`.
    pub fn pid_file(&self) -> PathBuf {
        crate::pid_file::path(&self.root(), &self.exec_name)
    }

    /// Copy the exec file into the jail instead of bind-mounting it read-only
    /// (the built-in jailer's default). Firecracker's jailer always copies.
    pub fn set_copy_exec_file(&mut self, copy: bool) {
        self.copy_exec_file = copy;
    }

    pub(crate) fn owner(&self) -> Owner {
        Owner {
            uid: self.spec.uid,
            gid: self.spec.gid,
        }
    }

    pub(crate) fn save(
        &self,
        recorder: &mut dyn Recorder,
        step: &'static str,
    ) -> Result<(), JailError> {
        recorder
            .record(&self.record)
            .map_err(|source| JailError::Record { step, source })
    }

    /// Open the jail root and the (created) parent directory of `path_in_jail`.
    fn parent_of(&self, path_in_jail: &Path) -> Result<(OwnedFd, PathBuf, PathBuf), JailError> {
        validate::validate_path_in_jail(path_in_jail)?;
        let root = self.root();
        let root_fd = fsat::open_dir(&root)?;
        let (parents, _) = fsat::split(path_in_jail);
        let (dir, dir_shown) = fsat::walk_create(&root_fd, &root, &parents, Some(self.owner()))?;
        Ok((dir, dir_shown, host_path(&root, path_in_jail)))
    }

    /// Make `source` visible at absolute `path_in_jail`. Parents are created
    /// (owned uid:gid); no symlink inside the jail is ever followed; a mount
    /// is recorded before it is made. Returns `path_in_jail`, the path to
    /// hand the VMM.
    pub fn place(
        &mut self,
        recorder: &mut dyn Recorder,
        source: &Path,
        path_in_jail: &Path,
        how: Placement,
    ) -> Result<PathBuf, JailError> {
        let (dir, _, shown) = self.parent_of(path_in_jail)?;
        let (_, name) = fsat::split(path_in_jail);
        let source_file = File::options()
            .read(true)
            .custom_flags(libc::O_PATH)
            .open(source)
            .map_err(|e| JailError::fs("opening asset", source, fsat::errno_of(&e)))?;
        let source_fd: OwnedFd = source_file.into();
        let source_stat = fsat::stat_fd(&source_fd, source)?;
        let file_type = SFlag::from_bits_truncate(source_stat.st_mode) & SFlag::S_IFMT;
        let is_dir = file_type == SFlag::S_IFDIR;
        // A writable asset is handed to the jail's user: only a drive (a
        // regular file or block device) with no other name on the host.
        if how == Placement::ReadWriteBind {
            let drive = file_type == SFlag::S_IFREG || file_type == SFlag::S_IFBLK;
            if !drive || (file_type == SFlag::S_IFREG && source_stat.st_nlink > 1) {
                return Err(JailError::WritableAssetNotADrive {
                    path: source.to_path_buf(),
                });
            }
        }
        match how {
            Placement::ReadOnlyBind | Placement::ReadWriteBind | Placement::ReadWriteShare => {
                if is_dir {
                    nix::sys::stat::mkdirat(
                        Some(dir.as_raw_fd()),
                        name,
                        Mode::from_bits_truncate(0o700),
                    )
                    .map_err(|e| match e {
                        nix::Error::EEXIST => JailError::AlreadyPlaced {
                            path: shown.clone(),
                        },
                        e => JailError::fs("creating mount point", &shown, e),
                    })?;
                } else {
                    fsat::create_file(&dir, name, &shown, 0o600)?;
                }
                let target = fsat::open_path_nofollow(&dir, name, &shown)?;
                self.record.mounts.push(shown.clone());
                self.save(recorder, "bind-mounting an asset")?;
                mounts::bind(&source_fd, &target, source, &shown)?;
                let mounted = fsat::open_path_nofollow(&dir, name, &shown)?;
                if how == Placement::ReadOnlyBind {
                    mounts::remount_read_only(&mounted, &shown)?;
                } else if how == Placement::ReadWriteShare {
                    mounts::remount_read_write(&mounted, &shown)?;
                } else {
                    mounts::remount_read_write(&mounted, &shown)?;
                    // The VMM's user must write the asset: hand it over
                    // through the held handle, recording the owner first so
                    // unplace/teardown give it back.
                    let (uid, gid) = (self.spec.uid, self.spec.gid);
                    let asset = ownership::plan(&source_fd, source, &shown, uid, gid)?;
                    self.record.chowned.push(asset);
                    self.save(recorder, "changing the owner of a writable asset")?;
                    ownership::chown_fd(&source_fd, source, uid, gid)?;
                }
            }
            Placement::Copy => {
                // Read the inode already held (not the path again), and only
                // a regular file: a FIFO would block the copy forever.
                if SFlag::from_bits_truncate(source_stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG
                {
                    return Err(JailError::UnexpectedFileType {
                        path: source.to_path_buf(),
                        expected: "regular file",
                    });
                }
                let mut from = File::open(fsat::proc_fd_path(&source_fd))
                    .map_err(|e| JailError::fs("opening asset", source, fsat::errno_of(&e)))?;
                let mode = source_stat.st_mode & 0o777;
                let to = fsat::create_file(&dir, name, &shown, mode)?;
                let mut to = File::from(to);
                std::io::copy(&mut from, &mut to).map_err(|e| JailError::Copy {
                    source_path: source.to_path_buf(),
                    target: shown.clone(),
                    source: e,
                })?;
                self.owner().chown(to.as_raw_fd(), &shown)?;
            }
        }
        Ok(path_in_jail.to_path_buf())
    }

    /// Undo one placement (unmount and/or remove); idempotent.
    pub fn unplace(
        &mut self,
        recorder: &mut dyn Recorder,
        path_in_jail: &Path,
    ) -> Result<(), JailError> {
        validate::validate_path_in_jail(path_in_jail)?;
        let root = self.root();
        let shown = host_path(&root, path_in_jail);
        if self.record.mounts.contains(&shown) {
            mounts::unmount_in(&self.record.jail_dir, &shown)?;
            self.record.mounts.retain(|m| m != &shown);
            self.save(recorder, "forgetting an unmounted asset")?;
        }
        if self.record.chowned.iter().any(|a| a.placed_at == shown) {
            for asset in self.record.chowned.iter().filter(|a| a.placed_at == shown) {
                ownership::restore(asset)?;
            }
            self.record.chowned.retain(|a| a.placed_at != shown);
            self.save(recorder, "forgetting a restored asset owner")?;
        }
        let root_fd = fsat::open_dir(&root)?;
        let (parents, name) = fsat::split(path_in_jail);
        let Some((dir, _)) = fsat::walk_existing(&root_fd, &root, &parents)? else {
            return Ok(());
        };
        let result =
            unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir).or_else(|e| {
                if e == nix::Error::EISDIR {
                    unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::RemoveDir)
                } else {
                    Err(e)
                }
            });
        match result {
            Ok(()) | Err(nix::Error::ENOENT) => Ok(()),
            Err(e) => Err(JailError::fs("removing", &shown, e)),
        }
    }

    /// Remove `path_in_jail` and everything below it (gone already is
    /// fine), refused while a recorded mount is at or below it: unplace
    /// those first. Never follows a symlink or leaves the jail's
    /// filesystem.
    pub fn remove_tree(&mut self, path_in_jail: &Path) -> Result<(), JailError> {
        validate::validate_path_in_jail(path_in_jail)?;
        let shown = host_path(&self.root(), path_in_jail);
        if let Some(mount) = self.record.mounts.iter().find(|m| m.starts_with(&shown)) {
            return Err(JailError::StillMounted {
                path: mount.clone(),
            });
        }
        crate::rmtree::remove_tree(&shown)
    }

    /// Create an empty directory inside the jail owned by uid:gid (for
    /// sockets, FIFOs, logs the VMM writes). Returns its host path.
    pub fn make_dir(&mut self, path_in_jail: &Path) -> Result<PathBuf, JailError> {
        let (dir, _, shown) = self.parent_of(path_in_jail)?;
        let (_, name) = fsat::split(path_in_jail);
        fsat::ensure_subdir(&dir, name, &shown, 0o700, Some(self.owner()))?;
        Ok(shown)
    }

    /// Create an empty regular file inside the jail owned by uid:gid, mode
    /// 0600 (a log or metrics file the VMM writes). Returns its host path.
    pub fn make_file(&mut self, path_in_jail: &Path) -> Result<PathBuf, JailError> {
        let (dir, _, shown) = self.parent_of(path_in_jail)?;
        let (_, name) = fsat::split(path_in_jail);
        let fd = fsat::create_file(&dir, name, &shown, 0o600)?;
        self.owner().chown(fd.as_raw_fd(), &shown)?;
        Ok(shown)
    }

    /// Create a FIFO inside the jail owned by uid:gid, mode 0600 (Firecracker's
    /// log/metrics FIFOs). Returns its host path.
    pub fn make_fifo(&mut self, path_in_jail: &Path) -> Result<PathBuf, JailError> {
        let (dir, _, shown) = self.parent_of(path_in_jail)?;
        let (_, name) = fsat::split(path_in_jail);
        nix::unistd::mkfifoat(Some(dir.as_raw_fd()), name, Mode::from_bits_truncate(0o600))
            .map_err(|e| JailError::fs("creating FIFO", &shown, e))?;
        nix::unistd::fchownat(
            Some(dir.as_raw_fd()),
            name,
            Some(Uid::from_raw(self.spec.uid)),
            Some(Gid::from_raw(self.spec.gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| JailError::fs("chown", &shown, e))?;
        Ok(shown)
    }
}

use std::os::unix::fs::OpenOptionsExt;
