//! The host end of a sandbox's vsock: one byte stream to a port in the
//! guest, through the VM's Firecracker-style hybrid vsock (a Unix socket in
//! the VMM's jail; Firecracker serves it itself, QEMU through the jailed
//! `vhost-device-vsock`). The host writes `CONNECT <port>\n` and the VMM
//! answers `OK <host port>\n` once the guest accepted.
//!
//! What comes back is the guest's doing, so it is bounded: the answer line
//! in size ([`MAX_ANSWER`]) and the whole connect in time.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::state::SandboxState;

/// The vsock port vmjail's guest agent listens on.
pub const AGENT_PORT: u32 = vmjail_agent_protocol::DEFAULT_VSOCK_PORT;

/// The default bound on a whole connect (socket, handshake).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest answer line accepted: `OK 4294967295\n` is 14 bytes.
pub const MAX_ANSWER: usize = 32;

/// Why a connection to a guest port failed.
#[derive(Debug, thiserror::Error)]
pub enum VsockError {
    #[error("the sandbox's VM has no vsock (set use_vsock = true in its [hypervisor.*] table)")]
    NoVsock,
    #[error("connecting to the hybrid-vsock socket {}: {source}", path.display())]
    Connect {
        path: PathBuf,
        source: Box<vmjail_jail::JailError>,
    },
    #[error("sending CONNECT {port}: {source}")]
    Send { port: u32, source: std::io::Error },
    #[error("reading the answer to CONNECT {port}: {source}")]
    Receive { port: u32, source: std::io::Error },
    #[error("nothing in the guest accepted vsock port {port} (the connection was closed or reset without an answer; is the guest up and its agent running?)")]
    Refused { port: u32 },
    #[error("no answer to CONNECT {port} within {waited:?} (the guest did not accept)")]
    Timeout { port: u32, waited: Duration },
    #[error("the answer to CONNECT {port} is not `OK <port>`: {answer:?}")]
    BadAnswer { port: u32, answer: String },
    #[error("the answer to CONNECT {port} has no end of line within {MAX_ANSWER} bytes")]
    AnswerTooLong { port: u32 },
}

/// Connect to vsock `port` of the guest whose state is `state`, within
/// `timeout` (socket and handshake together), and return the stream,
/// positioned after the `OK` line, with no read or write timeout set.
///
/// The socket is reached from the VMM's jail root without following a
/// symlink (see [`vmjail_jail::connect_in_jail`]); a VMM that is gone ends
/// the wait at once.
pub fn connect(
    state: &SandboxState,
    port: u32,
    timeout: Duration,
) -> Result<UnixStream, VsockError> {
    let vmm = state.vmm.as_ref().ok_or(VsockError::NoVsock)?;
    let vsock = vmm.vsock.as_ref().ok_or(VsockError::NoVsock)?;
    let deadline = Instant::now() + timeout;
    let root = vmm.jail.root();
    let alive = || state.vmm_alive();
    let stream = vmjail_jail::connect_in_jail(&root, &vsock.uds_path, timeout, &alive).map_err(
        |source| VsockError::Connect {
            path: vmjail_jail::host_path(&root, &vsock.uds_path),
            source: Box::new(source),
        },
    )?;
    handshake(stream, port, deadline)
}

/// The hybrid-vsock handshake on a connected `stream`, bounded by
/// `deadline`. The answer is read a byte at a time: whatever follows its
/// newline already belongs to the guest's stream.
pub fn handshake(
    mut stream: UnixStream,
    port: u32,
    deadline: Instant,
) -> Result<UnixStream, VsockError> {
    let started = Instant::now();
    let timed_out = || VsockError::Timeout {
        port,
        waited: started.elapsed(),
    };
    // What is left of the deadline; none left is a timeout (a zero
    // timeout would mean "none" to the socket).
    let remaining = || {
        let left = deadline.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left).ok_or_else(timed_out)
    };
    stream
        .set_write_timeout(Some(remaining()?))
        .map_err(|source| VsockError::Send { port, source })?;
    stream
        .write_all(format!("CONNECT {port}\n").as_bytes())
        .map_err(|source| match source.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => timed_out(),
            // Closed before our line arrived: nobody took the connection.
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset => VsockError::Refused { port },
            _ => VsockError::Send { port, source },
        })?;
    let mut answer = Vec::with_capacity(MAX_ANSWER);
    loop {
        stream
            .set_read_timeout(Some(remaining()?))
            .map_err(|source| VsockError::Receive { port, source })?;
        let mut byte = [0u8; 1];
        match stream.read(&mut byte) {
            Ok(0) if answer.is_empty() => return Err(VsockError::Refused { port }),
            // A reset before any answer is a refusal too (vhost-device-vsock
            // resets while no guest drives the device).
            Err(e) if e.kind() == ErrorKind::ConnectionReset && answer.is_empty() => {
                return Err(VsockError::Refused { port })
            }
            Ok(0) => return Err(bad_answer(port, &answer)),
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) if answer.len() + 1 >= MAX_ANSWER => {
                return Err(VsockError::AnswerTooLong { port })
            }
            Ok(_) => answer.push(byte[0]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(timed_out())
            }
            Err(source) => return Err(VsockError::Receive { port, source }),
        }
    }
    let ok = std::str::from_utf8(&answer)
        .ok()
        .and_then(|a| a.strip_prefix("OK "))
        .is_some_and(|host_port| host_port.parse::<u32>().is_ok());
    if !ok {
        return Err(bad_answer(port, &answer));
    }
    for clear in [
        stream.set_read_timeout(None),
        stream.set_write_timeout(None),
    ] {
        clear.map_err(|source| VsockError::Receive { port, source })?;
    }
    Ok(stream)
}

