//! Message assembly: takes one direction's frames, whole or in pieces, and gives messages
//! (fragments joined, permessage-deflate inflated, text checked as UTF-8) and control frames,
//! with protocol violations as anomalies.
//!
//! # Nothing gathered that is not shown
//!
//! A message's payload is taken as it arrives: counted against the cap, inflated when
//! compressed, checked as UTF-8 across piece boundaries, and only the decoded bytes the caller
//! asked to see are kept (`keep`: none for a summary, the start for a preview, all for full
//! payloads). So memory does not grow with message sizes, and a message of one frame in one
//! piece (most messages) is decoded straight from the frame, uncopied. What a frame reports is
//! only said when it ends, so a frame in pieces reports exactly what it would in one piece.
//!
//! # Rules applied
//!
//! * Text/binary frames start a message, continuation frames extend it, FIN ends it
//!   (RFC 6455 §5.4). Control frames may come between fragments and pass through at once.
//! * A message is compressed when RSV1 is set on its first frame and permessage-deflate was
//!   negotiated (RFC 7692 §6). Its frames' payloads form one DEFLATE stream, inflated in
//!   order (RFC 7692 §7.2.2). Uncompressed messages between compressed ones do not touch the
//!   LZ77 window.
//! * A frame that lost bytes makes its message `Incomplete` (no data is shown); if it was
//!   compressed the inflater's history is lost too, and later messages are only shown when they
//!   provably decode without it (see [`crate::deflate`]).
//! * Stored data is capped at `max_message_bytes` (the rest is counted); data stays an exact
//!   prefix, so once a frame was cut at the frame cap nothing later is appended.
//!
//! # Anomaly kinds (snake_case, stable)
//!
//! | kind | when |
//! |---|---|
//! | `continuation_without_start` | continuation frame with no message in progress (RFC 6455 §5.4); not reported right after a desync, where the start was simply lost |
//! | `data_frame_inside_fragmented_message` | text/binary frame while a fragmented message is open (RFC 6455 §5.4); the open message is emitted `Incomplete` |
//! | `control_frame_fragmented` | control frame without FIN (RFC 6455 §5.5) |
//! | `control_frame_too_large` | control frame payload over 125 bytes (RFC 6455 §5.5) |
//! | `reserved_opcode` | opcode 3-7 or 0xB-0xF (RFC 6455 §5.2); the frame is dropped |
//! | `rsv_bits_without_extension` | RSV1 without negotiated permessage-deflate, or RSV2/RSV3 at all (RFC 6455 §5.2) |
//! | `rsv1_on_continuation` | RSV1 on a continuation frame (RFC 7692 §6.1) |
//! | `rsv1_on_control_frame` | RSV1 on a control frame (RFC 7692 §6.1) |
//! | `non_minimal_length` | payload length not in its shortest form (RFC 6455 §5.2) |
//! | `invalid_utf8_text` | a decoded text message (complete, or truncated before the bad byte) is not UTF-8 (RFC 6455 §8.1) |
//! | `inflate_error` | a compressed message is not valid DEFLATE |
//! | `inflate_bound_exceeded` | a message inflates past the decoding bound (see [`crate::deflate::hard_bound`]) |
//! | `compressed_message_too_large` | a compressed message exceeds the cap before inflation, so it cannot be inflated |
//! | `message_too_large` | a message exceeds `max_message_bytes` (first time only) |

use std::cell::Cell;

use crate::config::Limits;
use crate::deflate::{InflateError, Inflater, Inflating, Output};
use crate::ws::frame::{FrameHeader, opcode};

/// Capacity the shared decoded-message buffer keeps between messages: the inflater offers
/// output in 64 KiB steps, so typical messages decode without a reallocation.
const DECODED_RETAIN: usize = 256 << 10;

