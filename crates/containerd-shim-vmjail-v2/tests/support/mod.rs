//! A real containerd for the shim's tests: Debian's `containerd`, started
//! on private `--root/--state/--address` paths with the shim found on its
//! PATH (as containerd looks for `containerd-shim-vmjail-v2`), a vmjail
//! configuration booting the repository's guest (`build/guest`), and a
//! busybox-static image imported with `ctr image import` from an archive
//! built here. Leak checks for after each test.
#![allow(dead_code)] // the tests and the bench use different parts

pub mod cri_client;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The image every test runs.
pub const IMAGE: &str = "vmjail.test/busybox:latest";
pub const RUNTIME: &str = "io.containerd.vmjail.v2";
/// Jail uids one containerd's sandboxes get (one each).
const ID_RANGE: u32 = 16;

/// True when the test may run; panics in CI (`CI` set) when not root.
pub fn require_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let euid: u32 = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|u| u.parse().ok())
        .unwrap();
    if euid == 0 {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run the containerd tests as root"
    );
    eprintln!("skipped: the containerd tests need root");
    false
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The directory holding the shim and `vmjail` (cargo's target dir).
pub fn bin_dir() -> PathBuf {
    let shim = PathBuf::from(env!("CARGO_BIN_EXE_containerd-shim-vmjail-v2"));
    let dir = shim.parent().unwrap().to_owned();
    for bin in ["vmjail", "vmjail-jailer"] {
        assert!(
            dir.join(bin).exists(),
            "{} is missing: run `cargo build --workspace --bins` first",
            dir.join(bin).display()
        );
    }
    dir
}

/// Where the shim's own socket for a task is: the shim crate's
/// `socket_address` (a sha256 of containerd's address, namespace, id).
pub fn shim_socket(address: &Path, namespace: &str, id: &str) -> PathBuf {
    use sha2::Digest;
    let key = address.join(namespace).join(id);
    let hash = sha2::Sha256::digest(key.to_string_lossy().as_bytes());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    PathBuf::from(format!("/run/containerd/s/{hex}"))
}

/// containerd's namespace for CRI's containers and images.
pub const CRI_NAMESPACE: &str = "k8s.io";
/// The CRI runtime handler the test's configuration names.
pub const CRI_HANDLER: &str = "vmjail";

pub struct Containerd {
    pub dir: tempfile::TempDir,
    /// The containerd namespace the test works in (`k8s.io` with CRI).
    pub namespace: &'static str,
    /// `/run/netns` entries before the test, to find the pod netns CRI
    /// made (and remove what a failed test left).
    netns_before: Vec<String>,
    /// The network namespace containerd runs in (with CRI).
    daemon_netns: Option<String>,
    pub address: PathBuf,
    pub vmjail_config: PathBuf,
    pub state_dir: PathBuf,
    pub parent_cgroup: String,
    pub jail_uid: u32,
    daemon: Child,
    /// Held for the test's whole life: see [`Containerd::start`].
    _serial: nix::fcntl::Flock<std::fs::File>,
}

impl Containerd {
    /// `tag` is unique per test. With `config_env`, containerd (and so the
    /// shim) has `VMJAIL_CONFIG` naming the test's configuration; without,
    /// the test must pass `--runtime-config-path`.
    pub fn start(tag: &str, config_env: bool) -> Containerd {
        Containerd::launch(tag, config_env, false)
    }

    /// containerd with its CRI plugin on (on the same socket), runtime
    /// handler [`CRI_HANDLER`] naming the shim, `sandbox_image` the
    /// test's image (imported into `k8s.io`, its default command a long
    /// sleep: the pod's sandbox container), a point-to-point CNI
    /// configuration in the test's directory, and a vmjail configuration
    /// sharing bundles over virtio-fs (a pod's later containers join its
    /// running VM that way).
    pub fn start_cri(tag: &str) -> Containerd {
        Containerd::launch(tag, false, true)
    }

    fn launch(tag: &str, config_env: bool, cri: bool) -> Containerd {
        // With CRI, containerd runs in a network namespace of the test's:
        // the host side of each pod's CNI veth is there, not on the host.
        let daemon_netns = cri.then(|| {
            let name = format!("vmjail-ctrd-{tag}-{}", std::process::id());
            let ok = Command::new("ip").args(["netns", "add", &name]).status();
            assert!(ok.is_ok_and(|s| s.success()), "ip netns add {name}");
            let lo = Command::new("ip")
                .args(["-n", &name, "link", "set", "lo", "up"])
                .status();
            assert!(lo.is_ok_and(|s| s.success()), "lo up in {name}");
            name
        });
        // One containerd test at a time (nextest runs each in its own
        // process): five guests of one test under TCG are load enough on
        // a shared machine; more made guests miss the agent's timeout.
        let serial = std::fs::File::create("/tmp/vmjail-ctrd-tests.lock").unwrap();
        let serial = nix::fcntl::Flock::lock(serial, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| e)
            .unwrap();
        let guest = repo_root().join("build/guest");
        for asset in ["vmlinux", "initramfs.cpio.gz"] {
            assert!(
                guest.join(asset).exists(),
                "guest asset {asset} is missing: run scripts/build-guest.sh build/guest first"
            );
        }
        let bins = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("vmjail-ctrd-")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path();
        let state_dir = d.join("state");
        let jail = d.join("jail");
        std::fs::create_dir_all(&jail).unwrap();
        let parent_cgroup = format!("vmjail-ctrd-{tag}-{}", std::process::id());
        // 51000 + 899 * 16 + 15 < 65534: never nobody's uid (refused).
        let jail_uid = 51000
            + (tag.bytes().fold(std::process::id(), |h, b| {
                h.wrapping_mul(31).wrapping_add(b.into())
            }) % 900)
                * ID_RANGE;
        let vmjail_config = d.join("vmjail.toml");
        let shared_fs = match cri {
            true => "shared_fs = \"virtio-fs\"\nvirtio_fs_daemon = \"/usr/local/bin/virtiofsd\"\n",
            false => "",
        };
        std::fs::write(
            &vmjail_config,
            format!(
                r#"[hypervisor.qemu]
path = "/usr/bin/qemu-system-x86_64"
kernel = "{kernel}"
initrd = "{initrd}"
machine_type = "microvm"
{shared_fs}default_vcpus = 1
default_memory = 256
block_device_driver = "virtio-mmio"
use_vsock = true

[agent.kata]

[runtime]
internetworking_model = "tcfilter"

[jail]
uid = {jail_uid}
gid = {jail_uid}
id_range_size = {ID_RANGE}
chroot_base_dir = "{jail}"
state_dir = "{state}"
parent_cgroup = "{parent_cgroup}"
"#,
                kernel = guest.join("vmlinux").display(),
                initrd = guest.join("initramfs.cpio.gz").display(),
                jail = jail.display(),
                state = state_dir.display(),
            ),
        )
        .unwrap();
        let address = d.join("containerd.sock");
        let config = d.join("containerd.toml");
        let cri_config = match cri {
            true => cri_config(d),
            false => "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n".into(),
        };
        std::fs::write(
            &config,
            format!(
                r#"version = 2
root = "{root}"
state = "{state}"
{cri_config}

[grpc]
  address = "{address}"

[ttrpc]
  address = "{address}.ttrpc"

# What a CRI setup names (`ctr --runtime` names the runtime directly).
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.vmjail]
  runtime_type = "{RUNTIME}"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.vmjail.options]
  ConfigPath = "{vmjail_config}"
"#,
                root = d.join("root").display(),
                state = d.join("cstate").display(),
                address = address.display(),
                vmjail_config = vmjail_config.display(),
            ),
        )
        .unwrap();
        let path = format!(
            "{}:{}",
            bins.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = match &daemon_netns {
            Some(name) => {
                let mut cmd = Command::new("nsenter");
                cmd.arg(format!("--net=/run/netns/{name}"))
                    .arg("containerd");
                cmd
            }
            None => Command::new("containerd"),
        };
        cmd.arg("--config")
            .arg(&config)
            .env("PATH", path)
            .env_remove("VMJAIL_CONFIG")
            .env_remove("KATA_CONF_FILE")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("containerd.log")).unwrap());
        if config_env {
            cmd.env("VMJAIL_CONFIG", &vmjail_config);
        }
        let netns_before = netns_names();
        let daemon = cmd.spawn().expect("starting containerd");
        let ctrd = Containerd {
            dir,
            namespace: if cri { CRI_NAMESPACE } else { "default" },
            netns_before,
            daemon_netns,
            address,
            vmjail_config,
            state_dir,
            parent_cgroup,
            jail_uid,
            daemon,
            _serial: serial,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ctrd.ctr(&["version"]).status.success() {
            assert!(Instant::now() < deadline, "containerd never answered");
            std::thread::sleep(Duration::from_millis(100));
        }
        ctrd.import_image(cri);
        ctrd
    }

    /// `/run/netns` entries made since the test started.
    pub fn new_netns(&self) -> Vec<String> {
        netns_names()
            .into_iter()
            .filter(|n| !self.netns_before.contains(n))
            .collect()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    pub fn ctr_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(&self.address)
            .args(["--namespace", self.namespace]);
        // A task's IO FIFOs go under /run/containerd/fifo unless ctr is
        // told otherwise, and stay there when its shim dies: the test's
        // own dir instead, removed with it.
        let subcommand = match args {
            ["run", ..] => 1,
            ["task" | "t", "start" | "exec", ..] => 2,
            _ => 0,
        };
        cmd.args(&args[..subcommand]);
        if subcommand > 0 {
            cmd.arg("--fifo-dir").arg(self.dir.path().join("fifo"));
        }
        cmd.args(&args[subcommand..]);
        cmd
    }

    pub fn ctr(&self, args: &[&str]) -> Output {
        self.ctr_command(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// `ctr ARGS` must succeed; its stdout.
    pub fn ctr_ok(&self, args: &[&str]) -> String {
        let out = self.ctr(args);
        assert!(
            out.status.success(),
            "ctr {args:?}: {}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `ctr run --rm --runtime io.containerd.vmjail.v2 IMAGE id ARGS…`.
    pub fn run(&self, id: &str, args: &[&str]) -> Output {
        let mut all = vec!["run", "--rm", "--runtime", RUNTIME, IMAGE, id];
        all.extend_from_slice(args);
        self.ctr(&all)
    }

    /// A busybox-static rootfs as a docker-archive image, imported. Its
    /// default command is a shell, or for CRI a long sleep (what the
    /// pod's sandbox container runs).
    fn import_image(&self, cri: bool) {
        let d = self.dir.path().join("image");
        let rootfs = d.join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        let out = Command::new("chroot")
            .arg(&rootfs)
            .args(["/bin/busybox", "--install", "-s", "/bin"])
            .output()
            .unwrap();
        assert!(out.status.success(), "busybox --install: {out:?}");
        for sub in ["proc", "dev", "sys", "tmp", "etc", "run"] {
            std::fs::create_dir_all(rootfs.join(sub)).unwrap();
        }
        let archive = d.join("archive");
        std::fs::create_dir_all(&archive).unwrap();
        tar(&rootfs, &archive.join("layer.tar"));
        let layer = sha256_file(&archive.join("layer.tar"));
        let config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/bin"], "Cmd": match cri {
                true => ["/bin/sleep", "86400"].as_slice(),
                false => ["/bin/sh"].as_slice(),
            }},
            "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer}")]}
        })
        .to_string();
        let config_name = format!("{}.json", sha256_bytes(config.as_bytes()));
        std::fs::write(archive.join(&config_name), config).unwrap();
        let manifest = serde_json::json!([{
            "Config": config_name,
            "RepoTags": [IMAGE],
            "Layers": ["layer.tar"]
        }]);
        std::fs::write(archive.join("manifest.json"), manifest.to_string()).unwrap();
        let image = d.join("image.tar");
        tar(&archive, &image);
        self.ctr_ok(&["image", "import", image.to_str().unwrap()]);
    }

    /// The task's status in `ctr task ls`, `None` when there is none.
    pub fn task_status(&self, id: &str) -> Option<String> {
        let out = self.ctr_ok(&["task", "ls"]);
        out.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.first() == Some(&id)).then(|| f.last().map(|s| s.to_string()))
            })
            .next()
            .flatten()
    }

    pub fn wait_task_status(&self, id: &str, want: Option<&str>, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let now = self.task_status(id);
            if now.as_deref() == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "task {id}: status {now:?}, never {want:?}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The serving shim of task `id` (in the test's namespace).
    pub fn shim_pid(&self, id: &str) -> Option<u32> {
        let needle = format!(
            "-namespace {} -id {id} -address {}",
            self.namespace,
            self.address.display()
        );
        processes_mentioning(&needle).first().map(|(pid, _)| *pid)
    }

    /// Waits until task `id`'s shim socket and every sandbox state are gone.
    pub fn wait_cleanup(&self, id: &str, timeout: Duration) {
        let socket = shim_socket(&self.address, self.namespace, id);
        let deadline = Instant::now() + timeout;
        while socket.exists()
            || std::fs::read_dir(&self.state_dir).is_ok_and(|mut d| d.next().is_some())
        {
            assert!(
                Instant::now() < deadline,
                "{id}: never cleaned up\n{}\n{}",
                self.leftovers(id, &socket),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What is left of task `id`, for a failure's message: its shim
    /// socket (and whether anything still accepts on it), the sandbox
    /// states, and the processes that name the task or the state dir (a
    /// shim, or a `delete` still running).
    fn leftovers(&self, id: &str, socket: &Path) -> String {
        let accepting = std::os::unix::net::UnixStream::connect(socket).is_ok();
        let states: Vec<String> = std::fs::read_dir(&self.state_dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let mut processes = processes_mentioning(&format!("-id {id} "));
        processes.extend(processes_mentioning(&self.state_dir.to_string_lossy()));
        format!(
            "shim socket {}: exists {}, accepting {accepting}\nstate dir: {states:?}\nprocesses: {processes:#?}",
            socket.display(),
            socket.exists(),
        )
    }

    /// Nothing of task `id` is left: no container, shim, shim socket,
    /// sandbox state, VMM or helper, mount, netns or cgroup.
    pub fn assert_clean(&self, id: &str) {
        // containerd's Shutdown of the shim comes after `ctr` returned: its
        // socket and the sandbox go within moments, never later.
        self.wait_cleanup(id, Duration::from_secs(10));
        let containers = self.ctr_ok(&["containers", "ls", "-q"]);
        assert!(!containers.lines().any(|l| l == id), "{id}: container left");
        assert_eq!(self.shim_pid(id), None, "{id}: shim still runs");
        let socket = shim_socket(&self.address, self.namespace, id);
        assert!(
            !socket.exists(),
            "{id}: shim socket {} left\n{}",
            socket.display(),
            self.log()
        );
        let state: Vec<_> = std::fs::read_dir(&self.state_dir)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(state.is_empty(), "{id}: sandbox state left: {state:?}");
        let strays: Vec<_> = (self.jail_uid..self.jail_uid + ID_RANGE)
            .flat_map(processes_of_uid)
            .collect();
        assert!(strays.is_empty(), "{id}: VMM or helper left: {strays:?}");
        let mounts = mounts_under(self.dir.path());
        assert!(mounts.is_empty(), "{id}: mounts left: {mounts:?}");
        // vmjail's pin of the VM's netns (named after the sandbox id: the
        // task id's first 20 characters), and a pod's netns CRI made.
        let readable: String = id.chars().take(20).collect();
        let prefix = format!("vmjail-{readable}");
        let netns: Vec<_> = self
            .new_netns()
            .into_iter()
            .filter(|n| n.starts_with(&prefix) || n.starts_with("cni-"))
            .collect();
        assert!(netns.is_empty(), "{id}: netns left: {netns:?}");
        for root in cgroup_roots() {
            let parent = root.join(&self.parent_cgroup);
            let children: Vec<_> = std::fs::read_dir(&parent)
                .map(|d| {
                    d.flatten()
                        .filter(|e| e.path().is_dir())
                        .map(|e| e.path())
                        .collect()
                })
                .unwrap_or_default();
            assert!(children.is_empty(), "{id}: cgroups left: {children:?}");
        }
    }
}

impl Drop for Containerd {
    /// Removes whatever a failed test left (tasks, containers, sandboxes),
    /// then stops containerd and removes the cgroup parents.
    fn drop(&mut self) {
        if let Ok(out) = self.ctr_command(&["containers", "ls", "-q"]).output() {
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = self.ctr(&["task", "kill", "-a", "-s", "SIGKILL", id]);
                let _ = self.ctr(&["task", "rm", "-f", id]);
                let _ = self.ctr(&["containers", "rm", id]);
            }
        }
        for entry in std::fs::read_dir(&self.state_dir)
            .into_iter()
            .flatten()
            .flatten()
        {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = Command::new(bin_dir().join("vmjail"))
                    .arg("--config")
                    .arg(&self.vmjail_config)
                    .args(["delete", "--force"])
                    .arg(entry.file_name())
                    .output();
            }
        }
        let _ = Command::new("kill")
            .arg(self.daemon.id().to_string())
            .status();
        let _ = self.daemon.wait();
        // A pod's netns CRI made and a failed test never removed.
        let pods = self
            .new_netns()
            .into_iter()
            .filter(|n| n.starts_with("cni-"));
        for name in pods.chain(self.daemon_netns.clone()) {
            let _ = Command::new("ip").args(["netns", "delete", &name]).status();
        }
        for m in mounts_under(self.dir.path()).iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
        for root in cgroup_roots() {
            let _ = std::fs::remove_dir(root.join(&self.parent_cgroup));
        }
    }
}

/// containerd's CRI plugin for the tests (see [`Containerd::start_cri`]):
/// its stream server on loopback only; each pod gets an `eth0` (CRI
/// wants one with an address) from the `ptp` plugin: a veth whose other
/// end is in containerd's own network namespace (the test's), addresses
/// from a subnet of the test's choosing, leases in the test's directory.
fn cri_config(d: &Path) -> String {
    let cni = d.join("cni");
    std::fs::create_dir_all(&cni).unwrap();
    let network = serde_json::json!({
        "cniVersion": "0.4.0",
        "name": "vmjail-test",
        "plugins": [{
            "type": "ptp",
            "ipMasq": false,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": "10.213.7.0/24"}]],
                "dataDir": d.join("cni-leases"),
            },
        }],
    });
    std::fs::write(cni.join("10-vmjail-test.conflist"), network.to_string()).unwrap();
    format!(
        r#"[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  # Pods ask for oom_score_adj -998; lowering it needs CAP_SYS_RESOURCE,
  # which hosts like the CI's lack (runc then fails): keep containerd's.
  restrict_oom_score_adj = true
# Naming any runtime replaces CRI's default map: runc, its default, too.
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{cni}"
"#,
        cni = cni.display()
    )
}

/// The names in `/run/netns`.
fn netns_names() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn tar(dir: &Path, out: &Path) {
    let status = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(out)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success(), "tar of {}", dir.display());
}

