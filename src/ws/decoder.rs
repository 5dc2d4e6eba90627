//! The per-direction frame decoder: takes reassembled stream bytes and gaps, gives complete frames
//! with unmasked payloads, and finds frame boundaries again after bytes were lost.

use crate::config::Limits;
use crate::ws::frame::FrameHeader;

/// What the decoder reports.
#[derive(Debug)]
pub enum FrameEvent<'a> {
    /// A complete frame. `payload` is unmasked and holds the first
    /// `min(payload_len, max_frame_bytes)` bytes.
    Frame {
        /// The header.
        header: FrameHeader,
        /// Unmasked payload (possibly cut at the frame cap).
        payload: &'a [u8],
        /// Payload bytes the capture lost inside this frame (0 when whole).
        lost: u64,
        /// Payload bytes beyond the frame cap that were skipped, not kept.
        skipped: u64,
    },
    /// Bytes were lost where a frame header should be: the decoder is searching for the next
    /// frame boundary.
    Desync {
        /// Bytes lost.
        lost: u64,
    },
    /// The decoder found frame boundaries again after discarding `discarded` bytes.
    Resync {
        /// Bytes of the stream discarded while searching.
        discarded: u64,
    },
    /// A stream-level problem (e.g. a header that can never be valid, a mask on the wrong side).
    Anomaly {
        /// Snake-case kind.
        kind: &'static str,
        /// What exactly.
        detail: String,
    },
}

/// One direction's frame decoder.
pub struct FrameDecoder {
    _private: (),
}

impl FrameDecoder {
    /// A decoder for one direction. `client_to_server` decides which side must mask
    /// (RFC 6455 §5.1); a violation is reported once per direction as an anomaly
    /// (`unmasked_client_frame` / `masked_server_frame`) and decoding goes on.
    pub fn new(client_to_server: bool, limits: &Limits) -> FrameDecoder {
        let _ = (client_to_server, limits);
        unimplemented!()
    }

    /// Feeds in-order stream bytes.
    pub fn push(&mut self, bytes: &[u8], out: &mut dyn FnMut(FrameEvent<'_>)) {
        let _ = (bytes, out);
        unimplemented!()
    }

    /// Reports `len` bytes missing from the stream at this point.
    pub fn gap(&mut self, len: u64, out: &mut dyn FnMut(FrameEvent<'_>)) {
        let _ = (len, out);
        unimplemented!()
    }

    /// Bytes held for a frame not yet complete.
    pub fn buffered(&self) -> usize {
        unimplemented!()
    }
}
