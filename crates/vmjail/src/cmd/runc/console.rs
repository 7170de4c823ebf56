//! `--console-socket`: as runc, a new pty whose master goes to the
//! caller over the Unix socket (SCM_RIGHTS); the slave stays with the
//! container's host process, which bridges it to the guest's pty.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::pty::{openpty, Winsize};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

/// Makes a pty of `size` (rows, cols), sends its master to `socket` and
/// returns the slave.
pub fn send_master(socket: &Path, size: (u16, u16)) -> Result<OwnedFd, String> {
    let winsize = Winsize {
        ws_row: size.0,
        ws_col: size.1,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = openpty(Some(&winsize), None).map_err(|e| format!("creating a pty: {e}"))?;
    let stream = UnixStream::connect(socket)
        .map_err(|e| format!("--console-socket {}: {e}", socket.display()))?;
    // runc sends the pty's name as the message; callers only take the fd.
    let name = b"/dev/ptmx";
    let fds = [pty.master.as_raw_fd()];
    sendmsg::<()>(
        stream.as_raw_fd(),
        &[IoSlice::new(name)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| format!("sending the pty to {}: {e}", socket.display()))?;
    // The caller has its copy now; ours closes.
    drop(pty.master);
    Ok(pty.slave)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{recvmsg, ControlMessageOwned};
    use std::io::{IoSliceMut, Read, Write};
    use std::os::fd::FromRawFd;

    #[test]
    fn the_master_reaches_the_socket_and_talks_to_the_slave() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let slave = send_master(&path, (30, 100)).unwrap();
        let (conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 64];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )
        .unwrap();
        let fd = msg
            .cmsgs()
            .unwrap()
            .find_map(|c| match c {
                ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
                _ => None,
            })
            .expect("a descriptor");
        // SAFETY: received just now, owned by nobody else.
        let mut master = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let mut slave = std::fs::File::from(slave);
        slave.write_all(b"hi\n").unwrap();
        let mut got = [0u8; 4];
        let n = master.read(&mut got).unwrap();
        assert!(got[..n].starts_with(b"hi"), "{:?}", &got[..n]);
    }
}
