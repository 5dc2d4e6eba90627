//! Limits and switches that bound what the pipeline keeps in memory.
//!
//! Every cap has a default chosen so that a capture of any size runs in bounded memory; hitting a
//! cap is recorded as an anomaly on the connection, never a silent loss.

/// Resource caps applied by the decoding stages.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest WebSocket frame payload held whole; longer frames are counted and skipped.
    pub max_frame_bytes: u64,
    /// Largest decoded (unmasked, defragmented, inflated) message kept; the rest is counted.
    pub max_message_bytes: u64,
    /// Out-of-order TCP bytes buffered per direction before the hole is declared a gap.
    pub max_ooo_bytes_per_dir: usize,
    /// TCP flows tracked at once; the least recently active is evicted beyond this.
    pub max_flows: usize,
    /// Largest HTTP header block (request or response) before the upgrade is abandoned.
    pub max_http_header_bytes: usize,
    /// Bytes of each message kept for the `preview` field.
    pub preview_bytes: usize,
    /// Payload and preview bytes held, over all open connections, by a sink that keeps a
    /// connection's messages until it ends (the JSON document); later messages are listed
    /// without their payload.
    pub max_held_payload_bytes: u64,
    /// A flow silent for this long (capture time, nanoseconds) is closed and evicted.
    pub idle_timeout_ns: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 64 << 20,
            max_message_bytes: 64 << 20,
            max_ooo_bytes_per_dir: 1 << 20,
            max_flows: 100_000,
            max_http_header_bytes: 64 << 10,
            preview_bytes: 120,
            max_held_payload_bytes: 256 << 20,
            idle_timeout_ns: 3_600 * 1_000_000_000,
        }
    }
}

/// How message payloads appear in the output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PayloadMode {
    /// No payload bytes at all.
    None,
    /// The first bytes, printable.
    #[default]
    Preview,
    /// The whole decoded payload.
    Full,
}

/// Everything a run of the pipeline is told.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Resource caps.
    pub limits: Limits,
    /// Payload rendering in message events.
    pub payloads: PayloadMode,
    /// Whether to emit one event per frame.
    pub frames: bool,
    /// TLS session secrets (`--keylog`, pcapng Decryption Secrets Blocks) for wss:// decryption.
    pub keylog: crate::tls::KeyLog,
}
