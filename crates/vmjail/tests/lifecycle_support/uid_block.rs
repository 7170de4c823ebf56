//! A world's block of jail uids, claimed so that no two worlds alive at
//! once share a uid: each world's leak check takes any process of its
//! uids for a stray VMM of its own, so two test processes whose blocks
//! overlapped (as hashed ranges could) failed each other's checks.
//!
//! A claim is an exclusive `flock` on a file per block: the kernel drops
//! it when its process ends, however it ends, so nothing stale can hold a
//! block; the file is removed (under the lock) when the world is dropped.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

/// Where the claims live, one file per block (named by its first uid);
/// removed with the last claim.
const CLAIMS: &str = "/tmp/vmjail-test-uid-blocks";
/// The blocks: `FIRST + n * size` for n below `SLOTS`.
const FIRST: u32 = 31000;
const SLOTS: u32 = 1250;

/// A claimed block of uids, released on drop.
pub struct UidBlock {
    pub first: u32,
    claim: PathBuf,
    _lock: Flock<File>,
}

impl UidBlock {
    /// Claims a free block of `size` uids, starting the search at a slot
    /// that `seed` picks.
    pub fn claim(seed: u32, size: u32) -> UidBlock {
        assert!(
            FIRST + SLOTS * size < 65534,
            "uid blocks reach nobody's uid"
        );
        for probe in 0..SLOTS {
            let first = FIRST + ((seed % SLOTS + probe) % SLOTS) * size;
            let claim = PathBuf::from(CLAIMS).join(first.to_string());
            if let Some(lock) = lock(&claim) {
                return UidBlock {
                    first,
                    claim,
                    _lock: lock,
                };
            }
        }
        panic!("no free block of {size} jail uids under {CLAIMS}");
    }
}

/// The lock on `claim`, unless another process holds it. Locked, the file
/// must still be the one at `claim` (its holder may have removed it
/// between our open and our lock); if not, the open is tried again.
fn lock(claim: &Path) -> Option<Flock<File>> {
    loop {
        let _ = std::fs::create_dir_all(CLAIMS);
        let file = match File::options()
            .write(true)
            .create(true)
            .truncate(false)
            .open(claim)
        {
            Ok(file) => file,
            // The directory went with another world's last claim.
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => panic!("claiming {}: {e}", claim.display()),
        };
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).ok()?;
        let same = match (lock.metadata(), std::fs::metadata(claim)) {
            (Ok(ours), Ok(there)) => ours.ino() == there.ino() && ours.dev() == there.dev(),
            _ => false,
        };
        if same {
            return Some(lock);
        }
    }
}

impl Drop for UidBlock {
    fn drop(&mut self) {
        // Removed while still locked (the lock goes after this): whoever
        // opened the old file meanwhile sees it is gone and opens anew.
        let _ = std::fs::remove_file(&self.claim);
        // Only once empty; another world may be claiming meanwhile.
        let _ = std::fs::remove_dir(CLAIMS);
    }
}
