//! Loading the guest kernel modules the agent needs, from a list in the
//! format guest/modules.sh reads (`WHEN PATH` lines; see
//! guest/agent.modules): `always`, `pci` (the VM has a virtio PCI device),
//! or a virtio device id (`0x0013`). Done by the agent with
//! `finit_module(2)` rather than by the guest's init with one busybox
//! `insmod` per module: under TCG each fork and exec of busybox costs
//! ~10 ms, on the path to the first container.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::kmod::{finit_module, ModuleInitFlags};

/// Where the initramfs keeps its modules (by file name).
const MODULE_DIR: &str = "/lib/modules";

/// A list longer than this is refused: it is not one of ours.
const MAX_LIST_BYTES: u64 = 64 * 1024;

/// When a listed module is needed.
#[derive(Debug, PartialEq, Eq)]
enum When {
    Always,
    Pci,
    VirtioDevice(String),
}

/// One line of a list: when, and the module's path in the kernel tree
/// (only its file name is used: the initramfs keeps modules flat).
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    when: When,
    file_name: String,
}

/// Parses a list; comments and blank lines are skipped, and so (with a
/// warning) are lines that are not `WHEN PATH` with a known condition, as
/// guest/modules.sh skips them.
fn parse(text: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    for (number, line) in text.lines().enumerate() {
        match parse_line(line.trim()) {
            Ok(Some(entry)) => entries.push(entry),
            Ok(None) => {}
            Err(e) => tracing::warn!("module list, line {}: {e}; skipped", number + 1),
        }
    }
    entries
}

fn parse_line(line: &str) -> Result<Option<Entry>, String> {
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let mut words = line.split_whitespace();
    let (Some(when), Some(path), None) = (words.next(), words.next(), words.next()) else {
        return Err("expected `WHEN PATH`".into());
    };
    let when = match when {
        "always" => When::Always,
        "pci" => When::Pci,
        id if id.starts_with("0x") => When::VirtioDevice(id.to_owned()),
        other => return Err(format!("unknown condition {other:?}")),
    };
    let file_name = path.rsplit('/').next().unwrap_or(path);
    if !file_name.ends_with(".ko") {
        return Err(format!("{path:?} is not a .ko file"));
    }
    Ok(Some(Entry {
        when,
        file_name: file_name.to_owned(),
    }))
}

/// Whether any `*/NAME` under `dir` holds (after trimming) `value`.
fn any_attribute_is(dir: &Path, name: &str, value: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        std::fs::read_to_string(entry.path().join(name)).is_ok_and(|text| text.trim() == value)
    })
}

/// Whether the module of file `file_name` is loaded (or built in with
/// parameters: either way there is nothing to load).
fn loaded(file_name: &str) -> bool {
    let name = file_name.trim_end_matches(".ko");
    Path::new("/sys/module").join(name).is_dir()
}

/// Loads, in order, the modules of list `path` that this VM needs. The
/// transports come first in the list, so a device's id is in sysfs by the
/// time its driver's line is read. A module that fails to load is
/// reported and skipped, as guest/modules.sh did: what then does not work
/// (e.g. no vsock to listen on) fails on its own, by name.
pub fn load_listed(path: &Path) -> Result<(), String> {
    let file = File::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
    let mut text = String::new();
    file.take(MAX_LIST_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    if text.len() as u64 > MAX_LIST_BYTES {
        return Err(format!(
            "{}: more than {MAX_LIST_BYTES} bytes",
            path.display()
        ));
    }
    for entry in parse(&text) {
        let needed = match &entry.when {
            When::Always => true,
            When::Pci => any_attribute_is(Path::new("/sys/bus/pci/devices"), "vendor", "0x1af4"),
            When::VirtioDevice(id) => {
                any_attribute_is(Path::new("/sys/bus/virtio/devices"), "device", id)
            }
        };
        if needed && !loaded(&entry.file_name) {
            if let Err(e) = load(&entry.file_name) {
                tracing::warn!("{e}");
            }
        }
    }
    Ok(())
}

/// Loads module file `file_name` from [`MODULE_DIR`]; one already there
/// (built in, or loaded meanwhile) counts as loaded.
fn load(file_name: &str) -> Result<(), String> {
    let module = Path::new(MODULE_DIR).join(file_name);
    let file = File::open(&module).map_err(|e| format!("opening {}: {e}", module.display()))?;
    match finit_module(&file, c"", ModuleInitFlags::empty()) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(format!("loading {}: {e}", module.display())),
    }
}

/// The longest a call waits for the modules loaded in the background.
pub const BACKGROUND_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether modules are being loaded in the background (see
/// [`load_listed_in_background`]).
static LOADING: Mutex<bool> = Mutex::new(false);
static LOADED: Condvar = Condvar::new();

/// Loads list `path` as [`load_listed`] does, on a thread of its own: the
/// modules only containers need (their disk, their shared filesystem) are
/// loaded once the agent has announced it is up, while the host dials.
/// [`wait_for_background`] holds the calls that need them.
pub fn load_listed_in_background(path: PathBuf) {
    *LOADING.lock().unwrap_or_else(|p| p.into_inner()) = true;
    let shown = path.display().to_string();
    let spawned = std::thread::Builder::new()
        .name("modules".into())
        .spawn(move || {
            if let Err(e) = load_listed(&path) {
                tracing::warn!("{e}");
            }
            done_loading();
        });
    if let Err(e) = spawned {
        tracing::warn!("loading {shown} in the background: {e}");
        done_loading();
    }
}

fn done_loading() {
    *LOADING.lock().unwrap_or_else(|p| p.into_inner()) = false;
    LOADED.notify_all();
}

/// Waits, at most `timeout`, for modules loaded in the background; returns
/// at once when none are.
pub fn wait_for_background(timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut loading = LOADING.lock().unwrap_or_else(|p| p.into_inner());
    while *loading {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            tracing::warn!("modules still loading after {timeout:?}");
            return;
        }
        loading = match LOADED.wait_timeout(loading, left) {
            Ok((guard, _)) => guard,
            Err(p) => p.into_inner().0,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_is_read_as_guest_modules_sh_reads_it() {
        let list = "# comment\n\nalways drivers/virtio/virtio.ko\npci    drivers/virtio/virtio_pci.ko\n0x0013 net/vmw_vsock/vsock.ko\n";
        assert_eq!(
            parse(list),
            vec![
                Entry {
                    when: When::Always,
                    file_name: "virtio.ko".into()
                },
                Entry {
                    when: When::Pci,
                    file_name: "virtio_pci.ko".into()
                },
                Entry {
                    when: When::VirtioDevice("0x0013".into()),
                    file_name: "vsock.ko".into()
                },
            ]
        );
    }

    #[test]
    fn bad_lines_are_named_and_skipped() {
        assert!(parse_line("sometimes a.ko")
            .unwrap_err()
            .contains("sometimes"));
        assert!(parse_line("always").is_err());
        assert!(parse_line("always a.ko b.ko").is_err());
        assert!(parse_line("always a.so").unwrap_err().contains("a.so"));
        assert_eq!(parse("sometimes a.ko\nalways\tb.ko\n").len(), 1);
    }

    #[test]
    fn waiting_ends_once_the_background_load_ends() {
        let dir = tempfile::tempdir().unwrap();
        // A list that is not there: reported, and the load is over.
        load_listed_in_background(dir.path().join("missing.modules"));
        let started = Instant::now();
        wait_for_background(BACKGROUND_TIMEOUT);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(!*LOADING.lock().unwrap());
    }
}
