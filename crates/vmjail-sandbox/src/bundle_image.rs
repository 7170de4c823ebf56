//! An OCI bundle made into an ext4 image for the guest: `config.json`
//! (its `root.path` rewritten to `rootfs`, its bind sources to `binds/<n>`),
//! `rootfs/` and each bind source under `binds/` (see
//! [`crate::bundle_binds`]), built with e2fsprogs' `mke2fs -d` from a
//! staging tree the rootfs and bind sources are bound into for mke2fs
//! alone (see [`crate::staged_binds`]): nothing is copied twice. Image
//! and staging directory live in the sandbox's state dir; the caller
//! records their paths before they are made.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vmjail_agent_protocol::bundle_layout::BINDS_DIR;

use crate::bundle_binds::{self, BindSource};
use crate::staged_binds;

/// Most bytes of a `config.json` read.
pub const MAX_CONFIG: u64 = 1 << 20;
/// Largest image made (the tree plus margin must fit).
pub const MAX_IMAGE: u64 = 8 << 30;
/// Most entries of a rootfs tree copied.
pub const MAX_ENTRIES: u64 = 1_000_000;
/// Deepest directory nesting walked.
const MAX_DEPTH: usize = 256;
/// Space beyond the tree: ext4's metadata and the container's writes.
const MARGIN: u64 = 64 << 20;
/// Longest `mke2fs` may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("bundle {path}: {reason}")]
    Bundle { path: PathBuf, reason: String },
    #[error("bundle {path}: config.json: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("bundle {path}: the rootfs and bind sources are larger than {max} bytes (with margin)", max = MAX_IMAGE)]
    TooLarge { path: PathBuf },
    #[error("bundle image {path}: {step}: {reason}")]
    Image {
        path: PathBuf,
        step: &'static str,
        reason: String,
    },
}

/// A checked bundle: its directory, its rootfs, its config (as JSON,
/// `root.path` already rewritten to `rootfs` and bind sources to
/// `binds/<n>`) and its bind sources (in that order).
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub config: serde_json::Value,
    pub binds: Vec<BindSource>,
}

fn bundle_err(path: &Path, reason: impl ToString) -> BundleError {
    BundleError::Bundle {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Reads and checks the bundle at `dir`: a directory holding a
/// `config.json` (at most [`MAX_CONFIG`] bytes, a valid OCI runtime spec
/// with `root` and `process`) whose `root.path` is a directory.
pub fn load(dir: &Path) -> Result<Bundle, BundleError> {
    let dir = dir
        .canonicalize()
        .map_err(|e| bundle_err(dir, format!("cannot resolve it: {e}")))?;
    if !dir.is_dir() {
        return Err(bundle_err(&dir, "not a directory"));
    }
    let config_err = |reason: String| BundleError::Config {
        path: dir.clone(),
        reason,
    };
    let file = std::fs::File::open(dir.join("config.json"))
        .map_err(|e| config_err(format!("cannot open it: {e}")))?;
    let mut text = String::new();
    file.take(MAX_CONFIG + 1)
        .read_to_string(&mut text)
        .map_err(|e| config_err(format!("cannot read it: {e}")))?;
    if text.len() as u64 > MAX_CONFIG {
        return Err(config_err(format!("larger than {MAX_CONFIG} bytes")));
    }
    let spec: oci_spec::runtime::Spec =
        serde_json::from_str(&text).map_err(|e| config_err(e.to_string()))?;
    if spec.process().is_none() {
        return Err(config_err("no \"process\" to run".into()));
    }
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| config_err("no \"root\"".into()))?;
    let rootfs = dir.join(root.path());
    let rootfs = rootfs
        .canonicalize()
        .map_err(|e| config_err(format!("root.path {}: {e}", root.path().display())))?;
    // A relative path (with `..` or through a symlink) must not leave the
    // bundle. An absolute one is taken as runc takes it: Docker and Podman
    // give their overlay mount there, and whoever may run vmjail chooses
    // the bundle anyway; never the host's whole root.
    let absolute = root.path().is_absolute();
    if rootfs == Path::new("/") || (!absolute && (!rootfs.starts_with(&dir) || rootfs == dir)) {
        return Err(config_err(format!(
            "root.path {} leaves the bundle",
            root.path().display()
        )));
    }
    if !rootfs.is_dir() {
        return Err(config_err(format!(
            "root.path {} is not a directory",
            rootfs.display()
        )));
    }
    let mut config: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| config_err(e.to_string()))?;
    config["root"]["path"] = "rootfs".into();
    let binds = bundle_binds::take(&mut config).map_err(config_err)?;
    Ok(Bundle {
        dir,
        rootfs,
        config,
        binds,
    })
}

