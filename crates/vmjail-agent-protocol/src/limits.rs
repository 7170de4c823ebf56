//! Bounds both sides check on what the other sends. The transport itself is
//! bounded by ttrpc's 4 MiB message limit; these are tighter, per field.

/// Most bytes one `ReadStdout`/`ReadStderr` answer or one `WriteStdin`
/// request carries. Larger answers stalled the other calls sharing the
/// connection for too long.
pub const MAX_IO_CHUNK: u32 = 256 * 1024;

/// Longest an agent call may block in the guest (`wait_ms` of reads and
/// waits is capped to it), so one call never holds a connection for long.
pub const MAX_WAIT_MS: u32 = 5_000;

/// Most entries in argv, env or the additional groups of one process.
pub const MAX_LIST_ENTRIES: usize = 4096;

/// Most bytes of one argv/env/cwd string.
pub const MAX_STRING_BYTES: usize = 128 * 1024;

/// Most processes the agent keeps at once (running or not yet deleted).
pub const MAX_PROCESSES: usize = 1024;

/// Most bytes of an `UpdateContainer` resources JSON.
pub const MAX_RESOURCES_JSON: usize = 64 * 1024;
