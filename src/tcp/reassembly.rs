//! One direction of a TCP connection: takes that direction's segments (sequence number, captured
//! payload, bytes cut by snaplen, FIN) plus the peer's acknowledgments, and gives the byte stream
//! in order as `Data` and `Gap` events, then the FIN once the stream is complete up to it.
//!
//! Policy, and why:
//! - In-order data is delivered straight from the packet; only data that arrives ahead of a hole
//!   is copied, into a map keyed by 64-bit stream offset. Chunks in the map never overlap, and
//!   every chunk starts after the next expected offset, so delivery is "pop the first chunk".
//! - Overlaps keep the first copy (the simplest policy, and the one that makes a retransmission
//!   harmless); a later copy whose bytes differ from a still-buffered copy is reported, because
//!   that is how injection or a broken middlebox shows up.
//! - Holes are declared gaps, never waited on forever: when the peer acknowledges past them
//!   (the receiver had the bytes, so the capture lost them), when the buffer would exceed its cap,
//!   when a retransmitted FIN shows the sender is done, and when nothing more will come
//!   (end of capture, eviction, RST: `flush`). A FIN with a hole
//!   before it only records where the stream ends: the missing segment may simply have been
//!   captured after the FIN, and declaring it lost would misreport a clean close.
//! - Bytes the capture cut off (snaplen) are kept as "missing" chunks so they come out as a gap
//!   at the right place without being waited for.

use std::collections::BTreeMap;

use super::StreamEvent;
use super::seq::{distance, place, seq_at};
use crate::types::{Dir, Ts};

/// Chunks buffered per direction regardless of their size: tiny out-of-order segments (and
/// snaplen markers, which hold no bytes) must not let the map grow without bound.
const MAX_CHUNKS: usize = 4096;

/// How far past the highest sequence number seen an acknowledgment may point and still be
/// believed: the largest window TCP can advertise (65535 << 14), rounded up.
const MAX_ACK_AHEAD: u64 = 1 << 30;

/// Where events go, with the direction and time they are stamped with.
pub(super) struct Sink<'a> {
    pub dir: Dir,
    pub ts: Ts,
    out: &'a mut dyn FnMut(StreamEvent<'_>),
    /// Gap bytes reported through this sink, for the caller's counters.
    pub gap_bytes: u64,
}

impl<'a> Sink<'a> {
    pub fn new(dir: Dir, ts: Ts, out: &'a mut dyn FnMut(StreamEvent<'_>)) -> Sink<'a> {
        Sink {
            dir,
            ts,
            out,
            gap_bytes: 0,
        }
    }

    pub fn emit(&mut self, ev: StreamEvent<'_>) {
        (self.out)(ev);
    }

    fn data(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() {
            (self.out)(StreamEvent::Data {
                dir: self.dir,
                ts: self.ts,
                bytes,
            });
        }
    }

    fn gap(&mut self, len: u64) {
        if len > 0 {
            self.gap_bytes = self.gap_bytes.saturating_add(len);
            (self.out)(StreamEvent::Gap {
                dir: self.dir,
                ts: self.ts,
                len,
            });
        }
    }

    pub fn anomaly(&mut self, kind: &'static str, detail: String) {
        (self.out)(StreamEvent::Anomaly {
            dir: self.dir,
            ts: self.ts,
            kind,
            detail,
        });
    }
}

/// Buffered stream content ahead of the delivery point.
enum Chunk {
    /// Copied bytes.
    Bytes(Vec<u8>),
    /// Bytes the capture does not hold (cut by snaplen), known to exist.
    Missing(u64),
}

impl Chunk {
    fn len(&self) -> u64 {
        match self {
            Chunk::Bytes(v) => v.len() as u64,
            Chunk::Missing(n) => *n,
        }
    }
}

/// The FIN of a direction, kept until the stream is complete up to it.
struct FinMark {
    /// Stream offset of the FIN's sequence number (= the stream length).
    off: u64,
    ts: Ts,
    ttl: u8,
    ip_id: Option<u16>,
}

/// What one segment contributed.
#[derive(Default, Clone, Copy)]
pub(super) struct Taken {
    /// Stream bytes (captured or cut) not seen before.
    pub new: u64,
    /// Some of them were buffered behind a hole.
    pub ahead: bool,
}

