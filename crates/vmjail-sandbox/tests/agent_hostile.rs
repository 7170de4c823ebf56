//! A hostile guest: stand-in agents that lie about lengths, send garbage,
//! never answer, speak another version or answer more than was asked. The
//! client must fail clearly, within its deadline, without its memory
//! growing with what the guest claims.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vmjail_agent_protocol::agent::{
    ReadOutputRequest, ReadOutputResponse, VersionRequest, VersionResponse,
};
use vmjail_agent_protocol::agent_ttrpc::{create_agent, Agent};
use vmjail_agent_protocol::ttrpc::{self, TtrpcContext};
use vmjail_agent_protocol::PROTOCOL_VERSION;
use vmjail_sandbox::agent::{AgentClient, AgentError};

const TIMEOUT: Duration = Duration::from_secs(1);
/// What the deadline may be overrun by on a loaded two-core machine.
const SLACK: Duration = Duration::from_secs(2);

/// A raw stand-in: `behave` gets the accepted connection.
fn stand_in(behave: impl FnOnce(UnixStream) + Send + 'static) -> (UnixStream, JoinHandle<()>) {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let server = std::thread::spawn(move || behave(theirs));
    (ours, server)
}

/// Reads one ttrpc frame header and its body; returns the stream id.
fn read_request(conn: &mut UnixStream) -> u32 {
    let mut header = [0u8; 10];
    conn.read_exact(&mut header).unwrap();
    let len = u32::from_be_bytes(header[0..4].try_into().unwrap());
    let mut body = vec![0u8; len as usize];
    conn.read_exact(&mut body).unwrap();
    u32::from_be_bytes(header[4..8].try_into().unwrap())
}

