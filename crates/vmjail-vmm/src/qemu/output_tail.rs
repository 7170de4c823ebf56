//! The last bytes a jailed process wrote to its output file, for error
//! messages. The jailed uid owns the file and its directory: it is opened
//! without following a link it planted anywhere on the way.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use nix::fcntl::OFlag;

/// Bytes of a process's output kept for an error message.
const OUTPUT_TAIL: u64 = 2048;

/// The newest bytes of `path` in the jail at `root`; `None` when it is
/// missing or empty.
pub(super) fn output_tail(root: &Path, path: &str) -> Option<String> {
    let fd = vmjail_jail::open_in_jail(root, Path::new(path), OFlag::O_RDONLY | OFlag::O_NONBLOCK)
        .ok()?;
    let mut file = std::fs::File::from(fd);
    let meta = file.metadata().ok()?;
    if !meta.is_file() {
        return Some("(not a regular file)".into());
    }
    let _ = file.seek(SeekFrom::Start(meta.len().saturating_sub(OUTPUT_TAIL)));
    let mut bytes = Vec::new();
    let _ = file.take(OUTPUT_TAIL).read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).trim().to_owned();
    (!text.is_empty()).then_some(text)
}