/// What a tree walk accepts besides files, directories and symlinks.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// A rootfs: device nodes, fifos and sockets copied as they are.
    Keep,
    /// A bind source: refused, so only plain data reaches the guest.
    Refuse,
}

/// Bytes the tree at `dir` takes (4 KiB blocks, plus an inode each),
/// without following symlinks, bounded by [`MAX_ENTRIES`] and
/// [`MAX_DEPTH`].
pub fn tree_size(dir: &Path, special: Special) -> Result<u64, BundleError> {
    fn walk(
        dir: &Path,
        special: Special,
        depth: usize,
        total: &mut u64,
        entries: &mut u64,
    ) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("{} is nested too deep", dir.display()));
        }
        for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
            *entries += 1;
            if *entries > MAX_ENTRIES {
                return Err(format!("more than {MAX_ENTRIES} entries"));
            }
            let meta = entry
                .metadata()
                .map_err(|e| format!("{}: {e}", entry.path().display()))?;
            let plain = meta.is_file() || meta.is_dir() || meta.is_symlink();
            if special == Special::Refuse && !plain {
                return Err(format!(
                    "{} is a device, socket or fifo: only regular files, \
                     directories and symlinks reach the guest",
                    entry.path().display()
                ));
            }
            *total = total.saturating_add(meta.len().div_ceil(4096) * 4096 + 256);
            if meta.is_dir() {
                walk(&entry.path(), special, depth + 1, total, entries)?;
            }
        }
        Ok(())
    }
    let (mut total, mut entries) = (0u64, 0u64);
    walk(dir, special, 0, &mut total, &mut entries).map_err(|reason| bundle_err(dir, reason))?;
    Ok(total)
}

/// The image size for a tree of `tree` bytes: a quarter more plus
/// [`MARGIN`], in whole MiB, at most [`MAX_IMAGE`].
pub fn image_size(tree: u64) -> Option<u64> {
    let size = tree.checked_add(tree / 4)?.checked_add(MARGIN)?;
    let size = size.div_ceil(1 << 20) * (1 << 20);
    (size <= MAX_IMAGE).then_some(size)
}

/// Makes `image` (a new file) from `bundle`, staging the tree in
/// `staging` (a new directory, removed again). Both paths must already be
/// recorded by the caller.
pub fn make(bundle: &Bundle, staging: &Path, image: &Path) -> Result<(), BundleError> {
    start(bundle, staging, image)?.finish()
}

