//! The per-direction frame decoder: takes reassembled stream bytes and gaps, gives complete frames
//! with unmasked payloads, and finds frame boundaries again after bytes were lost.
//!
//! # Buffering
//!
//! Only what is needed is held: a partial header (at most 13 bytes) and, while
//! resynchronising, a bounded search window ([`SEARCH_MAX`]). Payload bytes are never gathered:
//! a frame that lies wholly inside one pushed chunk is reported whole ([`FrameEvent::Frame`]),
//! and a frame arriving in pieces is reported as it arrives ([`FrameEvent::Begin`], then one
//! [`FrameEvent::Data`] per piece, then [`FrameEvent::End`]), so memory does not grow with
//! frame sizes or with the number of directions inside a large frame. Unmasked payload bytes
//! are handed out as slices of the pushed chunk (no copy); masked ones are copied once into a
//! buffer shared by the thread's decoders and unmasked there.
//!
//! # Losses
//!
//! A gap inside a payload keeps the frame: its `lost` grows and the payload offset advances by
//! the lost length, so the masking key stays aligned (RFC 6455 §5.3 masks by payload offset).
//! The payload handed out is then the exact prefix received before the first gap; bytes after
//! it are counted in `skipped` (so given bytes `+ lost + skipped == payload_len` always).
//!
//! A gap reaching past the frame's end (or hitting a header) loses the framing: `Desync` is
//! reported and the decoder searches the following bytes for a position where a plausible header
//! starts (defined opcode, RSV2 = RSV3 = 0, masked iff client-to-server, control frames FIN and
//! ≤ 125 bytes, minimal length encoding, not an empty non-final continuation frame, which is what
//! a run of zero bytes reads as) *and* either a plausible header follows that frame or
//! the pushed data ends exactly at its end. Then `Resync` reports the bytes discarded.
//!
//! # Anomaly kinds
//!
//! `unmasked_client_frame`, `masked_server_frame` (RFC 6455 §5.1, once per direction),
//! `frame_too_large` (payload over `max_frame_bytes`, once), `invalid_length` (64-bit length
//! with the MSB set, RFC 6455 §5.2; the stream is then treated as desynchronised).

use std::cell::Cell;

use crate::config::Limits;
use crate::ws::frame::{FrameHeader, HeaderError, opcode, parse_header};
use crate::ws::mask::unmask;

/// Most bytes held while searching for a frame boundary. A candidate frame is only verified if
/// it and the next header fit in this window, so resynchronisation waits for a frame shorter
/// than this; everything before the earliest open candidate is discarded as it is ruled out.
pub const SEARCH_MAX: usize = 256 * 1024;

/// Capacity the shared unmasking buffer keeps between frames.
const UNMASKED_RETAIN: usize = 256 << 10;

