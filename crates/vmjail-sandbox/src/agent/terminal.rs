//! The local terminal of a `-t` session: raw mode while the session runs,
//! its window size, and SIGWINCH turned into something a thread can poll.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

use nix::fcntl::OFlag;
use nix::libc;
use nix::pty::Winsize;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use nix::unistd::pipe2;

nix::ioctl_read_bad!(get_window_size, libc::TIOCGWINSZ, Winsize);

/// The terminal's `(rows, cols)`, if it is a terminal with a size.
pub fn window_size(terminal: BorrowedFd<'_>) -> Option<(u16, u16)> {
    let mut size = Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize to the pointer, valid here.
    unsafe { get_window_size(terminal.as_raw_fd(), &mut size) }.ok()?;
    (size.ws_row > 0 && size.ws_col > 0).then_some((size.ws_row, size.ws_col))
}

/// The terminal in raw mode (keys go to the guest's pty as typed: ^C is a
/// byte for the guest's line discipline, not a signal here); restored on
/// drop.
pub struct RawMode {
    terminal: OwnedFd,
    saved: Termios,
}

impl RawMode {
    pub fn enter(terminal: BorrowedFd<'_>) -> nix::Result<RawMode> {
        let saved = tcgetattr(terminal)?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(terminal, SetArg::TCSANOW, &raw)?;
        let terminal = terminal
            .try_clone_to_owned()
            .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
        Ok(RawMode { terminal, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(self.terminal.as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// Write end of the pipe the SIGWINCH handler writes to; -1 when none.
static WINCH_PIPE: AtomicI32 = AtomicI32::new(-1);
/// One watcher at a time owns the handler.
static WINCH_OWNER: Mutex<()> = Mutex::new(());

extern "C" fn on_winch(_: libc::c_int) {
    let fd = WINCH_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) and errno access are async-signal-safe.
        unsafe {
            let errno = *libc::__errno_location();
            libc::write(fd, [1u8].as_ptr().cast(), 1);
            *libc::__errno_location() = errno;
        }
    }
}

/// While it lives, each SIGWINCH makes [`WinchWatcher::fd`] readable.
pub struct WinchWatcher {
    read: OwnedFd,
    /// Kept open for the handler, which writes to it by number.
    _write: OwnedFd,
    previous: SigAction,
    _owner: std::sync::MutexGuard<'static, ()>,
}

impl WinchWatcher {
    /// `None` when another session in this process already watches.
    pub fn install() -> nix::Result<Option<WinchWatcher>> {
        let Ok(owner) = WINCH_OWNER.try_lock() else {
            return Ok(None);
        };
        let (read, write) = pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        WINCH_PIPE.store(write.as_raw_fd(), Ordering::SeqCst);
        let action = SigAction::new(
            SigHandler::Handler(on_winch),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        // SAFETY: the handler only calls async-signal-safe functions.
        let previous = unsafe { sigaction(Signal::SIGWINCH, &action) }?;
        Ok(Some(WinchWatcher {
            read,
            _write: write,
            previous,
            _owner: owner,
        }))
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// Empties the pipe after a wakeup (several signals, one resize).
    pub fn drain(&self) {
        let mut buf = [0u8; 64];
        while matches!(nix::unistd::read(self.read.as_raw_fd(), &mut buf), Ok(n) if n > 0) {}
    }
}

impl Drop for WinchWatcher {
    fn drop(&mut self) {
        // SAFETY: restores the handler that was there before.
        let _ = unsafe { sigaction(Signal::SIGWINCH, &self.previous) };
        WINCH_PIPE.store(-1, Ordering::SeqCst);
    }
}
