//! The tun/tap ioctls (the only raw `libc` use of the net module: nix has no
//! wrappers for TUNSETIFF and friends, so they are declared here).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

use super::Error;

// <linux/if_tun.h>: _IOW('T', n, int).
nix::ioctl_write_ptr_bad!(
    tun_set_iff,
    nix::request_code_write!(b'T', 202, std::mem::size_of::<libc::c_int>()),
    libc::ifreq
);
nix::ioctl_write_int_bad!(
    tun_set_persist,
    nix::request_code_write!(b'T', 203, std::mem::size_of::<libc::c_int>())
);
nix::ioctl_write_int_bad!(
    tun_set_owner,
    nix::request_code_write!(b'T', 204, std::mem::size_of::<libc::c_int>())
);
nix::ioctl_write_int_bad!(
    tun_set_group,
    nix::request_code_write!(b'T', 206, std::mem::size_of::<libc::c_int>())
);
nix::ioctl_read_bad!(get_if_flags, libc::SIOCGIFFLAGS, libc::ifreq);
nix::ioctl_write_ptr_bad!(set_if_flags, libc::SIOCSIFFLAGS, libc::ifreq);

/// Linux interface names: at most `IFNAMSIZ - 1` bytes; we also keep to a
/// conservative character set since the name travels into the VMM's API.
pub fn validate_tap_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() < libc::IFNAMSIZ
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidTapName {
            name: name.to_owned(),
        })
    }
}

fn ifreq(name: &str, flags: libc::c_int) -> libc::ifreq {
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = flags as libc::c_short;
    req
}

fn open_tun() -> Result<File, Error> {
    File::options()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(|source| Error::OpenTun { source })
}

/// Attach to tap `name` on a fresh /dev/net/tun descriptor; `exclusive`
/// creates it and fails (EBUSY) when it already exists, so vmjail never takes
/// over (and later deletes) a tap it did not make.
fn attach(name: &str, exclusive: bool) -> Result<File, Error> {
    let tun = open_tun()?;
    // IFF_VNET_HDR matches how Firecracker opens the tap later.
    let mut flags = libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR;
    if exclusive {
        flags |= libc::IFF_TUN_EXCL;
    }
    let req = ifreq(name, flags);
    // SAFETY: `req` is a valid ifreq that outlives the call.
    unsafe { tun_set_iff(tun.as_raw_fd(), &req) }.map_err(|source| Error::SetIff {
        name: name.to_owned(),
        source,
    })?;
    Ok(tun)
}

pub(super) fn create(name: &str, uid: u32, gid: u32) -> Result<(), Error> {
    let tun = attach(name, true)?;
    let owner_err = |source| Error::SetOwner {
        name: name.to_owned(),
        uid,
        gid,
        source,
    };
    // SAFETY: plain integer ioctls on a tun descriptor we own.
    unsafe { tun_set_owner(tun.as_raw_fd(), uid as libc::c_int) }.map_err(owner_err)?;
    // SAFETY: as above.
    unsafe { tun_set_group(tun.as_raw_fd(), gid as libc::c_int) }.map_err(owner_err)?;
    // SAFETY: as above.
    unsafe { tun_set_persist(tun.as_raw_fd(), 1) }.map_err(|source| Error::SetPersist {
        name: name.to_owned(),
        persist: true,
        source,
    })?;
    link_up(name)
}

/// Remove persistent tap `name`. A tap still attached to a process (its
/// last fd being closed by a VMM that is exiting) refuses a second attach
/// with EBUSY: retried until `wait` has passed. The caller waits for the
/// VMM's whole thread group to be gone first; this is only a second line.
pub(super) fn remove(name: &str, wait: Duration) -> Result<(), Error> {
    let deadline = Instant::now() + wait;
    loop {
        if !exists(name) {
            return Ok(());
        }
        let tun = match attach(name, false) {
            Ok(tun) => tun,
            Err(Error::SetIff {
                source: nix::errno::Errno::EBUSY,
                ..
            }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(Error::SetIff {
                source: nix::errno::Errno::EBUSY,
                ..
            }) => {
                return Err(Error::TapBusy {
                    name: name.to_owned(),
                    waited: wait,
                })
            }
            Err(e) => return Err(e),
        };
        // SAFETY: plain integer ioctl on a tun descriptor we own; the device
        // disappears when `tun` is closed.
        unsafe { tun_set_persist(tun.as_raw_fd(), 0) }.map_err(|source| Error::SetPersist {
            name: name.to_owned(),
            persist: false,
            source,
        })?;
        return Ok(());
    }
}

pub(super) fn exists(name: &str) -> bool {
    let Ok(name) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: `name` is a valid NUL-terminated string for the call.
    unsafe { libc::if_nametoindex(name.as_ptr()) != 0 }
}

fn link_up(name: &str) -> Result<(), Error> {
    let err = |source| Error::LinkUp {
        name: name.to_owned(),
        source,
    };
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(err)?;
    let mut req = ifreq(name, 0);
    // SAFETY: `req` is a valid ifreq that outlives the call.
    unsafe { get_if_flags(sock.as_raw_fd(), &mut req) }.map_err(err)?;
    // SAFETY: reading the flags member the kernel just filled in.
    let flags = unsafe { req.ifr_ifru.ifru_flags } | libc::IFF_UP as libc::c_short;
    req.ifr_ifru.ifru_flags = flags;
    // SAFETY: as above.
    unsafe { set_if_flags(sock.as_raw_fd(), &req) }.map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tap_names_are_checked() {
        for good in ["tap0", "fc-tap_1.a", "abcdefghijklmno"] {
            assert!(validate_tap_name(good).is_ok(), "{good}");
        }
        for bad in ["", "abcdefghijklmnop", "a/b", "..", "tap 0", "tap\n", "é"] {
            assert!(validate_tap_name(bad).is_err(), "{bad:?}");
        }
    }
}
