//! The guest's root filesystem: exactly one of initrd and image, each
//! non-empty, an initrd smaller than guest memory.

use std::path::PathBuf;

/// One of `initrd`/`image` after path resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asset {
    /// Not set (or empty).
    Unset,
    /// Set, but the path does not resolve to an existing file; Kata treats
    /// this as unset. `reason` says why, for the warning or error.
    Missing { path: String, reason: String },
    /// Set and resolved.
    Found(PathBuf),
}

impl Asset {
    /// For messages: what this asset is.
    pub fn describe(&self) -> String {
        match self {
            Asset::Unset => "not set".to_string(),
            Asset::Missing { path, reason } => format!("{path:?}: {reason}"),
            Asset::Found(p) => p.display().to_string(),
        }
    }
}

/// The chosen root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootFs {
    Initrd(PathBuf),
    Image(PathBuf),
}

/// Why no root filesystem could be chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChoiceError {
    Both { initrd: PathBuf, image: PathBuf },
    Neither,
}

/// Kata's `getInitrdAndImage`: both resolving is an error, neither
/// resolving is an error; a set-but-missing one counts as unset.
pub fn choose(initrd: &Asset, image: &Asset) -> Result<RootFs, ChoiceError> {
    match (initrd, image) {
        (Asset::Found(i), Asset::Found(m)) => Err(ChoiceError::Both {
            initrd: i.clone(),
            image: m.clone(),
        }),
        (Asset::Found(i), _) => Ok(RootFs::Initrd(i.clone())),
        (_, Asset::Found(m)) => Ok(RootFs::Image(m.clone())),
        _ => Err(ChoiceError::Neither),
    }
}

/// What the size of a root filesystem file means for the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeVerdict {
    Fine,
    /// The file is empty: an error.
    Empty,
    /// An initrd at least as large as memory: an error (it is read whole
    /// into guest memory).
    InitrdTooLarge {
        size_mib: u64,
    },
    /// An image at least as large as memory: a warning (images are not
    /// read whole, but this is unusual).
    ImageLarge {
        size_mib: u64,
    },
}

const MIB: u64 = 1024 * 1024;

/// Kata's size check in `checkHypervisorConfig` (sizes counted in whole
/// MiB, files of 1 MiB or less always fit).
pub fn check_size(is_initrd: bool, size_bytes: u64, memory_mib: u32) -> SizeVerdict {
    if size_bytes == 0 {
        return SizeVerdict::Empty;
    }
    if size_bytes <= MIB {
        return SizeVerdict::Fine;
    }
    let size_mib = size_bytes / MIB;
    if size_mib < u64::from(memory_mib) {
        SizeVerdict::Fine
    } else if is_initrd {
        SizeVerdict::InitrdTooLarge { size_mib }
    } else {
        SizeVerdict::ImageLarge { size_mib }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choose_table() {
        let found = |p: &str| Asset::Found(PathBuf::from(p));
        let missing = || Asset::Missing {
            path: "/nope".into(),
            reason: "No such file".into(),
        };
        let cases = [
            (found("/i"), Asset::Unset, Ok(RootFs::Initrd("/i".into()))),
            (Asset::Unset, found("/m"), Ok(RootFs::Image("/m".into()))),
            (found("/i"), missing(), Ok(RootFs::Initrd("/i".into()))),
            (missing(), found("/m"), Ok(RootFs::Image("/m".into()))),
            (
                found("/i"),
                found("/m"),
                Err(ChoiceError::Both {
                    initrd: "/i".into(),
                    image: "/m".into(),
                }),
            ),
            (Asset::Unset, Asset::Unset, Err(ChoiceError::Neither)),
            (missing(), missing(), Err(ChoiceError::Neither)),
            (missing(), Asset::Unset, Err(ChoiceError::Neither)),
        ];
        for (initrd, image, want) in cases {
            assert_eq!(choose(&initrd, &image), want, "{initrd:?} {image:?}");
        }
    }

    #[test]
    fn size_table() {
        use SizeVerdict::*;
        // (is initrd, size bytes, memory MiB, verdict)
        let cases = [
            (true, 0, 2048, Empty),
            (false, 0, 2048, Empty),
            (true, 1, 8, Fine),
            (true, MIB, 1, Fine),
            (true, 100 * MIB, 2048, Fine),
            (true, 2047 * MIB, 2048, Fine),
            (true, 2048 * MIB, 2048, InitrdTooLarge { size_mib: 2048 }),
            (true, 4096 * MIB, 2048, InitrdTooLarge { size_mib: 4096 }),
            (false, 2048 * MIB, 2048, ImageLarge { size_mib: 2048 }),
            (false, 2047 * MIB + 5, 2048, Fine),
        ];
        for (initrd, size, mem, want) in cases {
            assert_eq!(check_size(initrd, size, mem), want, "{initrd} {size} {mem}");
        }
    }
}
