//! The library's error type: only for input that cannot be read at all and for bad settings.
//!
//! Malformed traffic is never an `Err`: it becomes an anomaly event and analysis goes on.

use std::io;
use std::path::PathBuf;

/// Why a capture could not be analysed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Open {
        /// The path as given.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// Reading failed part way (not a clean truncation).
    #[error("read error: {0}")]
    Io(#[source] io::Error),
    /// Writing the output failed (a full disk, say). Not `Io`, which would call it a read error.
    #[error("cannot write the output: {0}")]
    Output(#[source] io::Error),
    /// A worker thread of `--threads` could not be started, or stopped early.
    #[error("worker thread: {0}")]
    Thread(#[source] io::Error),
    /// The bytes are neither pcap nor pcapng (nor a gzip of either).
    #[error("not a pcap or pcapng capture: {0}")]
    NotACapture(String),
    /// The capture's link type is one wsinspect does not decode.
    #[error(
        "unsupported link type {0} (supported: Ethernet, Linux SLL/SLL2, raw IP, BSD loopback)"
    )]
    UnsupportedLinkType(u32),
    /// A block in the capture is larger than the reader can hold.
    #[error("capture block too large for the reader ({0} bytes)")]
    BlockTooLarge(usize),
    /// A setting is out of range or cannot be parsed.
    #[error("invalid setting: {0}")]
    Config(String),
}
