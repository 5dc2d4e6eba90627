//! Message assembly: takes one direction's frames and gives messages (fragments joined,
//! permessage-deflate inflated, text checked as UTF-8) and control frames, with protocol
//! violations as anomalies.
//!
//! # Rules applied
//!
//! * Text/binary frames start a message, continuation frames extend it, FIN ends it
//!   (RFC 6455 §5.4). Control frames may come between fragments and pass through at once.
//! * A message is compressed when RSV1 is set on its first frame and permessage-deflate was
//!   negotiated (RFC 7692 §6). Its frames' payloads are concatenated and inflated as one
//!   (RFC 7692 §7.2.2). Uncompressed messages between compressed ones do not touch the
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
use crate::deflate::{InflateError, Inflater};
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
#[derive(Clone, Copy, Debug)]
struct Partial {
    opcode: u8,
    compressed: bool,
    frames: u32,
    wire_len: u64,
    /// A frame of it lost bytes in the capture.
    lost: bool,
    /// `buf` stopped growing (cap reached or a frame was cut): it is a prefix.
    cut: bool,
}

/// One direction's message assembler.
pub struct MessageAssembler {
    deflate: Option<DeflateDir>,
    inflater: Option<Inflater>,
    max_message: u64,
    cur: Option<Partial>,
    /// Payload bytes of a message in progress over several frames as on the wire (unmasked,
    /// maybe compressed). A message of one frame is decoded straight from that frame.
    buf: Vec<u8>,
    /// Continuation frames here belong to a message whose start was lost (after a desync).
    orphan: bool,
    too_large_reported: bool,
}

