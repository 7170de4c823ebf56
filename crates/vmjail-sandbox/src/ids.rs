//! A uid/gid pair of its own for each sandbox's VMM, from the configured
//! range (`[jail] uid`, `gid`, `id_range_size`), as Firecracker recommends
//! for its jailer: with one shared uid, a compromised VMM could reach every
//! other sandbox's VMM as "itself" (signals, `/proc/<pid>/mem` and maps,
//! sockets its uid may connect to, its keyring).
//!
//! Allocation is host-wide (every state dir shares the host's uids): one
//! claim file per uid in [`REGISTRY`], created exclusively under an `flock`
//! on the directory, naming its sandbox. The pair is recorded in the
//! sandbox's state before the claim is made; the claim goes with the
//! sandbox. A claim whose sandbox is gone (a crash, a reboot of a host whose
//! `/run` persists) is taken over.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::SandboxId;

/// Where claims live.
pub const REGISTRY: &str = "/run/vmjail-ids";

/// The pair a sandbox was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JailIds {
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum IdsError {
    #[error("the uid/gid registry {path}: {source}")]
    Registry {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the uid/gid registry {path}: {source}")]
    Untrusted {
        path: PathBuf,
        source: Box<vmjail_jail::JailError>,
    },
    #[error("no free uid in {first}..={last} ([jail] uid and id_range_size): every one is claimed by a sandbox or used by a host account; raise id_range_size or delete sandboxes")]
    Exhausted { first: u32, last: u32 },
}

/// What a claim file says: whose the uid is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Claim {
    state_dir: PathBuf,
    id: String,
    gid: u32,
}

/// The part of a sandbox's `state.json` that says which uid it holds.
#[derive(Deserialize)]
struct Recorded {
    id: String,
    jail_ids: Option<JailIds>,
}

/// A claim file bigger than this is not one vmjail wrote.
const MAX_CLAIM_BYTES: u64 = 4096;

/// The host's ids in use by accounts: never handed to a VMM, or that
/// account could signal and trace it.
fn host_accounts() -> (Vec<u32>, Vec<u32>) {
    let ids = |file: &str| -> Vec<u32> {
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(':').nth(2)?.parse().ok())
            .collect()
    };
    (ids("/etc/passwd"), ids("/etc/group"))
}

/// The directory of claims: [`REGISTRY`], or a private one for tests.
pub struct Registry {
    dir: PathBuf,
}

impl Registry {
    pub fn host() -> Self {
        Self {
            dir: PathBuf::from(REGISTRY),
        }
    }

    pub fn at(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }

    fn error(&self, source: std::io::Error) -> IdsError {
        IdsError::Registry {
            path: self.dir.clone(),
            source,
        }
    }

    /// Open (creating it root-only) and lock the registry.
    fn lock(&self) -> Result<Flock<File>, IdsError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| self.error(e))?;
        vmjail_jail::trust::check_trusted_dir(&self.dir, "uid/gid registry").map_err(|source| {
            IdsError::Untrusted {
                path: self.dir.clone(),
                source: Box::new(source),
            }
        })?;
        let dir = File::open(&self.dir).map_err(|e| self.error(e))?;
        Flock::lock(dir, FlockArg::LockExclusive).map_err(|(_, e)| self.error(e.into()))
    }

    fn claim_path(&self, uid: u32) -> PathBuf {
        self.dir.join(uid.to_string())
    }

    /// Choose a free pair for sandbox `id` of `state_dir` from the `size`
    /// uids from `first_uid` (gids from `first_gid`), record it with
    /// `record` (before the claim exists), then claim it.
    pub fn allocate(
        &self,
        state_dir: &Path,
        id: &SandboxId,
        (first_uid, first_gid, size): (u32, u32, u32),
        record: impl FnOnce(JailIds) -> Result<(), crate::SandboxError>,
    ) -> Result<JailIds, crate::SandboxError> {
        let failed = |source| crate::SandboxError::Ids {
            id: id.to_string(),
            source,
        };
        let _lock = self.lock().map_err(failed)?;
        let (users, groups) = host_accounts();
        // Start where the id hashes to, so that concurrent sandboxes rarely
        // look at the same claims.
        let start = id
            .as_str()
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
        let free = (0..size).map(|i| start.wrapping_add(i) % size).find(|&k| {
            let (uid, gid) = (first_uid + k, first_gid + k);
            !users.contains(&uid) && !groups.contains(&gid) && self.is_free(uid)
        });
        let k = free.ok_or_else(|| {
            failed(IdsError::Exhausted {
                first: first_uid,
                last: first_uid.saturating_add(size - 1),
            })
        })?;
        let ids = JailIds {
            uid: first_uid + k,
            gid: first_gid + k,
        };
        record(ids)?;
        self.write_claim(state_dir, id, ids).map_err(failed)?;
        Ok(ids)
    }

    /// A uid nobody claims, or whose claim names a sandbox that is gone
    /// (that stale claim is removed).
    fn is_free(&self, uid: u32) -> bool {
        let path = self.claim_path(uid);
        let Some(claim) = read_claim(&path) else {
            return !path.exists() || std::fs::remove_file(&path).is_ok();
        };
        let state = claim.state_dir.join(&claim.id).join("state.json");
        let alive = std::fs::read(&state)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Recorded>(&bytes).ok())
            .is_some_and(|s| s.id == claim.id && s.jail_ids.map(|ids| ids.uid) == Some(uid));
        !alive && std::fs::remove_file(&path).is_ok()
    }

    fn write_claim(&self, state_dir: &Path, id: &SandboxId, ids: JailIds) -> Result<(), IdsError> {
        let claim = Claim {
            state_dir: state_dir.to_owned(),
            id: id.to_string(),
            gid: ids.gid,
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(self.claim_path(ids.uid))
            .map_err(|e| self.error(e))?;
        let json = serde_json::to_vec(&claim).map_err(|e| self.error(std::io::Error::other(e)))?;
        file.write_all(&json).map_err(|e| self.error(e))
    }

    /// Give `ids` back, if the claim is this sandbox's. Idempotent.
    pub fn release(&self, state_dir: &Path, id: &SandboxId, ids: JailIds) -> Result<(), IdsError> {
        let _lock = self.lock()?;
        let path = self.claim_path(ids.uid);
        match read_claim(&path) {
            Some(claim) if claim.state_dir == state_dir && claim.id == id.as_str() => {
                match std::fs::remove_file(&path) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(self.error(e)),
                }
            }
            // Gone, or another sandbox's since (after a stale takeover).
            _ => Ok(()),
        }
    }
}

