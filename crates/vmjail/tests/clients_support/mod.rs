//! Real container engines with vmjail as their OCI runtime, started by a
//! test on private paths and torn down after it (also when it fails):
//! containerd + dockerd (`--iptables=false --bridge=none`, a `runtimes`
//! entry for vmjail with `--config`), and Podman (`--root/--runroot`
//! private, `--runtime vmjail`). Images come from a busybox-static rootfs
//! tarball (`docker import` / `podman import`), no registry.
#![allow(dead_code)] // each test file uses a part

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::lifecycle_support::{mounts_under, processes_mentioning, World};

/// The image every test runs.
pub const IMAGE: &str = "vmjail-busybox:latest";
/// Debian's docker.io client (/usr/local/bin/docker may be another one).
const DOCKER: &str = "/usr/bin/docker";

/// A world whose sandbox state dir is `root` (the `--root` the engine
/// gives its runtime), with the guest's agent on.
pub fn world_with_root(tag: &str, root: impl FnOnce(&Path) -> PathBuf) -> World {
    let mut w = World::new(tag);
    w.use_vsock();
    let state_dir = root(w.dir.path());
    let text = std::fs::read_to_string(&w.config).unwrap();
    let old = format!("state_dir = \"{}\"", w.state_dir.display());
    let new = format!("state_dir = \"{}\"", state_dir.display());
    assert!(text.contains(&old));
    std::fs::write(&w.config, text.replace(&old, &new)).unwrap();
    w.state_dir = state_dir;
    w
}

/// Switches `w`'s configuration to QEMU's `shared_fs = "virtio-fs"`
/// (each later vmjail call reads it): bundles and bind sources shared,
/// not copied, so a volume's writes reach the host.
pub fn use_virtio_fs(w: &World) {
    let text = std::fs::read_to_string(&w.config).unwrap();
    let shared = text.replacen(
        "machine_type = \"microvm\"\n",
        "machine_type = \"microvm\"\nshared_fs = \"virtio-fs\"\n\
         virtio_fs_daemon = \"/usr/local/bin/virtiofsd\"\n",
        1,
    );
    assert_ne!(shared, text, "no machine_type line");
    std::fs::write(&w.config, shared).unwrap();
}

/// A host directory under `w`'s dir for a volume, holding `in`.
pub fn volume_dir(w: &World) -> PathBuf {
    let host = w.dir.path().join("volume");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in"), "from-host\n").unwrap();
    host
}

/// A tarball of a busybox-static rootfs (`/bin/*` applets, empty
/// `/proc /dev /sys /tmp /etc`) under `dir`.
pub fn busybox_tarball(dir: &Path) -> PathBuf {
    let rootfs = dir.join("image-rootfs");
    let bin = rootfs.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    let out = Command::new("chroot")
        .arg(&rootfs)
        .args(["/bin/busybox", "--install", "-s", "/bin"])
        .output()
        .unwrap();
    assert!(out.status.success(), "busybox --install: {out:?}");
    for d in ["proc", "dev", "sys", "tmp", "etc", "data"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    let tar = dir.join("busybox.tar");
    let out = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .output()
        .unwrap();
    assert!(out.status.success(), "tar: {out:?}");
    tar
}

/// Spawns `cmd` with its output to `log`.
fn spawn_logged(mut cmd: Command, log: &Path) -> Child {
    let file = std::fs::File::create(log).unwrap();
    cmd.stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// SIGTERM, then SIGKILL after `grace`; waits for it.
fn stop_child(child: &mut Child, grace: Duration) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Lazily unmounts every mount under `dir`, deepest first.
fn unmount_all_under(dir: &Path) {
    let mut mounts = mounts_under(dir);
    mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    for m in mounts {
        let _ = Command::new("umount").arg("-l").arg(&m).status();
    }
}

/// containerd + dockerd on private paths, vmjail registered as runtime
/// `vmjail`.
pub struct Docker {
    pub w: World,
    sock: PathBuf,
    containerd: Child,
    dockerd: Child,
    /// Each daemon's log, shown when a test fails.
    pub logs: Vec<PathBuf>,
}

impl Docker {
    pub fn start(tag: &str) -> Docker {
        // Docker gives every runtime `--root <exec-root>/runtime-runc/moby`.
        let w = world_with_root(tag, |dir| dir.join("x/runtime-runc/moby"));
        let d = w.dir.path().to_path_buf();
        let ctd_config = d.join("containerd.toml");
        std::fs::write(
            &ctd_config,
            "version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n",
        )
        .unwrap();
        let ctd_sock = d.join("ctd.sock");
        let mut cmd = Command::new("containerd");
        cmd.arg("-c")
            .arg(&ctd_config)
            .arg("--root")
            .arg(d.join("ctd-root"))
            .arg("--state")
            .arg(d.join("ctd-state"))
            .arg("--address")
            .arg(&ctd_sock);
        let containerd = spawn_logged(cmd, &d.join("containerd.log"));
        wait_for(&ctd_sock, Duration::from_secs(30));
        let daemon_json = d.join("daemon.json");
        let runtime = serde_json::json!({
            "runtimes": {"vmjail": {
                "path": env!("CARGO_BIN_EXE_vmjail"),
                "runtimeArgs": ["--config", w.config.to_str().unwrap()]
            }}
        });
        std::fs::write(&daemon_json, runtime.to_string()).unwrap();
        let sock = d.join("docker.sock");
        let mut cmd = Command::new("dockerd");
        cmd.arg("--config-file")
            .arg(&daemon_json)
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("x"))
            .arg("--pidfile")
            .arg(d.join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .arg("--containerd")
            .arg(&ctd_sock)
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
                "--bridge=none",
                "--userland-proxy=false",
            ]);
        let dockerd = spawn_logged(cmd, &d.join("dockerd.log"));
        let docker = Docker {
            logs: vec![d.join("containerd.log"), d.join("dockerd.log")],
            w,
            sock,
            containerd,
            dockerd,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !docker.docker(&["version"]).status.success() {
            assert!(Instant::now() < deadline, "dockerd did not come up");
            std::thread::sleep(Duration::from_millis(200));
        }
        let tar = busybox_tarball(docker.w.dir.path());
        docker.ok(&["import", tar.to_str().unwrap(), IMAGE]);
        docker
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(DOCKER);
        cmd.arg("-H")
            .arg(format!("unix://{}", self.sock.display()))
            .args(args);
        cmd
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Runs and requires success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?}: {out:?}\n{}",
            self.log_tail()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The end of each daemon's log.
    pub fn log_tail(&self) -> String {
        self.logs
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p).unwrap_or_default();
                let start = text.len().saturating_sub(3000);
                format!("--- {}:\n{}", p.display(), &text[start..])
            })
            .collect()
    }

    /// Stops the daemons, then checks nothing of vmjail's is left: no
    /// sandbox in the runtime's root, and none of `ids` (nor any other)
    /// left a netns, chroot, mount, process, uid or cgroup.
    pub fn finish(mut self, ids: &[String]) {
        self.stop_daemons();
        assert_nothing_left(&self.w, ids);
    }

    fn stop_daemons(&mut self) {
        let ids = self.docker(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        stop_child(&mut self.dockerd, Duration::from_secs(20));
        stop_child(&mut self.containerd, Duration::from_secs(20));
    }
}

