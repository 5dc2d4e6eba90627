//! permessage-deflate inflation (RFC 7692 §7.2.2): takes one direction's compressed message
//! payloads in order and gives their plaintext, keeping or resetting the LZ77 window as the
//! negotiation says, and refusing to guess when history is missing.

/// Why a message could not be inflated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InflateError {
    /// The compressed data refers to history the capture does not hold.
    MissingHistory,
    /// The data is not valid DEFLATE.
    Corrupt,
}

/// A successful inflation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inflated {
    /// Total decoded length (may exceed what was kept in `out`).
    pub len: u64,
    /// `out` holds only the first `max_out` bytes.
    pub truncated: bool,
    /// Decoded after history was lost, and exact (every back-reference resolved).
    pub history_reset: bool,
}

/// One direction's inflater.
pub struct Inflater {
    _private: (),
}

impl Inflater {
    /// `context_takeover`: whether the sender keeps its window between messages.
    pub fn new(context_takeover: bool) -> Inflater {
        let _ = context_takeover;
        unimplemented!()
    }

    /// Inflates one whole message (its frames' payloads concatenated, without the 00 00 ff ff
    /// tail), appending at most `max_out` bytes to `out`.
    pub fn inflate(&mut self, compressed: &[u8], out: &mut Vec<u8>, max_out: usize) -> Result<Inflated, InflateError> {
        let _ = (compressed, out, max_out);
        unimplemented!()
    }

    /// Bytes of this direction were lost: the window no longer matches the sender's.
    pub fn lose_history(&mut self) {
        unimplemented!()
    }
}