/// The reassembler of one direction.
pub(super) struct Half {
    anchored: bool,
    /// Sequence number of stream offset 0.
    base: u32,
    /// Next stream offset to deliver: everything before it has been reported.
    next: u64,
    /// End of the highest stream content seen (data, cut bytes or FIN).
    high: u64,
    buf: BTreeMap<u64, Chunk>,
    /// Copied bytes held in `buf`.
    buf_bytes: usize,
    cap: usize,
    cap_reported: bool,
    /// A SYN was seen in this direction, with this initial sequence number.
    pub syn: Option<u32>,
    fin: Option<FinMark>,
    fin_emitted: bool,
}

impl Half {
    pub fn new(cap: usize) -> Half {
        Half {
            anchored: false,
            base: 0,
            next: 0,
            high: 0,
            buf: BTreeMap::new(),
            buf_bytes: 0,
            cap,
            cap_reported: false,
            syn: None,
            fin: None,
            fin_emitted: false,
        }
    }

    pub fn anchored(&self) -> bool {
        self.anchored
    }

    /// Sequence number of stream offset 0, once anchored.
    pub fn base(&self) -> Option<u32> {
        self.anchored.then_some(self.base)
    }

    pub fn fin_seen(&self) -> bool {
        self.fin.is_some()
    }

    /// Makes `seq` stream offset 0, unless the direction is already anchored.
    pub fn anchor(&mut self, seq: u32) {
        if !self.anchored {
            self.anchored = true;
            self.base = seq;
        }
    }

    /// Distance of `seq` from the next expected sequence number.
    pub fn rel(&self, seq: u32) -> i64 {
        distance(seq_at(self.base, self.next), seq)
    }

    /// Takes a segment's content: `payload` starting at sequence number `data_seq`, followed by
    /// `missing` bytes the capture cut off.
    pub fn take_segment(
        &mut self,
        data_seq: u32,
        payload: &[u8],
        missing: u32,
        s: &mut Sink<'_>,
    ) -> Taken {
        let mut taken = Taken::default();
        // Positions are computed against the delivery point before anything moves it.
        let next0 = self.next;
        let rel = self.rel(data_seq);
        let plen = payload.len() as u64;
        // An empty segment (a pure ACK, possibly one past the FIN) carries no stream content and
        // must not move the high-water mark, or the FIN's own sequence number becomes a hole.
        if plen > 0
            && let Some((abs, skip)) = place(next0, rel, plen)
        {
            let bytes = sub(payload, skip, plen);
            self.high = self.high.max(abs.saturating_add(bytes.len() as u64));
            self.take(abs, Some(bytes), bytes.len() as u64, &mut taken, s);
        }
        if missing > 0 {
            let m = u64::from(missing);
            let mrel = rel.saturating_add(i64::try_from(plen).unwrap_or(i64::MAX));
            if let Some((abs, skip)) = place(next0, mrel, m) {
                let len = m.saturating_sub(skip);
                self.high = self.high.max(abs.saturating_add(len));
                self.take(abs, None, len, &mut taken, s);
            }
        }
        self.enforce_cap(s);
        taken
    }

    /// Takes `len` stream bytes at offset `abs`: `src` holds them, or `None` when they are cut.
    fn take(
        &mut self,
        abs: u64,
        src: Option<&[u8]>,
        len: u64,
        taken: &mut Taken,
        s: &mut Sink<'_>,
    ) {
        let end = abs.saturating_add(len);
        if len == 0 || end <= self.next {
            return;
        }
        // Earlier parts of the same segment may have moved the delivery point past `abs`.
        let cut = self.next.saturating_sub(abs);
        let (abs, src) = (abs.saturating_add(cut), src.map(|b| sub(b, cut, len)));
        let len = end.saturating_sub(abs);
        if abs > self.next {
            let added = self.insert(abs, src, len, s);
            taken.new = taken.new.saturating_add(added);
            taken.ahead |= added > 0;
            return;
        }
        match src {
            Some(bytes) => {
                // Deliver from the packet up to the first buffered chunk: that chunk arrived
                // first, so it wins for the bytes it covers (first copy wins).
                let direct_end = match self.buf.first_key_value() {
                    Some((&k, _)) if k < end => k.max(abs),
                    _ => end,
                };
                let direct = direct_end.saturating_sub(abs);
                s.data(sub(bytes, 0, direct));
                self.next = direct_end;
                taken.new = taken.new.saturating_add(direct);
                if direct_end < end {
                    let rest = sub(bytes, direct, len);
                    let added = self.insert(direct_end, Some(rest), end - direct_end, s);
                    taken.new = taken.new.saturating_add(added);
                }
                self.advance(self.next, s);
            }
            // Cut bytes at the delivery point are a gap now, but buffered bytes for the same
            // range are better than nothing, so they are delivered in between.
            None => {
                let before = self.next;
                self.advance(end, s);
                taken.new = taken
                    .new
                    .saturating_add(self.next.saturating_sub(before).min(len));
            }
        }
    }

