//! `default_bridges`: PCI bridges cold-plugged into the VM.

/// Bridges when unset or 0.
pub const DEFAULT_BRIDGES: u32 = 1;
/// Kata's `maxPCIBridges`.
pub const MAX_BRIDGES: u32 = 5;

/// `default_bridges`: unset/0 → 1, above 5 → 5.
pub fn default_bridges(requested: Option<u32>) -> u32 {
    match requested {
        None | Some(0) => DEFAULT_BRIDGES,
        Some(n) => n.min(MAX_BRIDGES),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_bridges_table() {
        let cases = [
            (None, 1),
            (Some(0), 1),
            (Some(1), 1),
            (Some(3), 3),
            (Some(5), 5),
            (Some(6), 5),
            (Some(u32::MAX), 5),
        ];
        for (requested, want) in cases {
            assert_eq!(default_bridges(requested), want, "{requested:?}");
        }
    }
}