fn sha256_bytes(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn sha256_file(path: &Path) -> String {
    sha256_bytes(&std::fs::read(path).unwrap())
}

/// Mount points at or under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// Live processes (other than us) whose command line contains `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<(u32, String)> {
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if pid != me && !stat.contains(") Z ") && cmdline.contains(needle) {
            found.push((pid, cmdline));
        }
    }
    found
}

/// Live processes whose real uid is `uid`.
pub fn processes_of_uid(uid: u32) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .map(str::to_owned)
        };
        let zombie = field("State:").is_some_and(|s| s == "Z");
        if !zombie && field("Uid:").and_then(|u| u.parse().ok()) == Some(uid) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push((pid, String::from_utf8_lossy(&cmdline).replace('\0', " ")));
        }
    }
    found
}

/// Every cgroup hierarchy root (v1 controllers and v2).
pub fn cgroup_roots() -> Vec<PathBuf> {
    let mut roots = vec![PathBuf::from("/sys/fs/cgroup")];
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in entries.flatten() {
            let is_link = e.file_type().map(|t| t.is_symlink()).unwrap_or(true);
            if e.path().is_dir() && !is_link {
                roots.push(e.path());
            }
        }
    }
    roots
}

/// Field `name` (e.g. `VmHWM`, `RssAnon`) of `/proc/<pid>/status`, in KiB.
pub fn status_kib(pid: u32, name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.split(':').next() == Some(name))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Watches process `pid` until it exits (or `limit` passes) and returns
/// the last `VmHWM` read: its peak RSS over its whole life, teardown
/// included, in KiB.
pub fn watch_peak(pid: u32, limit: Duration) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let deadline = Instant::now() + limit;
        let mut peak = 0;
        while let Some(now) = status_kib(pid, "VmHWM") {
            peak = now;
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        peak
    })
}

/// The largest peak RSS a shim's `vm-step` child (the VM's create or
/// delete) reported in containerd's log, in KiB.
pub fn vm_step_peak_kib(log: &str) -> Option<u64> {
    log.lines()
        .filter_map(|l| {
            l.split("vm-step ")
                .nth(1)?
                .split("peak RSS (VmHWM) ")
                .nth(1)
        })
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .max()
}

/// MiB from KiB, for printing.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Prints the ≤ 10 MiB goal against `what`'s peak RSS `peak_kib`, and the
/// peak of the shim's `vm-step` child from containerd's log `log`.
pub fn print_rss_goal(what: &str, peak_kib: u64, log: &str) {
    let verdict = if peak_kib <= 10 * 1024 {
        "met"
    } else {
        "NOT met"
    };
    println!(
        "goal: the vmjail {what}'s peak RSS <= 10 MiB: {:.1} MiB, {verdict}",
        mib(peak_kib)
    );
    if let Some(child) = vm_step_peak_kib(log) {
        println!(
            "the shim's short-lived vm-step child (the VM's create or delete): \
             peak RSS {child} KiB ({:.1} MiB)",
            mib(child)
        );
    }
}