    /// Buffers the parts of `[start, start + len)` no chunk covers yet; reports a conflict when
    /// covered bytes differ. Returns how many bytes were added.
    fn insert(&mut self, start: u64, src: Option<&[u8]>, len: u64, s: &mut Sink<'_>) -> u64 {
        let end = start.saturating_add(len);
        let mut cur = start;
        let mut added = 0u64;
        let mut conflicts = 0u64;
        let mut first_conflict = None;
        let mut compare = |k: u64, chunk: &Chunk, from: u64, to: u64| {
            if let (Chunk::Bytes(old), Some(new)) = (chunk, src) {
                let a = sub(old, from.saturating_sub(k), to.saturating_sub(k));
                let b = sub(new, from.saturating_sub(start), to.saturating_sub(start));
                let differ = a.iter().zip(b).filter(|(x, y)| x != y).count() as u64;
                if differ > 0 {
                    conflicts = conflicts.saturating_add(differ);
                    first_conflict.get_or_insert(from);
                }
            }
        };
        // A chunk starting before `start` may reach into the range.
        if let Some((&k, c)) = self.buf.range(..start).next_back() {
            let ce = k.saturating_add(c.len());
            if ce > cur {
                let upto = ce.min(end);
                compare(k, c, cur, upto);
                cur = upto;
            }
        }
        while cur < end {
            let found = self.buf.range(cur..end).next().map(|(&k, c)| {
                let ce = k.saturating_add(c.len()).min(end);
                compare(k, c, k, ce);
                (k, ce)
            });
            let (hole_end, resume) = match found {
                Some((k, ce)) => (k, ce.max(k.saturating_add(1))),
                None => (end, end),
            };
            if hole_end > cur {
                let n = hole_end - cur;
                let chunk = match src {
                    Some(b) => {
                        let piece =
                            sub(b, cur.saturating_sub(start), hole_end.saturating_sub(start))
                                .to_vec();
                        self.buf_bytes = self.buf_bytes.saturating_add(piece.len());
                        Chunk::Bytes(piece)
                    }
                    None => Chunk::Missing(n),
                };
                self.buf.insert(cur, chunk);
                added = added.saturating_add(n);
            }
            cur = resume;
        }
        if let Some(at) = first_conflict {
            s.anomaly(
                "tcp_overlap_conflict",
                format!(
                    "{conflicts} overlapping byte(s) from stream offset {at} differ from the \
                     copy buffered earlier; the earlier copy was kept"
                ),
            );
        }
        added
    }

    /// Declares every hole before `target` a gap and delivers what is buffered, until the next
    /// hole at or after `target`.
    fn advance(&mut self, target: u64, s: &mut Sink<'_>) {
        // Adjacent holes and cut chunks are reported as one gap.
        let mut gap = 0u64;
        loop {
            let first = self.buf.first_key_value().map(|(&k, c)| (k, c.len()));
            match first {
                Some((k, _)) if k <= self.next => {
                    let Some((k, chunk)) = self.buf.pop_first() else {
                        break;
                    };
                    let end = k.saturating_add(chunk.len());
                    let skip = self.next - k;
                    match &chunk {
                        Chunk::Bytes(v) => {
                            self.buf_bytes = self.buf_bytes.saturating_sub(v.len());
                            if end > self.next {
                                s.gap(std::mem::take(&mut gap));
                                s.data(sub(v, skip, end - k));
                            }
                        }
                        Chunk::Missing(_) => {
                            gap = gap.saturating_add(end.saturating_sub(self.next))
                        }
                    }
                    self.next = self.next.max(end);
                }
                Some((k, _)) if self.next < target => {
                    let to = k.min(target);
                    gap = gap.saturating_add(to - self.next);
                    self.next = to;
                }
                None if self.next < target => {
                    gap = gap.saturating_add(target - self.next);
                    self.next = target;
                }
                _ => break,
            }
        }
        s.gap(gap);
    }

