//! A small typed QMP client: QEMU's JSON line protocol on a Unix socket.
//!
//! One command at a time, each tagged with an `id` so a reply is never
//! confused with another; asynchronous events that arrive meanwhile are kept
//! for [`Qmp::take_events`] / [`Qmp::wait_event`]. Everything QEMU sends is
//! treated as hostile input: bounded line length, typed parsing, no panics.

use std::io::{BufRead, BufReader, IoSlice, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use serde::Deserialize;
use serde_json::{json, Value};

/// The longest line accepted from QEMU (the replies vmjail asks for are
/// small; a longer line is an error, not a bigger buffer).
const MAX_LINE: u64 = 256 << 10;
/// Events kept while waiting for a reply or an event: the oldest go first.
const MAX_EVENTS: usize = 64;
/// An event whose line is longer keeps only its name: the events vmjail
/// waits for (SHUTDOWN, DEVICE_DELETED, ...) are a few hundred bytes.
const MAX_EVENT_LINE: usize = 4 << 10;
/// The longest event name kept.
const MAX_EVENT_NAME: usize = 128;

/// Every way a QMP exchange can fail.
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    #[error("reading from QEMU: {0}")]
    Read(#[source] std::io::Error),
    #[error("writing to QEMU: {0}")]
    Write(#[source] std::io::Error),
    #[error("QEMU closed the QMP connection")]
    Closed,
    #[error("QEMU sent a line longer than {MAX_LINE} bytes")]
    LineTooLong,
    #[error("QEMU sent something that is not a QMP message ({reason}): {line}")]
    BadMessage { reason: String, line: String },
    #[error("QEMU's first message is not the QMP greeting: {0}")]
    NoGreeting(String),
    #[error("QEMU refused {command}: {class}: {desc}")]
    Refused {
        command: String,
        class: String,
        desc: String,
    },
    #[error("QEMU's answer to {command} has an unexpected shape ({reason}): {value}")]
    BadReturn {
        command: String,
        reason: String,
        value: Value,
    },
    #[error("no {what} from QEMU within {timeout:?}")]
    Timeout { what: String, timeout: Duration },
}

/// An asynchronous QMP event.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct QmpEvent {
    pub event: String,
    #[serde(default)]
    pub data: Value,
}

/// `query-status`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StatusInfo {
    pub running: bool,
    /// QEMU's run state: `prelaunch`, `running`, `paused`, `shutdown`, ...
    pub status: String,
}

/// One negotiated QMP session.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    events: Vec<QmpEvent>,
    next_id: u64,
    timeout: Duration,
}

/// One message from QEMU, classified.
enum Message {
    Return {
        id: Option<Value>,
        value: Value,
    },
    Error {
        id: Option<Value>,
        class: String,
        desc: String,
    },
    Event(QmpEvent),
    Greeting,
}

impl Qmp {
    /// Take over a connected socket: read the greeting and negotiate
    /// capabilities. Every read and write is bounded by `timeout`.
    pub fn handshake(stream: UnixStream, timeout: Duration) -> Result<Qmp, QmpError> {
        let writer = stream.try_clone().map_err(QmpError::Write)?;
        let mut qmp = Qmp {
            reader: BufReader::new(stream),
            writer,
            events: Vec::new(),
            next_id: 1,
            timeout,
        };
        qmp.set_timeout(timeout)?;
        match qmp.read_message()? {
            Message::Greeting => {}
            Message::Event(e) => return Err(QmpError::NoGreeting(format!("event {}", e.event))),
            Message::Return { value, .. } => return Err(QmpError::NoGreeting(value.to_string())),
            Message::Error { desc, .. } => return Err(QmpError::NoGreeting(desc)),
        }
        qmp.execute("qmp_capabilities", None)?;
        Ok(qmp)
    }

    fn set_timeout(&mut self, timeout: Duration) -> Result<(), QmpError> {
        let stream = self.reader.get_ref();
        stream
            .set_read_timeout(Some(timeout))
            .map_err(QmpError::Read)?;
        stream
            .set_write_timeout(Some(timeout))
            .map_err(QmpError::Write)?;
        self.timeout = timeout;
        Ok(())
    }

