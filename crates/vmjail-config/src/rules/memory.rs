//! Guest memory defaults and the memory ≠ 0 check.

/// MiB when `default_memory` is below [`MIN_MEMORY_MIB`].
pub const DEFAULT_MEMORY_MIB: u32 = 2048;
/// Smallest `default_memory` taken as written (Kata treats less as unset).
pub const MIN_MEMORY_MIB: u32 = 8;
/// `memory_slots` when unset or 0.
pub const DEFAULT_MEMORY_SLOTS: u32 = 10;

/// `default_memory` (MiB): unset or < 8 → 2048.
pub fn default_memory(requested: Option<u32>) -> u32 {
    match requested {
        Some(mib) if mib >= MIN_MEMORY_MIB => mib,
        _ => DEFAULT_MEMORY_MIB,
    }
}

/// `memory_slots`: unset/0 → 10.
pub fn memory_slots(requested: Option<u32>) -> u32 {
    match requested {
        None | Some(0) => DEFAULT_MEMORY_SLOTS,
        Some(n) => n,
    }
}

/// `memory_offset`: as written, 0 when unset (Kata's default is 0).
pub fn memory_offset(requested: Option<u32>) -> u32 {
    requested.unwrap_or(0)
}

/// Kata's "VM memory cannot be zero" check, kept as a guard after defaults.
pub fn memory_is_nonzero(memory_mib: u32) -> bool {
    memory_mib != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_memory_table() {
        let cases = [
            (None, 2048),
            (Some(0), 2048),
            (Some(7), 2048),
            (Some(8), 8),
            (Some(512), 512),
            (Some(u32::MAX), u32::MAX),
        ];
        for (requested, want) in cases {
            assert_eq!(default_memory(requested), want, "{requested:?}");
        }
    }

    #[test]
    fn memory_slots_and_offset_table() {
        let cases = [(None, 10), (Some(0), 10), (Some(1), 1), (Some(32), 32)];
        for (requested, want) in cases {
            assert_eq!(memory_slots(requested), want, "{requested:?}");
        }
        let cases = [(None, 0), (Some(0), 0), (Some(1024), 1024)];
        for (requested, want) in cases {
            assert_eq!(memory_offset(requested), want, "{requested:?}");
        }
    }

    #[test]
    fn nonzero_table() {
        for (mib, want) in [(0, false), (1, true), (2048, true)] {
            assert_eq!(memory_is_nonzero(mib), want, "{mib}");
        }
    }
}
