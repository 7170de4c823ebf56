//! The stand-in's device thread, shaped like Firecracker's where it matters
//! to the host: a tap named by `PUT /network-interfaces` is opened at once
//! (TUNSETIFF, as Firecracker's net device does) and held by a thread other
//! than the main one, and on shutdown the main thread exits first while the
//! device thread is still tearing down — so the host sees a zombie leader
//! whose remaining thread still holds the tap for a while. A host that takes
//! that zombie for gone removes the tap too early and gets EBUSY.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::mpsc::{channel, Sender};
use std::time::Duration;

/// How long the device thread outlives the main thread on shutdown (a
/// real VMM's vCPU and device threads take their time to leave KVM). Well
/// beyond the host's bounded retry on a busy tap, so that a host removing
/// the tap when the leader turns zombie fails instead of waiting it out.
const TEARDOWN: Duration =
    Duration::from_millis(vmjail_vmm::net::TAP_RELEASE_TIMEOUT.as_millis() as u64 + 300);

// <linux/if_tun.h>: TUNSETIFF = _IOW('T', 202, int).
nix::ioctl_write_ptr_bad!(
    tun_set_iff,
    nix::request_code_write!(b'T', 202, std::mem::size_of::<libc::c_int>()),
    libc::ifreq
);

enum Message {
    Hold(File),
    Shutdown,
}

/// The handle of the device thread.
pub struct Devices {
    to_thread: Sender<Message>,
}

impl Devices {
    pub fn start() -> Devices {
        let (to_thread, from_main) = channel();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while let Ok(message) = from_main.recv() {
                match message {
                    Message::Hold(tap) => held.push(tap),
                    Message::Shutdown => break,
                }
            }
            std::thread::sleep(TEARDOWN);
            drop(held);
            std::process::exit(0);
        });
        Devices { to_thread }
    }

    /// Open tap `name` through the jail's `/dev/net/tun` and hand it to the
    /// device thread.
    pub fn open_tap(&self, name: &str) -> Result<(), String> {
        let tun = File::options()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .map_err(|e| format!("Open tap device failed: /dev/net/tun: {e}"))?;
        // SAFETY: ifreq is plain old data; all-zero is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        if name.is_empty() || name.len() >= req.ifr_name.len() {
            return Err(format!("Open tap device failed: invalid name {name:?}"));
        }
        for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
            *dst = src as libc::c_char;
        }
        req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as i16;
        // SAFETY: `req` is a valid ifreq that outlives the call.
        unsafe { tun_set_iff(tun.as_raw_fd(), &req) }
            .map_err(|e| format!("Open tap device failed: TUNSETIFF {name}: {e}"))?;
        self.to_thread
            .send(Message::Hold(tun))
            .map_err(|_| "the device thread is gone".to_owned())
    }

    /// End the VMM: the device thread lingers for [`TEARDOWN`] holding its
    /// taps, then ends the process; the calling (main) thread exits now.
    pub fn shutdown(self) -> ! {
        // A real VMM's threads finishing their exit in the kernel (leaving
        // KVM_RUN, closing the VM) are not hurried by a SIGTERM either.
        // SAFETY: installs SIG_IGN, no handler code runs.
        let _ = unsafe {
            nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGTERM,
                nix::sys::signal::SigHandler::SigIgn,
            )
        };
        let _ = self.to_thread.send(Message::Shutdown);
        // SAFETY: exit(2) ends only the calling thread (the process lives on
        // in the device thread); nix has no wrapper for it. Nothing of this
        // thread's stack is used afterwards.
        unsafe { libc::syscall(libc::SYS_exit, 0) };
        unreachable!("exit(2) returned")
    }
}