    /// Run `command` and return its `return` value.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value, QmpError> {
        self.exchange(command, arguments, None)
    }

    /// `getfd`: hand QEMU descriptor `fd` (SCM_RIGHTS, with the command's
    /// own bytes) under `name`, for a later `netdev_add ... fd=<name>`.
    pub fn send_fd(&mut self, name: &str, fd: BorrowedFd<'_>) -> Result<(), QmpError> {
        self.exchange("getfd", Some(json!({ "fdname": name })), Some(fd))
            .map(drop)
    }

    fn exchange(
        &mut self,
        command: &str,
        arguments: Option<Value>,
        fd: Option<BorrowedFd<'_>>,
    ) -> Result<Value, QmpError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut request = json!({ "execute": command, "id": id });
        if let Some(arguments) = arguments {
            request["arguments"] = arguments;
        }
        let mut line = request.to_string();
        line.push('\n');
        match fd {
            None => self
                .writer
                .write_all(line.as_bytes())
                .map_err(QmpError::Write)?,
            Some(fd) => {
                let fds = [fd.as_raw_fd()];
                let control = [ControlMessage::ScmRights(&fds)];
                // QEMU takes the descriptor with the first byte of the
                // command; a short write would split it from the rest.
                let sent = sendmsg::<()>(
                    self.writer.as_raw_fd(),
                    &[IoSlice::new(line.as_bytes())],
                    &control,
                    MsgFlags::MSG_NOSIGNAL,
                    None,
                )
                .map_err(|e| QmpError::Write(e.into()))?;
                if sent != line.len() {
                    self.writer
                        .write_all(&line.as_bytes()[sent..])
                        .map_err(QmpError::Write)?;
                }
            }
        }
        let deadline = Instant::now() + self.timeout;
        loop {
            let message = self.read_message().map_err(|e| match e {
                QmpError::Read(io)
                    if matches!(
                        io.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    QmpError::Timeout {
                        what: format!("answer to {command}"),
                        timeout: self.timeout,
                    }
                }
                e => e,
            })?;
            match message {
                Message::Event(event) => self.keep(event),
                Message::Greeting => {}
                Message::Return { id: reply, value } if reply == Some(json!(id)) => {
                    return Ok(value)
                }
                Message::Error {
                    id: reply,
                    class,
                    desc,
                } if reply == Some(json!(id)) => {
                    return Err(QmpError::Refused {
                        command: command.to_owned(),
                        class,
                        desc,
                    })
                }
                // A stale reply to an earlier, timed-out command.
                Message::Return { .. } | Message::Error { .. } => {}
            }
            if Instant::now() > deadline {
                return Err(QmpError::Timeout {
                    what: format!("answer to {command}"),
                    timeout: self.timeout,
                });
            }
        }
    }

    /// `query-status`.
    pub fn query_status(&mut self) -> Result<StatusInfo, QmpError> {
        let value = self.execute("query-status", None)?;
        serde_json::from_value(value.clone()).map_err(|e| QmpError::BadReturn {
            command: "query-status".into(),
            reason: e.to_string(),
            value,
        })
    }

    /// Queue an event, bounded: a hostile QEMU flooding events while a
    /// command waits costs at most `MAX_EVENTS` small entries.
    fn keep(&mut self, event: QmpEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.events.remove(0);
        }
        self.events.push(event);
    }

    /// The events received so far, oldest first.
    pub fn take_events(&mut self) -> Vec<QmpEvent> {
        std::mem::take(&mut self.events)
    }

    /// Wait up to `timeout` for event `name` (already received ones count).
    pub fn wait_event(&mut self, name: &str, timeout: Duration) -> Result<QmpEvent, QmpError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.events.iter().position(|e| e.event == name) {
                return Ok(self.events.remove(i));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(QmpError::Timeout {
                    what: format!("event {name}"),
                    timeout,
                });
            }
            let previous = self.timeout;
            self.set_timeout(left)?;
            let message = self.read_message();
            self.set_timeout(previous)?;
            match message {
                Ok(Message::Event(event)) => self.keep(event),
                Ok(_) => {}
                Err(QmpError::Read(io))
                    if matches!(
                        io.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn read_message(&mut self) -> Result<Message, QmpError> {
        let mut buf = Vec::new();
        let read = (&mut self.reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut buf)
            .map_err(QmpError::Read)?;
        if read == 0 {
            return Err(QmpError::Closed);
        }
        if !buf.ends_with(b"\n") {
            return Err(if read as u64 >= MAX_LINE {
                QmpError::LineTooLong
            } else {
                QmpError::Closed
            });
        }
        parse_message(&buf)
    }
}

/// Classify one line QEMU sent.
fn parse_message(line: &[u8]) -> Result<Message, QmpError> {
    let shown = || {
        String::from_utf8_lossy(line)
            .trim_end()
            .chars()
            .take(512)
            .collect::<String>()
    };
    let value: Value = serde_json::from_slice(line).map_err(|e| QmpError::BadMessage {
        reason: e.to_string(),
        line: shown(),
    })?;
    let Some(object) = value.as_object() else {
        return Err(QmpError::BadMessage {
            reason: "not a JSON object".into(),
            line: shown(),
        });
    };
    let id = object.get("id").cloned();
    if let Some(value) = object.get("return") {
        return Ok(Message::Return {
            id,
            value: value.clone(),
        });
    }
    if let Some(error) = object.get("error") {
        let text = |key: &str| {
            error
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or("(missing)")
                .to_owned()
        };
        return Ok(Message::Error {
            id,
            class: text("class"),
            desc: text("desc"),
        });
    }
    if object.contains_key("event") {
        let mut event: QmpEvent =
            serde_json::from_value(value.clone()).map_err(|e| QmpError::BadMessage {
                reason: e.to_string(),
                line: shown(),
            })?;
        if line.len() > MAX_EVENT_LINE {
            event.data = Value::Null;
            event.event = event.event.chars().take(MAX_EVENT_NAME).collect();
        }
        return Ok(Message::Event(event));
    }
    if object.contains_key("QMP") {
        return Ok(Message::Greeting);
    }
    Err(QmpError::BadMessage {
        reason: "neither return, error, event nor greeting".into(),
        line: shown(),
    })
}

#[cfg(test)]
mod tests {
    //! Unit tests against a scripted peer (a test double for QEMU, named
    //! as such); the real QEMU is exercised in tests/qemu_*.rs.
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::thread;

    /// A scripted QMP peer: for each request line, the answer lines.
    fn scripted_peer(
        script: Vec<(&'static str, Vec<String>)>,
    ) -> (UnixStream, thread::JoinHandle<Vec<String>>) {
        let (client, server) = UnixStream::pair().unwrap();
        let handle = thread::spawn(move || {
            let mut writer = server.try_clone().unwrap();
            let mut reader = BufReader::new(server);
            writeln!(
                writer,
                r#"{{"QMP": {{"version": {{}}, "capabilities": []}}}}"#
            )
            .unwrap();
            let mut seen = Vec::new();
            for (expected, answers) in script {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let request: Value = serde_json::from_str(&line).unwrap();
                assert_eq!(request["execute"], expected);
                let id = request["id"].clone();
                for answer in answers {
                    writeln!(writer, "{}", answer.replace("ID", &id.to_string())).unwrap();
                }
                seen.push(line);
            }
            seen
        });
        (client, handle)
    }

    #[test]
    fn negotiates_then_matches_replies_by_id_and_keeps_events() {
        let (stream, peer) = scripted_peer(vec![
            ("qmp_capabilities", vec![r#"{"return": {}, "id": ID}"#.into()]),
            (
                "query-status",
                vec![
                    r#"{"event": "RESUME", "data": {}, "timestamp": {"seconds": 1, "microseconds": 2}}"#.into(),
                    r#"{"return": {"status": "old"}, "id": 999}"#.into(),
                    r#"{"return": {"running": true, "singlestep": false, "status": "running"}, "id": ID}"#.into(),
                ],
            ),
        ]);
        let mut qmp = Qmp::handshake(stream, Duration::from_secs(5)).unwrap();
        let status = qmp.query_status().unwrap();
        assert_eq!(
            status,
            StatusInfo {
                running: true,
                status: "running".into()
            }
        );
        let events = qmp.take_events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event, "RESUME");
        peer.join().unwrap();
    }

    #[test]
    fn refusal_carries_class_and_description() {
        let (stream, peer) = scripted_peer(vec![
            ("qmp_capabilities", vec![r#"{"return": {}, "id": ID}"#.into()]),
            (
                "device_del",
                vec![r#"{"error": {"class": "DeviceNotFound", "desc": "Device 'x' not found"}, "id": ID}"#.into()],
            ),
        ]);
        let mut qmp = Qmp::handshake(stream, Duration::from_secs(5)).unwrap();
        let err = qmp
            .execute("device_del", Some(json!({"id": "x"})))
            .unwrap_err();
        match err {
            QmpError::Refused {
                command,
                class,
                desc,
            } => {
                assert_eq!(command, "device_del");
                assert_eq!(class, "DeviceNotFound");
                assert!(desc.contains("not found"));
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        let seen = peer.join().unwrap();
        let request: Value = serde_json::from_str(&seen[1]).unwrap();
        assert_eq!(request["arguments"], json!({"id": "x"}));
    }

    #[test]
    fn rejects_a_peer_that_does_not_greet() {
        let (client, server) = UnixStream::pair().unwrap();
        let handle = thread::spawn(move || {
            let mut server = server;
            writeln!(server, r#"{{"return": {{}}}}"#).unwrap();
        });
        let err = Qmp::handshake(client, Duration::from_secs(5))
            .err()
            .unwrap();
        assert!(matches!(err, QmpError::NoGreeting(_)), "{err:?}");
        handle.join().unwrap();
    }

    #[test]
    fn garbage_and_silence_are_errors_not_panics() {
        assert!(matches!(
            parse_message(b"not json\n"),
            Err(QmpError::BadMessage { .. })
        ));
        assert!(matches!(
            parse_message(b"[1,2]\n"),
            Err(QmpError::BadMessage { .. })
        ));
        let (client, _server) = UnixStream::pair().unwrap();
        let err = Qmp::handshake(client, Duration::from_millis(200))
            .err()
            .unwrap();
        assert!(matches!(err, QmpError::Read(_)), "{err:?}");
    }

    #[test]
    fn waits_for_an_event() {
        let (stream, peer) = scripted_peer(vec![
            (
                "qmp_capabilities",
                vec![r#"{"return": {}, "id": ID}"#.into()],
            ),
            (
                "system_powerdown",
                vec![
                    r#"{"return": {}, "id": ID}"#.into(),
                    r#"{"event": "POWERDOWN", "data": {}}"#.into(),
                    r#"{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}"#
                        .into(),
                ],
            ),
        ]);
        let mut qmp = Qmp::handshake(stream, Duration::from_secs(5)).unwrap();
        qmp.execute("system_powerdown", None).unwrap();
        let event = qmp.wait_event("SHUTDOWN", Duration::from_secs(5)).unwrap();
        assert_eq!(event.data["reason"], "guest-shutdown");
        peer.join().unwrap();
        let err = qmp
            .wait_event("NEVER", Duration::from_millis(100))
            .unwrap_err();
        assert!(
            matches!(err, QmpError::Closed | QmpError::Timeout { .. }),
            "{err:?}"
        );
    }

    /// A hostile QEMU floods large events before answering: the reply still
    /// arrives, and what is kept stays small (the review saw 998 MB RSS
    /// when every event was kept until the command's deadline).
    #[test]
    fn an_event_flood_is_bounded() {
        let big = format!(
            r#"{{"event": "FLOOD", "data": {{"x": "{}"}}}}"#,
            "a".repeat(200 << 10)
        );
        let mut answers = vec![big; 500];
        answers.push(r#"{"event": "SHUTDOWN", "data": {"guest": true}}"#.into());
        answers.push(r#"{"return": {"running": false, "status": "shutdown"}, "id": ID}"#.into());
        let (stream, peer) = scripted_peer(vec![
            (
                "qmp_capabilities",
                vec![r#"{"return": {}, "id": ID}"#.into()],
            ),
            ("query-status", answers),
        ]);
        let mut qmp = Qmp::handshake(stream, Duration::from_secs(30)).unwrap();
        assert_eq!(qmp.query_status().unwrap().status, "shutdown");
        let events = qmp.take_events();
        assert_eq!(events.len(), MAX_EVENTS);
        assert_eq!(events.last().unwrap().event, "SHUTDOWN");
        assert!(events[0].data.is_null(), "a large event kept its data");
        peer.join().unwrap();
    }

    /// One line longer than the bound is an error, not a bigger buffer.
    #[test]
    fn an_overlong_line_is_refused() {
        let huge = format!(
            r#"{{"return": "{}", "id": ID}}"#,
            "a".repeat(MAX_LINE as usize)
        );
        let (stream, peer) = scripted_peer(vec![
            (
                "qmp_capabilities",
                vec![r#"{"return": {}, "id": ID}"#.into()],
            ),
            ("query-status", vec![huge]),
        ]);
        let mut qmp = Qmp::handshake(stream, Duration::from_secs(30)).unwrap();
        let err = qmp.query_status().unwrap_err();
        assert!(matches!(err, QmpError::LineTooLong), "{err:?}");
        drop(qmp);
        let _ = peer.join();
    }
}
