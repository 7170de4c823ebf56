//! Descriptors 0, 1 and 2 must be open before the agent opens anything
//! else: a pipe that landed on one of them would be clobbered when a child
//! sets up its own stdio with dup2.

use std::fs::OpenOptions;
use std::os::fd::IntoRawFd;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};

pub fn ensure_open() -> Result<(), String> {
    for fd in 0..3 {
        if fcntl(fd, FcntlArg::F_GETFD) == Err(Errno::EBADF) {
            // The lowest free number is `fd`; the file stays open for good.
            let null = OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
                .map_err(|e| format!("opening /dev/null for descriptor {fd}: {e}"))?;
            let _ = null.into_raw_fd();
        }
    }
    Ok(())
}
