//! Names both sides check the same way.

/// Longest container id.
pub const MAX_CONTAINER_ID: usize = 64;

/// A container id: 1 to 64 of `[A-Za-z0-9_.-]`, never `.` or `..` (the
/// agent names a mount point and a cgroup after it).
pub fn valid_container_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CONTAINER_ID
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids() {
        for ok in ["a", "web-1", "x.y_z", &"a".repeat(64)] {
            assert!(valid_container_id(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "é", &"a".repeat(65)] {
            assert!(!valid_container_id(bad), "{bad}");
        }
    }
}
