//! What a task made, recorded in its bundle directory before anything is
//! made: the sandbox's id and the configuration file that names its state
//! dir. The `delete` action (containerd's cleanup after a shim died) reads
//! it to tear the sandbox down; containerd removes the bundle afterwards.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use vmjail_sandbox::SandboxId;

/// The record's file name in the bundle.
const FILE: &str = "vmjail-shim.json";
/// Longest record read back (it is a few hundred bytes).
const MAX_RECORD: u64 = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    pub sandbox: String,
    /// `None`: the configuration vmjail's discovery finds.
    pub config: Option<PathBuf>,
}

/// How much of the task id a sandbox id keeps: enough to tell whose it is
/// (CRI's ids are 64 hex digits), short enough that the paths of the
/// sandbox's Unix sockets (`<chroot base>/virtiofsd/<sandbox id>/root/
/// socket/vhost.sock`) stay within the 107 bytes a socket path may have.
const READABLE: usize = 20;

/// The sandbox id of task `id` in containerd namespace `namespace`: the
/// task id's letters, digits and dashes (at most [`READABLE`]) and a hash
/// of both names, so two namespaces' tasks of one name never share a
/// sandbox and `vmjail list` still says whose it is.
pub fn sandbox_id(namespace: &str, id: &str) -> Result<SandboxId, String> {
    let hash = Sha256::digest(format!("{namespace}/{id}").as_bytes());
    let readable: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(READABLE)
        .collect();
    let hex: String = hash[..6].iter().map(|b| format!("{b:02x}")).collect();
    let text = format!("{}-{hex}", readable.trim_start_matches('-'));
    let text = text.trim_start_matches('-');
    // Letters, digits and dashes, 12 to 33 bytes, starting with an
    // alphanumeric: a valid id.
    SandboxId::parse(text).map_err(|e| e.to_string())
}

pub fn write(bundle: &Path, record: &Record) -> Result<(), String> {
    let path = bundle.join(FILE);
    let text = serde_json::to_vec(record).map_err(|e| format!("encoding the record: {e}"))?;
    let tmp = bundle.join(format!(".{FILE}.tmp"));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

/// The record of `bundle`, `None` if the shim never wrote one.
pub fn read(bundle: &Path) -> Result<Option<Record>, String> {
    use std::io::Read;
    let path = bundle.join(FILE);
    let mut text = Vec::new();
    match std::fs::File::open(&path) {
        Ok(f) => f
            .take(MAX_RECORD)
            .read_to_end(&mut text)
            .map_err(|e| format!("reading {}: {e}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_ids_are_valid_readable_and_per_namespace() {
        let a = sandbox_id("default", "my_task.1").unwrap();
        assert!(a.as_str().starts_with("my-task-1-"), "{a}");
        assert_ne!(a, sandbox_id("k8s.io", "my_task.1").unwrap());
        assert_eq!(a, sandbox_id("default", "my_task.1").unwrap());
        let long = sandbox_id("default", &"x".repeat(76)).unwrap();
        assert!(long.as_str().len() <= 64);
        let odd = sandbox_id("default", "__").unwrap();
        assert!(odd.as_str().chars().next().unwrap().is_ascii_alphanumeric());
    }

    #[test]
    fn the_record_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        let record = Record {
            sandbox: "a-1".into(),
            config: Some("/etc/v.toml".into()),
        };
        write(dir.path(), &record).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(record));
    }
}