thread_local! {
    /// Inflated plaintext of the message being emitted, shared by every direction of this
    /// thread: a message's plaintext is only lent to the caller while it is emitted, so one
    /// buffer per thread serves all connections, instead of one per direction that would grow
    /// and shrink on every compressed message. Taken out and put back, so no borrow can fail.
    static DECODED: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

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
    /// Decoded length (exact when `Complete` or `Truncated`, except that it is a lower bound
    /// when an `inflate_bound_exceeded` anomaly follows the message).
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
    ///
    /// `payload.len() < header.payload_len` when the capture lost part of it or it exceeded the
    /// frame cap; the bytes given are then an exact prefix.
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

/// The message in progress.
struct Partial {
    opcode: u8,
    compressed: bool,
    frames: u32,
    wire_len: u64,
    /// A frame of it lost bytes in the capture.
    lost: bool,
    /// Its data stopped growing (cap reached or a frame was cut): what was seen is a prefix.
    cut: bool,
    /// Payload bytes as on the wire taken into the message (at most the message cap).
    taken: u64,
    /// Its decoded bytes so far.
    plain: Plain,
    /// Its inflation, once compressed bytes arrived.
    run: Option<Inflating>,
}

impl Partial {
    fn new(opcode: u8, compressed: bool) -> Partial {
        Partial {
            opcode,
            compressed,
            frames: 0,
            wire_len: 0,
            lost: false,
            cut: false,
            taken: 0,
            plain: Plain::new(opcode == opcode::TEXT),
            run: None,
        }
    }
}

/// A message's decoded bytes as they come: counted up to the message cap, checked as UTF-8
/// when text, and kept up to what the caller wants to see.
struct Plain {
    /// Decoded bytes looked at (at most the message cap).
    seen: u64,
    utf8: Option<Utf8Stream>,
}

impl Plain {
    fn new(text: bool) -> Plain {
        Plain {
            seen: 0,
            utf8: text.then(Utf8Stream::default),
        }
    }

    /// Takes the next decoded bytes; returns how many fit under the cap `max`.
    fn take(&mut self, bytes: &[u8], max: u64, keep: usize, kept: &mut Vec<u8>) -> usize {
        let room = max.saturating_sub(self.seen);
        let k = usize::try_from(room).unwrap_or(usize::MAX).min(bytes.len());
        let b = bytes.get(..k).unwrap_or(&[]);
        if let Some(u) = self.utf8.as_mut() {
            u.push(b);
        }
        let want = keep.saturating_sub(kept.len()).min(k);
        kept.extend_from_slice(b.get(..want).unwrap_or(&[]));
        self.seen = self.seen.saturating_add(k as u64);
        k
    }
}

/// UTF-8 validation of bytes arriving in pieces: a character split between two pieces is
/// carried (at most 3 bytes) and checked when the rest arrives.
#[derive(Default)]
struct Utf8Stream {
    carry: [u8; 4],
    carried: usize,
    bad: bool,
}

impl Utf8Stream {
    fn push(&mut self, mut b: &[u8]) {
        if self.bad || b.is_empty() {
            return;
        }
        if self.carried > 0 {
            let n = self.carried;
            let k = (4 - n).min(b.len());
            let mut tmp = self.carry;
            if let (Some(dst), Some(src)) = (tmp.get_mut(n..n + k), b.get(..k)) {
                dst.copy_from_slice(src);
            }
            match simdutf8::compat::from_utf8(tmp.get(..n + k).unwrap_or(&[])) {
                Ok(_) => {
                    self.carried = 0;
                    b = b.get(k..).unwrap_or(&[]);
                }
                Err(e) if e.error_len().is_some() && e.valid_up_to() == 0 => {
                    self.bad = true;
                    return;
                }
                Err(e) if e.valid_up_to() > 0 => {
                    // The carried character is complete; what follows it is checked below.
                    self.carried = 0;
                    b = b.get(e.valid_up_to().saturating_sub(n)..).unwrap_or(&[]);
                }
                Err(_) => {
                    // Still one unfinished character: every byte of `b` went into it.
                    self.carry = tmp;
                    self.carried = n + k;
                    return;
                }
            }
        }
        // The fast check first: valid input (nearly all) never pays for error details.
        if simdutf8::basic::from_utf8(b).is_ok() {
            return;
        }
        if let Err(e) = simdutf8::compat::from_utf8(b) {
            if e.error_len().is_some() {
                self.bad = true;
            } else {
                let rest = b.get(e.valid_up_to()..).unwrap_or(&[]);
                let n = rest.len().min(4);
                if let Some(dst) = self.carry.get_mut(..n) {
                    dst.copy_from_slice(rest.get(..n).unwrap_or(&[]));
                }
                self.carried = n;
            }
        }
    }

    /// The bytes pushed are valid UTF-8.
    fn complete(&self) -> bool {
        !self.bad && self.carried == 0
    }

    /// The bytes pushed are valid UTF-8 up to a character cut at the end (a prefix).
    fn prefix(&self) -> bool {
        !self.bad
    }
}

/// The frame begun and not yet ended (see [`MessageAssembler::begin`]): what its bytes are
/// for. What it reports is only said when it ends, so a frame in pieces reports exactly what
/// the same frame in one piece would, in the same order.
enum Open {
    /// A reserved opcode: dropped.
    Reserved,
    /// A control frame: its payload, gathered (a legal one is at most 125 bytes).
    Control(Vec<u8>),
    /// A continuation with no message in progress: swallowed; `report` tells whether that is a
    /// violation to report.
    Orphan { report: bool },
    /// Part of the message in progress. `replaced`: a fragmented message that was open when
    /// this data frame started it anew, to be reported as incomplete.
    Data { replaced: Option<Box<Partial>> },
}

/// One direction's message assembler.
pub struct MessageAssembler {
    deflate: Option<DeflateDir>,
    inflater: Option<Inflater>,
    max_message: u64,
    /// Decoded bytes of each message to show in [`Message::data`].
    keep: usize,
    cur: Option<Partial>,
    /// The kept decoded bytes of a message arriving over several calls. A message of one
    /// frame that arrived in one piece is decoded without it.
    buf: Vec<u8>,
    open: Option<Open>,
    /// Continuation frames here belong to a message whose start was lost (after a desync).
    orphan: bool,
    too_large_reported: bool,
}

fn anomaly(out: &mut dyn FnMut(MessageEvent<'_>), kind: &'static str, detail: String) {
    out(MessageEvent::Anomaly { kind, detail });
}

/// Where a message's decoded bytes are when it is reported.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// The frame itself: one uncompressed frame in one piece, lent uncopied.
    Frame(&'a [u8]),
    /// The thread's decoding buffer: one compressed frame in one piece.
    Thread,
    /// The direction's buffer, filled as the message arrived.
    Kept,
}

/// The result of decoding a message's data.
struct Decoded {
    status: MessageStatus,
    len: u64,
    history_reset: bool,
    after: Option<(&'static str, String)>,
}

impl MessageAssembler {
    /// `deflate` is `Some` when permessage-deflate was negotiated for the connection (RSV1 is
    /// then legal on first frames); `None` otherwise. `keep`: how many decoded bytes of each
    /// message [`Message::data`] shows (`usize::MAX` for all, up to the message cap); fewer
    /// means less copying, and nothing of a large message held while it arrives.
    ///
    /// For a connection picked up mid-stream, call [`MessageAssembler::desync`] before the
    /// first frame: the deflate history is then unknown, and continuation frames whose message
    /// started before the capture are not reported as violations.
    pub fn new(deflate: Option<DeflateDir>, limits: &Limits, keep: usize) -> MessageAssembler {
        MessageAssembler {
            deflate,
            inflater: deflate.map(|d| Inflater::new(d.context_takeover)),
            max_message: limits.max_message_bytes,
            keep,
            cur: None,
            buf: Vec::new(),
            open: None,
            orphan: false,
            too_large_reported: false,
        }
    }

    /// Feeds one whole frame (`lost` payload bytes missing from the capture, `skipped` beyond
    /// the cap).
    pub fn frame(
        &mut self,
        header: &FrameHeader,
        payload: &[u8],
        lost: u64,
        skipped: u64,
        out: &mut dyn FnMut(MessageEvent<'_>),
    ) {
        self.begin(header);
        self.end_frame(header, Some(payload), lost, skipped, out);
    }

    /// A frame whose payload arrives in pieces starts: [`MessageAssembler::data`] takes the
    /// pieces, [`MessageAssembler::end`] ends it.
    pub fn begin(&mut self, header: &FrameHeader) {
        let op = header.opcode;
        let open = if !opcode::is_defined(op) {
            Open::Reserved
        } else if header.is_control() {
            Open::Control(Vec::new())
        } else if op == opcode::CONTINUATION {
            if self.cur.is_none() {
                let report = !self.orphan;
                // Swallow the rest of this headless message silently.
                self.orphan = !header.fin;
                Open::Orphan { report }
            } else {
                Open::Data { replaced: None }
            }
        } else {
            // TEXT or BINARY: a new message. An open fragmented one is dropped as incomplete,
            // and its partial inflation with it.
            let replaced = self.cur.take().map(|mut old| {
                old.lost = true;
                self.forget_inflation(&mut old);
                Box::new(old)
            });
            self.orphan = false;
            self.buf.clear();
            self.cur = Some(Partial::new(op, header.rsv1()));
            Open::Data { replaced }
        };
        self.open = Some(open);
    }

    /// The next payload bytes of the frame begun.
    pub fn data(&mut self, bytes: &[u8]) {
        match self.open.as_mut() {
            Some(Open::Control(v)) => v.extend_from_slice(bytes),
            Some(Open::Data { .. }) => self.take(bytes),
            _ => {}
        }
    }

    /// The frame begun ends (`lost` payload bytes missing from the capture, `skipped` received
    /// but not given).
    pub fn end(
        &mut self,
        header: &FrameHeader,
        lost: u64,
        skipped: u64,
        out: &mut dyn FnMut(MessageEvent<'_>),
    ) {
        self.end_frame(header, None, lost, skipped, out);
    }

    /// Ends the frame begun; `whole` is its payload when it came in one piece.
    fn end_frame(
        &mut self,
        header: &FrameHeader,
        whole: Option<&[u8]>,
        lost: u64,
        skipped: u64,
        out: &mut dyn FnMut(MessageEvent<'_>),
    ) {
        let op = header.opcode;
        if header.rsv & 0b011 != 0 {
            anomaly(
                out,
                "rsv_bits_without_extension",
                format!(
                    "RSV2/RSV3 set (rsv={:03b}) on opcode {op:#x}; no extension defines them",
                    header.rsv
                ),
            );
        }
        if header.non_minimal_length() {
            anomaly(
                out,
                "non_minimal_length",
                format!(
                    "payload length {} sent in a {}-byte header (RFC 6455 §5.2 requires the \
                     minimal form)",
                    header.payload_len, header.header_len
                ),
            );
        }
        let Some(open) = self.open.take() else {
            return;
        };
        match open {
            Open::Reserved => anomaly(
                out,
                "reserved_opcode",
                format!("opcode {op:#x} is reserved (RFC 6455 §5.2); frame ignored"),
            ),
            Open::Control(gathered) => {
                self.control_checks(header, out);
                out(MessageEvent::Control {
                    header: *header,
                    payload: whole.unwrap_or(&gathered),
                });
            }
            Open::Orphan { report } => {
                if header.rsv1() {
                    self.rsv1_misplaced(out, "rsv1_on_continuation", "continuation frame", op);
                }
                if report {
                    anomaly(
                        out,
                        "continuation_without_start",
                        "continuation frame with no message in progress (RFC 6455 §5.4)"
                            .to_string(),
                    );
                }
            }
            Open::Data { replaced } => {
                if op == opcode::CONTINUATION {
                    if header.rsv1() {
                        self.rsv1_misplaced(out, "rsv1_on_continuation", "continuation frame", op);
                    }
                } else {
                    if header.rsv1() && self.deflate.is_none() {
                        anomaly(
                            out,
                            "rsv_bits_without_extension",
                            "RSV1 set but permessage-deflate was not negotiated (RFC 6455 §5.2)"
                                .to_string(),
                        );
                    }
                    if let Some(old) = replaced {
                        anomaly(
                            out,
                            "data_frame_inside_fragmented_message",
                            format!(
                                "opcode {op:#x} frame while a fragmented message of {} frames \
                                 is open (RFC 6455 §5.4); the open message is dropped as \
                                 incomplete",
                                old.frames
                            ),
                        );
                        self.emit(*old, None, out);
                    }
                }
                match whole {
                    // A whole message in one frame (most messages): decoded straight from the
                    // frame's payload, nothing gathered.
                    Some(payload)
                        if header.fin
                            && self
                                .cur
                                .as_ref()
                                .is_some_and(|p| p.frames == 0 && p.taken == 0) =>
                    {
                        self.account(header, lost, skipped);
                        if let Some(p) = self.cur.take() {
                            self.emit(p, Some(payload), out);
                        }
                    }
                    _ => {
                        if let Some(payload) = whole {
                            self.take(payload);
                        }
                        self.account(header, lost, skipped);
                        if header.fin
                            && let Some(p) = self.cur.take()
                        {
                            self.emit(p, None, out);
                        }
                    }
                }
            }
        }
    }

    /// The direction's stream ended: what it holds for messages yet to come is given back.
    pub fn release(&mut self) {
        if let Some(inf) = self.inflater.as_mut() {
            inf.release();
        }
    }

    /// The stream lost sync (bytes lost where a header should be): any partial message is
    /// dropped as incomplete and, with context takeover, the inflater's history is lost.
    pub fn desync(&mut self, out: &mut dyn FnMut(MessageEvent<'_>)) {
        self.open = None;
        if let Some(mut p) = self.cur.take() {
            p.lost = true;
            self.emit(p, None, out);
        }
        // Frames lost in the hole may have been compressed: the window is unknown now.
        if let Some(inf) = self.inflater.as_mut() {
            inf.lose_history();
        }
        self.orphan = true;
    }

    fn control_checks(&self, header: &FrameHeader, out: &mut dyn FnMut(MessageEvent<'_>)) {
        let op = header.opcode;
        if !header.fin {
            anomaly(
                out,
                "control_frame_fragmented",
                format!("control frame (opcode {op:#x}) without FIN (RFC 6455 §5.5)"),
            );
        }
        if header.payload_len > 125 {
            anomaly(
                out,
                "control_frame_too_large",
                format!(
                    "control frame (opcode {op:#x}) with {} payload bytes, over 125 \
                     (RFC 6455 §5.5)",
                    header.payload_len
                ),
            );
        }
        if header.rsv1() {
            self.rsv1_misplaced(out, "rsv1_on_control_frame", "control frame", op);
        }
    }

    fn rsv1_misplaced(
        &self,
        out: &mut dyn FnMut(MessageEvent<'_>),
        kind: &'static str,
        what: &str,
        op: u8,
    ) {
        if self.deflate.is_some() {
            anomaly(
                out,
                kind,
                format!(
                    "RSV1 on a {what} (opcode {op:#x}); RFC 7692 §6.1 allows it only on the first frame of a data message"
                ),
            );
        } else {
            anomaly(
                out,
                "rsv_bits_without_extension",
                format!("RSV1 on a {what} (opcode {op:#x}) without a negotiated extension"),
            );
        }
    }

    /// Takes payload bytes of the message in progress: counted against the cap, and decoded
    /// (inflated when compressed) as they come.
    fn take(&mut self, bytes: &[u8]) {
        let (max, keep) = (self.max_message, self.keep);
        let Some(p) = self.cur.as_mut() else { return };
        if p.lost || p.cut || bytes.is_empty() {
            return;
        }
        let room = max.saturating_sub(p.taken);
        let k = usize::try_from(room).unwrap_or(usize::MAX).min(bytes.len());
        if k < bytes.len() {
            p.cut = true;
        }
        p.taken = p.taken.saturating_add(k as u64);
        let b = bytes.get(..k).unwrap_or(&[]);
        if !p.compressed {
            p.plain.take(b, max, keep, &mut self.buf);
        } else if let (Some(inf), false) = (self.inflater.as_mut(), p.cut) {
            // A compressed message over the cap is not inflated at all (it is reported
            // undecodable), so only a message within it is fed.
            let max_out = usize::try_from(max).unwrap_or(usize::MAX);
            let run = p.run.get_or_insert_with(|| inf.begin(max_out));
            let (plain, buf) = (&mut p.plain, &mut self.buf);
            inf.feed(run, b, &mut |d| {
                plain.take(d, max, keep, buf);
            });
        }
    }

    /// Counts a frame that ended into the message in progress.
    fn account(&mut self, header: &FrameHeader, lost: u64, skipped: u64) {
        let Some(p) = self.cur.as_mut() else { return };
        p.frames = p.frames.saturating_add(1);
        p.wire_len = p.wire_len.saturating_add(header.payload_len);
        if lost > 0 {
            p.lost = true;
        }
        if skipped > 0 {
            p.cut = true;
        }
    }

    /// A message that will not be decoded leaves the inflater: its partial inflation is
    /// abandoned, and the window counts as lost (the sender's moved on without us).
    fn forget_inflation(&mut self, p: &mut Partial) {
        if !p.compressed {
            return;
        }
        if let Some(inf) = self.inflater.as_mut() {
            match p.run.take() {
                Some(run) => inf.abandon(run),
                None => inf.lose_history(),
            }
        }
    }

    /// Decodes what is left of message `p` and reports it. `whole`: its only frame's payload,
    /// when that came in one piece (nothing was taken from it yet).
    fn emit(
        &mut self,
        mut p: Partial,
        whole: Option<&[u8]>,
        out: &mut dyn FnMut(MessageEvent<'_>),
    ) {
        let (max, keep) = (self.max_message, self.keep);
        let mut d = Decoded {
            status: MessageStatus::Incomplete,
            len: 0,
            history_reset: false,
            after: None,
        };
        // Where `data` lends from: what was kept as the message arrived unless said otherwise.
        let mut source = Source::Kept;
        let mut dec = DECODED.take();
        dec.clear();

        if p.lost {
            self.forget_inflation(&mut p);
            if !p.compressed {
                d.len = p.wire_len;
            }
        } else if !p.compressed {
            d.len = p.wire_len;
            if let Some(payload) = whole {
                let room = usize::try_from(max).unwrap_or(usize::MAX);
                let data = payload.get(..room.min(payload.len())).unwrap_or(&[]);
                if data.len() < payload.len() {
                    p.cut = true;
                }
                p.plain.seen = data.len() as u64;
                if let Some(u) = p.plain.utf8.as_mut() {
                    u.push(data);
                }
                source = Source::Frame(data);
            }
            d.status = if p.cut {
                MessageStatus::Truncated
            } else {
                MessageStatus::Complete
            };
        } else {
            match self.inflater.as_mut() {
                None => {
                    d.status = MessageStatus::Undecodable(
                        "compressed (RSV1) but permessage-deflate was not negotiated",
                    );
                }
                Some(_) if p.cut || whole.is_some_and(|w| w.len() as u64 > max) => {
                    self.forget_inflation(&mut p);
                    d.status = MessageStatus::Undecodable("compressed message larger than the cap");
                    d.after = Some((
                        "compressed_message_too_large",
                        format!(
                            "{} compressed bytes exceed the frame or message cap; not inflated",
                            p.wire_len
                        ),
                    ));
                }
                Some(inf) => {
                    let max_out = usize::try_from(max).unwrap_or(usize::MAX);
                    let mut run = p.run.take().unwrap_or_else(|| inf.begin(max_out));
                    let plain = &mut p.plain;
                    let r = match whole {
                        // One frame, everything kept: inflated straight into the thread's
                        // buffer, then checked at once.
                        Some(w) if keep == usize::MAX => {
                            source = Source::Thread;
                            let mut to = Output::Append(&mut dec, max_out);
                            inf.feed_now(&mut run, w, &mut to);
                            let r = inf.end(run, &mut to);
                            plain.seen = dec.len() as u64;
                            if let Some(u) = plain.utf8.as_mut() {
                                u.push(&dec);
                            }
                            r
                        }
                        _ => {
                            let kept: &mut Vec<u8> = if whole.is_some() {
                                source = Source::Thread;
                                &mut dec
                            } else {
                                &mut self.buf
                            };
                            let mut sink = |b: &[u8]| {
                                plain.take(b, max, keep, kept);
                            };
                            let mut to = Output::Lend(&mut sink);
                            if let Some(w) = whole {
                                inf.feed_now(&mut run, w, &mut to);
                            }
                            inf.end(run, &mut to)
                        }
                    };
                    match r {
                        Ok(r) => {
                            d.len = r.len;
                            d.history_reset = r.history_reset;
                            d.status = if r.truncated {
                                MessageStatus::Truncated
                            } else {
                                MessageStatus::Complete
                            };
                            if r.stopped {
                                d.after = Some((
                                    "inflate_bound_exceeded",
                                    format!(
                                        "{} compressed bytes inflate past {} bytes; decoding \
                                         stopped there (length is a lower bound)",
                                        p.wire_len, r.len
                                    ),
                                ));
                            }
                        }
                        Err(InflateError::MissingHistory) => {
                            d.status = MessageStatus::Undecodable("deflate history missing");
                        }
                        Err(InflateError::Corrupt) => {
                            d.status = MessageStatus::Undecodable("invalid deflate data");
                            d.after = Some((
                                "inflate_error",
                                format!("{} compressed bytes are not valid DEFLATE", p.wire_len),
                            ));
                        }
                    }
                }
            }
        }

        let has_data = matches!(d.status, MessageStatus::Complete | MessageStatus::Truncated);
        let data: &[u8] = match (has_data, source) {
            (false, _) => &[],
            (true, Source::Frame(f)) => f,
            (true, Source::Thread) => &dec,
            (true, Source::Kept) => &self.buf,
        };
        let utf8_valid = match (p.opcode == opcode::TEXT, d.status, p.plain.utf8.as_ref()) {
            (true, MessageStatus::Complete, Some(u)) => Some(u.complete()),
            // Cut at the cap: a multi-byte sequence may be split there.
            (true, MessageStatus::Truncated, Some(u)) => Some(u.prefix()),
            _ => None,
        };
        let invalid_utf8 = utf8_valid == Some(false);
        let truncated = d.status == MessageStatus::Truncated;
        let (len, seen) = (d.len, p.plain.seen);
        out(MessageEvent::Message(Message {
            opcode: p.opcode,
            data,
            len,
            wire_len: p.wire_len,
            frames: p.frames,
            compressed: p.compressed,
            status: d.status,
            utf8_valid,
            history_reset: d.history_reset,
        }));

        if invalid_utf8 {
            anomaly(
                out,
                "invalid_utf8_text",
                format!("text message of {len} bytes is not valid UTF-8 (RFC 6455 §8.1)"),
            );
        }
        if truncated && !self.too_large_reported {
            self.too_large_reported = true;
            anomaly(
                out,
                "message_too_large",
                format!("message of {len} bytes; only the first {seen} are kept"),
            );
        }
        if let Some((kind, detail)) = d.after {
            anomaly(out, kind, detail);
        }
        // Only messages arriving over several calls use `buf`; it is freed after each (memory
        // follows the messages in progress, not the largest one each direction ever carried).
        self.buf = Vec::new();
        dec.clear();
        if dec.capacity() > DECODED_RETAIN {
            dec = Vec::new();
        }
        DECODED.set(dec);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::frame::minimal_header_len;
    use flate2::{Compress, Compression, FlushCompress};

    #[derive(Debug, PartialEq, Eq, Clone)]
    enum Ev {
        Msg {
            op: u8,
            data: Vec<u8>,
            len: u64,
            wire_len: u64,
            frames: u32,
            compressed: bool,
            status: MessageStatus,
            utf8: Option<bool>,
            reset: bool,
        },
        Control(u8, Vec<u8>),
        Anomaly(&'static str),
    }

    fn collect(e: MessageEvent<'_>, v: &mut Vec<Ev>) {
        v.push(match e {
            MessageEvent::Message(m) => Ev::Msg {
                op: m.opcode,
                data: m.data.to_vec(),
                len: m.len,
                wire_len: m.wire_len,
                frames: m.frames,
                compressed: m.compressed,
                status: m.status,
                utf8: m.utf8_valid,
                reset: m.history_reset,
            },
            MessageEvent::Control { header, payload } => {
                Ev::Control(header.opcode, payload.to_vec())
            }
            MessageEvent::Anomaly { kind, .. } => Ev::Anomaly(kind),
        });
    }

    fn hdr(op: u8, fin: bool, rsv: u8, len: usize) -> FrameHeader {
        FrameHeader {
            fin,
            rsv,
            opcode: op,
            mask: None,
            payload_len: len as u64,
            header_len: minimal_header_len(len as u64, false),
        }
    }

    struct T {
        a: MessageAssembler,
        v: Vec<Ev>,
    }

    impl T {
        fn new(deflate: Option<DeflateDir>, limits: &Limits) -> T {
            T {
                a: MessageAssembler::new(deflate, limits, usize::MAX),
                v: Vec::new(),
            }
        }
        fn f(&mut self, op: u8, fin: bool, rsv: u8, p: &[u8]) -> &mut Self {
            self.lossy(op, fin, rsv, p, 0)
        }
        fn lossy(&mut self, op: u8, fin: bool, rsv: u8, p: &[u8], lost: u64) -> &mut Self {
            let mut h = hdr(op, fin, rsv, p.len());
            h.payload_len += lost;
            let v = &mut self.v;
            self.a.frame(&h, p, lost, 0, &mut |e| collect(e, v));
            self
        }
        fn desync(&mut self) -> &mut Self {
            let v = &mut self.v;
            self.a.desync(&mut |e| collect(e, v));
            self
        }
        fn take(&mut self) -> Vec<Ev> {
            std::mem::take(&mut self.v)
        }
        fn kinds(&mut self) -> Vec<&'static str> {
            self.take()
                .into_iter()
                .filter_map(|e| {
                    if let Ev::Anomaly(k) = e {
                        Some(k)
                    } else {
                        None
                    }
                })
                .collect()
        }
    }

    fn complete(op: u8, data: &[u8], frames: u32) -> Ev {
        Ev::Msg {
            op,
            data: data.to_vec(),
            len: data.len() as u64,
            wire_len: data.len() as u64,
            frames,
            compressed: false,
            status: MessageStatus::Complete,
            utf8: (op == opcode::TEXT).then_some(true),
            reset: false,
        }
    }

    /// A permessage-deflate sender (sync flush, tail stripped).
    struct Sender(Compress);
    impl Sender {
        fn new() -> Sender {
            Sender(Compress::new(Compression::default(), false))
        }
        fn send(&mut self, m: &[u8]) -> Vec<u8> {
            let mut out = Vec::with_capacity(m.len() + 1024);
            let r = self.0.compress_vec(m, &mut out, FlushCompress::Sync);
            assert!(r.is_ok() && out.ends_with(&[0, 0, 0xff, 0xff]));
            out.truncate(out.len() - 4);
            out
        }
    }

    const TAKEOVER: Option<DeflateDir> = Some(DeflateDir {
        context_takeover: true,
    });

    #[test]
    fn fragments_with_interleaved_ping() {
        let mut t = T::new(None, &Limits::default());
        t.f(opcode::TEXT, false, 0, b"Hel")
            .f(opcode::PING, true, 0, b"p")
            .f(0, true, 0, b"lo");
        assert_eq!(
            t.take(),
            vec![
                Ev::Control(opcode::PING, b"p".to_vec()),
                complete(opcode::TEXT, b"Hello", 2)
            ]
        );
        // Buffers are reused: a second message does not need to grow them.
        let cap = t.a.buf.capacity();
        t.f(opcode::BINARY, false, 0, b"ab")
            .f(0, false, 0, b"")
            .f(0, true, 0, b"c");
        assert_eq!(t.take(), vec![complete(opcode::BINARY, b"abc", 3)]);
        assert_eq!(t.a.buf.capacity(), cap);
    }

    #[test]
    fn compressed_fragmented_rsv1_on_first_only() {
        let plain = b"A compressed message, split over three frames, with RSV1 on the first.";
        let c = Sender::new().send(plain);
        let (a, rest) = c.split_at(5);
        let (b, d) = rest.split_at(7);
        let mut t = T::new(TAKEOVER, &Limits::default());
        t.f(opcode::TEXT, false, 0b100, a)
            .f(0, false, 0, b)
            .f(0, true, 0, d);
        assert_eq!(
            t.take(),
            vec![Ev::Msg {
                op: opcode::TEXT,
                data: plain.to_vec(),
                len: plain.len() as u64,
                wire_len: c.len() as u64,
                frames: 3,
                compressed: true,
                status: MessageStatus::Complete,
                utf8: Some(true),
                reset: false,
            }]
        );
    }

    #[test]
    fn uncompressed_between_compressed() {
        let mut s = Sender::new();
        let m1 = b"repeated repeated repeated phrase one".to_vec();
        let m3 = b"repeated repeated repeated phrase three".to_vec();
        let (c1, c3) = (s.send(&m1), s.send(&m3));
        let mut t = T::new(TAKEOVER, &Limits::default());
        t.f(opcode::TEXT, true, 0b100, &c1)
            .f(opcode::BINARY, true, 0, b"plain")
            .f(opcode::TEXT, true, 0b100, &c3);
        let v = t.take();
        assert_eq!(v.len(), 3);
        assert!(matches!(&v[0], Ev::Msg { data, compressed: true, .. } if *data == m1));
        assert_eq!(v[1], complete(opcode::BINARY, b"plain", 1));
        assert!(
            matches!(&v[2], Ev::Msg { data, status: MessageStatus::Complete, .. } if *data == m3)
        );
    }

    #[test]
    fn lost_bytes_make_messages_incomplete_and_history_missing() {
        let mut s = Sender::new();
        let m1 = b"some text that the next message repeats: 0123456789".to_vec();
        let m2 = b"some text that the next message repeats: 0123456789!".to_vec();
        let (c1, c2) = (s.send(&m1), s.send(&m2));
        let mut t = T::new(TAKEOVER, &Limits::default());
        t.lossy(opcode::TEXT, true, 0b100, &c1[..3], (c1.len() - 3) as u64);
        t.f(opcode::TEXT, true, 0b100, &c2);
        let v = t.take();
        assert!(matches!(
            &v[0],
            Ev::Msg { status: MessageStatus::Incomplete, data, utf8: None, .. } if data.is_empty()
        ));
        assert!(matches!(
            &v[1],
            Ev::Msg { status: MessageStatus::Undecodable("deflate history missing"), data, .. }
                if data.is_empty()
        ));
        // Uncompressed, lost: incomplete but the length is known.
        let mut t = T::new(None, &Limits::default());
        t.f(opcode::TEXT, false, 0, b"ab").lossy(0, true, 0, b"", 5);
        assert!(matches!(
            t.take()[..],
            [Ev::Msg {
                status: MessageStatus::Incomplete,
                len: 7,
                frames: 2,
                ..
            }]
        ));
    }

    #[test]
    fn desync_drops_partial_and_orphans() {
        let mut t = T::new(None, &Limits::default());
        t.f(opcode::TEXT, false, 0, b"start").desync();
        assert!(matches!(
            t.take()[..],
            [Ev::Msg {
                status: MessageStatus::Incomplete,
                frames: 1,
                ..
            }]
        ));
        // Continuations whose start was lost are not violations.
        t.f(0, false, 0, b"x")
            .f(0, true, 0, b"y")
            .f(opcode::TEXT, true, 0, b"ok");
        assert_eq!(t.take(), vec![complete(opcode::TEXT, b"ok", 1)]);
        // But afterwards they are.
        t.f(0, true, 0, b"z");
        assert_eq!(t.kinds(), vec!["continuation_without_start"]);
        // Mid-stream start with deflate: the first referencing message is refused.
        let mut s = Sender::new();
        let _lost = s.send(b"hello hello hello world");
        let c = s.send(b"hello hello hello world again");
        let mut t = T::new(TAKEOVER, &Limits::default());
        t.desync().f(opcode::TEXT, true, 0b100, &c);
        assert!(matches!(
            t.take()[..],
            [Ev::Msg {
                status: MessageStatus::Undecodable("deflate history missing"),
                ..
            }]
        ));
    }

    #[test]
    fn every_anomaly_kind() {
        let l = Limits::default();
        let mut t = T::new(None, &l);
        t.f(0, true, 0, b"x");
        assert_eq!(t.kinds(), ["continuation_without_start"]);
        t.f(opcode::TEXT, false, 0, b"a")
            .f(opcode::BINARY, true, 0, b"b");
        let v = t.take();
        assert!(matches!(
            v[0],
            Ev::Anomaly("data_frame_inside_fragmented_message")
        ));
        assert!(matches!(
            v[1],
            Ev::Msg {
                status: MessageStatus::Incomplete,
                ..
            }
        ));
        assert_eq!(v[2], complete(opcode::BINARY, b"b", 1));
        t.f(opcode::PING, false, 0, b"");
        assert_eq!(t.kinds(), ["control_frame_fragmented"]);
        t.f(opcode::PONG, true, 0, &[0u8; 126]);
        assert_eq!(t.kinds(), ["control_frame_too_large"]);
        t.f(0x3, true, 0, b"").f(0xB, true, 0, b"");
        assert_eq!(t.kinds(), ["reserved_opcode", "reserved_opcode"]);
        t.f(opcode::TEXT, true, 0b100, b"x");
        let v = t.take();
        assert_eq!(v[0], Ev::Anomaly("rsv_bits_without_extension"));
        assert!(matches!(
            v[1],
            Ev::Msg {
                status: MessageStatus::Undecodable(_),
                ..
            }
        ));
        t.f(opcode::BINARY, true, 0b010, b"x")
            .f(opcode::BINARY, true, 0b001, b"x");
        assert_eq!(
            t.kinds(),
            ["rsv_bits_without_extension", "rsv_bits_without_extension"]
        );
        t.f(opcode::TEXT, true, 0, &[0xff, 0xfe]);
        let v = t.take();
        assert!(matches!(
            v[0],
            Ev::Msg {
                utf8: Some(false),
                ..
            }
        ));
        assert_eq!(v[1], Ev::Anomaly("invalid_utf8_text"));
        let mut h = hdr(opcode::BINARY, true, 0, 3);
        h.header_len = 4;
        let v = &mut t.v;
        t.a.frame(&h, b"abc", 0, 0, &mut |e| collect(e, v));
        assert_eq!(t.kinds(), ["non_minimal_length"]);

        let mut t = T::new(TAKEOVER, &l);
        let c = Sender::new().send(b"hi");
        t.f(opcode::TEXT, false, 0b100, &c[..1])
            .f(0, true, 0b100, &c[1..]);
        assert_eq!(t.kinds(), ["rsv1_on_continuation"]);
        t.f(opcode::PING, true, 0b100, b"");
        assert_eq!(t.kinds(), ["rsv1_on_control_frame"]);
        t.f(opcode::BINARY, true, 0b100, &[0x07, 0xff]);
        let v = t.take();
        assert!(matches!(
            v[0],
            Ev::Msg {
                status: MessageStatus::Undecodable("invalid deflate data"),
                ..
            }
        ));
        assert_eq!(v[1], Ev::Anomaly("inflate_error"));

        // Size caps.
        let small = Limits {
            max_message_bytes: 4,
            ..Limits::default()
        };
        let mut t = T::new(TAKEOVER, &small);
        t.f(opcode::TEXT, true, 0, "aé€".as_bytes()); // 1 + 2 + 3 bytes, cut inside '€'
        let v = t.take();
        assert!(matches!(
            &v[0],
            Ev::Msg { status: MessageStatus::Truncated, len: 6, utf8: Some(true), data, .. }
                if data == "aé".as_bytes().iter().chain(&[0xe2]).copied().collect::<Vec<u8>>().as_slice()
        ));
        assert_eq!(v[1], Ev::Anomaly("message_too_large"));
        let c = Sender::new().send(&(0..100u8).map(|i| i.wrapping_mul(37)).collect::<Vec<u8>>());
        t.f(opcode::BINARY, true, 0b100, &c);
        assert!(matches!(
            t.take()[..],
            [
                Ev::Msg {
                    status: MessageStatus::Undecodable(_),
                    ..
                },
                Ev::Anomaly("compressed_message_too_large")
            ]
        ));
    }

    #[test]
    fn inflated_over_cap_is_truncated_with_exact_len() {
        let limits = Limits {
            max_message_bytes: 1000,
            ..Limits::default()
        };
        let plain = vec![b'q'; 5000];
        let c = Sender::new().send(&plain);
        let mut t = T::new(TAKEOVER, &limits);
        t.f(opcode::TEXT, true, 0b100, &c);
        let v = t.take();
        assert!(matches!(
            &v[0],
            Ev::Msg { status: MessageStatus::Truncated, len: 5000, data, .. } if data.len() == 1000
        ));
    }

    /// The piecewise UTF-8 check agrees with checking the bytes at once, at every split.
    #[test]
    fn utf8_in_pieces_agrees_with_whole() {
        let cases: [&[u8]; 8] = [
            "héllo wörld €100 𝄞".as_bytes(),
            b"plain ascii",
            b"\xC3\xA9\xE2\x82",         // ends inside a character
            b"ab\xFFcd",                 // an invalid byte
            b"\xE2\x82\xAC\xE2\x28\xA1", // a bad continuation
            b"\xF0\x9D\x84\x9E\xF0\x9D",
            b"\xED\xA0\x80", // a surrogate
            b"",
        ];
        for c in cases {
            let complete = std::str::from_utf8(c).is_ok();
            let prefix = match std::str::from_utf8(c) {
                Ok(_) => true,
                Err(e) => e.error_len().is_none(),
            };
            for i in 0..=c.len() {
                for j in i..=c.len() {
                    let mut u = Utf8Stream::default();
                    u.push(&c[..i]);
                    u.push(&c[i..j]);
                    u.push(&c[j..]);
                    assert_eq!(
                        (u.complete(), u.prefix()),
                        (complete, prefix),
                        "{c:?} at {i}, {j}"
                    );
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// Any sequence of messages, compressed (with or without context takeover), cut into
        /// any fragments, comes out as the original bytes; with a small cap, as its exact start.
        #[test]
        fn fragmented_compressed_messages_round_trip(
            msgs in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::prop_oneof![proptest::strategy::Just(b'x'), proptest::prelude::any::<u8>()],
                    // Not empty: a sync flush of nothing after a flush emits no bytes at all
                    // (the test sender would need RFC 7692 §7.2.3.6's single 0x00 then).
                    1..600),
                1..12),
            cuts in proptest::collection::vec(1usize..300, 1..8),
            takeover: bool,
            cap in proptest::prop_oneof![proptest::strategy::Just(1u64 << 20), 1u64..700],
        ) {
            let limits = Limits { max_message_bytes: cap, ..Limits::default() };
            let mut t = T::new(Some(DeflateDir { context_takeover: takeover }), &limits);
            let mut s = Sender::new();
            for m in &msgs {
                if !takeover {
                    s.0.reset();
                }
                let c = s.send(m);
                let mut at = 0;
                let mut first = true;
                for cut in cuts.iter().cycle() {
                    let end = (at + cut).min(c.len());
                    let fin = end == c.len();
                    let op = if first { opcode::BINARY } else { opcode::CONTINUATION };
                    t.f(op, fin, if first { 4 } else { 0 }, &c[at..end]);
                    first = false;
                    at = end;
                    if fin {
                        break;
                    }
                }
                let evs = t.take();
                let msg = evs.iter().find_map(|e| match e {
                    Ev::Msg { data, len, status, .. } => Some((data.clone(), *len, *status)),
                    _ => None,
                });
                if c.len() as u64 > cap {
                    // Compressed bytes over the cap are not inflated at all (and with takeover
                    // the window is lost from here): documented, checked by unit tests.
                    let undecodable = MessageStatus::Undecodable("compressed message larger than the cap");
                    proptest::prop_assert_eq!(msg.map(|m| m.2), Some(undecodable));
                    break;
                }
                let keep = m.len().min(cap as usize);
                let want_status = if (m.len() as u64) > cap {
                    MessageStatus::Truncated
                } else {
                    MessageStatus::Complete
                };
                proptest::prop_assert_eq!(msg, Some((m[..keep].to_vec(), m.len() as u64, want_status)));
            }
        }

        /// A frame arriving in pieces (`begin`, `data`, `end`) reports exactly what the same
        /// frame in one piece reports, whatever the pieces, compression, fragmentation, losses
        /// and interleaved pings; keeping fewer bytes only shortens `data` to its start.
        #[test]
        fn frames_in_pieces_report_what_whole_frames_report(
            msgs in proptest::collection::vec(
                (
                    proptest::collection::vec(
                        proptest::prop_oneof![
                            proptest::strategy::Just(b'a'),
                            proptest::strategy::Just(0xC3u8),
                            proptest::strategy::Just(0xA9u8),
                            proptest::strategy::Just(0xE2u8),
                            proptest::strategy::Just(0x82u8),
                            proptest::strategy::Just(0xACu8),
                            proptest::prelude::any::<u8>(),
                        ],
                        1..400),
                    proptest::prelude::any::<bool>(), // text
                    proptest::prelude::any::<bool>(), // compressed
                    proptest::prelude::any::<u8>(),   // a frame that loses bytes (1 in 8)
                ),
                1..10),
            cuts in proptest::collection::vec(1usize..200, 1..6),
            pieces in proptest::collection::vec(1usize..64, 1..6),
            takeover: bool,
            keep in proptest::prop_oneof![proptest::strategy::Just(usize::MAX), 0usize..40],
            cap in proptest::prop_oneof![proptest::strategy::Just(1u64 << 20), 1u64..500],
        ) {
            let limits = Limits { max_message_bytes: cap, ..Limits::default() };
            let d = Some(DeflateDir { context_takeover: takeover });
            let mut whole = T::new(d, &limits);
            let mut split = MessageAssembler::new(d, &limits, keep);
            let mut got = Vec::new();
            let mut s = Sender::new();
            let mut piece = pieces.iter().cycle();
            for (m, text, compress, lose) in &msgs {
                if !takeover {
                    s.0.reset();
                }
                let wire = if *compress { s.send(m) } else { m.clone() };
                let mut at = 0;
                let mut first = true;
                for cut in cuts.iter().cycle() {
                    let end = (at + cut).min(wire.len());
                    let fin = end == wire.len();
                    let op = match (first, *text) {
                        (false, _) => opcode::CONTINUATION,
                        (true, true) => opcode::TEXT,
                        (true, false) => opcode::BINARY,
                    };
                    let rsv = if first && *compress { 4 } else { 0 };
                    let p = &wire[at..end];
                    // A frame that loses its last 3 bytes: given the rest, 3 lost.
                    let lost = if *lose % 8 == 0 && p.len() > 3 { 3 } else { 0 };
                    let given = &p[..p.len() - lost];
                    let mut h = hdr(op, fin, rsv, p.len());
                    h.payload_len = p.len() as u64;
                    {
                        let v = &mut whole.v;
                        whole.a.frame(&h, given, lost as u64, 0, &mut |e| collect(e, v));
                    }
                    split.begin(&h);
                    let mut g = given;
                    while !g.is_empty() {
                        let n = (*piece.next().unwrap_or(&1)).min(g.len());
                        split.data(&g[..n]);
                        g = &g[n..];
                    }
                    split.end(&h, lost as u64, 0, &mut |e| collect(e, &mut got));
                    if !fin && at % 3 == 0 {
                        // A ping between fragments, in pieces on one side.
                        let ph = hdr(opcode::PING, true, 0, 2);
                        let v = &mut whole.v;
                        whole.a.frame(&ph, b"hi", 0, 0, &mut |e| collect(e, v));
                        split.begin(&ph);
                        split.data(b"h");
                        split.data(b"i");
                        split.end(&ph, 0, 0, &mut |e| collect(e, &mut got));
                    }
                    first = false;
                    at = end;
                    if fin {
                        break;
                    }
                }
            }
            let want: Vec<Ev> = whole
                .take()
                .into_iter()
                .map(|e| match e {
                    Ev::Msg { op, mut data, len, wire_len, frames, compressed, status, utf8, reset } => {
                        data.truncate(keep);
                        Ev::Msg { op, data, len, wire_len, frames, compressed, status, utf8, reset }
                    }
                    other => other,
                })
                .collect();
            proptest::prop_assert_eq!(got, want);
        }
    }
}
