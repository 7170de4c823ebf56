//! The layout of a container's bundle as the guest sees it (on its disk
//! image, or shared with virtio-fs): `config.json`, `rootfs/`, and the
//! sources of the spec's bind mounts under [`BINDS_DIR`], each named by
//! its index. The host rewrites every bind mount's `source` to
//! [`bind_source`]`(n)`; the agent binds from nothing else.

/// The reserved directory of a bundle holding its bind sources.
pub const BINDS_DIR: &str = "binds";

/// Most bind mounts one container may have.
pub const MAX_BINDS: usize = 128;

/// The `source` a bind mount's entry in the guest's config.json names:
/// `binds/<index>`, relative to the bundle.
pub fn bind_source(index: usize) -> String {
    format!("{BINDS_DIR}/{index}")
}

/// The index in a `source` of the form [`bind_source`] gives (plain
/// decimal, below [`MAX_BINDS`]); `None` for anything else.
pub fn parse_bind_source(source: &str) -> Option<usize> {
    let digits = source.strip_prefix(BINDS_DIR)?.strip_prefix('/')?;
    let plain = !digits.is_empty()
        && digits.len() <= 3
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    let index: usize = digits.parse().ok().filter(|_| plain)?;
    (index < MAX_BINDS).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_bind_sources_parse() {
        assert_eq!(parse_bind_source(&bind_source(0)), Some(0));
        assert_eq!(parse_bind_source(&bind_source(127)), Some(127));
        for bad in [
            "binds/128",
            "binds/01",
            "binds/",
            "binds/1/..",
            "/binds/1",
            "binds/-1",
            "rootfs/etc",
            "binds/+1",
            "binds//1",
            "binds/1 ",
        ] {
            assert_eq!(parse_bind_source(bad), None, "{bad}");
        }
    }
}
