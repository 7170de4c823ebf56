//! The container's terminal from its own devpts, as runc gives one: the
//! container sees its tty as `/dev/pts/0` of its `/dev/pts`, not a pty of
//! the guest's.
//!
//! The container's init starts on the agent's pty (from the guest's
//! devpts). With a new PID namespace it forks the container's pid 1,
//! which, once inside its root (the spec's devpts mounted), opens
//! `/dev/ptmx` there, makes the slave its stdio and controlling terminal
//! and sends the master to the init over a socket pair (SCM_RIGHTS). The
//! init then pumps between the agent's pty, made raw (the inner pty does
//! the line discipline), and that master, and passes window size changes
//! on. Without a `/dev/ptmx` in the container (no devpts mount), or
//! without a PID namespace (no process left outside to pump), the agent's
//! pty stays the container's terminal. An exec on a terminal goes the same
//! way: its helper forks the process inside the container's namespaces,
//! which takes a pty of the container's devpts, and pumps it.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, open, FcntlArg, OFlag};
use nix::libc;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt, Winsize};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use nix::sys::stat::Mode;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
use nix::unistd::{dup2, fchown, read, setsid, write, Uid};

nix::ioctl_read_bad!(get_window_size, libc::TIOCGWINSZ, Winsize);
nix::ioctl_write_ptr_bad!(set_window_size, libc::TIOCSWINSZ, Winsize);

/// Whether the init's stdio is a terminal (the agent's pty).
pub fn on_terminal() -> bool {
    nix::unistd::isatty(0).unwrap_or(false)
}

/// The init's end and pid 1's end of the channel the master goes over.
pub fn channel() -> Result<(OwnedFd, OwnedFd), String> {
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| format!("creating the console's socket pair: {e}"))
}

/// In pid 1, inside its root and still root: a pty from the container's
/// devpts becomes its terminal (owned by `uid`), its master sent over
/// `channel`. Without a `/dev/ptmx` that opens, nothing changes.
pub fn take_own(channel: OwnedFd, uid: u32) -> Result<(), String> {
    let fail = |what: &str, e: Errno| format!("the container's terminal: {what}: {e}");
    let Ok(master) = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC) else {
        // `channel` closes: the init keeps the agent's pty.
        return Ok(());
    };
    grantpt(&master).map_err(|e| fail("grantpt", e))?;
    unlockpt(&master).map_err(|e| fail("unlockpt", e))?;
    let name = ptsname_r(&master).map_err(|e| fail("ptsname", e))?;
    let slave = open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| fail(&name, e))?;
    // SAFETY: open just returned it, owned by nobody else.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    // The size the agent's pty has (the host's terminal's).
    if let Some(size) = size_of(0) {
        // SAFETY: TIOCSWINSZ reads one winsize, valid here.
        let _ = unsafe { set_window_size(master.as_raw_fd(), &size) };
    }
    fchown(slave.as_raw_fd(), Some(Uid::from_raw(uid)), None).map_err(|e| fail("chown", e))?;
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        channel.as_raw_fd(),
        &[IoSlice::new(b"m")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| fail("sending the master", e))?;
    drop((master, channel));
    setsid().map_err(|e| fail("setsid", e))?;
    // SAFETY: TIOCSCTTY on an open descriptor, argument 0 (do not steal).
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(fail("making it the controlling terminal", Errno::last()));
    }
    for target in 0..3 {
        // dup2 clears close-on-exec on the copy.
        dup2(slave.as_raw_fd(), target).map_err(|e| fail("stdio", e))?;
    }
    Ok(())
}

/// In the init: the master pid 1 sent, `None` when it kept the agent's
/// pty (the channel closed empty).
pub fn receive(channel: OwnedFd) -> Option<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    loop {
        let mut iov = [IoSliceMut::new(&mut byte)];
        match recvmsg::<()>(
            channel.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            Err(_) => return None,
            Ok(msg) => {
                let fd = msg.cmsgs().ok()?.find_map(|c| match c {
                    ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
                    _ => None,
                })?;
                // SAFETY: just received, owned by nobody else.
                return Some(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
}

fn size_of(fd: RawFd) -> Option<Winsize> {
    let mut size = Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into `size`.
    unsafe { get_window_size(fd, &mut size) }.ok()?;
    Some(size)
}

/// In the init: pumps the agent's pty (fd 0 in, fd 1 out) to and from
/// `master` until the container's side of it is closed by every process
/// (pid 1 ended: its PID namespace with it). `resized()` says the agent's
/// pty changed size (SIGWINCH), which is then given to `master`.
pub fn pump(master: OwnedFd, resized: impl Fn() -> bool) {
    if let Ok(mut mode) = tcgetattr(std::io::stdin()) {
        cfmakeraw(&mut mode);
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, &mode);
    }
    // Never blocked on the container's side: typed input waits here
    // while the container does not read it, and its output is drained.
    if let Ok(flags) = fcntl(master.as_raw_fd(), FcntlArg::F_GETFL) {
        let _ = fcntl(
            master.as_raw_fd(),
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
        );
    }
    let stdin = std::io::stdin();
    let mut pending: Vec<u8> = Vec::new();
    let mut input_open = true;
    let mut buf = [0u8; 16 * 1024];
    loop {
        if resized() {
            if let Some(size) = size_of(0) {
                // SAFETY: TIOCSWINSZ reads one winsize, valid here.
                let _ = unsafe { set_window_size(master.as_raw_fd(), &size) };
            }
        }
        let mut master_events = PollFlags::POLLIN;
        if !pending.is_empty() {
            master_events |= PollFlags::POLLOUT;
        }
        let mut fds = vec![PollFd::new(master.as_fd(), master_events)];
        if input_open && pending.is_empty() {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(_) => return,
        }
        let master_ready = fds[0].revents().unwrap_or(PollFlags::empty());
        let stdin_ready = fds
            .get(1)
            .and_then(|f| f.revents())
            .unwrap_or(PollFlags::empty());
        drop(fds);
        if !master_ready.is_empty() {
            match read(master.as_raw_fd(), &mut buf) {
                // EIO: no process of the container holds its tty any more.
                Ok(0) | Err(Errno::EIO) => return,
                Ok(n) => write_all(1, &buf[..n]),
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                Err(_) => return,
            }
            if !pending.is_empty() && master_ready.contains(PollFlags::POLLOUT) {
                match write(&master, &pending) {
                    Ok(n) => {
                        pending.drain(..n);
                    }
                    Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                    Err(_) => pending.clear(),
                }
            }
        }
        if !stdin_ready.is_empty() {
            match read(0, &mut buf) {
                Ok(n) if n > 0 => pending.extend_from_slice(&buf[..n]),
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                // The agent's pty hung up: the container's output still
                // goes on being drained.
                _ => input_open = false,
            }
        }
    }
}

/// Writes all of `data` to `fd`; what cannot be written (the agent's pty
/// gone) is dropped.
fn write_all(fd: RawFd, mut data: &[u8]) {
    // SAFETY: fd 1 stays open for this process's life.
    let out = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    while !data.is_empty() {
        match write(out, data) {
            Ok(0) => return,
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}