fn response_header(len: u32, stream_id: u32) -> [u8; 10] {
    let mut h = [0u8; 10];
    h[0..4].copy_from_slice(&len.to_be_bytes());
    h[4..8].copy_from_slice(&stream_id.to_be_bytes());
    h[8] = 2; // MESSAGE_TYPE_RESPONSE
    h
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Connects with the short deadline; returns the error and how long it took.
fn connect_expecting_failure(stream: UnixStream) -> (AgentError, Duration) {
    let start = Instant::now();
    let err = AgentClient::with_timeout(stream, TIMEOUT)
        .err()
        .expect("the stand-in was accepted as an agent");
    (err, start.elapsed())
}

#[test]
fn a_4_gib_length_prefix_then_endless_data() {
    let (ours, server) = stand_in(|mut conn| {
        let id = read_request(&mut conn);
        conn.write_all(&response_header(u32::MAX - 15, id)).unwrap();
        let junk = vec![0x5au8; 1 << 20];
        // Until the client hangs up.
        while conn.write_all(&junk).is_ok() {}
    });
    let before = rss_kib();
    let (err, took) = connect_expecting_failure(ours);
    let grown = rss_kib().saturating_sub(before);
    // ttrpc discards the claimed body page by page: on a fast machine all
    // 4 GiB pass within the deadline and the frame is named oversized.
    match &err {
        AgentError::Timeout {
            call: "Version", ..
        } => {}
        AgentError::BadAnswer {
            call: "Version",
            reason,
        } => {
            assert!(reason.contains("exceed maximum message size"), "{reason}")
        }
        other => panic!("{other}"),
    }
    assert!(took < TIMEOUT + SLACK, "took {took:?}");
    // ttrpc may hold one 4 MiB message; nothing like the 4 GiB claimed.
    assert!(grown < 16 * 1024, "RSS grew by {grown} KiB");
    // Dropping the client woke its reader: the stand-in sees the hang-up.
    server.join().unwrap();
}

#[test]
fn garbage_instead_of_frames() {
    let (ours, server) = stand_in(|mut conn| {
        read_request(&mut conn);
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut junk = vec![0u8; 64 * 1024];
        loop {
            for b in junk.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
            if conn.write_all(&junk).is_err() {
                return;
            }
        }
    });
    let before = rss_kib();
    let (err, took) = connect_expecting_failure(ours);
    let grown = rss_kib().saturating_sub(before);
    assert!(
        matches!(
            err,
            AgentError::Timeout { .. }
                | AgentError::Transport { .. }
                | AgentError::BadAnswer { .. }
        ),
        "{err}"
    );
    assert!(took < TIMEOUT + SLACK, "took {took:?}");
    assert!(grown < 16 * 1024, "RSS grew by {grown} KiB");
    server.join().unwrap();
}

#[test]
fn an_agent_that_never_answers() {
    let (ours, server) = stand_in(|mut conn| {
        read_request(&mut conn);
        // Holds the connection open, silent, until the client hangs up.
        let mut rest = Vec::new();
        let _ = conn.read_to_end(&mut rest);
    });
    let (err, took) = connect_expecting_failure(ours);
    assert!(
        matches!(
            err,
            AgentError::Timeout {
                call: "Version",
                ..
            }
        ),
        "{err}"
    );
    assert!(took >= TIMEOUT && took < TIMEOUT + SLACK, "took {took:?}");
    assert!(err.to_string().contains("no answer within 1s"), "{err}");
    server.join().unwrap();
}

#[test]
fn a_peer_that_hangs_up() {
    let (ours, server) = stand_in(drop);
    server.join().unwrap();
    let (err, took) = connect_expecting_failure(ours);
    assert!(matches!(err, AgentError::Transport { .. }), "{err}");
    assert!(took < TIMEOUT, "took {took:?}");
}

/// A well-formed ttrpc agent that lies in its answers.
struct Liar {
    version: u32,
}

impl Agent for Liar {
    fn version(&self, _: &TtrpcContext, _: VersionRequest) -> ttrpc::Result<VersionResponse> {
        Ok(VersionResponse {
            protocol_version: self.version,
            agent_version: "9.9.9".into(),
            ..Default::default()
        })
    }

    fn read_stdout(
        &self,
        _: &TtrpcContext,
        req: ReadOutputRequest,
    ) -> ttrpc::Result<ReadOutputResponse> {
        Ok(ReadOutputResponse {
            data: vec![b'x'; req.max_bytes as usize + 1],
            ..Default::default()
        })
    }
}

fn serve_liar(version: u32) -> (ttrpc::Server, UnixStream, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("liar.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let mut server = ttrpc::Server::new()
        .add_listener(std::os::fd::IntoRawFd::into_raw_fd(listener))
        .unwrap()
        .register_service(create_agent(Arc::new(Liar { version })));
    server.start().unwrap();
    let stream = UnixStream::connect(&path).unwrap();
    (server, stream, dir)
}

#[test]
fn another_protocol_version_is_refused_by_name() {
    let (server, stream, _dir) = serve_liar(PROTOCOL_VERSION + 41);
    let (err, _) = connect_expecting_failure(stream);
    let text = err.to_string();
    assert!(matches!(err, AgentError::VersionMismatch { .. }), "{text}");
    assert!(
        text.contains(&format!("protocol version {}", PROTOCOL_VERSION + 41))
            && text.contains(&format!("this vmjail speaks {PROTOCOL_VERSION}"))
            && text.contains("9.9.9"),
        "{text}"
    );
    server.shutdown();
}

#[test]
fn more_output_than_asked_for_is_refused() {
    let (server, stream, _dir) = serve_liar(PROTOCOL_VERSION);
    let client = AgentClient::with_timeout(stream, TIMEOUT).unwrap();
    let err = client.read_stdout(1, 1000, Duration::ZERO).unwrap_err();
    assert!(
        matches!(
            err,
            AgentError::BadAnswer {
                call: "ReadStdout",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("1001 bytes where at most 1000"),
        "{err}"
    );
    // A call the liar does not implement: its refusal, cut to size, is shown.
    let err = client.guest_info().unwrap_err();
    assert!(
        matches!(
            err,
            AgentError::Refused {
                call: "GuestInfo",
                ..
            }
        ),
        "{err}"
    );
    drop(client);
    server.shutdown();
}