fn anomaly(out: &mut dyn FnMut(MessageEvent<'_>), kind: &'static str, detail: String) {
    out(MessageEvent::Anomaly { kind, detail });
}

impl MessageAssembler {
    /// `deflate` is `Some` when permessage-deflate was negotiated for the connection (RSV1 is
    /// then legal on first frames); `None` otherwise.
    ///
    /// For a connection picked up mid-stream, call [`MessageAssembler::desync`] before the
    /// first frame: the deflate history is then unknown, and continuation frames whose message
    /// started before the capture are not reported as violations.
    pub fn new(deflate: Option<DeflateDir>, limits: &Limits) -> MessageAssembler {
        MessageAssembler {
            deflate,
            inflater: deflate.map(|d| Inflater::new(d.context_takeover)),
            max_message: limits.max_message_bytes,
            cur: None,
            buf: Vec::new(),
            orphan: false,
            too_large_reported: false,
        }
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
        if !opcode::is_defined(op) {
            anomaly(
                out,
                "reserved_opcode",
                format!("opcode {op:#x} is reserved (RFC 6455 §5.2); frame ignored"),
            );
            return;
        }

        if header.is_control() {
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
            out(MessageEvent::Control {
                header: *header,
                payload,
            });
            return;
        }

        if op == opcode::CONTINUATION {
            if header.rsv1() {
                self.rsv1_misplaced(out, "rsv1_on_continuation", "continuation frame", op);
            }
            if self.cur.is_none() {
                if !self.orphan {
                    anomaly(
                        out,
                        "continuation_without_start",
                        "continuation frame with no message in progress (RFC 6455 §5.4)"
                            .to_string(),
                    );
                }
                // Swallow the rest of this headless message silently.
                self.orphan = !header.fin;
                return;
            }
        } else {
            // TEXT or BINARY: a new message.
            if header.rsv1() && self.deflate.is_none() {
                anomaly(
                    out,
                    "rsv_bits_without_extension",
                    "RSV1 set but permessage-deflate was not negotiated (RFC 6455 §5.2)"
                        .to_string(),
                );
            }
            if let Some(open) = self.cur {
                anomaly(
                    out,
                    "data_frame_inside_fragmented_message",
                    format!(
                        "opcode {op:#x} frame while a fragmented message of {} frames is open \
                         (RFC 6455 §5.4); the open message is dropped as incomplete",
                        open.frames
                    ),
                );
                self.emit_incomplete(out);
            }
            self.orphan = false;
            self.buf.clear();
            self.cur = Some(Partial {
                opcode: op,
                compressed: header.rsv1(),
                frames: 0,
                wire_len: 0,
                lost: false,
                cut: false,
            });
        }

        // A whole message in one frame (most messages): decoded straight from the frame's
        // payload, never copied into `buf`.
        if header.fin
            && self.buf.is_empty()
            && let Some(p) = self.cur.as_ref()
            && p.frames == 0
        {
            let kept = self.account(header, payload.len(), lost, skipped);
            self.finish_from(Some(payload.get(..kept).unwrap_or(&[])), out);
            return;
        }
        self.append(header, payload, lost, skipped);
        if header.fin {
            self.finish(out);
        }
    }

    /// The stream lost sync (bytes lost where a header should be): any partial message is
    /// dropped as incomplete and, with context takeover, the inflater's history is lost.
    pub fn desync(&mut self, out: &mut dyn FnMut(MessageEvent<'_>)) {
        if self.cur.is_some() {
            self.emit_incomplete(out);
        }
        // Frames lost in the hole may have been compressed: the window is unknown now.
        if let Some(inf) = self.inflater.as_mut() {
            inf.lose_history();
        }
        self.orphan = true;
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

    /// Counts a frame into the message in progress; returns how many of its `avail` payload
    /// bytes belong to the message's data (0 once a loss or the cap ended the data).
    fn account(&mut self, header: &FrameHeader, avail: usize, lost: u64, skipped: u64) -> usize {
        let Some(p) = self.cur.as_mut() else {
            return 0;
        };
        p.frames = p.frames.saturating_add(1);
        p.wire_len = p.wire_len.saturating_add(header.payload_len);
        if lost > 0 {
            p.lost = true;
        }
        if p.lost || p.cut {
            return 0;
        }
        let room = self.max_message.saturating_sub(self.buf.len() as u64);
        let k = usize::try_from(room).unwrap_or(usize::MAX).min(avail);
        if k < avail || skipped > 0 {
            p.cut = true;
        }
        k
    }

    fn append(&mut self, header: &FrameHeader, payload: &[u8], lost: u64, skipped: u64) {
        let k = self.account(header, payload.len(), lost, skipped);
        self.buf.extend_from_slice(payload.get(..k).unwrap_or(&[]));
    }

    /// Emits the open message as `Incomplete` (capture loss or a broken fragment sequence).
    fn emit_incomplete(&mut self, out: &mut dyn FnMut(MessageEvent<'_>)) {
        if let Some(p) = self.cur.as_mut() {
            p.lost = true;
        }
        self.finish(out);
    }

    /// Emits the message in progress.
    fn finish(&mut self, out: &mut dyn FnMut(MessageEvent<'_>)) {
        self.finish_from(None, out);
    }

    /// Emits the message in progress, whose data is `data` when given, `buf` otherwise.
    fn finish_from(&mut self, data: Option<&[u8]>, out: &mut dyn FnMut(MessageEvent<'_>)) {
        let Some(p) = self.cur.take() else {
            return;
        };
        let buf = std::mem::take(&mut self.buf);
        let wire = data.unwrap_or(&buf);
        let mut dec = DECODED.take();
        let mut msg = Message {
            opcode: p.opcode,
            data: &[],
            len: 0,
            wire_len: p.wire_len,
            frames: p.frames,
            compressed: p.compressed,
            status: MessageStatus::Incomplete,
            utf8_valid: None,
            history_reset: false,
        };
        let mut after: Option<(&'static str, String)> = None;
        let max_out = usize::try_from(self.max_message).unwrap_or(usize::MAX);

        if p.lost {
            if p.compressed
                && let Some(inf) = self.inflater.as_mut()
            {
                // The sender's window advanced over bytes we never saw.
                inf.lose_history();
            }
            if !p.compressed {
                msg.len = p.wire_len;
            }
        } else if p.compressed {
            match self.inflater.as_mut() {
                None => {
                    msg.status = MessageStatus::Undecodable(
                        "compressed (RSV1) but permessage-deflate was not negotiated",
                    );
                }
                Some(inf) if p.cut => {
                    inf.lose_history();
                    msg.status =
                        MessageStatus::Undecodable("compressed message larger than the cap");
                    after = Some((
                        "compressed_message_too_large",
                        format!(
                            "{} compressed bytes exceed the frame or message cap; not inflated",
                            p.wire_len
                        ),
                    ));
                }
                Some(inf) => {
                    dec.clear();
                    match inf.inflate(wire, &mut dec, max_out) {
                        Ok(r) => {
                            msg.data = &dec;
                            msg.len = r.len;
                            msg.history_reset = r.history_reset;
                            msg.status = if r.truncated {
                                MessageStatus::Truncated
                            } else {
                                MessageStatus::Complete
                            };
                            if r.stopped {
                                after = Some((
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
                            msg.status = MessageStatus::Undecodable("deflate history missing");
                        }
                        Err(InflateError::Corrupt) => {
                            msg.status = MessageStatus::Undecodable("invalid deflate data");
                            after = Some((
                                "inflate_error",
                                format!("{} compressed bytes are not valid DEFLATE", p.wire_len),
                            ));
                        }
                    }
                }
            }
        } else {
            msg.data = wire;
            msg.len = p.wire_len;
            msg.status = if p.cut {
                MessageStatus::Truncated
            } else {
                MessageStatus::Complete
            };
        }

        let mut invalid_utf8 = false;
        if p.opcode == opcode::TEXT {
            msg.utf8_valid = match msg.status {
                MessageStatus::Complete => Some(simdutf8::basic::from_utf8(msg.data).is_ok()),
                // Cut at the cap: a multi-byte sequence may be split there.
                MessageStatus::Truncated => Some(match simdutf8::compat::from_utf8(msg.data) {
                    Ok(_) => true,
                    Err(e) => e.error_len().is_none(),
                }),
                _ => None,
            };
            invalid_utf8 = msg.utf8_valid == Some(false);
        }
        let truncated = msg.status == MessageStatus::Truncated;
        let (len, data_len) = (msg.len, msg.data.len());
        out(MessageEvent::Message(msg));

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
                format!("message of {len} bytes; only the first {data_len} are kept"),
            );
        }
        if let Some((kind, detail)) = after {
            anomaly(out, kind, detail);
        }
        // Only messages of several frames use `buf`; it is freed after each (memory follows
        // the messages in progress, not the largest one each direction ever carried).
        drop(buf);
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
                a: MessageAssembler::new(deflate, limits),
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
    }
}