fn read_claim(path: &Path) -> Option<Claim> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC | nix::libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_CLAIM_BYTES).read_to_end(&mut bytes).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(id: &str) -> SandboxId {
        SandboxId::parse(id).unwrap()
    }

    #[test]
    fn distinct_pairs_then_exhaustion_then_release() {
        let tmp = tempfile::tempdir().unwrap();
        let registry = Registry::at(&tmp.path().join("ids"));
        let state = tmp.path().join("state");
        let range = (40_000, 50_000, 3);
        let mut recorded = Vec::new();
        let mut got = Vec::new();
        for id in ["a", "b", "c"] {
            let ids = registry
                .allocate(&state, &sid(id), range, |ids| {
                    recorded.push(ids);
                    Ok(())
                })
                .unwrap();
            assert_eq!(ids.gid - 50_000, ids.uid - 40_000);
            got.push(ids);
        }
        assert_eq!(recorded, got, "recorded before claimed");
        let mut uids: Vec<u32> = got.iter().map(|i| i.uid).collect();
        uids.sort();
        uids.dedup();
        assert_eq!(uids.len(), 3, "{got:?}");
        // Live sandboxes (state.json naming the uid) keep their claims.
        for (id, ids) in ["a", "b", "c"].iter().zip(&got) {
            write_state(&state, id, *ids);
        }
        let err = registry
            .allocate(&state, &sid("d"), range, |_| Ok(()))
            .unwrap_err();
        assert!(err.to_string().contains("no free uid"), "{err}");
        // Releasing another sandbox's claim does nothing; its own frees it.
        registry.release(&state, &sid("x"), got[0]).unwrap();
        assert!(registry.claim_path(got[0].uid).exists());
        registry.release(&state, &sid("a"), got[0]).unwrap();
        assert!(!registry.claim_path(got[0].uid).exists());
        let again = registry
            .allocate(&state, &sid("d"), range, |_| Ok(()))
            .unwrap();
        assert_eq!(again, got[0]);
    }

    #[test]
    fn a_claim_whose_sandbox_is_gone_is_taken_over() {
        let tmp = tempfile::tempdir().unwrap();
        let registry = Registry::at(&tmp.path().join("ids"));
        let state = tmp.path().join("state");
        let range = (40_000, 40_000, 1);
        registry
            .allocate(&state, &sid("crashed"), range, |_| Ok(()))
            .unwrap();
        // No state.json names it: the sandbox is gone.
        let ids = registry
            .allocate(&state, &sid("next"), range, |_| Ok(()))
            .unwrap();
        assert_eq!(ids.uid, 40_000);
    }

    fn write_state(state_dir: &Path, id: &str, ids: JailIds) {
        let dir = state_dir.join(id);
        std::fs::create_dir_all(&dir).unwrap();
        let state = serde_json::json!({ "id": id, "jail_ids": ids });
        std::fs::write(dir.join("state.json"), serde_json::to_vec(&state).unwrap()).unwrap();
    }
}
