//! The shared libraries (and dynamic loader) an ELF executable needs, found
//! by reading its headers — the executable is never run to ask it.
//!
//! Each library is placed in the jail at the path where the loader inside
//! the jail will look for it: the loader's own `PT_INTERP` path, and the
//! library directories the host's loader searches (runpath, `ld.so.conf`,
//! the system directories). The jail has no `ld.so.cache`, so the loader
//! falls back to the system directories, where the libraries are placed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use goblin::elf::Elf;

use crate::error::JailError;
use crate::jail::Jail;
use crate::spec::{Placement, Recorder};

/// Directories glibc's loader searches when there is no cache (x86_64 Debian).
const SYSTEM_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];

/// One file to place: where the loader looks for it inside the jail → the
/// real (canonical) file on the host.
pub type LibraryMap = BTreeMap<PathBuf, PathBuf>;

struct ElfDeps {
    interpreter: Option<String>,
    needed: Vec<String>,
    runpaths: Vec<String>,
}

fn read_deps(path: &Path) -> Result<ElfDeps, JailError> {
    let elf_error = |reason: String| JailError::Elf {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| elf_error(e.to_string()))?;
    // Mapped, not read: a VMM binary is tens of MiB and only its headers
    // and dynamic section are looked at.
    // SAFETY: the map is read-only and dropped before this returns; a
    // binary truncated meanwhile could fault the read, and the binaries
    // read here are the root-owned VMM and system libraries.
    let bytes = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| elf_error(e.to_string()))?;
    let elf = Elf::parse(&bytes).map_err(|e| elf_error(e.to_string()))?;
    let mut runpaths: Vec<String> = elf.runpaths.iter().map(|s| s.to_string()).collect();
    if runpaths.is_empty() {
        runpaths = elf.rpaths.iter().map(|s| s.to_string()).collect();
    }
    Ok(ElfDeps {
        interpreter: elf.interpreter.map(str::to_owned),
        needed: elf.libraries.iter().map(|s| s.to_string()).collect(),
        runpaths,
    })
}

/// The `DT_NEEDED` names of `exec` (e.g. `libseccomp.so.2`), read from its
/// headers: what it was linked against, without running it.
pub fn needed_libraries(exec: &Path) -> Result<Vec<String>, JailError> {
    Ok(read_deps(exec)?.needed)
}

/// Directories named in `/etc/ld.so.conf` (and its `include`s).
fn ld_so_conf_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    read_ld_so_conf(Path::new("/etc/ld.so.conf"), &mut dirs, 0);
    dirs
}

fn read_ld_so_conf(path: &Path, dirs: &mut Vec<PathBuf>, depth: usize) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(pattern) = line.strip_prefix("include ") {
            if depth > 4 {
                continue;
            }
            for file in glob_conf(pattern.trim()) {
                read_ld_so_conf(&file, dirs, depth + 1);
            }
        } else if line.starts_with('/') {
            dirs.push(PathBuf::from(line));
        }
    }
}

