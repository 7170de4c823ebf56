//! Path resolution: a path from the file is made absolute (relative paths
//! are taken relative to the configuration file's directory — a vmjail
//! choice, so a config and its assets can move together), symlinks are
//! followed, and the target must be an existing regular file.

use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::error::ConfigError;
use crate::model::ConfigSource;
use crate::source::SourceText;

/// Resolve `raw` (the value of `key`) or say why it does not resolve.
pub(crate) fn resolve_file(base_dir: &Path, raw: &str) -> io::Result<PathBuf> {
    if raw.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty path"));
    }
    let joined = base_dir.join(raw);
    let resolved = joined.canonicalize()?;
    let meta = resolved.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", resolved.display()),
        ));
    }
    Ok(resolved)
}

/// Resolve `raw`, turning a failure into [`ConfigError::PathResolve`]
/// naming `key`, the path and where it was written.
pub(crate) fn resolve_key(
    src: &SourceText<'_>,
    key: &str,
    raw: &str,
    span: Option<Range<usize>>,
) -> Result<PathBuf, ConfigError> {
    resolve_file(&src.base_dir(), raw).map_err(|cause| ConfigError::PathResolve {
        location: src.at(span),
        key: key.to_string(),
        path: PathBuf::from(raw),
        cause,
        hint: embedded_hint(src.origin),
    })
}

/// Advice when the embedded default's files are missing.
pub(crate) fn embedded_hint(origin: &ConfigSource) -> String {
    match origin {
        ConfigSource::Embedded => "\n  (no configuration file was found, so the embedded default is used; it expects QEMU at /usr/bin/qemu-system-x86_64 and vmjail's guest kernel and initramfs in /usr/share/vmjail/guest/ — build and install them with `scripts/build-guest.sh --install` (see README), or pass --config <file>, e.g. examples/qemu.toml)".to_string(),
        ConfigSource::File(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_table() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        std::fs::write(base.join("file"), b"x").unwrap();
        std::fs::create_dir(base.join("sub")).unwrap();
        std::os::unix::fs::symlink(base.join("file"), base.join("link")).unwrap();
        std::os::unix::fs::symlink(base.join("gone"), base.join("dangling")).unwrap();
        let abs_file = base.join("file");
        let cases: [(&str, Option<PathBuf>); 8] = [
            ("file", Some(abs_file.clone())),
            ("./file", Some(abs_file.clone())),
            ("sub/../file", Some(abs_file.clone())),
            ("link", Some(abs_file.clone())),
            (abs_file.to_str().unwrap(), Some(abs_file.clone())),
            ("dangling", None),
            ("sub", None),
            ("", None),
        ];
        for (raw, want) in cases {
            assert_eq!(resolve_file(&base, raw).ok(), want, "{raw:?}");
        }
    }
}
