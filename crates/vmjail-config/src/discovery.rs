//! Which configuration file to load: `--config`, `$VMJAIL_CONFIG`,
//! `$KATA_CONF_FILE`, then the default paths, else the embedded default.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::ConfigError;

/// The files looked for, in order, when neither `--config` nor the
/// environment names one.
pub fn default_config_paths() -> Vec<PathBuf> {
    [
        "/etc/vmjail/configuration.toml",
        "/usr/share/defaults/vmjail/configuration.toml",
        "/etc/kata-containers/configuration.toml",
        "/usr/share/defaults/kata-containers/configuration.toml",
    ]
    .into_iter()
    .map(PathBuf::from)
    .collect()
}

/// Environment variables naming a configuration file, in priority order.
pub const CONFIG_ENV_VARS: [&str; 2] = ["VMJAIL_CONFIG", "KATA_CONF_FILE"];

/// What discovery found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// A file (resolved, absolute).
    File(PathBuf),
    /// Nothing found: the embedded default serves.
    Embedded,
}

/// Find the configuration. A file named explicitly (`--config` or an
/// environment variable) must exist — an error, not a silent fallback;
/// default paths that do not exist are skipped.
pub fn locate(
    explicit: Option<&Path>,
    env: &dyn Fn(&str) -> Option<OsString>,
    candidates: &[PathBuf],
) -> Result<Located, ConfigError> {
    let named = explicit.map(|p| (p.to_path_buf(), "--config")).or_else(|| {
        CONFIG_ENV_VARS.iter().find_map(|var| {
            env(var)
                .filter(|v| !v.is_empty())
                .map(|v| (PathBuf::from(v), *var))
        })
    });
    if let Some((path, origin)) = named {
        return path
            .canonicalize()
            .map(Located::File)
            .map_err(|cause| ConfigError::ConfigPath {
                path,
                origin,
                cause,
            });
    }
    Ok(candidates
        .iter()
        .find_map(|p| p.canonicalize().ok().filter(|r| r.is_file()))
        .map_or(Located::Embedded, Located::File))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_table() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let a = base.join("a.toml");
        let b = base.join("b.toml");
        let c = base.join("c.toml");
        for f in [&a, &b, &c] {
            std::fs::write(f, "").unwrap();
        }
        let gone = base.join("gone.toml");
        enum Want {
            File(PathBuf),
            Embedded,
            Fails(&'static str),
        }
        use Want::*;
        // (explicit, VMJAIL_CONFIG, KATA_CONF_FILE, candidates, expected)
        let cases = [
            (
                Some(a.clone()),
                Some(b.clone()),
                Some(c.clone()),
                vec![],
                File(a.clone()),
            ),
            (
                None,
                Some(b.clone()),
                Some(c.clone()),
                vec![a.clone()],
                File(b.clone()),
            ),
            (
                None,
                None,
                Some(c.clone()),
                vec![a.clone()],
                File(c.clone()),
            ),
            (
                None,
                None,
                None,
                vec![gone.clone(), a.clone(), b.clone()],
                File(a.clone()),
            ),
            (None, None, None, vec![gone.clone()], Embedded),
            (None, None, None, vec![base.clone()], Embedded),
            (
                Some(gone.clone()),
                None,
                None,
                vec![a.clone()],
                Fails("--config"),
            ),
            (
                None,
                Some(gone.clone()),
                None,
                vec![a.clone()],
                Fails("VMJAIL_CONFIG"),
            ),
            (
                None,
                None,
                Some(gone.clone()),
                vec![a.clone()],
                Fails("KATA_CONF_FILE"),
            ),
            (
                None,
                Some(PathBuf::new()),
                None,
                vec![a.clone()],
                File(a.clone()),
            ),
        ];
        for (i, (explicit, vmjail, kata, candidates, want)) in cases.into_iter().enumerate() {
            let env = |name: &str| match name {
                "VMJAIL_CONFIG" => vmjail.clone().map(OsString::from),
                "KATA_CONF_FILE" => kata.clone().map(OsString::from),
                _ => None,
            };
            let got = locate(explicit.as_deref(), &env, &candidates);
            match (got, want) {
                (Ok(Located::File(got)), File(want)) => assert_eq!(got, want, "case {i}"),
                (Ok(Located::Embedded), Embedded) => {}
                (Err(ConfigError::ConfigPath { origin, .. }), Fails(want)) => {
                    assert_eq!(origin, want, "case {i}")
                }
                (got, _) => panic!("case {i}: got {got:?}"),
            }
        }
    }

    #[test]
    fn default_paths_order() {
        let paths = default_config_paths();
        assert_eq!(paths.len(), 4);
        assert!(paths[0].starts_with("/etc/vmjail"));
        assert!(paths[3].starts_with("/usr/share/defaults/kata-containers"));
    }
}
