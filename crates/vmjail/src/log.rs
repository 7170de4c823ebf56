//! Where vmjail's logs go: stderr, or with `--log FILE` that file, as text
//! or (`--log-format json`) as runc's JSON lines
//! `{"level":"error","msg":"…","time":"…"}`, which Docker's and Podman's
//! shims read back to report why a runtime command failed. With `--log`,
//! every error a command ends with is logged there too (and nothing goes
//! to stderr but that error: a container's host process has the
//! container's stderr as its own).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::OnceLock;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::cli::LogFormat;

static TO_FILE: OnceLock<bool> = OnceLock::new();

/// Whether logs go to a `--log` file.
pub fn to_file() -> bool {
    TO_FILE.get().copied().unwrap_or(false)
}

/// Logs go to stderr: warnings by default, everything from vmjail's crates
/// and the VMM's own log (target `firecracker`) with `--debug`;
/// `VMJAIL_LOG` takes a full `tracing` filter and wins over both. Each
/// lifecycle step is a span: its closing line carries `time.busy`, how
/// long the step took. With `log`, they go to that file instead (stderr
/// when it cannot be opened, saying so).
pub fn init(debug: bool, log: Option<&Path>, format: LogFormat) {
    use std::io::IsTerminal;
    let default = if debug { "debug" } else { "warn" };
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("VMJAIL_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default))
    };
    let file = log.map(|path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("vmjail: warning: --log {}: {e}", path.display()))
    });
    match file {
        Some(Ok(file)) => {
            let _ = TO_FILE.set(true);
            let builder = tracing_subscriber::fmt()
                .with_env_filter(filter())
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file));
            match format {
                LogFormat::Json => builder.event_format(RuncJson).init(),
                LogFormat::Text => builder.init(),
            }
        }
        other => {
            if let Some(Err(warning)) = other {
                crate::out::errln!("{warning}");
            }
            tracing_subscriber::fmt()
                .with_env_filter(filter())
                .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
                .with_ansi(std::io::stderr().is_terminal())
                .with_writer(std::io::stderr)
                .init();
        }
    }
}

/// runc's log line: `{"level":"…","msg":"…","time":"…"}`.
struct RuncJson;

impl<S, N> FormatEvent<S, N> for RuncJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut message = Message::default();
        event.record(&mut message);
        let line = serde_json::json!({
            "level": event.metadata().level().as_str().to_ascii_lowercase(),
            "msg": message.0,
            "time": vmjail_sandbox::rfc3339(std::time::SystemTime::now()),
        });
        writeln!(writer, "{line}")
    }
}

/// An event's message and its other fields as `key=value`.
#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            self.0.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }
}
