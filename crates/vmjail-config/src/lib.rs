//! Kata-compatible `configuration.toml` → a validated [`RuntimeConfig`].
//!
//! The public shape of the resolved configuration lives in [`model`]. The
//! loader works in three steps, each in its own module: `raw` parses the
//! TOML with spans and checks the table layout and key types (unknown keys
//! become warnings), `assemble` applies defaults, resolves paths and runs
//! every rule from [`rules`], and [`discovery`] picks the file.

mod assemble;
pub mod discovery;
mod error;
mod host;
pub mod model;
mod raw;
mod resolve;
pub mod rules;
mod source;

use std::io::Read;
use std::path::{Path, PathBuf};

pub use discovery::default_config_paths;
pub use error::{ConfigError, LoadError};
pub use host::HostFacts;
pub use model::*;
pub use source::origin_name;

/// The configuration used when no file is found: QEMU `microvm` with
/// vmjail's guest kernel and initramfs under `/usr/share/vmjail/guest/`.
/// Printed by `vmjail env`; documented in `docs/configuration.md`.
pub const EMBEDDED_DEFAULT: &str = include_str!("../default-configuration.toml");

/// Discover and load the configuration: `explicit` (`--config`), then
/// `$VMJAIL_CONFIG`, `$KATA_CONF_FILE`, the [`default_config_paths`], else
/// [`EMBEDDED_DEFAULT`]. A failure carries the warnings found before it.
pub fn load(explicit: Option<&Path>, host: &HostFacts) -> Result<RuntimeConfig, LoadError> {
    let env = |name: &str| std::env::var_os(name);
    match discovery::locate(explicit, &env, &default_config_paths())? {
        discovery::Located::File(path) => load_file(&path, host),
        discovery::Located::Embedded => load_str(EMBEDDED_DEFAULT, ConfigSource::Embedded, host),
    }
}

/// Configuration files larger than this are refused (Kata's largest
/// shipped file is about 20 KiB): `--config /dev/zero` must not hang.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Discover the configuration like [`load`], but parse and check only its
/// `[jail]` section: what commands that manage existing sandboxes need (the
/// state directory). A sandbox created earlier can still be listed, stopped
/// and deleted after, say, its kernel file was removed; each sandbox's state
/// keeps the full configuration it was created with.
pub fn load_jail(explicit: Option<&Path>) -> Result<JailConfig, ConfigError> {
    let env = |name: &str| std::env::var_os(name);
    let (text, origin) = match discovery::locate(explicit, &env, &default_config_paths())? {
        discovery::Located::File(path) => {
            let (text, resolved) = read_file(&path)?;
            (text, ConfigSource::File(resolved))
        }
        discovery::Located::Embedded => (EMBEDDED_DEFAULT.to_owned(), ConfigSource::Embedded),
    };
    let src = source::SourceText {
        text: &text,
        origin: &origin,
    };
    let raw = raw::parse(&src, &mut Vec::new())?;
    rules::jail::jail_config(&src, &raw.jail)
}

/// Load one file. Relative paths inside it are resolved against its
/// directory.
pub fn load_file(path: &Path, host: &HostFacts) -> Result<RuntimeConfig, LoadError> {
    let (text, resolved) = read_file(path)?;
    load_str(&text, ConfigSource::File(resolved), host)
}

/// The text of a configuration file (a bounded regular file) and its
/// resolved path.
fn read_file(path: &Path) -> Result<(String, PathBuf), ConfigError> {
    let read_err = |p: &Path| {
        let p = p.to_path_buf();
        move |cause| ConfigError::Read { path: p, cause }
    };
    let resolved: PathBuf = path.canonicalize().map_err(read_err(path))?;
    let file = std::fs::File::open(&resolved).map_err(read_err(&resolved))?;
    let meta = file.metadata().map_err(read_err(&resolved))?;
    if !meta.is_file() {
        return Err(ConfigError::NotAConfigFile {
            path: resolved,
            problem: "is not a regular file".into(),
        });
    }
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read_err(&resolved))?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigError::NotAConfigFile {
            path: resolved,
            problem: format!("is larger than {MAX_CONFIG_BYTES} bytes"),
        });
    }
    Ok((text, resolved))
}

/// Load configuration text that came from `origin`. A failure carries the
/// warnings found before it.
pub fn load_str(
    text: &str,
    origin: ConfigSource,
    host: &HostFacts,
) -> Result<RuntimeConfig, LoadError> {
    let src = source::SourceText {
        text,
        origin: &origin,
    };
    let mut warnings = Vec::new();
    raw::parse(&src, &mut warnings)
        .and_then(|raw| assemble::assemble(&src, raw, host, &mut warnings))
        .map_err(|error| LoadError {
            error: Box::new(error),
            warnings,
        })
}
