//! `msize_9p`: the 9p transport's message size.

/// Bytes when unset or 0.
pub const DEFAULT_MSIZE_9P: u32 = 8192;

/// `msize_9p`: unset/0 → 8192.
pub fn msize_9p(requested: Option<u32>) -> u32 {
    match requested {
        None | Some(0) => DEFAULT_MSIZE_9P,
        Some(n) => n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msize_table() {
        let cases = [
            (None, 8192),
            (Some(0), 8192),
            (Some(1), 1),
            (Some(65536), 65536),
        ];
        for (requested, want) in cases {
            assert_eq!(msize_9p(requested), want, "{requested:?}");
        }
    }
}