fn bad_answer(port: u32, answer: &[u8]) -> VsockError {
    VsockError::BadAnswer {
        port,
        answer: String::from_utf8_lossy(answer).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in VMM on the other end of a socket pair: checks the
    /// CONNECT line, then sends `answer` (and keeps the socket open for
    /// `hold` unless it is zero).
    fn vmm(answer: &'static [u8], hold: Duration) -> (UnixStream, std::thread::JoinHandle<()>) {
        let (host, mut vmm) = UnixStream::pair().unwrap();
        let thread = std::thread::spawn(move || {
            let mut line = [0u8; 13];
            vmm.read_exact(&mut line).unwrap();
            assert_eq!(&line, b"CONNECT 1024\n");
            let _ = vmm.write_all(answer);
            std::thread::sleep(hold);
        });
        (host, thread)
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_millis(300)
    }

    #[test]
    fn an_ok_line_gives_the_stream_positioned_after_it() {
        let (host, thread) = vmm(b"OK 1073741824\nhello", Duration::from_millis(50));
        let mut stream = handshake(host, AGENT_PORT, soon()).unwrap();
        let mut rest = [0u8; 5];
        stream.read_exact(&mut rest).unwrap();
        assert_eq!(&rest, b"hello");
        assert_eq!(stream.read_timeout().unwrap(), None);
        thread.join().unwrap();
    }

    #[test]
    fn a_closed_connection_is_a_refusal() {
        let (host, thread) = vmm(b"", Duration::ZERO);
        let err = handshake(host, AGENT_PORT, soon()).unwrap_err();
        assert!(matches!(err, VsockError::Refused { port: 1024 }), "{err}");
        thread.join().unwrap();
    }

    /// A VMM that closed before our line arrived (EPIPE) refused too.
    #[test]
    fn a_peer_gone_before_the_request_is_a_refusal() {
        let (host, vmm) = UnixStream::pair().unwrap();
        drop(vmm);
        let err = handshake(host, AGENT_PORT, soon()).unwrap_err();
        assert!(matches!(err, VsockError::Refused { port: 1024 }), "{err}");
    }

    /// A hostile or stuck guest costs the deadline, not more.
    #[test]
    fn silence_ends_at_the_deadline() {
        let hold = Duration::from_secs(2);
        let (host, thread) = vmm(b"", hold);
        let started = Instant::now();
        let err = handshake(host, AGENT_PORT, soon()).unwrap_err();
        assert!(matches!(err, VsockError::Timeout { .. }), "{err}");
        // Ended by our deadline, not by the stand-in closing its end.
        assert!(started.elapsed() < hold, "{err}");
        thread.join().unwrap();
    }

    #[test]
    fn garbage_and_endless_lines_are_refused() {
        let (host, thread) = vmm(b"NO WAY\n", Duration::ZERO);
        let err = handshake(host, AGENT_PORT, soon()).unwrap_err();
        assert!(matches!(err, VsockError::BadAnswer { .. }), "{err}");
        thread.join().unwrap();
        let (host, thread) = vmm(&[b'O'; 4096], Duration::from_millis(100));
        let err = handshake(host, AGENT_PORT, soon()).unwrap_err();
        assert!(matches!(err, VsockError::AnswerTooLong { .. }), "{err}");
        thread.join().unwrap();
        let (host, thread) = vmm(b"OK x\n", Duration::ZERO);
        let err = handshake(host, AGENT_PORT, soon()).unwrap_err();
        assert!(matches!(err, VsockError::BadAnswer { .. }), "{err}");
        thread.join().unwrap();
    }
}
