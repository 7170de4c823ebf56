//! Shared by the guest-network tests and benchmark: a world whose guest
//! runs the network test services (`vmjail.test=net-echo`, see
//! `guest/net.sh`), TCP helpers that run inside a test's own namespaces,
//! and an outside peer that counts what the guest sends it. Every address
//! is one the test chose, in namespaces the test made.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::lifecycle_support::World;

/// The port of the guest's echo service.
pub const GUEST_ECHO_PORT: u16 = 7;
/// The port the outside peer listens on.
pub const PEER_PORT: u16 = 9000;

/// A world with `model`, a held guest that runs the network test services
/// and reaches the outside peer at `peer` (`ip:port`), and `lines` added
/// to `[hypervisor.qemu]`. The machine is q35 (virtio-net-pci): on this
/// host QEMU 10's microvm ACPI tables stall the Debian 6.1 guest in
/// `acpi_early_init`, and without ACPI its virtio-mmio NICs cannot be
/// found (the kernel lacks VIRTIO_MMIO_CMDLINE_DEVICES).
pub fn net_world(tag: &str, model: &str, peer: &str, lines: &str) -> World {
    let w = World::new(tag);
    let text = std::fs::read_to_string(&w.config).unwrap();
    let text = text
        .replacen("machine_type = \"microvm\"", "machine_type = \"q35\"", 1)
        .replacen(
            "internetworking_model = \"tcfilter\"",
            &format!("internetworking_model = \"{model}\""),
            1,
        )
        .replacen(
            "[hypervisor.qemu]\n",
            &format!(
                "[hypervisor.qemu]\nkernel_params = \"vmjail.hold vmjail.test=net-echo vmjail.test.peer={peer}\"\n{lines}"
            ),
            1,
        );
    std::fs::write(&w.config, text).unwrap();
    w
}

/// Run `work` on a thread inside the network namespace at `ns`.
pub fn in_netns<T: Send + 'static>(ns: &Path, work: impl FnOnce() -> T + Send + 'static) -> T {
    let file = File::open(ns).unwrap();
    std::thread::spawn(move || {
        nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        work()
    })
    .join()
    .unwrap()
}

/// Connect to `addr`, retrying for up to `within` (the guest's service
/// may still be starting).
pub fn connect(addr: SocketAddr, within: Duration) -> TcpStream {
    let deadline = Instant::now() + within;
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(s) => return s,
            Err(e) => {
                assert!(Instant::now() < deadline, "connecting to {addr}: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Send `bytes` bytes to an echo service at `addr` (from the netns at
/// `ns`) and count what comes back; (sent, received).
pub fn echo_through(ns: &Path, addr: SocketAddr, bytes: usize) -> (usize, usize) {
    in_netns(ns, move || {
        let stream = connect(addr, Duration::from_secs(30));
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut writer = stream.try_clone().unwrap();
        let sender = std::thread::spawn(move || {
            let chunk = [0x5au8; 8192];
            let mut sent = 0;
            while sent < bytes {
                let n = chunk.len().min(bytes - sent);
                writer.write_all(&chunk[..n]).unwrap();
                sent += n;
            }
            writer.shutdown(Shutdown::Write).unwrap();
            sent
        });
        let mut received = 0;
        let mut reader = stream;
        let mut buf = [0u8; 8192];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => received += n,
                Err(e) => panic!("reading the echo from {addr}: {e} after {received} bytes"),
            }
        }
        (sender.join().unwrap(), received)
    })
}

/// An echo server in the outside netns that counts the bytes it gets;
/// serves connections until dropped.
pub struct Peer {
    pub received: Arc<AtomicUsize>,
    pub connections: Arc<AtomicUsize>,
    stop: Arc<AtomicUsize>,
}

impl Peer {
    pub fn start(ns: &Path, addr: SocketAddr) -> Peer {
        let received = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicUsize::new(0));
        let (r, c, s) = (received.clone(), connections.clone(), stop.clone());
        let listener = in_netns(ns, move || TcpListener::bind(addr).unwrap());
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while s.load(Ordering::SeqCst) == 0 {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        stream
                            .set_read_timeout(Some(Duration::from_secs(30)))
                            .unwrap();
                        c.fetch_add(1, Ordering::SeqCst);
                        let mut buf = [0u8; 8192];
                        while let Ok(n) = stream.read(&mut buf) {
                            if n == 0 || stream.write_all(&buf[..n]).is_err() {
                                break;
                            }
                            r.fetch_add(n, Ordering::SeqCst);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Peer {
            received,
            connections,
            stop,
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(1, Ordering::SeqCst);
    }
}

/// `busybox ping` from the netns named `ns` (the host has no iputils);
/// true when `target` answered, retried for up to `within`.
pub fn ping(ns: &str, target: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        let ok = std::process::Command::new("ip")
            .args([
                "netns", "exec", ns, "busybox", "ping", "-c", "2", "-W", "2", target,
            ])
            .output()
            .unwrap()
            .status
            .success();
        if ok || Instant::now() >= deadline {
            return ok;
        }
    }
}

/// The console line starting with `marker`.
pub fn console_line(console: &str, marker: &str) -> String {
    console
        .lines()
        .find(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no {marker} line on the console:\n{console}"))
        .to_owned()
}

/// The path of netns `name`.
pub fn netns_path(name: &str) -> PathBuf {
    PathBuf::from(format!("/run/netns/{name}"))
}
