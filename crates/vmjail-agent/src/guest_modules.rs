//! Loading the guest kernel modules the agent needs, from a list in the
//! format guest/modules.sh reads (`WHEN PATH` lines; see
//! guest/agent.modules): `always`, `pci` (the VM has a virtio PCI device),
//! or a virtio device id (`0x0013`). Done by the agent with
//! `finit_module(2)` rather than by the guest's init with one busybox
//! `insmod` per module: under TCG each fork and exec of busybox costs
//! ~10 ms, on the path to the first container.

use std::fs::File;
use std::path::Path;

use nix::kmod::{finit_module, ModuleInitFlags};

/// Where the initramfs keeps its modules (by file name).
const MODULE_DIR: &str = "/lib/modules";

/// A list longer than this is not one of ours.
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

/// Parses a list; comments and blank lines are skipped.
fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(when), Some(path), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!("line {}: expected `WHEN PATH`", number + 1));
        };
        let when = match when {
            "always" => When::Always,
            "pci" => When::Pci,
            id if id.starts_with("0x") => When::VirtioDevice(id.to_owned()),
            other => return Err(format!("line {}: unknown condition {other:?}", number + 1)),
        };
        let file_name = path.rsplit('/').next().unwrap_or(path);
        if !file_name.ends_with(".ko") {
            return Err(format!("line {}: {path:?} is not a .ko file", number + 1));
        }
        entries.push(Entry {
            when,
            file_name: file_name.to_owned(),
        });
    }
    Ok(entries)
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
/// time its driver's line is read.
pub fn load_listed(path: &Path) -> Result<(), String> {
    let file = File::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_LIST_BYTES), &mut text)
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    let entries = parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    for entry in entries {
        let needed = match &entry.when {
            When::Always => true,
            When::Pci => any_attribute_is(Path::new("/sys/bus/pci/devices"), "vendor", "0x1af4"),
            When::VirtioDevice(id) => {
                any_attribute_is(Path::new("/sys/bus/virtio/devices"), "device", id)
            }
        };
        if !needed || loaded(&entry.file_name) {
            continue;
        }
        let module = Path::new(MODULE_DIR).join(&entry.file_name);
        let file = File::open(&module).map_err(|e| format!("opening {}: {e}", module.display()))?;
        finit_module(&file, c"", ModuleInitFlags::empty())
            .map_err(|e| format!("loading {}: {e}", module.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_is_read_as_guest_modules_sh_reads_it() {
        let list = "# comment\n\nalways drivers/virtio/virtio.ko\npci    drivers/virtio/virtio_pci.ko\n0x0013 net/vmw_vsock/vsock.ko\n";
        assert_eq!(
            parse(list).unwrap(),
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
    fn a_bad_line_is_an_error_naming_it() {
        assert!(parse("sometimes a.ko\n").unwrap_err().contains("line 1"));
        assert!(parse("always\n").unwrap_err().contains("line 1"));
        assert!(parse("always a.ko b.ko\n").unwrap_err().contains("line 1"));
        assert!(parse("always\ta.ko\nalways a.so\n")
            .unwrap_err()
            .contains("line 2"));
    }
}
