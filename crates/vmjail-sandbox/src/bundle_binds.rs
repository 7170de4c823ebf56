//! The bind mounts of a bundle's `config.json` (Docker's /etc/hosts,
//! /etc/resolv.conf, /etc/hostname; volumes): each source is checked on
//! the host and the mount's `source` rewritten to the bundle's reserved
//! `binds/<n>` (see [`vmjail_agent_protocol::bundle_layout`]), which the
//! bundle image (or the virtio-fs share) then carries. The agent binds
//! from that directory only: a source never names a path of the guest.

use std::path::{Path, PathBuf};

use vmjail_agent_protocol::bundle_layout::{bind_source, MAX_BINDS};

/// One bind mount's host source, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindSource {
    /// Where the spec's mount goes in the container (for messages).
    pub destination: String,
    /// The source, canonical (symlinks followed on the host, as runc does).
    pub source: PathBuf,
    pub is_dir: bool,
}

/// Whether the spec's mount `m` (JSON) is a bind mount.
pub fn is_bind(m: &serde_json::Value) -> bool {
    m["type"].as_str() == Some("bind")
        || m["options"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

/// Checks every bind mount of `config` and rewrites its source to
/// `binds/<n>`; returns the sources in that order. A source must be an
/// absolute path to an existing regular file or directory (a directory
/// holding no device node, socket or fifo: see
/// [`crate::bundle_image::tree_size`]).
pub fn take(config: &mut serde_json::Value) -> Result<Vec<BindSource>, String> {
    let mut binds = Vec::new();
    let Some(mounts) = config["mounts"].as_array_mut() else {
        return Ok(binds);
    };
    for m in mounts.iter_mut().filter(|m| is_bind(m)) {
        let destination = m["destination"].as_str().unwrap_or("?").to_string();
        let fail = |reason: String| format!("mount {destination}: {reason}");
        if binds.len() == MAX_BINDS {
            return Err(fail(format!("more than {MAX_BINDS} bind mounts")));
        }
        let source = m["source"]
            .as_str()
            .ok_or_else(|| fail("a bind mount needs a \"source\"".into()))?;
        let source = Path::new(source);
        if !source.is_absolute() {
            return Err(fail(format!(
                "bind source {} must be an absolute host path",
                source.display()
            )));
        }
        let canonical = source
            .canonicalize()
            .map_err(|e| fail(format!("bind source {}: {e}", source.display())))?;
        let meta = std::fs::metadata(&canonical)
            .map_err(|e| fail(format!("bind source {}: {e}", canonical.display())))?;
        if !meta.is_file() && !meta.is_dir() {
            return Err(fail(format!(
                "bind source {} is a device, socket or fifo: only regular files \
                 and directories reach the guest",
                canonical.display()
            )));
        }
        m["source"] = bind_source(binds.len()).into();
        binds.push(BindSource {
            destination,
            source: canonical,
            is_dir: meta.is_dir(),
        });
    }
    Ok(binds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(mounts: serde_json::Value) -> serde_json::Value {
        serde_json::json!({"mounts": mounts})
    }

    #[test]
    fn binds_are_rewritten_to_the_reserved_dir_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hosts"), "127.0.0.1 a\n").unwrap();
        std::os::unix::fs::symlink(dir.path().join("hosts"), dir.path().join("link")).unwrap();
        let d = dir.path().display();
        let mut c = config(serde_json::json!([
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/etc/hosts", "type": "bind", "source": format!("{d}/link"), "options": ["rbind", "rprivate"]},
            {"destination": "/data", "type": "none", "source": format!("{d}"), "options": ["bind", "ro"]},
        ]));
        let binds = take(&mut c).unwrap();
        assert_eq!(c["mounts"][0]["source"], "proc");
        assert_eq!(c["mounts"][1]["source"], "binds/0");
        assert_eq!(c["mounts"][2]["source"], "binds/1");
        assert_eq!(c["mounts"][2]["options"][1], "ro");
        let canon = dir.path().canonicalize().unwrap();
        assert_eq!(binds[0].source, canon.join("hosts"), "the link followed");
        assert!(!binds[0].is_dir);
        assert_eq!(binds[1].source, canon);
        assert!(binds[1].is_dir);
        assert_eq!(binds[1].destination, "/data");
    }

    #[test]
    fn bad_sources_are_named() {
        for (source, says) in [
            ("relative/path", "absolute host path"),
            ("/nonexistent/x", "/nonexistent/x"),
            ("/dev/null", "device, socket or fifo"),
        ] {
            let mut c = config(serde_json::json!([
                {"destination": "/x", "type": "bind", "source": source}
            ]));
            let err = take(&mut c).unwrap_err();
            assert!(err.starts_with("mount /x: ") && err.contains(says), "{err}");
        }
        let mut c = config(serde_json::json!([{"destination": "/x", "type": "bind"}]));
        assert!(take(&mut c).unwrap_err().contains("needs a \"source\""));
        let many: Vec<_> = (0..=MAX_BINDS)
            .map(|i| serde_json::json!({"destination": format!("/m{i}"), "type": "bind", "source": "/tmp"}))
            .collect();
        let mut c = config(many.into());
        assert!(take(&mut c).unwrap_err().contains("more than"));
    }
}
