//! Message assembly: takes one direction's frames and gives messages (fragments joined,
//! permessage-deflate inflated, text checked as UTF-8) and control frames, with protocol
//! violations as anomalies.

use crate::config::Limits;
use crate::ws::frame::FrameHeader;

/// How complete a decoded message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageStatus {
    /// Every byte decoded.
    Complete,
    /// Decoded, but longer than the message cap: `data` holds the start only.
    Truncated,
    /// The capture lost bytes of this message; `data` is empty.
    Incomplete,
    /// Compressed and could not be inflated; the text says why (e.g. missing deflate history).
    Undecodable(&'static str),
}

/// A data message.
#[derive(Debug)]
pub struct Message<'a> {
    /// `TEXT` or `BINARY` (the opcode of the first frame).
    pub opcode: u8,
    /// Decoded bytes (at most the message cap; empty unless `Complete` or `Truncated`).
    pub data: &'a [u8],
    /// Decoded length (exact when `Complete` or `Truncated`).
    pub len: u64,
    /// Sum of the frames' payload lengths as on the wire.
    pub wire_len: u64,
    /// Number of frames.
    pub frames: u32,
    /// RSV1 was set on the first frame.
    pub compressed: bool,
    /// How complete it is.
    pub status: MessageStatus,
    /// For text: whether the decoded bytes are valid UTF-8 (`None` for binary or unknown).
    pub utf8_valid: Option<bool>,
    /// Decoded without the full deflate history but verified exact (see `deflate`).
    pub history_reset: bool,
}

/// What the assembler reports.
#[derive(Debug)]
pub enum MessageEvent<'a> {
    /// A data message completed with this frame.
    Message(Message<'a>),
    /// A control frame (close, ping, pong), with its payload.
    Control {
        /// The header.
        header: FrameHeader,
        /// Its unmasked payload.
        payload: &'a [u8],
    },
    /// A protocol violation.
    Anomaly {
        /// Snake-case kind.
        kind: &'static str,
        /// What exactly.
        detail: String,
    },
}

/// permessage-deflate as it applies to one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateDir {
    /// Whether the sender of this direction keeps its LZ77 window between messages.
    pub context_takeover: bool,
}

/// One direction's message assembler.
pub struct MessageAssembler {
    _private: (),
}

impl MessageAssembler {
    /// `deflate` is `Some` when permessage-deflate was negotiated for the connection (RSV1 is
    /// then legal on first frames); `None` otherwise.
    pub fn new(deflate: Option<DeflateDir>, limits: &Limits) -> MessageAssembler {
        let _ = (deflate, limits);
        unimplemented!()
    }

    /// Feeds one frame (`lost` payload bytes missing from the capture, `skipped` beyond the cap).
    pub fn frame(
        &mut self,
        header: &FrameHeader,
        payload: &[u8],
        lost: u64,
        skipped: u64,
        out: &mut dyn FnMut(MessageEvent<'_>),
    ) {
        let _ = (header, payload, lost, skipped, out);
        unimplemented!()
    }

    /// The stream lost sync (bytes lost where a header should be): any partial message is
    /// dropped as incomplete and, with context takeover, the inflater's history is lost.
    pub fn desync(&mut self, out: &mut dyn FnMut(MessageEvent<'_>)) {
        let _ = out;
        unimplemented!()
    }
}
