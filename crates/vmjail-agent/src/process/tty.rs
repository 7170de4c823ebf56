//! Window size of a process's pty.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::libc;
use nix::pty::Winsize;

nix::ioctl_write_ptr_bad!(set_window_size, libc::TIOCSWINSZ, Winsize);

/// Sets the size on the pty master; the kernel sends SIGWINCH to the
/// terminal's foreground process group.
pub fn resize(master: &OwnedFd, rows: u16, cols: u16) -> nix::Result<()> {
    let size = Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer, valid here.
    unsafe { set_window_size(master.as_raw_fd(), &size) }.map(drop)
}
