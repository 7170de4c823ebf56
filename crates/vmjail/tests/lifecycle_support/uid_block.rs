//! A world's block of jail uids, claimed so that no two worlds alive at
//! once share a uid: each world's leak check takes any process of its
//! uids for a stray VMM of its own, so two test processes whose blocks
//! overlapped (as hashed ranges could) failed each other's checks.

use std::io::ErrorKind;
use std::path::PathBuf;

/// Where the claims live, one file per block (named by its first uid,
/// holding the claiming process's pid); removed with the last claim.
const CLAIMS: &str = "/tmp/vmjail-test-uid-blocks";
/// The blocks: `FIRST + n * size` for n below `SLOTS`.
const FIRST: u32 = 31000;
const SLOTS: u32 = 1250;

/// A claimed block of uids, released on drop.
pub struct UidBlock {
    pub first: u32,
    claim: PathBuf,
}

impl UidBlock {
    /// Claims a free block of `size` uids, starting the search at a slot
    /// that `seed` picks. A claim whose process is gone is taken over.
    pub fn claim(seed: u32, size: u32) -> UidBlock {
        assert!(
            FIRST + SLOTS * size < 65534,
            "uid blocks reach nobody's uid"
        );
        for probe in 0..SLOTS {
            let first = FIRST + ((seed % SLOTS + probe) % SLOTS) * size;
            let claim = PathBuf::from(CLAIMS).join(first.to_string());
            for _ in 0..3 {
                let _ = std::fs::create_dir_all(CLAIMS);
                match std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&claim)
                {
                    Ok(_) => {
                        std::fs::write(&claim, std::process::id().to_string()).unwrap();
                        return UidBlock { first, claim };
                    }
                    // The directory went with another world's last claim.
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                        let owner = std::fs::read_to_string(&claim).unwrap_or_default();
                        let alive = owner.trim().parse::<u32>().is_ok_and(|pid| {
                            std::path::Path::new(&format!("/proc/{pid}")).exists()
                        });
                        // Just made (no pid written yet) or held: next slot.
                        if owner.is_empty() || alive {
                            break;
                        }
                        let _ = std::fs::remove_file(&claim);
                    }
                    Err(e) => panic!("claiming {}: {e}", claim.display()),
                }
            }
        }
        panic!("no free block of {size} jail uids under {CLAIMS}");
    }
}

impl Drop for UidBlock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.claim);
        // Only once empty; another world may be claiming meanwhile.
        let _ = std::fs::remove_dir(CLAIMS);
    }
}