/// Begins [`make`]: stages the tree, creates `image` at its final size and
/// starts `mke2fs` filling it, then returns while it runs. A VMM may open
/// the image meanwhile (its size is fixed; nothing is read before the
/// guest runs): the caller overlaps the tool with the VMM's start-up and
/// calls [`Making::finish`] before the guest may run.
pub fn start(bundle: &Bundle, staging: &Path, image: &Path) -> Result<Making, BundleError> {
    let tree = tree_size(&bundle.rootfs, Special::Keep)?.saturating_add(binds_size(bundle)?);
    let size = image_size(tree).ok_or_else(|| BundleError::TooLarge {
        path: bundle.dir.clone(),
    })?;
    // From here on, dropped unfinished, it kills the tool and removes what
    // it made.
    let mut making = Making {
        image: image.to_path_buf(),
        staging: None,
        image_made: false,
        tool: None,
    };
    std::fs::create_dir(staging)
        .map_err(|e| making.error("creating the staging directory", e.to_string()))?;
    making.staging = Some(staging.to_path_buf());
    let config = serde_json::to_vec_pretty(&bundle.config)
        .map_err(|e| making.error("writing config.json", e.to_string()))?;
    std::fs::write(staging.join("config.json"), config)
        .map_err(|e| making.error("writing config.json", e.to_string()))?;
    let binds = stage_tree(bundle, staging)
        .map_err(|r| making.error("staging the rootfs and bind sources", r))?;
    crate::crash::point("create-container-staged");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(image)
        .map_err(|e| making.error("creating the file", e.to_string()))?;
    making.image_made = true;
    file.set_len(size)
        .map_err(|e| making.error("sizing the file", e.to_string()))?;
    drop(file);
    let mut mke2fs = Command::new("mke2fs");
    mke2fs
        .args(["-q", "-F", "-t", "ext4", "-m", "0", "-E", "root_owner=0:0"])
        // No journal: the image lives and dies with its sandbox, so a
        // journal protects nothing, and without one the guest's mount
        // starts no journal thread and replays nothing.
        .args(["-O", "^has_journal"])
        .arg("-d")
        .arg(staging)
        .arg(image);
    staged_binds::bind_before_exec(&mut mke2fs, &binds);
    // It runs while its caller goes on: should the caller die (killed
    // mid-create), the tool goes with it rather than write on unwatched;
    // a caller that died before the signal was set is seen as a new parent.
    let caller = nix::unistd::getpid();
    // SAFETY: prctl(2) and getppid(2) are async-signal-safe, and nothing
    // else is done.
    unsafe {
        mke2fs.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)?;
            match nix::unistd::getppid() == caller {
                true => Ok(()),
                // ESRCH: the caller is gone (no allocation after fork).
                false => Err(std::io::Error::from_raw_os_error(nix::libc::ESRCH)),
            }
        });
    }
    making.tool = Some(Tool::spawn(mke2fs, "mke2fs").map_err(|r| making.error("mke2fs -d", r))?);
    Ok(making)
}

/// An image being made by [`start`]; [`Making::finish`] waits for it.
/// Dropped unfinished (the create failed elsewhere), it kills the tool and
/// removes the staging directory and the image.
#[must_use = "the image is not complete until finish() returns"]
pub struct Making {
    image: PathBuf,
    staging: Option<PathBuf>,
    image_made: bool,
    tool: Option<Tool>,
}

impl Making {
    /// Waits (at most [`TOOL_TIMEOUT`] from its start) until the image is
    /// complete.
    pub fn finish(mut self) -> Result<(), BundleError> {
        let Some(tool) = self.tool.take() else {
            return Err(self.error("mke2fs -d", "not started".into()));
        };
        let waited = tool.wait();
        self.remove_staging();
        match waited {
            Ok(()) => {
                // Complete: nothing is left for drop to undo.
                self.image_made = false;
                Ok(())
            }
            Err(reason) => Err(self.error("mke2fs -d", reason)),
        }
    }

    fn error(&self, step: &'static str, reason: String) -> BundleError {
        BundleError::Image {
            path: self.image.clone(),
            step,
            reason,
        }
    }

    fn remove_staging(&mut self) {
        if let Some(staging) = self.staging.take() {
            let _ = std::fs::remove_dir_all(staging);
        }
    }
}

impl Drop for Making {
    fn drop(&mut self) {
        if let Some(tool) = self.tool.take() {
            tool.kill();
        }
        self.remove_staging();
        if self.image_made {
            let _ = std::fs::remove_file(&self.image);
        }
    }
}