thread_local! {
    /// Masked payload bytes are unmasked here: shared by every direction of this thread, since
    /// they are only lent out while reported. Taken out and put back, so no borrow can fail.
    static UNMASKED: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Most search positions kept undecided at once (each is re-judged on every push).
const MAX_PENDING: usize = 1024;

/// What the decoder reports.
#[derive(Debug)]
pub enum FrameEvent<'a> {
    /// A complete frame that arrived in one piece (within the frame cap, nothing lost).
    /// `payload` is unmasked.
    Frame {
        /// The header.
        header: FrameHeader,
        /// Unmasked payload.
        payload: &'a [u8],
        /// Always 0 here; kept so that a whole frame and an ended one read alike.
        lost: u64,
        /// Always 0 here.
        skipped: u64,
    },
    /// A frame whose payload arrives in pieces starts: [`FrameEvent::Data`] follows with its
    /// bytes, then [`FrameEvent::End`].
    Begin {
        /// The header.
        header: FrameHeader,
    },
    /// The next unmasked payload bytes of the frame begun. Only bytes received before the
    /// first gap and within the first `max_frame_bytes` of the payload are given, so the pieces
    /// always join into an exact prefix of the payload.
    Data {
        /// The bytes.
        bytes: &'a [u8],
    },
    /// The frame begun is complete. With `d` the bytes given in its `Data` pieces, always
    /// `d + lost + skipped == header.payload_len`.
    End {
        /// The header.
        header: FrameHeader,
        /// Payload bytes the capture lost inside this frame (0 when whole).
        lost: u64,
        /// Payload bytes received but not given: beyond the frame cap, or after a gap.
        skipped: u64,
    },
    /// Bytes were lost where a frame header should be: the decoder is searching for the next
    /// frame boundary. Several `Desync` may precede one `Resync` (one per gap).
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

/// The frame in progress.
#[derive(Clone, Copy, Debug)]
struct Current {
    header: FrameHeader,
    /// Payload offset reached (received + lost bytes); always ≤ `header.payload_len`.
    pos: u64,
    lost: u64,
    skipped: u64,
    /// False after a gap: later bytes are counted, not kept, so the payload stays a prefix.
    keeping: bool,
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// At a frame boundary; `hdr` may hold the first bytes of a header.
    Header,
    /// Inside a payload.
    Payload(Current),
    /// Framing lost; `search` holds the bytes not yet ruled out.
    Searching,
}

/// What the search decides about one position.
enum Verdict {
    Accept,
    Reject,
    NeedMore,
}

/// One direction's frame decoder.
pub struct FrameDecoder {
    client_to_server: bool,
    max_frame: u64,
    state: State,
    hdr: Vec<u8>,
    search: Vec<u8>,
    /// The search buffer holds bytes not yet scanned with the current data end.
    search_dirty: bool,
    /// Next search position never judged.
    scan_pos: usize,
    /// Search positions judged `NeedMore`, ascending.
    pending: Vec<usize>,
    discarded: u64,
    frames: u64,
    masked_frames: u64,
    unmasked_frames: u64,
    mask_reported: bool,
    too_large_reported: bool,
}

impl FrameDecoder {
    /// A decoder for one direction. `client_to_server` decides which side must mask
    /// (RFC 6455 §5.1); a violation is reported once per direction as an anomaly
    /// (`unmasked_client_frame` / `masked_server_frame`) and decoding goes on.
    pub fn new(client_to_server: bool, limits: &Limits) -> FrameDecoder {
        FrameDecoder {
            client_to_server,
            max_frame: limits.max_frame_bytes,
            state: State::Header,
            hdr: Vec::with_capacity(14),
            search: Vec::new(),
            search_dirty: false,
            scan_pos: 0,
            pending: Vec::new(),
            discarded: 0,
            frames: 0,
            masked_frames: 0,
            unmasked_frames: 0,
            mask_reported: false,
            too_large_reported: false,
        }
    }

    /// Starts in search mode: for a connection picked up mid-stream, where the first byte
    /// pushed is probably not a frame boundary. Call before the first `push`. No `Desync` is
    /// reported (nothing was lost that the caller does not already know about); `Resync` is.
    pub fn start_mid_stream(&mut self) {
        self.hdr.clear();
        self.reset_search();
        self.state = State::Searching;
    }

    /// Feeds in-order stream bytes.
    pub fn push(&mut self, bytes: &[u8], out: &mut dyn FnMut(FrameEvent<'_>)) {
        let mut input = bytes;
        loop {
            if let State::Searching = self.state {
                if input.is_empty() && !self.search_dirty {
                    return;
                }
                let used = self.search_feed(input, out);
                input = input.get(used..).unwrap_or(&[]);
                if !matches!(self.state, State::Searching) {
                    self.replay(out);
                }
            } else {
                if input.is_empty() {
                    return;
                }
                let used = self.process_synced(input, out);
                input = input.get(used..).unwrap_or(&[]);
            }
        }
    }

    /// Reports `len` bytes missing from the stream at this point.
    pub fn gap(&mut self, len: u64, out: &mut dyn FnMut(FrameEvent<'_>)) {
        if len == 0 {
            return;
        }
        match self.state {
            State::Payload(mut cur) => {
                let remaining = cur.header.payload_len.saturating_sub(cur.pos);
                if len <= remaining {
                    // The frame goes on after the hole; keep the offset right so later masked
                    // bytes would unmask correctly (RFC 6455 §5.3 masks by payload offset).
                    cur.pos = cur.pos.saturating_add(len);
                    cur.lost = cur.lost.saturating_add(len);
                    cur.keeping = false;
                    self.state = State::Payload(cur);
                    if cur.pos == cur.header.payload_len {
                        self.finish_frame(cur, out);
                    }
                } else {
                    // The frame ended inside the hole, and the next header is lost with it.
                    cur.lost = cur.lost.saturating_add(remaining);
                    cur.pos = cur.header.payload_len;
                    self.finish_frame(cur, out);
                    out(FrameEvent::Desync {
                        lost: len - remaining,
                    });
                    self.enter_search();
                }
            }
            State::Header => {
                out(FrameEvent::Desync { lost: len });
                self.enter_search();
            }
            State::Searching => {
                // Bytes before a hole cannot be followed across it: what was held is dropped.
                self.discarded = self.discarded.saturating_add(self.search.len() as u64);
                self.reset_search();
                out(FrameEvent::Desync { lost: len });
            }
        }
    }

    /// Bytes held for a frame not yet complete.
    pub fn buffered(&self) -> usize {
        self.hdr.len() + self.search.len()
    }

    /// Leaves the synchronised states; a partial header is counted as discarded.
    fn enter_search(&mut self) {
        self.discarded = self.discarded.saturating_add(self.hdr.len() as u64);
        self.hdr.clear();
        self.reset_search();
        self.state = State::Searching;
    }

    fn reset_search(&mut self) {
        self.search.clear();
        self.search_dirty = false;
        self.scan_pos = 0;
        self.pending.clear();
    }

    /// Header and payload states: consumes `input` until it is used up or framing is lost
    /// (state `Searching`, the unconsumed bytes left to the caller). Returns bytes consumed.
    fn process_synced(&mut self, input: &[u8], out: &mut dyn FnMut(FrameEvent<'_>)) -> usize {
        let mut at = 0usize;
        while let Some(rest) = input.get(at..).filter(|r| !r.is_empty()) {
            match self.state {
                State::Searching => break,
                State::Payload(cur) => at += self.payload_bytes(cur, rest, out),
                State::Header if self.hdr.is_empty() => match parse_header(rest) {
                    Ok(h) => {
                        at += usize::from(h.header_len);
                        let body = input.get(at..).unwrap_or(&[]);
                        at += self.begin_frame(h, body, out);
                    }
                    Err(HeaderError::Incomplete(_)) => {
                        self.hdr.extend_from_slice(rest);
                        at = input.len();
                    }
                    Err(HeaderError::LengthMsbSet) => {
                        self.invalid_length(out);
                        // The bad header's bytes are scanned (and discarded) by the search.
                        break;
                    }
                },
                State::Header => match parse_header(&self.hdr) {
                    Err(HeaderError::Incomplete(n)) => {
                        let take = n.min(rest.len());
                        self.hdr.extend_from_slice(rest.get(..take).unwrap_or(&[]));
                        at += take;
                    }
                    Ok(h) => {
                        self.hdr.clear();
                        at += self.begin_frame(h, rest, out);
                    }
                    Err(HeaderError::LengthMsbSet) => {
                        let held = std::mem::take(&mut self.hdr);
                        self.invalid_length(out);
                        self.search.extend_from_slice(&held);
                        self.search_dirty = true;
                        self.hdr = held;
                        self.hdr.clear();
                        break;
                    }
                },
            }
        }
        // A header completed by the last bytes of the input is parsed now, so a zero-length
        // frame is reported as soon as its header is whole.
        if let State::Header = self.state
            && let Ok(h) = parse_header(&self.hdr)
        {
            self.hdr.clear();
            at += self.begin_frame(h, &[], out);
        }
        at
    }

    /// `invalid_length` anomaly + desync (RFC 6455 §5.2: the MSB of a 64-bit length must be 0).
    fn invalid_length(&mut self, out: &mut dyn FnMut(FrameEvent<'_>)) {
        out(FrameEvent::Anomaly {
            kind: "invalid_length",
            detail: "64-bit payload length with the most significant bit set (RFC 6455 §5.2)"
                .to_string(),
        });
        out(FrameEvent::Desync { lost: 0 });
        self.enter_search();
    }

    /// Starts a frame whose header was just read; `body` is what follows it in this chunk.
    /// Returns how many bytes of `body` were consumed.
    fn begin_frame(
        &mut self,
        h: FrameHeader,
        body: &[u8],
        out: &mut dyn FnMut(FrameEvent<'_>),
    ) -> usize {
        self.frames = self.frames.saturating_add(1);
        self.check_masking(&h, out);
        if h.payload_len > self.max_frame && !self.too_large_reported {
            self.too_large_reported = true;
            out(FrameEvent::Anomaly {
                kind: "frame_too_large",
                detail: format!(
                    "frame #{} declares {} payload bytes; only the first {} are kept",
                    self.frames, h.payload_len, self.max_frame
                ),
            });
        }
        // Fast path: the whole frame is in this chunk and within the cap.
        if h.payload_len <= self.max_frame
            && let Ok(n) = usize::try_from(h.payload_len)
            && let Some(p) = body.get(..n)
        {
            match h.mask {
                None => out(FrameEvent::Frame {
                    header: h,
                    payload: p,
                    lost: 0,
                    skipped: 0,
                }),
                Some(key) => {
                    let mut buf = UNMASKED.take();
                    buf.clear();
                    buf.extend_from_slice(p);
                    unmask(&mut buf, key, 0);
                    out(FrameEvent::Frame {
                        header: h,
                        payload: &buf,
                        lost: 0,
                        skipped: 0,
                    });
                    if buf.capacity() > UNMASKED_RETAIN {
                        buf = Vec::new();
                    }
                    UNMASKED.set(buf);
                }
            }
            self.state = State::Header;
            return n;
        }
        out(FrameEvent::Begin { header: h });
        let cur = Current {
            header: h,
            pos: 0,
            lost: 0,
            skipped: 0,
            keeping: true,
        };
        self.state = State::Payload(cur);
        self.payload_bytes(cur, body, out)
    }

    /// Takes payload bytes of the frame in progress from `input`; returns bytes consumed.
    fn payload_bytes(
        &mut self,
        mut cur: Current,
        input: &[u8],
        out: &mut dyn FnMut(FrameEvent<'_>),
    ) -> usize {
        let remaining = cur.header.payload_len.saturating_sub(cur.pos);
        let n = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(input.len());
        let chunk = input.get(..n).unwrap_or(&[]);
        let kept = if cur.keeping {
            // Bytes given so far: everything before `pos` that was neither lost nor skipped.
            let given = cur.pos.saturating_sub(cur.lost).saturating_sub(cur.skipped);
            let room = self.max_frame.saturating_sub(given);
            let k = usize::try_from(room).unwrap_or(usize::MAX).min(n);
            let piece = chunk.get(..k).unwrap_or(&[]);
            if !piece.is_empty() {
                match cur.header.mask {
                    None => out(FrameEvent::Data { bytes: piece }),
                    Some(key) => {
                        let mut buf = UNMASKED.take();
                        buf.clear();
                        buf.extend_from_slice(piece);
                        unmask(&mut buf, key, cur.pos);
                        out(FrameEvent::Data { bytes: &buf });
                        if buf.capacity() > UNMASKED_RETAIN {
                            buf = Vec::new();
                        }
                        UNMASKED.set(buf);
                    }
                }
            }
            k
        } else {
            0
        };
        cur.skipped = cur.skipped.saturating_add((n - kept) as u64);
        cur.pos = cur.pos.saturating_add(n as u64);
        self.state = State::Payload(cur);
        if cur.pos >= cur.header.payload_len {
            self.finish_frame(cur, out);
        }
        n
    }

    fn finish_frame(&mut self, cur: Current, out: &mut dyn FnMut(FrameEvent<'_>)) {
        out(FrameEvent::End {
            header: cur.header,
            lost: cur.lost,
            skipped: cur.skipped,
        });
        self.state = State::Header;
    }

    /// RFC 6455 §5.1: client-to-server frames are masked, server-to-client frames are not.
    fn check_masking(&mut self, h: &FrameHeader, out: &mut dyn FnMut(FrameEvent<'_>)) {
        let masked = h.mask.is_some();
        if masked {
            self.masked_frames = self.masked_frames.saturating_add(1);
        } else {
            self.unmasked_frames = self.unmasked_frames.saturating_add(1);
        }
        if masked != self.client_to_server && !self.mask_reported {
            self.mask_reported = true;
            let (kind, what) = if self.client_to_server {
                (
                    "unmasked_client_frame",
                    "client-to-server frame without a masking key",
                )
            } else {
                (
                    "masked_server_frame",
                    "server-to-client frame with a masking key",
                )
            };
            out(FrameEvent::Anomaly {
                kind,
                detail: format!(
                    "{what} (RFC 6455 §5.1), first at frame #{}; reported once",
                    self.frames
                ),
            });
        }
    }

    /// Whether frames of this direction are expected masked when searching: per RFC 6455 §5.1,
    /// unless every frame seen so far broke that rule (then follow the peer's habit).
    fn expect_masked(&self) -> bool {
        if self.client_to_server {
            !(self.unmasked_frames > 0 && self.masked_frames == 0)
        } else {
            self.masked_frames > 0 && self.unmasked_frames == 0
        }
    }

    fn plausible(&self, h: &FrameHeader) -> bool {
        // An empty non-final continuation frame is legal but carries nothing, and two zero
        // bytes (unmasked) read as one: counting it would let a run of zeros in a lost frame's
        // payload pass for framing.
        let empty_fragment = h.opcode == opcode::CONTINUATION && !h.fin && h.payload_len == 0;
        !empty_fragment
            && opcode::is_defined(h.opcode)
            && h.rsv & 0b011 == 0
            && h.mask.is_some() == self.expect_masked()
            && (!h.is_control() || (h.fin && h.payload_len <= 125))
            && !h.non_minimal_length()
    }

    /// Judges position 0 of `buf` as a frame start; `at_end`: no more bytes in this push.
    fn candidate(&self, buf: &[u8], at_end: bool) -> Verdict {
        let h = match parse_header(buf) {
            Ok(h) => h,
            Err(HeaderError::Incomplete(_)) => return Verdict::NeedMore,
            Err(HeaderError::LengthMsbSet) => return Verdict::Reject,
        };
        if !self.plausible(&h) {
            return Verdict::Reject;
        }
        let end = u64::from(h.header_len).saturating_add(h.payload_len);
        // Verification needs the whole frame plus the next header in the window.
        if end.saturating_add(14) > SEARCH_MAX as u64 {
            return Verdict::Reject;
        }
        // `end` < SEARCH_MAX, so it fits in usize.
        let end = end as usize;
        match buf.len().cmp(&end) {
            std::cmp::Ordering::Less => Verdict::NeedMore,
            std::cmp::Ordering::Equal if at_end => Verdict::Accept,
            std::cmp::Ordering::Equal => Verdict::NeedMore,
            std::cmp::Ordering::Greater => match parse_header(buf.get(end..).unwrap_or(&[])) {
                Ok(next) if self.plausible(&next) => Verdict::Accept,
                Ok(_) | Err(HeaderError::LengthMsbSet) => Verdict::Reject,
                Err(HeaderError::Incomplete(_)) => Verdict::NeedMore,
            },
        }
    }

    /// Appends what fits of `input` to the search window and scans it. On success the state is
    /// `Header` and `search` holds the bytes to replay from the found boundary. Returns bytes of
    /// `input` consumed.
    ///
    /// Positions that need more data to be judged stay `pending` without blocking later ones:
    /// the earliest position that verifies wins, so one false candidate claiming a long frame
    /// does not hold up resynchronisation on the real boundary behind it. Positions already
    /// rejected are never judged again, so each push costs time in proportion to new bytes
    /// plus the pending positions (at most [`MAX_PENDING`]).
    fn search_feed(&mut self, input: &[u8], out: &mut dyn FnMut(FrameEvent<'_>)) -> usize {
        let take = SEARCH_MAX
            .saturating_sub(self.search.len())
            .min(input.len());
        self.search
            .extend_from_slice(input.get(..take).unwrap_or(&[]));
        let at_end = take == input.len();
        self.search_dirty = false;

        let mut found = None;
        let mut pending = std::mem::take(&mut self.pending);
        let mut i = 0;
        while let Some(&idx) = pending.get(i) {
            match self.candidate(self.search.get(idx..).unwrap_or(&[]), at_end) {
                Verdict::Accept => {
                    found = Some(idx);
                    break;
                }
                Verdict::Reject => {
                    pending.remove(i);
                }
                Verdict::NeedMore => i += 1,
            }
        }
        if found.is_none() {
            while let Some(rest) = self.search.get(self.scan_pos..).filter(|r| !r.is_empty()) {
                match self.candidate(rest, at_end) {
                    Verdict::Accept => {
                        found = Some(self.scan_pos);
                        break;
                    }
                    Verdict::Reject => {}
                    Verdict::NeedMore => {
                        if pending.len() >= MAX_PENDING {
                            // Give up on the oldest undecided position to stay bounded.
                            pending.remove(0);
                        }
                        pending.push(self.scan_pos);
                    }
                }
                self.scan_pos += 1;
            }
        }

        // Everything before the earliest position still in play is ruled out.
        let mut keep_from = match found {
            Some(q) => q,
            None => pending.first().copied().unwrap_or(self.scan_pos),
        };
        if found.is_none() && keep_from == 0 && take == 0 && self.search.len() >= SEARCH_MAX {
            // Cannot happen (every candidate that needs more than the window is rejected),
            // but never spin: give up on the first byte.
            keep_from = 1;
            pending.retain(|&p| p >= 1);
        }
        let keep_from = keep_from.min(self.search.len());
        self.discarded = self.discarded.saturating_add(keep_from as u64);
        self.search.drain(..keep_from);
        self.scan_pos = self.scan_pos.saturating_sub(keep_from);
        if found.is_some() {
            pending.clear();
            self.scan_pos = 0;
            out(FrameEvent::Resync {
                discarded: self.discarded,
            });
            self.discarded = 0;
            self.state = State::Header;
        } else {
            for p in pending.iter_mut() {
                *p -= keep_from;
            }
        }
        self.pending = pending;
        take
    }

    /// Decodes the search window from the boundary just found. If framing is lost again
    /// inside it, the rest becomes the new search window (scanned on the next loop turn).
    fn replay(&mut self, out: &mut dyn FnMut(FrameEvent<'_>)) {
        let mut buf = std::mem::take(&mut self.search);
        let used = self.process_synced(&buf, out);
        buf.drain(..used.min(buf.len()));
        // `process_synced` may have moved held header bytes into `search` on desync; they come
        // before the unconsumed rest of `buf`.
        let mut held = std::mem::take(&mut self.search);
        held.extend_from_slice(&buf);
        self.scan_pos = 0;
        self.pending.clear();
        self.search_dirty = !held.is_empty();
        if held.capacity() >= buf.capacity() {
            self.search = held;
        } else {
            buf.clear();
            buf.extend_from_slice(&held);
            self.search = buf;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::frame::{encode_header, minimal_header_len};
    use crate::ws::mask::unmask_naive;

    #[derive(Debug, PartialEq, Eq, Clone)]
    enum Ev {
        Frame {
            op: u8,
            fin: bool,
            payload: Vec<u8>,
            lost: u64,
            skipped: u64,
        },
        /// A frame begun and not yet ended.
        Open {
            op: u8,
            fin: bool,
            payload: Vec<u8>,
        },
        Desync(u64),
        Resync(u64),
        Anomaly(&'static str),
    }

    fn collect(ev: FrameEvent<'_>, v: &mut Vec<Ev>) {
        let e = match ev {
            FrameEvent::Frame {
                header,
                payload,
                lost,
                skipped,
            } => {
                assert_eq!(payload.len() as u64 + lost + skipped, header.payload_len);
                Ev::Frame {
                    op: header.opcode,
                    fin: header.fin,
                    payload: payload.to_vec(),
                    lost,
                    skipped,
                }
            }
            // A frame in pieces is gathered here, so the tests read it as one frame.
            FrameEvent::Begin { header } => Ev::Open {
                op: header.opcode,
                fin: header.fin,
                payload: Vec::new(),
            },
            FrameEvent::Data { bytes } => {
                match v.last_mut() {
                    Some(Ev::Open { payload, .. }) => payload.extend_from_slice(bytes),
                    other => panic!("data outside a frame: {other:?}"),
                }
                return;
            }
            FrameEvent::End {
                header,
                lost,
                skipped,
            } => match v.pop() {
                Some(Ev::Open { op, fin, payload }) => {
                    assert_eq!(payload.len() as u64 + lost + skipped, header.payload_len);
                    assert_eq!((op, fin), (header.opcode, header.fin));
                    Ev::Frame {
                        op,
                        fin,
                        payload,
                        lost,
                        skipped,
                    }
                }
                other => panic!("end outside a frame: {other:?}"),
            },
            FrameEvent::Desync { lost } => Ev::Desync(lost),
            FrameEvent::Resync { discarded } => Ev::Resync(discarded),
            FrameEvent::Anomaly { kind, .. } => Ev::Anomaly(kind),
        };
        v.push(e);
    }

    fn frame(op: u8, fin: bool, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let h = FrameHeader {
            fin,
            rsv: 0,
            opcode: op,
            mask,
            payload_len: payload.len() as u64,
            header_len: minimal_header_len(payload.len() as u64, mask.is_some()),
        };
        let mut v = Vec::new();
        encode_header(&h, &mut v);
        let start = v.len();
        v.extend_from_slice(payload);
        if let Some(k) = mask {
            unmask_naive(&mut v[start..], k, 0);
        }
        v
    }

    fn data_frame(op: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Ev {
        let _ = mask;
        Ev::Frame {
            op,
            fin: true,
            payload: payload.to_vec(),
            lost: 0,
            skipped: 0,
        }
    }

    fn run(dec: &mut FrameDecoder, chunks: &[&[u8]]) -> Vec<Ev> {
        let mut v = Vec::new();
        for c in chunks {
            dec.push(c, &mut |e| collect(e, &mut v));
        }
        v
    }

    const K: [u8; 4] = [0xde, 0xad, 0xbe, 0xef];

    fn stream(client: bool) -> (Vec<u8>, Vec<Ev>) {
        let mask = client.then_some(K);
        let payloads: Vec<Vec<u8>> = vec![
            b"Hello".to_vec(),
            vec![],
            (0..200u8).collect(),
            (0..70_000u32).map(|i| (i % 253) as u8).collect(),
            b"x".to_vec(),
        ];
        let mut bytes = Vec::new();
        let mut evs = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            let op = if i % 2 == 0 {
                opcode::TEXT
            } else {
                opcode::BINARY
            };
            bytes.extend(frame(op, true, p, mask));
            evs.push(data_frame(op, p, mask));
        }
        bytes.extend(frame(opcode::PING, true, b"ping", mask));
        evs.push(data_frame(opcode::PING, b"ping", mask));
        (bytes, evs)
    }

    #[test]
    fn many_frames_in_one_push() {
        for client in [true, false] {
            let (bytes, want) = stream(client);
            let mut dec = FrameDecoder::new(client, &Limits::default());
            assert_eq!(run(&mut dec, &[&bytes]), want);
            assert_eq!(dec.buffered(), 0);
        }
    }

    #[test]
    fn split_at_every_byte() {
        let mask = Some(K);
        let mut bytes = frame(opcode::TEXT, true, b"Hello, world! masked and split", mask);
        bytes.extend(frame(opcode::BINARY, true, &[7u8; 300], mask));
        bytes.extend(frame(opcode::PONG, true, b"", mask));
        let want = vec![
            data_frame(opcode::TEXT, b"Hello, world! masked and split", mask),
            data_frame(opcode::BINARY, &[7u8; 300], mask),
            data_frame(opcode::PONG, b"", mask),
        ];
        for cut in 0..=bytes.len() {
            let mut dec = FrameDecoder::new(true, &Limits::default());
            let (a, b) = bytes.split_at(cut);
            assert_eq!(run(&mut dec, &[a, b]), want, "cut {cut}");
        }
        // One byte per push.
        let mut dec = FrameDecoder::new(true, &Limits::default());
        let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(run(&mut dec, &chunks), want);
        // Bigger stream, odd pieces.
        let (bytes, want) = stream(true);
        let mut dec = FrameDecoder::new(true, &Limits::default());
        let chunks: Vec<&[u8]> = bytes.chunks(1447).collect();
        assert_eq!(run(&mut dec, &chunks), want);
    }

    #[test]
    fn gap_inside_payload() {
        let p: Vec<u8> = (0..100u8).collect();
        let f1 = frame(opcode::BINARY, true, &p, Some(K));
        let f2 = frame(opcode::TEXT, true, b"after", Some(K));
        let mut dec = FrameDecoder::new(true, &Limits::default());
        let mut v = Vec::new();
        // Header + 30 payload bytes, 10 lost, then the rest.
        dec.push(&f1[..6 + 30], &mut |e| collect(e, &mut v));
        dec.gap(10, &mut |e| collect(e, &mut v));
        dec.push(&f1[6 + 40..], &mut |e| collect(e, &mut v));
        dec.push(&f2, &mut |e| collect(e, &mut v));
        assert_eq!(
            v,
            vec![
                Ev::Frame {
                    op: 2,
                    fin: true,
                    payload: p[..30].to_vec(),
                    lost: 10,
                    skipped: 60
                },
                data_frame(opcode::TEXT, b"after", Some(K)),
            ]
        );
        // A gap ending exactly at the frame end keeps the framing.
        let mut dec = FrameDecoder::new(true, &Limits::default());
        let mut v = Vec::new();
        dec.push(&f1[..6 + 95], &mut |e| collect(e, &mut v));
        dec.gap(5, &mut |e| collect(e, &mut v));
        dec.push(&f2, &mut |e| collect(e, &mut v));
        assert_eq!(v.len(), 2);
        assert_eq!(v[1], data_frame(opcode::TEXT, b"after", Some(K)));
    }

    #[test]
    fn gap_across_header_then_resync() {
        let mask = Some(K);
        let f1 = frame(opcode::TEXT, true, b"first frame payload", mask);
        let f2 = frame(opcode::TEXT, true, b"second frame, partly lost", mask);
        let f3 = frame(opcode::BINARY, true, &[0x81u8; 40], mask);
        let f4 = frame(opcode::PING, true, b"p", mask);
        let mut dec = FrameDecoder::new(true, &Limits::default());
        let mut v = Vec::new();
        dec.push(&f1[..10], &mut |e| collect(e, &mut v));
        // Lose the end of f1 and the start of f2 (its header).
        let lost = (f1.len() - 10) + 4;
        dec.gap(lost as u64, &mut |e| collect(e, &mut v));
        dec.push(&f2[4..], &mut |e| collect(e, &mut v));
        dec.push(&f3, &mut |e| collect(e, &mut v));
        dec.push(&f4, &mut |e| collect(e, &mut v));
        assert_eq!(
            v,
            vec![
                Ev::Frame {
                    op: 1,
                    fin: true,
                    payload: b"firs".to_vec(),
                    lost: (f1.len() - 10) as u64,
                    skipped: 0
                },
                Ev::Desync(4),
                Ev::Resync((f2.len() - 4) as u64),
                data_frame(opcode::BINARY, &[0x81u8; 40], mask),
                data_frame(opcode::PING, b"p", mask),
            ]
        );
        // Gap while at a boundary, then everything in one push.
        let mut dec = FrameDecoder::new(false, &Limits::default());
        let mut v = Vec::new();
        dec.gap(3, &mut |e| collect(e, &mut v));
        let g1 = frame(opcode::TEXT, true, b"abcdef", None);
        let g2 = frame(opcode::TEXT, true, b"ghi", None);
        let mut all = g1[3..].to_vec();
        all.extend(&g2);
        all.extend(&g1);
        dec.push(&all, &mut |e| collect(e, &mut v));
        assert_eq!(v[0], Ev::Desync(3));
        assert_eq!(v[1], Ev::Resync((g1.len() - 3) as u64));
        assert_eq!(
            &v[2..],
            &[data_frame(1, b"ghi", None), data_frame(1, b"abcdef", None)]
        );
    }

    #[test]
    fn mid_stream_start_resyncs_at_push_end() {
        let mut dec = FrameDecoder::new(false, &Limits::default());
        dec.start_mid_stream();
        let f = frame(opcode::TEXT, true, b"whole frame", None);
        let mut chunk = vec![0xffu8, 0xff, 0x13];
        chunk.extend(&f);
        let v = run(&mut dec, &[&chunk]);
        assert_eq!(v, vec![Ev::Resync(3), data_frame(1, b"whole frame", None)]);
    }

    #[test]
    fn resync_skips_runs_of_zero_bytes() {
        // Zero bytes read as empty non-final continuation frames (`00 00`), each followed by
        // another: a run of them inside a lost frame's payload must not pass for framing.
        let mut dec = FrameDecoder::new(false, &Limits::default());
        dec.start_mid_stream();
        let f = frame(opcode::TEXT, true, b"after", None);
        let mut chunk = vec![0u8; 64];
        chunk.extend([0xcd; 10]);
        chunk.extend(&f);
        let v = run(&mut dec, &[&chunk]);
        assert_eq!(v, vec![Ev::Resync(74), data_frame(1, b"after", None)]);
        // An empty final continuation frame (how some senders end a fragmented message) is
        // still a boundary to resynchronise on.
        let mut dec = FrameDecoder::new(false, &Limits::default());
        dec.start_mid_stream();
        let mut chunk = vec![0xcd, 0xcd, 0x80, 0x00];
        chunk.extend(&f);
        let v = run(&mut dec, &[&chunk]);
        assert_eq!(v[0], Ev::Resync(2));
        assert_eq!(v.last(), Some(&data_frame(1, b"after", None)));
    }

    #[test]
    fn huge_declared_length() {
        let mut dec = FrameDecoder::new(false, &Limits::default());
        // After the bad header: bytes that cannot start a server frame (reserved opcode / masked).
        let mut bytes = vec![0x82, 0x7F, 0x80, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        bytes.extend(frame(opcode::TEXT, true, b"ok", None));
        bytes.extend(frame(opcode::TEXT, true, b"ok2", None));
        let v = run(&mut dec, &[&bytes]);
        assert_eq!(
            v,
            vec![
                Ev::Anomaly("invalid_length"),
                Ev::Desync(0),
                Ev::Resync(10),
                data_frame(1, b"ok", None),
                data_frame(1, b"ok2", None),
            ]
        );
        // A legal but enormous length: no allocation by it, bytes kept up to the cap only.
        let limits = Limits {
            max_frame_bytes: 16,
            ..Limits::default()
        };
        let mut dec = FrameDecoder::new(false, &limits);
        let v = run(
            &mut dec,
            &[
                &[0x82, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
                &[1u8; 1000],
                &[2u8; 1000],
            ],
        );
        assert_eq!(
            v,
            vec![
                Ev::Anomaly("frame_too_large"),
                Ev::Open {
                    op: 2,
                    fin: true,
                    payload: vec![1u8; 16]
                }
            ]
        );
        // Nothing of the payload is held by the decoder itself.
        assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn frame_over_cap_is_cut_and_skipped() {
        let limits = Limits {
            max_frame_bytes: 10,
            ..Limits::default()
        };
        let p: Vec<u8> = (0..50u8).collect();
        let mut bytes = frame(opcode::BINARY, true, &p, Some(K));
        bytes.extend(frame(opcode::BINARY, true, &p, Some(K)));
        bytes.extend(frame(opcode::TEXT, true, b"small", Some(K)));
        let mut dec = FrameDecoder::new(true, &limits);
        let chunks: Vec<&[u8]> = bytes.chunks(7).collect();
        let big = Ev::Frame {
            op: 2,
            fin: true,
            payload: p[..10].to_vec(),
            lost: 0,
            skipped: 40,
        };
        assert_eq!(
            run(&mut dec, &chunks),
            vec![
                Ev::Anomaly("frame_too_large"),
                big.clone(),
                big,
                data_frame(1, b"small", Some(K))
            ]
        );
    }

    #[test]
    fn wrong_masking_side() {
        let mut dec = FrameDecoder::new(true, &Limits::default());
        let mut bytes = frame(opcode::TEXT, true, b"a", None);
        bytes.extend(frame(opcode::TEXT, true, b"b", None));
        let v = run(&mut dec, &[&bytes]);
        assert_eq!(
            v,
            vec![
                Ev::Anomaly("unmasked_client_frame"),
                data_frame(1, b"a", None),
                data_frame(1, b"b", None)
            ]
        );
        let mut dec = FrameDecoder::new(false, &Limits::default());
        let v = run(&mut dec, &[&frame(opcode::TEXT, true, b"masked", Some(K))]);
        assert_eq!(
            v,
            vec![
                Ev::Anomaly("masked_server_frame"),
                data_frame(1, b"masked", None)
            ]
        );
    }

    #[test]
    fn search_window_is_bounded() {
        let mut dec = FrameDecoder::new(true, &Limits::default());
        let mut v = Vec::new();
        dec.gap(1, &mut |e| collect(e, &mut v));
        // Unmasked bytes can never start a client frame: nothing may pile up.
        let junk = vec![0x0Fu8; 3 * SEARCH_MAX];
        dec.push(&junk, &mut |e| collect(e, &mut v));
        assert!(dec.buffered() <= 14, "buffered {}", dec.buffered());
        // Masked candidate with a long (but verifiable) frame: held at most SEARCH_MAX.
        let f = frame(opcode::BINARY, true, &vec![5u8; 100_000], Some(K));
        for c in f.chunks(1000) {
            dec.push(c, &mut |e| collect(e, &mut v));
            assert!(dec.buffered() <= SEARCH_MAX);
        }
        assert_eq!(v.first(), Some(&Ev::Desync(1)));
        assert!(v.contains(&Ev::Resync(3 * SEARCH_MAX as u64)));
        assert_eq!(v.last(), Some(&data_frame(2, &vec![5u8; 100_000], Some(K))));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Any chunking of a valid stream gives exactly its frames.
        #[test]
        fn any_chunking(
            frames in proptest::collection::vec(
                (0u8..3, proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)), 1..12),
            cuts in proptest::collection::vec(1usize..200, 1..50),
            client: bool,
        ) {
            let mask = client.then_some(K);
            let mut bytes = Vec::new();
            let mut want = Vec::new();
            for (op, p) in &frames {
                let op = [opcode::TEXT, opcode::BINARY, opcode::PING][usize::from(*op)];
                let p = if op == opcode::PING { &p[..p.len().min(125)] } else { &p[..] };
                bytes.extend(frame(op, true, p, mask));
                want.push(data_frame(op, p, mask));
            }
            let mut dec = FrameDecoder::new(client, &Limits::default());
            let mut v = Vec::new();
            let mut at = 0;
            for c in cuts.iter().cycle() {
                if at >= bytes.len() { break; }
                let end = (at + c).min(bytes.len());
                dec.push(&bytes[at..end], &mut |e| collect(e, &mut v));
                at = end;
            }
            proptest::prop_assert_eq!(v, want);
            proptest::prop_assert_eq!(dec.buffered(), 0);
        }

        /// Arbitrary bytes and gaps: no panic, payload accounting holds (checked in `collect`),
        /// the buffer stays bounded.
        #[test]
        fn arbitrary_input_and_gaps(
            ops in proptest::collection::vec(
                (proptest::prelude::any::<bool>(),
                 proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
                 0u64..5000), 1..30),
            client: bool,
        ) {
            let limits = Limits { max_frame_bytes: 256, ..Limits::default() };
            let mut dec = FrameDecoder::new(client, &limits);
            let mut v = Vec::new();
            for (is_gap, bytes, gap) in ops {
                if is_gap {
                    dec.gap(gap, &mut |e| collect(e, &mut v));
                } else {
                    dec.push(&bytes, &mut |e| collect(e, &mut v));
                }
                proptest::prop_assert!(dec.buffered() <= SEARCH_MAX + 256 + 14);
            }
        }
    }
}
