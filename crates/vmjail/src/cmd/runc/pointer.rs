//! Where a container's state is, by its id alone: Podman 4.3 runs
//! `delete --force ID` without its `--runtime-flag`s (so without
//! `--config`), and its cleanup process runs every command without them.
//! `create --bundle` therefore leaves `/run/vmjail-runc/<id>.json` naming
//! the configuration and state dir it used; a command given neither
//! `--config`, `--root` nor `$VMJAIL_CONFIG` reads it (and `delete`
//! removes it). The directory is root's alone and checked to be so.
//!
//! The same record keeps the spec's hooks as `create` saw them (as runc
//! keeps its config): `start` runs the poststart ones and `delete` the
//! poststop ones from here, whatever became of the bundle since.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Globals;

const DIR: &str = "/run/vmjail-runc";

#[derive(Debug, Serialize, Deserialize)]
struct Pointer {
    config: Option<PathBuf>,
    root: Option<PathBuf>,
    /// The spec's `hooks` object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hooks: Option<serde_json::Value>,
}

fn path_of(id: &str) -> PathBuf {
    Path::new(DIR).join(format!("{id}.json"))
}

/// Whether `path` is root's and nobody else may write it.
fn trusted(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.uid() == 0 && m.mode() & 0o022 == 0)
}

/// The configuration and state dir `globals` name, absolute.
fn locations(globals: &Globals) -> (Option<PathBuf>, Option<PathBuf>) {
    let absolute = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
    (
        globals.config.as_ref().map(absolute),
        globals.root.as_ref().map(absolute),
    )
}

/// Records where container `id`'s state is, and its spec's `hooks`.
pub fn write(id: &str, globals: &Globals, hooks: Option<serde_json::Value>) -> Result<(), String> {
    let (config, root) = locations(globals);
    let pointer = Pointer {
        hooks,
        config,
        root,
    };
    let made = std::fs::DirBuilder::new()
        .mode(0o700)
        .create(DIR)
        .or_else(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Ok(()),
            _ => Err(e),
        });
    let written = made.and_then(|()| {
        let text = serde_json::to_vec(&pointer).map_err(std::io::Error::other)?;
        let tmp = Path::new(DIR).join(format!(".{id}.tmp"));
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| std::io::Write::write_all(&mut f, &text))?;
        std::fs::rename(&tmp, path_of(id))
    });
    written.map_err(|e| format!("container {id}: recording where its state is in {DIR}: {e}"))
}

/// Container `id`'s record, when there is a trusted one.
fn read(id: &str) -> Option<Pointer> {
    let path = path_of(id);
    if !trusted(Path::new(DIR)) || !trusted(&path) {
        return None;
    }
    let text = std::fs::read(&path).ok()?;
    serde_json::from_slice::<Pointer>(&text).ok()
}

/// The hooks `create` recorded for container `id` (none without a record).
pub fn hooks(id: &str) -> Option<serde_json::Value> {
    read(id)?.hooks
}

/// `globals` completed from container `id`'s record when it names no
/// configuration or state dir of its own.
pub fn fill_in(id: &str, globals: &mut Globals) {
    if globals.config.is_some()
        || globals.root.is_some()
        || std::env::var_os("VMJAIL_CONFIG").is_some()
    {
        return;
    }
    if let Some(pointer) = read(id) {
        globals.config = pointer.config;
        globals.root = pointer.root;
    }
}

/// Forgets container `id`'s record.
pub fn remove(id: &str) {
    let _ = std::fs::remove_file(path_of(id));
}

/// Forgets container `id`'s record when it names the configuration and
/// state dir `globals` name: `gc` removed that sandbox (a create killed
/// after writing the record leaves it); a record naming another state dir
/// is another sandbox's of the same id.
pub fn remove_if_for(id: &str, globals: &Globals) {
    if read(id).is_some_and(|p| (p.config, p.root) == locations(globals)) {
        remove(id);
    }
}