/// Bytes the bind sources take (as [`tree_size`] counts), refusing a
/// device node, socket or fifo in a bound directory: copied into an image,
/// only plain data goes. (Shared over virtio-fs nothing is walked.)
fn binds_size(bundle: &Bundle) -> Result<u64, BundleError> {
    let mut total = 0u64;
    for bind in &bundle.binds {
        let size = match bind.is_dir {
            true => tree_size(&bind.source, Special::Refuse)?,
            false => std::fs::metadata(&bind.source)
                .map_err(|e| bundle_err(&bind.source, e))?
                .len(),
        };
        total = total.saturating_add(size.div_ceil(4096) * 4096 + 256);
    }
    Ok(total)
}

/// The staging tree's mount points: an empty `rootfs/` and, for each bind
/// source, an empty `binds/<n>` (a directory or a file, as the source is),
/// each paired with its source opened without following a last symlink.
fn stage_tree(bundle: &Bundle, staging: &Path) -> Result<Vec<staged_binds::Bind>, String> {
    let mut binds = Vec::with_capacity(bundle.binds.len() + 1);
    binds.push(staged_binds::Bind::new(
        &bundle.rootfs,
        true,
        &staging.join("rootfs"),
    )?);
    if bundle.binds.is_empty() {
        return Ok(binds);
    }
    let dir = staging.join(BINDS_DIR);
    std::fs::create_dir(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    for (index, bind) in bundle.binds.iter().enumerate() {
        let target = dir.join(index.to_string());
        binds.push(
            staged_binds::Bind::new(&bind.source, bind.is_dir, &target)
                .map_err(|r| format!("mount {}: {r}", bind.destination))?,
        );
    }
    Ok(binds)
}

/// A tool running with no stdin, its stderr kept (at most 4 KiB shown),
/// bounded by [`TOOL_TIMEOUT`] from its start.
struct Tool {
    what: &'static str,
    child: Child,
    stderr: std::thread::JoinHandle<String>,
    deadline: Instant,
}

impl Tool {
    fn spawn(mut command: Command, what: &'static str) -> Result<Tool, String> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("running {what}: {e}"))?;
        let stderr = child.stderr.take();
        let stderr = std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(stderr) = stderr {
                let _ = stderr.take(4096).read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).trim().to_string()
        });
        Ok(Tool {
            what,
            child,
            stderr,
            deadline: Instant::now() + TOOL_TIMEOUT,
        })
    }

    fn wait(mut self) -> Result<(), String> {
        let what = self.what;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < self.deadline => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                Ok(None) => {
                    self.kill();
                    return Err(format!("{what} took more than {}s", TOOL_TIMEOUT.as_secs()));
                }
                Err(e) => return Err(format!("waiting for {what}: {e}")),
            }
        };
        let stderr = self.stderr.join().unwrap_or_default();
        if status.success() {
            Ok(())
        } else {
            Err(format!("{what} failed ({status}): {stderr}"))
        }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle_with(config: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        std::fs::write(dir.path().join("rootfs/hello"), b"hi").unwrap();
        std::fs::write(dir.path().join("config.json"), config).unwrap();
        dir
    }

    const CONFIG: &str = r#"{"ociVersion":"1.0.2","process":{"cwd":"/","args":["/hello"],"user":{"uid":0,"gid":0}},"root":{"path":"rootfs","readonly":true},"x-extra":1}"#;

    #[test]
    fn load_rewrites_root_path_and_keeps_the_rest() {
        let dir = bundle_with(CONFIG);
        let bundle = load(dir.path()).unwrap();
        assert_eq!(bundle.config["root"]["path"], "rootfs");
        assert_eq!(bundle.config["root"]["readonly"], true);
        assert_eq!(bundle.config["x-extra"], 1);
        assert_eq!(
            bundle.rootfs,
            dir.path().join("rootfs").canonicalize().unwrap()
        );
    }

    #[test]
    fn bad_bundles_are_named() {
        let dir = bundle_with("{not json");
        assert!(matches!(load(dir.path()), Err(BundleError::Config { .. })));
        let dir = bundle_with(&CONFIG.replace("\"rootfs\"", "\"missing\""));
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("root.path missing"), "{err}");
        let dir = bundle_with(&" ".repeat(MAX_CONFIG as usize + 1));
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("larger than"), "{err}");
        let dir = bundle_with(r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"}}"#);
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("no \"process\""), "{err}");
        assert!(load(Path::new("/nonexistent/bundle")).is_err());
    }

    #[test]
    fn a_root_outside_the_bundle_or_a_device_bind_is_refused() {
        for root in ["/", "..", "."] {
            let dir = bundle_with(&CONFIG.replace("\"rootfs\"", &format!("{root:?}")));
            let err = load(dir.path()).unwrap_err().to_string();
            assert!(err.contains("leaves the bundle"), "{root}: {err}");
        }
        let dir = bundle_with(CONFIG);
        std::os::unix::fs::symlink("/usr", dir.path().join("up")).unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            CONFIG.replace("\"rootfs\"", "\"up\""),
        )
        .unwrap();
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("leaves the bundle"), "{err}");
        // An absolute root.path (Docker's and Podman's overlay mount) is
        // the caller's to give, as with runc.
        let elsewhere = bundle_with(CONFIG);
        let dir = bundle_with(&CONFIG.replace(
            "\"rootfs\"",
            &format!(
                "{:?}",
                elsewhere.path().join("rootfs").display().to_string()
            ),
        ));
        let bundle = load(dir.path()).unwrap();
        assert_eq!(
            bundle.rootfs,
            elsewhere.path().join("rootfs").canonicalize().unwrap()
        );
        assert_eq!(bundle.config["root"]["path"], "rootfs");
        let bind = CONFIG.replace(
            "\"x-extra\":1",
            r#""mounts":[{"destination":"/data","type":"bind","source":"/dev/null","options":["rbind"]}]"#,
        );
        let err = load(bundle_with(&bind).path()).unwrap_err().to_string();
        assert!(
            err.contains("/data: bind source /dev/null is a device"),
            "{err}"
        );
        // Nor anywhere inside a bound directory.
        let dir = bundle_with(CONFIG);
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::os::unix::net::UnixListener::bind(data.join("sock")).unwrap();
        let bind = CONFIG.replace(
            "\"x-extra\":1",
            &format!(
                r#""mounts":[{{"destination":"/data","type":"bind","source":"{}"}}]"#,
                data.display()
            ),
        );
        std::fs::write(dir.path().join("config.json"), bind).unwrap();
        let bundle = load(dir.path()).unwrap();
        let out = tempfile::tempdir().unwrap();
        let image = out.path().join("bundle.img");
        let err = make(&bundle, &out.path().join("staging"), &image)
            .unwrap_err()
            .to_string();
        assert!(err.contains("sock is a device, socket or fifo"), "{err}");
        assert!(!image.exists(), "nothing made");
    }

    #[test]
    fn make_copies_each_bind_source_under_binds() {
        let dir = bundle_with(CONFIG);
        let sources = tempfile::tempdir().unwrap();
        let (file, data) = (sources.path().join("hosts"), sources.path().join("data"));
        std::fs::write(&file, "10.0.0.1 h\n").unwrap();
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("inner"), "x").unwrap();
        let mounts = serde_json::json!([
            {"destination": "/etc/hosts", "type": "bind", "source": file, "options": ["rbind", "ro"]},
            {"destination": "/data", "type": "bind", "source": data},
        ]);
        let config = CONFIG.replace("\"x-extra\":1", &format!("\"mounts\":{mounts}"));
        std::fs::write(dir.path().join("config.json"), config).unwrap();
        let bundle = load(dir.path()).unwrap();
        assert_eq!(bundle.binds.len(), 2);
        let out = tempfile::tempdir().unwrap();
        let image = out.path().join("bundle.img");
        make(&bundle, &out.path().join("staging"), &image).unwrap();
        let debugfs = |request: &str| {
            let out = Command::new("debugfs")
                .args(["-R", request])
                .arg(&image)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        assert_eq!(debugfs("cat /binds/0"), "10.0.0.1 h\n");
        assert_eq!(debugfs("cat /binds/1/inner"), "x");
        let config: serde_json::Value = serde_json::from_str(&debugfs("cat /config.json")).unwrap();
        assert_eq!(config["mounts"][0]["source"], "binds/0");
        assert_eq!(config["mounts"][1]["source"], "binds/1");
    }

    /// Processes whose command line names `path`.
    fn processes_naming(path: &Path) -> Vec<String> {
        let needle = path.as_os_str().as_encoded_bytes();
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|p| std::fs::read(p.path().join("cmdline")).ok())
            .filter(|cmd| cmd.windows(needle.len()).any(|w| w == needle))
            .map(|cmd| String::from_utf8_lossy(&cmd).replace('\0', " "))
            .collect()
    }

    #[test]
    fn an_image_dropped_unfinished_is_undone_and_its_tool_killed() {
        let dir = bundle_with(CONFIG);
        // Enough data that mke2fs is still copying when dropped.
        let big = vec![0x5au8; 64 << 20];
        std::fs::write(dir.path().join("rootfs/big"), &big).unwrap();
        let bundle = load(dir.path()).unwrap();
        let out = tempfile::tempdir().unwrap();
        let (image, staging) = (out.path().join("bundle.img"), out.path().join("staging"));
        let making = start(&bundle, &staging, &image).unwrap();
        assert!(
            image.is_file(),
            "the image exists at its size while it is made"
        );
        assert!(std::fs::metadata(&image).unwrap().len() > 64 << 20);
        drop(making);
        assert!(!image.exists(), "the image is removed");
        assert!(!staging.exists(), "the staging directory is removed");
        assert_eq!(processes_naming(&image), Vec::<String>::new());
        // Finished instead, the same bundle makes a complete image.
        start(&bundle, &staging, &image).unwrap().finish().unwrap();
        assert!(image.is_file() && !staging.exists());
        assert_eq!(processes_naming(&image), Vec::<String>::new());
    }

    #[test]
    fn image_sizes_are_bounded() {
        assert_eq!(image_size(0), Some(MARGIN));
        assert!(image_size(MAX_IMAGE).is_none());
        assert!(image_size(u64::MAX).is_none());
    }

    #[test]
    fn make_builds_an_ext4_image_holding_the_bundle() {
        let dir = bundle_with(CONFIG);
        let bundle = load(dir.path()).unwrap();
        let out = tempfile::tempdir().unwrap();
        let image = out.path().join("bundle.img");
        let staging = out.path().join("staging");
        make(&bundle, &staging, &image).unwrap();
        assert!(!staging.exists(), "the staging copy is removed");
        let listing = Command::new("debugfs")
            .args(["-R", "ls -p /rootfs"])
            .arg(&image)
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&listing.stdout);
        assert!(listing.contains("/hello/"), "{listing}");
        let config = Command::new("debugfs")
            .args(["-R", "cat /config.json"])
            .arg(&image)
            .output()
            .unwrap();
        let config: serde_json::Value = serde_json::from_slice(&config.stdout).unwrap();
        assert_eq!(config["root"]["path"], "rootfs");
        assert!(!listing.contains("/binds/"), "no binds, no binds dir");
        // A second make over an existing image is refused, not overwritten.
        assert!(make(&bundle, &staging, &image).is_err());
        assert!(image.is_file(), "the refused make left the image alone");
    }
}
