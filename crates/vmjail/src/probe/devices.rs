//! Device nodes the VMM needs: opened read-write, as the VMM will.

use std::fs::OpenOptions;
use std::path::Path;

/// Open `path` read-write and close it again.
pub fn open_rw(path: &Path) -> Result<(), String> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map(drop)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_table() {
        assert!(open_rw(Path::new("/dev/null")).is_ok());
        let err = open_rw(Path::new("/nonexistent/dev")).unwrap_err();
        assert!(err.contains("/nonexistent/dev"), "{err}");
    }
}
