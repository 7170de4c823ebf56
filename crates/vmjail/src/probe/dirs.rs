//! Can vmjail create its jail and state directories?

use std::path::{Path, PathBuf};

use nix::unistd::{access, AccessFlags};

/// The nearest existing ancestor of `path` (or `path` itself), which must
/// be a directory vmjail can write to.
pub fn writable_ancestor(path: &Path) -> Result<PathBuf, String> {
    let existing = path
        .ancestors()
        .find(|p| p.symlink_metadata().is_ok())
        .ok_or_else(|| format!("no part of {} exists", path.display()))?;
    if !existing.is_dir() {
        return Err(format!(
            "{} exists and is not a directory",
            existing.display()
        ));
    }
    access(existing, AccessFlags::W_OK | AccessFlags::X_OK)
        .map_err(|e| format!("{} is not writable: {e}", existing.display()))?;
    Ok(existing.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestor_table() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        std::fs::write(base.join("file"), "").unwrap();
        assert_eq!(writable_ancestor(base).unwrap(), base);
        assert_eq!(writable_ancestor(&base.join("a/b/c")).unwrap(), base);
        let err = writable_ancestor(&base.join("file/sub")).unwrap_err();
        assert!(err.contains("not a directory"), "{err}");
    }
}