/// No sandbox in `w`'s state dir (the engine's runtime root) and nothing
/// of `ids` or any other sandbox of `w` left.
pub fn assert_nothing_left(w: &World, ids: &[String]) {
    let listed = w.ok(&["--root", w.state_dir.to_str().unwrap(), "list", "-q"]);
    assert_eq!(listed, "", "sandboxes left");
    let entries: Vec<_> = std::fs::read_dir(&w.state_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(entries.is_empty(), "left in the state dir: {entries:?}");
    // The generic checks (mounts, processes, VMM uids) with any id.
    w.assert_no_leaks("none-such", None);
    for id in ids {
        w.assert_no_leaks(id, None);
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
        self.stop_daemons();
        // What a failed test left: sandboxes, then mounts.
        let root = self.w.state_dir.to_str().unwrap().to_string();
        let _ = self.w.vmjail(&["--root", &root, "gc"]);
        for entry in std::fs::read_dir(&self.w.state_dir).into_iter().flatten() {
            let Ok(entry) = entry else { continue };
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let name = entry.file_name();
                let _ = self.w.vmjail(&[
                    "--root",
                    &root,
                    "delete",
                    "--force",
                    name.to_str().unwrap_or_default(),
                ]);
            }
        }
        unmount_all_under(self.w.dir.path());
    }
}

fn wait_for(path: &Path, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} did not appear",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Podman with private `--root/--runroot` and vmjail as `--runtime`, its
/// configuration through `--runtime-flag config=…` (Podman 4.3 leaves the
/// flags out of `delete`: vmjail finds the state by the container's id).
pub struct Podman {
    pub w: World,
    storage: PathBuf,
    runroot: PathBuf,
    /// Podman's own tmp dir and its CNI/netavark config dirs.
    tmpdir: PathBuf,
}

impl Podman {
    pub fn start(tag: &str) -> Podman {
        // Podman gives vmjail no --root: the state dir is the config's.
        let w = World::new(tag);
        w.use_vsock();
        let d = w.dir.path().to_path_buf();
        let podman = Podman {
            storage: d.join("storage"),
            runroot: d.join("run"),
            tmpdir: d.join("ptmp"),
            w,
        };
        std::fs::create_dir_all(&podman.tmpdir).unwrap();
        let tar = busybox_tarball(podman.w.dir.path());
        podman.ok(&["import", tar.to_str().unwrap(), IMAGE]);
        podman
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("podman");
        cmd.arg("--root")
            .arg(&self.storage)
            .arg("--runroot")
            .arg(&self.runroot)
            .arg("--tmpdir")
            .arg(&self.tmpdir)
            .arg("--storage-driver")
            .arg("overlay")
            .arg("--cgroup-manager")
            .arg("cgroupfs")
            .arg("--events-backend")
            .arg("none")
            .arg("--runtime")
            .arg(env!("CARGO_BIN_EXE_vmjail"))
            .arg("--runtime-flag")
            .arg(format!("config={}", self.w.config.display()))
            .args(args);
        cmd
    }

    pub fn podman(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.podman(args);
        assert!(out.status.success(), "podman {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn finish(self, ids: &[String]) {
        let _ = self.podman(&["rm", "-af", "-t", "0"]);
        // conmon, podman's per-container monitor, ends on its own a moment
        // after `rm` returns (CI once saw it still there): waited for, up
        // to 10 s, before anything is judged.
        let dir = self.w.dir.path().to_string_lossy().into_owned();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline
            && processes_mentioning(&[&dir])
                .iter()
                .any(|(_, line)| line.contains("conmon"))
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_nothing_left(&self.w, ids);
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.podman(&["rm", "-af", "-t", "0"]);
        let root = self.w.state_dir.to_str().unwrap().to_string();
        let _ = self.w.vmjail(&["--root", &root, "gc"]);
        let _ = self.podman(&["system", "reset", "-f"]);
        unmount_all_under(self.w.dir.path());
    }
}
