//! The limits that keep one client from hurting the server or the others.
//!
//! Every limit is a named constant with the default from SPEC §6, and (except the nesting depth)
//! a command-line flag that overrides it through [`Limits`]. Nothing else in the crate hard-codes
//! a limit.

use std::time::Duration;

/// Bytes in one request line, line ending excluded. Protects memory: a line is buffered whole
/// before it is parsed, so without this a client could make the server buffer without end.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Entries in one batch. Protects latency for the other connections and bounds the size of the
/// one answer line a batch produces.
pub const MAX_BATCH: usize = 1000;

/// Open TCP connections. Protects file descriptors and the per-connection buffers' memory.
pub const MAX_CONNECTIONS: usize = 1024;

/// Seconds a TCP connection may stay silent before it is closed. Frees the slots and buffers of
/// clients that went away without closing.
pub const IDLE_TIMEOUT_SECS: u64 = 300;

/// Depth of nested arrays and objects in one JSON text. Protects the stack of every recursive
/// walk over a parsed value, ours and serde_json's.
pub const MAX_NESTING_DEPTH: usize = 128;

/// The limits in force for one server, after command-line overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_line_bytes: usize,
    pub max_batch: usize,
    pub max_connections: usize,
    /// `None` means connections may stay idle forever (`--idle-timeout 0`).
    pub idle_timeout: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line_bytes: MAX_LINE_BYTES,
            max_batch: MAX_BATCH,
            max_connections: MAX_CONNECTIONS,
            idle_timeout: Some(Duration::from_secs(IDLE_TIMEOUT_SECS)),
        }
    }
}
