//! The on-disk state store: `<state_dir>/<id>/state.json` and
//! `<state_dir>/<id>.lock`.
//!
//! `state.json` is replaced atomically (temp file, fsync, rename, fsync of
//! the directory) so a crash leaves either the old or the new record, never
//! a torn one. `mkdir <state_dir>/<id>` under the id's lock is the claim that
//! makes exactly one concurrent `create` win.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use vmjail_jail::trust;

use crate::lock::SandboxLock;
use crate::state::SandboxState;
use crate::{SandboxError, SandboxId};

const STATE_FILE: &str = "state.json";
const STATE_TMP: &str = "state.json.tmp";
const LOCK_SUFFIX: &str = ".lock";
/// A state file larger than this is not one vmjail wrote.
const MAX_STATE_BYTES: u64 = 4 << 20;

fn untrusted(source: vmjail_jail::JailError) -> SandboxError {
    SandboxError::UntrustedState {
        source: Box::new(source),
    }
}

/// What a sandbox directory holds.
#[derive(Debug)]
pub enum Stored {
    State(Box<SandboxState>),
    /// The directory exists but `create` died before writing `state.json`.
    Unrecorded,
}

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn dir(&self, id: &SandboxId) -> PathBuf {
        self.root.join(id.as_str())
    }

    pub fn lock_path(&self, id: &SandboxId) -> PathBuf {
        self.root.join(format!("{id}{LOCK_SUFFIX}"))
    }

    /// Create the state dir if missing, under ancestors no other user can
    /// change, and check that it is root's alone: root acts on what it
    /// reads here (kills, unmounts, removes, chowns).
    fn ensure_root(&self) -> Result<(), SandboxError> {
        if self.root.symlink_metadata().is_err() {
            trust::check_trusted_parent(&self.root, "state dir").map_err(untrusted)?;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.root)
                .map_err(|source| SandboxError::CreateStateDir {
                    path: self.root.clone(),
                    source,
                })?;
        }
        self.check_root()
    }

    /// The state dir and every directory above it are root's alone.
    fn check_root(&self) -> Result<(), SandboxError> {
        trust::check_trusted_dir(&self.root, "state dir")
            .map(drop)
            .map_err(untrusted)
    }

    /// Wait for the id's lock.
    pub fn lock(&self, id: &SandboxId) -> Result<SandboxLock, SandboxError> {
        self.ensure_root()?;
        SandboxLock::acquire(&self.lock_path(id))
    }

    /// Take the id's lock unless another process holds it.
    pub fn try_lock(&self, id: &SandboxId) -> Result<Option<SandboxLock>, SandboxError> {
        self.ensure_root()?;
        SandboxLock::try_acquire(&self.lock_path(id))
    }

    /// Claim `id` (call with its lock held): fails with `AlreadyExists` when
    /// a sandbox of that id exists, complete or not.
    pub fn claim(&self, id: &SandboxId, _lock: &SandboxLock) -> Result<(), SandboxError> {
        let dir = self.dir(id);
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(SandboxError::AlreadyExists {
                id: id.to_string(),
                path: dir,
            }),
            Err(source) => Err(SandboxError::CreateStateDir { path: dir, source }),
        }
    }

    /// True when a sandbox directory exists for `id`.
    pub fn exists(&self, id: &SandboxId) -> bool {
        std::fs::symlink_metadata(self.dir(id)).is_ok_and(|m| m.is_dir())
    }

    /// Atomically replace `state.json` (call with the id's lock held).
    pub fn save(&self, state: &SandboxState) -> Result<(), SandboxError> {
        let id = SandboxId::parse(&state.id)?;
        let dir = self.dir(&id);
        let tmp = dir.join(STATE_TMP);
        let path = dir.join(STATE_FILE);
        let err = |path: &Path| {
            let path = path.to_owned();
            move |source| SandboxError::WriteState { path, source }
        };
        let json = serde_json::to_vec_pretty(state).map_err(|e| SandboxError::WriteState {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(err(&tmp))?;
        file.write_all(&json).map_err(err(&tmp))?;
        file.write_all(b"\n").map_err(err(&tmp))?;
        file.sync_all().map_err(err(&tmp))?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(err(&path))?;
        // Make the rename itself durable.
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(err(&dir))
    }

    /// Read a sandbox's record (from a trusted state dir, a root-owned
    /// sandbox dir and a root-owned `state.json`).
    pub fn load(&self, id: &SandboxId) -> Result<Stored, SandboxError> {
        let dir = self.dir(id);
        if self.root.symlink_metadata().is_ok() {
            self.check_root()?;
        }
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {
                trust::check_trusted_entry(&dir, "sandbox dir").map_err(untrusted)?;
            }
            Ok(_) => {
                return Err(SandboxError::NotADirectory { path: dir });
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(SandboxError::NotFound {
                    id: id.to_string(),
                    state_dir: self.root.clone(),
                })
            }
            Err(source) => return Err(SandboxError::ReadState { path: dir, source }),
        }
        let path = dir.join(STATE_FILE);
        let mut text = String::new();
        let opened = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(&path);
        match opened {
            Ok(mut file) => {
                trust::check_trusted_entry(&path, "sandbox state").map_err(untrusted)?;
                (&mut file)
                    .take(MAX_STATE_BYTES)
                    .read_to_string(&mut text)
                    .map_err(|source| SandboxError::ReadState {
                        path: path.clone(),
                        source,
                    })?
            }
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Stored::Unrecorded),
            Err(source) => return Err(SandboxError::ReadState { path, source }),
        };
        let state: SandboxState =
            serde_json::from_str(&text).map_err(|source| SandboxError::ParseState {
                path: path.clone(),
                source,
            })?;
        if state.id != id.as_str() {
            return Err(SandboxError::StateMismatch {
                path,
                found: state.id,
            });
        }
        Ok(Stored::State(Box::new(state)))
    }

    /// Remove the sandbox directory and then its lock file (consumes the
    /// lock: the id is free afterwards).
    pub fn remove(&self, id: &SandboxId, lock: SandboxLock) -> Result<(), SandboxError> {
        let dir = self.dir(id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(source) => return Err(SandboxError::RemoveStateDir { path: dir, source }),
        }
        lock.remove()
    }

    /// Every sandbox id with a directory in the store, sorted.
    pub fn ids(&self) -> Result<Vec<SandboxId>, SandboxError> {
        if self.root.symlink_metadata().is_ok() {
            self.check_root()?;
        }
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(SandboxError::ListStateDir {
                    path: self.root.clone(),
                    source,
                })
            }
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| SandboxError::ListStateDir {
                path: self.root.clone(),
                source,
            })?;
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let id = entry
                .file_name()
                .to_str()
                .and_then(|n| SandboxId::parse(n).ok());
            if let (true, Some(id)) = (is_dir, id) {
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }
}
