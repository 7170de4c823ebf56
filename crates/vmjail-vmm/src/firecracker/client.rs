//! HTTP/1.1 over the jail's Unix socket (hyper 1 on a current-thread tokio
//! runtime owned by the client, since the `Hypervisor` trait is synchronous).
//!
//! Each call opens its own connection: Firecracker serves one connection at
//! a time, and a fresh connection per call keeps a dead or wedged VMM from
//! poisoning later calls.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

use super::api::{ApiRequest, Fault};

/// Answers bigger than this are refused (the VMM is not trusted).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// A `fault_message` is cut to this many characters before it reaches a user.
const MAX_FAULT_CHARS: usize = 1024;

/// What went wrong talking to the API socket.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("connecting to {path}: {source}")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("HTTP exchange failed: {0}")]
    Http(String),
    #[error("HTTP {status}: {fault_message}")]
    Status { status: u16, fault_message: String },
    #[error("malformed answer: {0}")]
    BadResponse(String),
}

/// A successful answer: status and body bytes.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Bytes,
}

/// A Firecracker API client bound to one socket inside a jail.
pub struct ApiClient {
    root: PathBuf,
    socket_in_jail: PathBuf,
    /// `root` + `socket_in_jail`, for messages.
    socket: PathBuf,
    runtime: tokio::runtime::Runtime,
}

impl ApiClient {
    /// A client for a socket at a plain host path.
    pub fn new(socket: &Path) -> std::io::Result<Self> {
        Self::in_jail(Path::new("/"), socket)
    }

    /// A client for `socket_in_jail` under the jail `root`. The VMM owns
    /// its root and could swap the socket for a symlink to a host socket,
    /// so every connection walks the path without following symlinks.
    pub fn in_jail(root: &Path, socket_in_jail: &Path) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        Ok(Self {
            root: root.to_path_buf(),
            socket_in_jail: socket_in_jail.to_path_buf(),
            socket: vmjail_jail::host_path(root, socket_in_jail),
            runtime,
        })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Connect without following symlinks, trying for at most `timeout`
    /// (a VMM whose backlog is full never blocks us), ready for tokio.
    fn connect(&self, timeout: Duration) -> std::io::Result<std::os::unix::net::UnixStream> {
        let stream =
            vmjail_jail::connect_in_jail(&self.root, &self.socket_in_jail, timeout, &|| true)
                .map_err(std::io::Error::other)?;
        stream.set_nonblocking(true)?;
        Ok(stream)
    }

    /// Send `request`; a 2xx status is `Ok`, anything else an
    /// [`ApiError::Status`] carrying Firecracker's `fault_message`.
    pub fn send(&self, request: &ApiRequest, timeout: Duration) -> Result<ApiResponse, ApiError> {
        let stream = self.connect(timeout).map_err(|source| ApiError::Connect {
            path: self.socket.clone(),
            source,
        })?;
        let exchange = exchange(stream, request);
        let response = self
            .runtime
            .block_on(async { tokio::time::timeout(timeout, exchange).await })
            .map_err(|_| ApiError::Timeout(timeout))??;
        if (200..300).contains(&response.status) {
            Ok(response)
        } else {
            Err(ApiError::Status {
                status: response.status,
                fault_message: fault_message(&response.body),
            })
        }
    }

    /// Wait until the socket accepts connections, retrying with exponential
    /// backoff (1 ms doubling to 2 ms: every overslept ms is start-up latency) for at most `timeout`. `alive` is asked
    /// between tries so a VMM that died is reported at once.
    pub fn wait_for_socket(
        &self,
        timeout: Duration,
        mut alive: impl FnMut() -> bool,
    ) -> Result<Duration, WaitError> {
        let started = Instant::now();
        let mut delay = Duration::from_millis(1);
        loop {
            match self.connect(Duration::ZERO) {
                Ok(_) => return Ok(started.elapsed()),
                Err(last) => {
                    if !alive() {
                        return Err(WaitError::VmmGone { last });
                    }
                    let waited = started.elapsed();
                    if waited >= timeout {
                        return Err(WaitError::Timeout { waited, last });
                    }
                    std::thread::sleep(delay.min(timeout - waited));
                    delay = (delay * 2).min(Duration::from_millis(2));
                }
            }
        }
    }
}

/// Why the API socket never answered.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("not accepting connections after {waited:?} (last error: {last})")]
    Timeout {
        waited: Duration,
        last: std::io::Error,
    },
    #[error("the VMM exited before its API socket accepted connections (last error: {last})")]
    VmmGone { last: std::io::Error },
}

async fn exchange(
    stream: std::os::unix::net::UnixStream,
    request: &ApiRequest,
) -> Result<ApiResponse, ApiError> {
    let stream = UnixStream::from_std(stream).map_err(|e| ApiError::Http(e.to_string()))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ApiError::Http(e.to_string()))?;
    let driver = tokio::spawn(connection);

    let body = match &request.body {
        Some(value) => Bytes::from(value.to_string()),
        None => Bytes::new(),
    };
    let mut builder = hyper::Request::builder()
        .method(request.method.as_str())
        .uri(&request.path)
        .header(hyper::header::HOST, "localhost")
        .header(hyper::header::ACCEPT, "application/json");
    if request.body.is_some() {
        builder = builder.header(hyper::header::CONTENT_TYPE, "application/json");
    }
    let http_request = builder
        .body(Full::new(body))
        .map_err(|e| ApiError::Http(e.to_string()))?;
    let response = sender
        .send_request(http_request)
        .await
        .map_err(|e| ApiError::Http(e.to_string()))?;
    let status = response.status().as_u16();
    let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| ApiError::BadResponse(e.to_string()))?
        .to_bytes();
    // Close the connection before returning: with no sender left the
    // connection task ends and drops the stream. (Aborting it instead would
    // leave the stream open until this runtime next runs, and a VMM serving
    // one connection at a time would wait on it.)
    drop(sender);
    let _ = driver.await;
    Ok(ApiResponse { status, body })
}

/// The `fault_message` of an error body, made safe to print: control
/// characters replaced, length bounded. A body that is not the spec's
/// `Error` object is shown (sanitised) as it is.
fn fault_message(body: &[u8]) -> String {
    let text = match serde_json::from_slice::<Fault>(body) {
        Ok(fault) if !fault.fault_message.is_empty() => fault.fault_message,
        _ => String::from_utf8_lossy(body).into_owned(),
    };
    let mut clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_FAULT_CHARS)
        .collect();
    if text.chars().count() > MAX_FAULT_CHARS {
        clean.push('…');
    }
    if clean.trim().is_empty() {
        "(no fault_message)".into()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::fault_message;

    #[test]
    fn fault_messages_are_extracted_and_sanitised() {
        assert_eq!(
            fault_message(br#"{"fault_message":"bad\ninput"}"#),
            "bad input"
        );
        assert_eq!(fault_message(b"plain text"), "plain text");
        assert_eq!(fault_message(b""), "(no fault_message)");
        let long = format!(r#"{{"fault_message":"{}"}}"#, "x".repeat(5000));
        assert_eq!(fault_message(long.as_bytes()).chars().count(), 1025);
    }
}
