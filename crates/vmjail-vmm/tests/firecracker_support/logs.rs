//! What vmjail forwarded from Firecracker's log and metrics FIFOs: a
//! process-wide `tracing` subscriber that keeps every line of target
//! `firecracker` in memory for the test to search.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static CAPTURED: OnceLock<Buffer> = OnceLock::new();

/// Start capturing (idempotent; the first call installs the subscriber).
pub fn capture() {
    CAPTURED.get_or_init(|| {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("firecracker=info")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in the Firecracker tests");
        buffer
    });
}

/// The forwarded lines of sandbox `id` from FIFO `what` ("log",
/// "metrics") that contain `needle`.
pub fn lines(id: &str, what: &str, needle: &str) -> Vec<String> {
    let (id_field, what_field) = (format!("id=\"{id}\""), format!("what=\"{what}\""));
    all()
        .lines()
        .filter(|line| {
            line.contains(&id_field) && line.contains(&what_field) && line.contains(needle)
        })
        .map(str::to_owned)
        .collect()
}

/// Wait up to `timeout` for at least `count` such lines; true when there.
pub fn wait_for_lines(id: &str, what: &str, needle: &str, count: usize, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if lines(id, what, needle).len() >= count {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every forwarded line so far (for failure messages).
pub fn all() -> String {
    CAPTURED
        .get()
        .map(|b| String::from_utf8_lossy(&b.0.lock().unwrap()).into_owned())
        .unwrap_or_default()
}