    /// Keeps the buffer within its caps by giving up on the oldest holes.
    fn enforce_cap(&mut self, s: &mut Sink<'_>) {
        while self.buf_bytes > self.cap || self.buf.len() > MAX_CHUNKS {
            let Some((&first, _)) = self.buf.first_key_value() else {
                break;
            };
            if !self.cap_reported {
                self.cap_reported = true;
                s.anomaly(
                    "tcp_ooo_cap",
                    format!(
                        "{} out-of-order byte(s) in {} segment(s) buffered behind a hole at \
                         stream offset {}; the hole is declared a gap",
                        self.buf_bytes,
                        self.buf.len(),
                        self.next
                    ),
                );
            }
            self.advance(first, s);
        }
    }

    /// The peer acknowledged up to `ack`: whatever it acknowledges that was not captured is a gap.
    pub fn ack(&mut self, ack: u32, s: &mut Sink<'_>) {
        if !self.anchored {
            return;
        }
        let rel = self.rel(ack);
        if rel <= 0 {
            return;
        }
        let acked = self.next.saturating_add(rel.unsigned_abs());
        // An acknowledgment beyond anything the sender could have sent is noise, not evidence.
        if acked > self.high.saturating_add(MAX_ACK_AHEAD) {
            return;
        }
        // The FIN's sequence number is acknowledged too but is not a stream byte.
        let target = match &self.fin {
            Some(f) => acked.min(f.off),
            None => acked,
        };
        if target > self.next {
            self.high = self.high.max(target);
            self.advance(target, s);
            self.try_fin(s);
        }
    }

    /// Records a FIN at sequence number `seq`. Returns whether it is the first FIN.
    pub fn note_fin(&mut self, seq: u32, ttl: u8, ip_id: Option<u16>, s: &mut Sink<'_>) -> bool {
        let rel = self.rel(seq);
        let off = self.next.saturating_add(u64::try_from(rel).unwrap_or(0));
        match &self.fin {
            None => {
                self.fin = Some(FinMark {
                    off,
                    ts: s.ts,
                    ttl,
                    ip_id,
                });
                self.high = self.high.max(off);
                true
            }
            Some(f) if f.off == off || (self.fin_emitted && rel <= 0) => {
                // A retransmitted FIN: the sender has nothing more to send, so a hole still
                // open before it is not reordering but a capture loss.
                let end = f.off;
                self.advance(end, s);
                false
            }
            Some(f) => {
                let first = f.off;
                s.anomaly(
                    "tcp_fin_conflict",
                    format!(
                        "FIN at stream offset {off} after a FIN at offset {first}; kept the first"
                    ),
                );
                false
            }
        }
    }

    /// Emits the FIN once the stream is complete up to it.
    pub fn try_fin(&mut self, s: &mut Sink<'_>) {
        if self.fin_emitted {
            return;
        }
        if let Some(f) = &self.fin
            && self.next >= f.off
        {
            self.fin_emitted = true;
            let ev = StreamEvent::Fin {
                dir: s.dir,
                ts: f.ts,
                ttl: f.ttl,
                ip_id: f.ip_id,
            };
            s.emit(ev);
        }
    }

    /// Nothing more will come: delivers what is buffered, holes as gaps, up to the end of what
    /// was seen (or the FIN), then the FIN.
    pub fn flush(&mut self, s: &mut Sink<'_>) {
        let end = match &self.fin {
            Some(f) => self.high.max(f.off),
            None => self.high,
        };
        self.advance(end, s);
        self.try_fin(s);
    }
}

/// `b[from..to]`, clamped to what exists: offsets here come from sequence numbers in the capture.
fn sub(b: &[u8], from: u64, to: u64) -> &[u8] {
    let from = usize::try_from(from).unwrap_or(usize::MAX);
    let to = usize::try_from(to).unwrap_or(usize::MAX).min(b.len());
    b.get(from..to).unwrap_or(&[])
}
