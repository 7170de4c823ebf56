//! Runs the real `vmjail-agent` binary on the host, listening on a Unix
//! socket in a temporary directory, for the agent client tests.

#![allow(dead_code)] // each test file uses a part

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vmjail_sandbox::agent::AgentClient;

/// `$VMJAIL_AGENT_BIN` (e.g. the static build for the guest), else the
/// workspace's own build.
pub fn agent_exe() -> PathBuf {
    if let Some(bin) = std::env::var_os("VMJAIL_AGENT_BIN") {
        return bin.into();
    }
    let exe = std::env::current_exe().expect("test binary path");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .join("vmjail-agent");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// True as root; otherwise skips (prints why), or fails under CI.
pub fn root_or_skip(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: needs root, and CI is set");
    }
    eprintln!("skipped: {test} needs root");
    false
}

/// A running agent; killed and reaped on drop.
pub struct Agent {
    child: Child,
    pub socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    pub fn start() -> Agent {
        Self::start_with(&[])
    }

    /// The agent as pid 1 of a new PID namespace, under util-linux
    /// `unshare` (whose pid [`Agent::pid`] then is): there `Shutdown` ends
    /// the namespace, not the machine.
    pub fn start_in_pid_namespace() -> Agent {
        Self::start_with(&["unshare", "--pid", "--fork", "--kill-child"])
    }

    fn start_with(wrapper: &[&str]) -> Agent {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("agent.sock");
        let agent = agent_exe();
        let mut argv: Vec<&std::ffi::OsStr> = wrapper.iter().map(|s| s.as_ref()).collect();
        argv.push(agent.as_os_str());
        let child = Command::new(argv[0])
            .args(&argv[1..])
            .arg("--listen")
            .arg(format!("unix:{}", socket.display()))
            .stdin(Stdio::null())
            .spawn()
            .expect("starting vmjail-agent");
        let agent = Agent {
            child,
            socket,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&agent.socket).is_err() {
            assert!(Instant::now() < deadline, "the agent never listened");
            std::thread::sleep(Duration::from_millis(10));
        }
        agent
    }

    /// SIGKILLs the agent (as a dying VM would take it away).
    pub fn kill(&mut self) {
        self.child.kill().expect("killing the agent");
        self.child.wait().expect("reaping the agent");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn connect(&self) -> UnixStream {
        UnixStream::connect(&self.socket).expect("connecting to the agent")
    }

    pub fn client(&self) -> AgentClient {
        AgentClient::new(self.connect()).expect("agent client")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Agent {
    /// An agent listening on vsock `port` (any CID), as in the guest.
    pub fn start_vsock(port: u32) -> Agent {
        let dir = tempfile::tempdir().expect("temp dir");
        let child = Command::new(agent_exe())
            .arg("--listen")
            .arg(format!("vsock:{port}"))
            .stdin(Stdio::null())
            .spawn()
            .expect("starting vmjail-agent");
        Agent {
            child,
            socket: PathBuf::new(),
            _dir: dir,
        }
    }

    /// The exit status, if it has ended.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("polling the agent")
    }

    /// Waits (at most 10 s) for it to end by itself.
    pub fn wait_exit(mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.try_wait() {
                return status;
            }
            assert!(Instant::now() < deadline, "the agent did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A writer whose bytes the test reads afterwards.
#[derive(Clone, Default)]
pub struct SharedBuf(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl SharedBuf {
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }
}

impl std::io::Write for SharedBuf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A bundle in `dir`: a busybox-static rootfs (read-only) and a config.json
/// whose process runs `script` as uid 1000 in new pid/mount/uts/ipc
/// namespaces.
pub fn bundle(dir: &std::path::Path, script: &str) {
    bundle_with(dir, script, |_| {});
}

/// A bundle whose config.json `adjust` may change first.
pub fn bundle_with(
    dir: &std::path::Path,
    script: &str,
    adjust: impl FnOnce(&mut serde_json::Value),
) {
    let bin = dir.join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    // Links relative to bin/, so they resolve inside the container too.
    let applets = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .unwrap();
    let list = String::from_utf8(applets.stdout).unwrap();
    for applet in list.lines().filter(|a| *a != "busybox") {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    let mut config = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 1000, "gid": 1000, "additionalGids": [1001] },
            "args": ["/bin/sh", "-c", script],
            "env": ["PATH=/bin", "FOO=bar"],
            "cwd": "/tmp",
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 123, "soft": 123 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "box",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "nodev", "mode=1777"] }
        ],
        "linux": {
            "namespaces": [{ "type": "pid" }, { "type": "mount" }, { "type": "uts" }, { "type": "ipc" }],
            "maskedPaths": ["/proc/kcore"],
            "readonlyPaths": ["/proc/sys"]
        }
    });
    adjust(&mut config);
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
}