/// The only glob ld.so.conf uses in practice: `dir/*.conf`.
fn glob_conf(pattern: &str) -> Vec<PathBuf> {
    let (dir, suffix) = match pattern.rsplit_once("/*") {
        Some((dir, suffix)) => (dir, suffix),
        None => return vec![PathBuf::from(pattern)],
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(suffix))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Every file the loader needs to start `exec`: the loader itself and the
/// transitive `DT_NEEDED` libraries. Empty for a static executable.
pub fn shared_libraries(exec: &Path) -> Result<LibraryMap, JailError> {
    let mut map = LibraryMap::new();
    let root = read_deps(exec)?;
    let Some(interpreter) = root.interpreter.clone() else {
        return Ok(map);
    };
    let interp = PathBuf::from(&interpreter);
    map.insert(interp.clone(), canonical(&interp)?);

    let conf_dirs = ld_so_conf_dirs();
    let mut queue = vec![(exec.to_path_buf(), root)];
    let mut seen = std::collections::BTreeSet::new();
    while let Some((needed_by, deps)) = queue.pop() {
        let origin = needed_by
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let mut search: Vec<PathBuf> = deps
            .runpaths
            .iter()
            .flat_map(|r| r.split(':'))
            .map(|d| PathBuf::from(d.replace("$ORIGIN", &origin.to_string_lossy())))
            .collect();
        search.extend(conf_dirs.iter().cloned());
        search.extend(SYSTEM_DIRS.iter().map(PathBuf::from));
        for name in deps.needed {
            if !seen.insert(name.clone()) {
                continue;
            }
            let found = if name.contains('/') {
                Some(PathBuf::from(&name))
            } else {
                search.iter().map(|d| d.join(&name)).find(|p| p.is_file())
            };
            let Some(found) = found else {
                return Err(JailError::LibraryNotFound {
                    name,
                    needed_by: needed_by.clone(),
                    searched: search
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(":"),
                });
            };
            let real = canonical(&found)?;
            map.insert(found.clone(), real.clone());
            queue.push((found, read_deps(&real)?));
        }
    }
    Ok(map)
}

fn canonical(path: &Path) -> Result<PathBuf, JailError> {
    std::fs::canonicalize(path).map_err(|e| JailError::Elf {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

impl Jail {
    /// Place the exec file's shared libraries (and the dynamic loader)
    /// read-only at the paths the loader looks in, so a dynamically linked
    /// VMM runs in the jail: one bind per directory of its library tree
    /// (see `libtree`), made once per binary under the chroot base.
    pub fn place_shared_libraries(&mut self, recorder: &mut dyn Recorder) -> Result<(), JailError> {
        let base = self
            .record
            .jail_dir
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .ok_or_else(|| JailError::Elf {
                path: self.record.jail_dir.clone(),
                reason: "the jail is not prepared".into(),
            })?;
        let exec = self.spec.exec_file.clone();
        let exec_name = self.exec_name.clone();
        let Some(tree) = crate::libtree::library_tree(&base, &exec, &exec_name)? else {
            return Ok(());
        };
        for dir in &tree.dirs {
            let source = crate::spec::host_path(&tree.root, dir);
            match self.place(recorder, &source, dir, Placement::ReadOnlyBind) {
                Ok(_) | Err(JailError::AlreadyPlaced { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_loader_and_libc_of_a_dynamic_binary() {
        let map = shared_libraries(Path::new("/bin/sh")).unwrap();
        assert!(
            map.keys().any(|p| p.to_string_lossy().contains("ld-linux")),
            "{map:?}"
        );
        assert!(map.keys().any(|p| p.ends_with("libc.so.6")), "{map:?}");
        for real in map.values() {
            assert!(real.is_absolute() && real.is_file(), "{real:?}");
        }
    }

    /// Every library `ldd` names for QEMU is found (QEMU is the biggest
    /// dynamically linked VMM the jail serves).
    #[test]
    fn finds_every_library_ldd_finds_for_qemu() {
        let qemu = Path::new("/usr/bin/qemu-system-x86_64");
        if !qemu.exists() {
            eprintln!("skipped: {} not installed", qemu.display());
            return;
        }
        let map = shared_libraries(qemu).unwrap();
        let ldd = std::process::Command::new("ldd")
            .arg(qemu)
            .output()
            .unwrap();
        let ldd = String::from_utf8_lossy(&ldd.stdout);
        let names: Vec<&str> = ldd
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| !n.starts_with("linux-vdso"))
            .collect();
        assert!(names.len() > 10, "{ldd}");
        for name in names {
            let file = Path::new(name).file_name().unwrap();
            assert!(
                map.keys().any(|k| k.file_name() == Some(file)),
                "{name} missing"
            );
        }
    }

    #[test]
    fn a_non_elf_file_is_a_clear_error() {
        let err = shared_libraries(Path::new("/etc/hostname"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/etc/hostname"), "{err}");
    }
}
