//! permessage-deflate inflation (RFC 7692 §7.2.2): takes one direction's compressed message
//! payloads in order and gives their plaintext, keeping or resetting the LZ77 window as the
//! negotiation says, and refusing to guess when history is missing.
//!
//! # Facts this relies on
//!
//! * Each message is raw DEFLATE (no zlib header) whose trailing `00 00 ff ff` (the empty stored
//!   block of a sync flush) the sender removed; we append it again (RFC 7692 §7.2.2).
//! * With context takeover (the default, RFC 7692 §7.1.1) the sender's LZ77 window spans
//!   messages, so one decompressor lives for the whole direction. With `*_no_context_takeover`
//!   it is reset before every message, which also makes decoding recover after any loss.
//! * We always inflate with a 32 KiB window: `*_max_window_bits` only limits the compressor
//!   (RFC 7692 §7.1.2), and a larger window decodes any smaller-window stream.
//! * A message may end with a BFINAL block (RFC 7692 §7.2.3.3): the decompressor reports
//!   `StreamEnd` and must be reset before the next message.
//!
//! # Missing history is never faked
//!
//! After bytes of this direction were lost (or when the capture starts mid-connection) our
//! window no longer matches the sender's. We then reset to an **empty** window and only append
//! exactly decoded output to it. zlib (and zlib-rs, whose `inflate` keeps zlib's `SANE` check;
//! see the `too_far_back_*` tests) rejects any back-reference reaching before the start of the
//! window with "invalid distance too far back" instead of inventing bytes. Hence a message
//! that inflates without error from an empty or partial-but-exact window is exact
//! ([`Inflated::history_reset`]); one that fails is [`InflateError::MissingHistory`], and since
//! its plaintext is then missing from the window too, we reset to an empty window again. Once
//! 32 KiB have been decoded exactly since the last reset, our window equals the sender's and the
//! direction counts as fully recovered.
//!
//! # Bombs
//!
//! Output kept per message is capped by the caller (`max_out`); decoding continues past the cap
//! without keeping (into a fixed scratch buffer) so `len` stays exact and the window stays in
//! sync, up to [`hard_bound`]`(max_out)` decoded bytes. Past that, decoding stops (CPU bound),
//! [`Inflated::stopped`] is set, `len` is a lower bound, and the window is treated as lost.

use std::cell::Cell;

use flate2::{Decompress, FlushDecompress, Status};

/// The sync-flush tail every message lost on the wire (RFC 7692 §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
/// Output step: how much room is offered to the decompressor per call.
const CHUNK: usize = 64 * 1024;
/// See [`Inflater::feed_min`].
const FEED_MIN_TAKEOVER: usize = 8 * 1024;
/// See [`Inflater::feed_min`]: about the size of the zlib state a message would otherwise hold.
const FEED_MIN_SHARED: usize = 32 * 1024;
/// The DEFLATE window size (RFC 1951 §2): once this much output was decoded exactly after a
/// reset, our window equals the sender's.
const WINDOW: u64 = 32 * 1024;

/// Decoded bytes per message after which decoding stops: four times the kept cap, at least
/// 1 MiB and at most 1 GiB (but never below the cap itself). It bounds the CPU a deflate bomb
/// (DEFLATE expands at most ~1032:1) can cost; memory is bounded by the cap alone.
pub fn hard_bound(max_out: usize) -> u64 {
    let m = max_out as u64;
    m.max(m.saturating_mul(4).clamp(1 << 20, 1 << 30))
}

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
    /// Total decoded length (may exceed what was kept in `out`). Exact unless `stopped`.
    pub len: u64,
    /// `out` holds only the first `max_out` bytes.
    pub truncated: bool,
    /// Decoded after history was lost, and exact (every back-reference resolved).
    pub history_reset: bool,
    /// Decoding stopped at [`hard_bound`]: `len` is a lower bound, the kept bytes are exact, and
    /// the window is lost (later messages are decoded as after a gap).
    pub stopped: bool,
}

thread_local! {
    /// The decompressor every no-context-takeover direction of this thread shares: such a
    /// sender starts each message from an empty window, so nothing of one message is needed
    /// for the next and one zlib state (~46 KB, most of it the 32 KiB window) serves them all.
    /// A `Cell` it is taken out of and put back into, so no borrow can ever be refused.
    static SHARED: Cell<Option<Decompress>> = const { Cell::new(None) };
    /// zlib states of directions that ended, kept for the next directions to start. Each is
    /// one 46 KB block; freeing them as connections end and allocating new ones as others
    /// start fragments the heap (small allocations settle in the holes), and peak RSS then
    /// grew with the file, not the live connections. Bounded, so it holds little.
    static POOL: Cell<Vec<Decompress>> = const { Cell::new(Vec::new()) };
}

/// Most idle zlib states [`POOL`] keeps per thread.
const POOL_MAX: usize = 64;

thread_local! {
    /// Where decoded bytes come out, one output step at a time, before they are handed on:
    /// one fixed buffer per thread, so decoding a message costs no allocation and the bytes
    /// handed on are still in the CPU cache.
    static STEP: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

fn to_pool(d: Decompress) {
    // `try_with`: at thread exit the pool may be gone already; the state is then freed.
    let _ = POOL.try_with(|p| {
        let mut pool = p.take();
        if pool.len() < POOL_MAX {
            pool.push(d);
        }
        p.set(pool);
    });
}

/// Where decoded bytes go.
pub enum Output<'a> {
    /// Lent to the closure one output step at a time: nothing is kept.
    Lend(&'a mut dyn FnMut(&[u8])),
    /// Appended to the buffer up to the given length (what comes after is counted, not kept).
    Append(&'a mut Vec<u8>, usize),
}

/// One message being inflated (see [`Inflater::begin`]).
pub struct Inflating {
    d: Option<Decompress>,
    pending: Vec<u8>,
    history_reset: bool,
    hard: u64,
    max_out: usize,
    len: u64,
    ended: bool,
    stopped: bool,
    failed: Option<InflateError>,
}

impl Drop for Inflating {
    fn drop(&mut self) {
        // A message never ended (its connection went first): the state is reused.
        if let Some(d) = self.d.take() {
            to_pool(d);
        }
    }
}

impl Inflating {
    /// Nothing more of this message will be decoded (error, BFINAL, or the hard bound).
    fn done(&self) -> bool {
        self.failed.is_some() || self.ended || self.stopped
    }
}

/// A zlib state for raw DEFLATE with an empty window: a pooled one reset, or a new one.
fn fresh_state() -> Decompress {
    let mut pool = POOL.take();
    let d = pool.pop();
    POOL.set(pool);
    match d {
        Some(mut d) => {
            // Reset empties the window (zlib's `whave = 0`), so nothing of the direction that
            // used it before can be referenced: a reference that far back is an error.
            d.reset(false);
            d
        }
        // Raw DEFLATE with the default (32 KiB) window: never `new_with_window_bits(.., 8)`,
        // which zlib-class backends reject.
        None => Decompress::new(false),
    }
}

/// One direction's inflater.
///
/// Memory: a direction with context takeover holds its own zlib state (~46 KB) from its first
/// compressed message until its stream ends ([`Inflater::release`] at its FIN), because its
/// window must outlive each message; a direction without takeover holds none (its messages
/// use a state shared by the thread). So a connection that negotiated permessage-deflate but
/// never compresses in a direction costs nothing there, and one that ended costs nothing while
/// its flow lingers.
pub struct Inflater {
    /// This direction's decompressor (context takeover only), created on first use.
    d: Option<Decompress>,
    context_takeover: bool,
    /// Our window may be shorter than the sender's (it holds only exact bytes).
    history_lost: bool,
    /// Output decoded exactly since the window was last emptied while `history_lost`.
    since_reset: u64,
    /// The decompressor must be reset before the next message (StreamEnd, error, loss).
    need_reset: bool,
}

impl Inflater {
    /// `context_takeover`: whether the sender keeps its window between messages.
    pub fn new(context_takeover: bool) -> Inflater {
        Inflater {
            d: None,
            context_takeover,
            history_lost: false,
            since_reset: 0,
            need_reset: false,
        }
    }

    /// Whether this direction holds a zlib state of its own now.
    pub fn holds_state(&self) -> bool {
        self.d.is_some()
    }

    /// Starts inflating one message. Its compressed bytes (the frames' payloads, in order,
    /// without the `00 00 ff ff` tail) then go to [`Inflater::feed`] in as many pieces as they
    /// arrive, and [`Inflater::end`] finishes it. Decoded bytes are handed to the caller's
    /// closure as they come out, so a message spanning many TCP segments is never gathered.
    /// `max_out` is the caller's cap on kept bytes; decoding stops at [`hard_bound`] of it.
    ///
    /// The returned run holds a zlib state: this direction's own with context takeover,
    /// otherwise the thread's shared one (or, while another message of this thread holds
    /// that, a pooled one), so interleaved messages of different directions never share one.
    pub fn begin(&mut self, max_out: usize) -> Inflating {
        Inflating {
            d: None,
            pending: Vec::new(),
            history_reset: self.context_takeover && self.history_lost,
            hard: hard_bound(max_out),
            max_out,
            len: 0,
            ended: false,
            stopped: false,
            failed: None,
        }
    }

    /// The zlib state a message decodes with, taken when its first bytes are decoded (not at
    /// `begin`), so a message waiting in `pending` holds none.
    fn acquire(&mut self) -> Decompress {
        if self.context_takeover {
            let mut d = self.d.take().unwrap_or_else(fresh_state);
            if std::mem::take(&mut self.need_reset) {
                d.reset(false);
            }
            d
        } else {
            // No takeover: every message starts from an empty window (RFC 7692 §7.1.1).
            self.need_reset = false;
            let mut d = SHARED.take().unwrap_or_else(fresh_state);
            d.reset(false);
            d
        }
    }

    /// Compressed bytes gathered before they are decoded. Decoding each TCP segment's piece
    /// as it arrives would touch the direction's zlib state (46 KB, cold in the CPU cache
    /// with many connections interleaved) once per segment; without context takeover it
    /// would also hold a zlib state of its own for the whole message, since the thread's
    /// shared one serves the messages of other directions in between. So pieces are
    /// gathered up to this much and decoded together.
    fn feed_min(&self) -> usize {
        if self.context_takeover {
            FEED_MIN_TAKEOVER
        } else {
            FEED_MIN_SHARED
        }
    }

    /// Feeds the next compressed bytes of the message `run` decodes.
    pub fn feed(&mut self, run: &mut Inflating, input: &[u8], out: &mut dyn FnMut(&[u8])) {
        if run.done() || input.is_empty() {
            return;
        }
        let out = &mut Output::Lend(out);
        if run.pending.is_empty() && input.len() >= self.feed_min() {
            self.decode(run, input, out);
            return;
        }
        run.pending.extend_from_slice(input);
        if run.pending.len() >= self.feed_min() {
            let pending = std::mem::take(&mut run.pending);
            self.decode(run, &pending, out);
            run.pending = pending;
            run.pending.clear();
        }
    }

    /// Decodes these compressed bytes at once, after any gathered before them: for bytes
    /// already in hand as a whole (a message in one frame), where gathering is a copy.
    pub fn feed_now(&mut self, run: &mut Inflating, input: &[u8], out: &mut Output<'_>) {
        if !run.pending.is_empty() {
            run.pending.extend_from_slice(input);
            let pending = std::mem::take(&mut run.pending);
            self.decode(run, &pending, out);
        } else if !input.is_empty() {
            self.decode(run, input, out);
        }
    }

    fn decode(&mut self, run: &mut Inflating, input: &[u8], out: &mut Output<'_>) {
        if run.done() {
            return;
        }
        let mut d = match run.d.take() {
            Some(d) => d,
            None => self.acquire(),
        };
        self.step(&mut d, run, input, out);
        run.d = Some(d);
    }

    /// Ends the message `run` decodes: the sync-flush tail is fed, the zlib state goes back
    /// where it came from, and the window bookkeeping is updated.
    pub fn end(
        &mut self,
        mut run: Inflating,
        out: &mut Output<'_>,
    ) -> Result<Inflated, InflateError> {
        let mut pending = std::mem::take(&mut run.pending);
        if pending.is_empty() {
            self.decode(&mut run, &TAIL, out);
        } else {
            pending.extend_from_slice(&TAIL);
            self.decode(&mut run, &pending, out);
        }
        if let Some(d) = run.d.take() {
            self.put_back(d);
        }
        if let Some(e) = run.failed {
            return Err(e);
        }
        if run.stopped {
            // The rest of the message was never fed: our window is behind the sender's.
            self.lose_history();
        } else if run.ended {
            // The sender's next message starts a fresh stream: an empty window is exact.
            self.need_reset = true;
            self.history_lost = false;
        } else if self.history_lost {
            self.since_reset = self.since_reset.saturating_add(run.len);
            if self.since_reset >= WINDOW {
                self.history_lost = false;
            }
        }
        Ok(Inflated {
            len: run.len,
            truncated: run.len > run.max_out as u64,
            history_reset: run.history_reset,
            stopped: run.stopped,
        })
    }

    /// Gives up on the message `run` decodes (its bytes were lost, or it is over the cap):
    /// the zlib state goes back and the window counts as lost.
    pub fn abandon(&mut self, mut run: Inflating) {
        if let Some(d) = run.d.take() {
            self.put_back(d);
        }
        self.lose_history();
    }

    /// Inflates one whole message (its frames' payloads concatenated, without the 00 00 ff ff
    /// tail), appending at most `max_out` bytes to `out`.
    pub fn inflate(
        &mut self,
        compressed: &[u8],
        out: &mut Vec<u8>,
        max_out: usize,
    ) -> Result<Inflated, InflateError> {
        let start = out.len();
        let mut run = self.begin(max_out);
        let mut to = Output::Append(out, start.saturating_add(max_out));
        self.feed_now(&mut run, compressed, &mut to);
        let r = self.end(run, &mut to);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    fn put_back(&mut self, d: Decompress) {
        if self.context_takeover {
            self.d = Some(d);
        } else {
            match SHARED.take() {
                None => SHARED.set(Some(d)),
                Some(shared) => {
                    SHARED.set(Some(shared));
                    to_pool(d);
                }
            }
        }
    }

    /// Decodes `input` to `out`.
    fn step(
        &mut self,
        d: &mut Decompress,
        run: &mut Inflating,
        input: &[u8],
        out: &mut Output<'_>,
    ) {
        let mut buf = STEP.take();
        let mut pos = 0usize;
        loop {
            let rest = input.get(pos..).unwrap_or(&[]);
            let (in0, out0) = (d.total_in(), d.total_out());
            let (res, room) = match out {
                // Straight into the caller's buffer while it has room under its limit.
                Output::Append(v, limit) if v.len() < *limit => {
                    let want = (*limit - v.len()).min(CHUNK);
                    if v.capacity() - v.len() < want {
                        // Geometric growth, never past the limit by more than a step.
                        v.reserve_exact(want.max(v.len().min(*limit - v.len())));
                    }
                    let room = v.capacity() - v.len();
                    let r = d.decompress_vec(rest, v, FlushDecompress::Sync);
                    v.truncate(*limit);
                    (r, room)
                }
                _ => {
                    if buf.len() != CHUNK {
                        buf.resize(CHUNK, 0);
                    }
                    (d.decompress(rest, &mut buf, FlushDecompress::Sync), CHUNK)
                }
            };
            let consumed = d.total_in().saturating_sub(in0);
            let produced = d.total_out().saturating_sub(out0);
            pos = pos.saturating_add(usize::try_from(consumed).unwrap_or(usize::MAX));
            run.len = run.len.saturating_add(produced);
            let n = usize::try_from(produced).unwrap_or(usize::MAX);
            if let (Output::Lend(f), true) = (&mut *out, n > 0) {
                f(buf.get(..n.min(buf.len())).unwrap_or(&[]));
            }
            match res {
                Err(e) => {
                    // zlib says "invalid distance too far back" for a reference into missing
                    // history, but zlib-rs 0.6.8 overwrites that text with "repeated call with
                    // bad state" when the error comes from its fast path, so the text alone
                    // cannot classify. With our window incomplete, a reference into the missing
                    // part and corrupt data look alike: call it missing history then; with full
                    // history it can only be corruption.
                    let too_far = e.message().is_some_and(|m| m.contains("too far back"));
                    run.failed = Some(if too_far || run.history_reset {
                        InflateError::MissingHistory
                    } else {
                        InflateError::Corrupt
                    });
                    self.lose_history();
                    break;
                }
                Ok(Status::StreamEnd) => {
                    // BFINAL (RFC 7692 §7.2.3.3): the sender starts a new stream next time.
                    run.ended = true;
                    break;
                }
                Ok(_) => {}
            }
            if run.len >= run.hard {
                run.stopped = true;
                break;
            }
            let done_in = pos >= input.len();
            // Input used up and the output not filled: everything decodable is out (Sync).
            if (done_in && n < room) || (consumed == 0 && produced == 0) {
                break;
            }
        }
        STEP.set(buf);
    }

    /// The direction's stream ended: its zlib state goes to the pool. Should bytes still come
    /// (they cannot after a FIN), they decode as after a loss.
    pub fn release(&mut self) {
        if let Some(d) = self.d.take() {
            to_pool(d);
            self.lose_history();
        }
    }

    /// Bytes of this direction were lost: the window no longer matches the sender's.
    pub fn lose_history(&mut self) {
        // The window is emptied before the next message is decoded: it is never used stale.
        self.need_reset = true;
        self.history_lost = self.context_takeover;
        self.since_reset = 0;
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        if let Some(d) = self.d.take() {
            to_pool(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};
    use proptest::prelude::*;

    /// A permessage-deflate sender: one raw compressor, sync flush per message, tail stripped.
    struct Sender {
        c: Compress,
        takeover: bool,
    }

    impl Sender {
        fn new(takeover: bool, window_bits: u8) -> Sender {
            Sender {
                c: Compress::new_with_window_bits(Compression::default(), false, window_bits),
                takeover,
            }
        }

        fn send(&mut self, msg: &[u8]) -> Vec<u8> {
            if !self.takeover {
                self.c.reset();
            }
            let mut out = Vec::with_capacity(msg.len() + 64);
            let mut pos = 0;
            loop {
                out.reserve(1024);
                let i0 = self.c.total_in();
                let r = self
                    .c
                    .compress_vec(&msg[pos..], &mut out, FlushCompress::Sync);
                assert!(r.is_ok());
                pos += (self.c.total_in() - i0) as usize;
                if pos == msg.len() && out.len() < out.capacity() {
                    break;
                }
            }
            if out.is_empty() {
                // zlib emits nothing for a repeated flush with no input; senders then send the
                // single 0x00 byte of RFC 7692 §7.2.3.6.
                return vec![0x00];
            }
            assert!(out.ends_with(&TAIL));
            out.truncate(out.len() - 4);
            out
        }
    }

    fn text(i: usize) -> Vec<u8> {
        format!(
            "{{\"seq\":{i},\"type\":\"update\",\"symbol\":\"SYM{}\",\"price\":{}.{:02},\"note\":\"{}\"}}",
            i % 7,
            100 + i % 13,
            i % 100,
            "abcdefghij".repeat(i % 5)
        )
        .into_bytes()
    }

    fn inflate_ok(inf: &mut Inflater, c: &[u8]) -> (Vec<u8>, Inflated) {
        let mut out = Vec::new();
        match inf.inflate(c, &mut out, 1 << 20) {
            Ok(r) => (out, r),
            Err(e) => panic!("inflate failed: {e:?}"),
        }
    }

    #[test]
    fn long_sequences_all_window_sizes() {
        for takeover in [true, false] {
            for wbits in 9..=15u8 {
                let mut s = Sender::new(takeover, wbits);
                let mut inf = Inflater::new(takeover);
                let mut out = Vec::new();
                for i in 0..200 {
                    let m = text(i);
                    let c = s.send(&m);
                    out.clear();
                    let r = inf.inflate(&c, &mut out, 1 << 20);
                    assert_eq!(
                        r,
                        Ok(Inflated {
                            len: m.len() as u64,
                            truncated: false,
                            history_reset: false,
                            stopped: false
                        }),
                        "takeover {takeover} wbits {wbits} msg {i}"
                    );
                    assert_eq!(out, m);
                }
            }
        }
    }

    #[test]
    fn rfc7692_examples() {
        // §7.2.3.1 "Hello" (tail stripped), and §7.2.3.2 the same sent twice with takeover.
        let mut inf = Inflater::new(true);
        let first = hex::decode("f248cdc9c90700").unwrap_or_default();
        let second = hex::decode("f200110000").unwrap_or_default();
        assert_eq!(inflate_ok(&mut inf, &first).0, b"Hello");
        assert_eq!(inflate_ok(&mut inf, &second).0, b"Hello");
        // §7.2.3.3: BFINAL block, then a fresh stream.
        let bfinal = hex::decode("f348cdc9c90700").unwrap_or_default();
        let mut inf = Inflater::new(true);
        assert_eq!(inflate_ok(&mut inf, &bfinal).0, b"Hello");
        assert_eq!(inflate_ok(&mut inf, &first).0, b"Hello");
        // §7.2.3.4: stored block.
        let stored =
            hex::decode("0005 00fa ff48 656c 6c6f 00".replace(' ', "")).unwrap_or_default();
        assert_eq!(inflate_ok(&mut Inflater::new(true), &stored).0, b"Hello");
        // An empty compressed message (§7.2.3.6: a single 0x00 byte).
        assert_eq!(inflate_ok(&mut Inflater::new(true), &[0x00]).0, b"");
    }

    /// The central safety claim: with an empty window zlib-rs rejects references into the
    /// missing history instead of inventing bytes.
    #[test]
    fn too_far_back_is_rejected_by_zlib_rs() {
        let m1 = b"The quick brown fox jumps over the lazy dog; 0123456789 unique-one".to_vec();
        let mut m2 = m1.clone(); // message 2 repeats message 1: back-references into it
        m2.extend_from_slice(b" and something new in message two ~~~~");
        let mut m3 = m2[m1.len()..].to_vec(); // message 3 repeats the new part of message 2
        m3.extend_from_slice(b"!");
        let mut s = Sender::new(true, 15);
        let (_c1, c2, c3) = (s.send(&m1), s.send(&m2), s.send(&m3));
        assert!(
            c2.len() < m2.len() / 2,
            "message 2 must back-reference message 1"
        );

        // The raw backend first: an empty-window zlib-rs inflater must error on message 2,
        // never output a byte of it (nothing before the failing back-reference is trusted).
        let mut raw = Decompress::new(false);
        let mut buf = Vec::with_capacity(4096);
        let mut input = c2.clone();
        input.extend_from_slice(&TAIL);
        assert!(
            raw.decompress_vec(&input, &mut buf, FlushDecompress::Sync)
                .is_err()
        );

        let mut inf = Inflater::new(true);
        inf.lose_history();
        let mut out = Vec::new();
        assert_eq!(
            inf.inflate(&c2, &mut out, 1 << 20),
            Err(InflateError::MissingHistory)
        );
        assert!(out.is_empty(), "no bytes may leak out of a failed message");
        // Message 3 references message 2, whose plaintext we never had: must fail too.
        assert_eq!(
            inf.inflate(&c3, &mut out, 1 << 20),
            Err(InflateError::MissingHistory)
        );

        // Only 2 and 3 given, but 2 self-contained: then 3 decodes exactly from 2.
        let mut s = Sender::new(true, 15);
        let n1 = b"#&#&#&#&#&#&#&#& (never captured) #&#&#&".to_vec();
        let n2 = b"second message: self contained text 0123456789".to_vec();
        let n3 = b"second message: self contained text 0123456789 again".to_vec();
        let (_d1, d2, d3) = (s.send(&n1), s.send(&n2), s.send(&n3));
        let mut inf = Inflater::new(true);
        inf.lose_history();
        let (o2, r2) = inflate_ok(&mut inf, &d2);
        assert_eq!((o2, r2.history_reset), (n2, true));
        let (o3, r3) = inflate_ok(&mut inf, &d3);
        assert_eq!((o3, r3.history_reset), (n3, true));
    }

    /// Randomised version: after losing the first k messages, every later message either
    /// decodes to exactly the original or is refused.
    #[test]
    fn lost_history_never_wrong() {
        let mut seed = 0x1234_5678_u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let words = [
            "alpha", "beta", "gamma", "delta", "{\"x\":", "}", ",", "0", "1", " ",
        ];
        let msgs: Vec<Vec<u8>> = (0..120)
            .map(|i| {
                if i % 10 == 9 {
                    // High-entropy, self-contained: decodable from an empty window.
                    return (0..300).map(|_| rnd() as u8).collect();
                }
                let n = 1 + (rnd() % 60) as usize;
                (0..n)
                    .flat_map(|_| words[(rnd() % 10) as usize].bytes())
                    .collect()
            })
            .collect();
        let mut s = Sender::new(true, 15);
        let comp: Vec<Vec<u8>> = msgs.iter().map(|m| s.send(m)).collect();
        let (mut ok, mut refused) = (0, 0);
        for skip in [1usize, 2, 5, 30] {
            let mut inf = Inflater::new(true);
            inf.lose_history();
            let mut out = Vec::new();
            for (m, c) in msgs.iter().zip(&comp).skip(skip) {
                out.clear();
                match inf.inflate(c, &mut out, 1 << 20) {
                    Ok(_) => {
                        assert_eq!(&out, m);
                        ok += 1;
                    }
                    Err(e) => {
                        assert_eq!(e, InflateError::MissingHistory);
                        refused += 1;
                    }
                }
            }
        }
        assert!(
            refused > 0 && ok > 0,
            "must exercise both outcomes: {ok} ok, {refused} refused"
        );
    }

    #[test]
    fn history_recovers_after_a_full_window() {
        // A sender that emits a 40 KiB self-contained message after the loss: the window is
        // then exact, and later messages are no longer flagged.
        let mut s = Sender::new(true, 15);
        let lost = s.send(b"lost message");
        let _ = lost;
        let big: Vec<u8> = (0..40_000u32)
            .flat_map(|i| (i.wrapping_mul(2_654_435_761)).to_le_bytes())
            .collect();
        let cbig = s.send(&big);
        let after = s.send(b"lost message and then some");
        let mut inf = Inflater::new(true);
        inf.lose_history();
        let r = inf.inflate(&cbig, &mut Vec::new(), 1 << 20);
        // The big message may or may not reference the lost one; random data does not.
        assert_eq!(r.map(|r| r.history_reset), Ok(true));
        let mut out = Vec::new();
        // "lost message" lies before the window now held, so this one may still fail; but if
        // it succeeds it is exact and no longer marked.
        match inf.inflate(&after, &mut out, 1 << 20) {
            Ok(r) => {
                assert_eq!(out, b"lost message and then some");
                assert!(!r.history_reset);
            }
            Err(e) => assert_eq!(e, InflateError::MissingHistory),
        }
    }

    #[test]
    fn no_takeover_recovers_immediately() {
        let mut s = Sender::new(false, 15);
        let c: Vec<Vec<u8>> = (0..5).map(|i| s.send(&text(i))).collect();
        let mut inf = Inflater::new(false);
        inf.lose_history();
        for (i, c) in c.iter().enumerate().skip(2) {
            let (o, r) = inflate_ok(&mut inf, c);
            assert_eq!(o, text(i));
            assert!(!r.history_reset);
        }
    }

    /// Memory follows use: no zlib state until a direction's first compressed message, and
    /// none at all per direction without context takeover (those share one per thread), while
    /// interleaved no-takeover directions still decode independently.
    #[test]
    fn state_is_lazy_and_shared_without_takeover() {
        let mut t = Inflater::new(true);
        assert!(!t.holds_state());
        let mut st = Sender::new(true, 15);
        assert_eq!(inflate_ok(&mut t, &st.send(&text(1))).0, text(1));
        assert!(t.holds_state());

        let (mut a, mut b) = (Inflater::new(false), Inflater::new(false));
        let (mut sa, mut sb) = (Sender::new(false, 15), Sender::new(false, 12));
        for i in 0..20 {
            assert_eq!(inflate_ok(&mut a, &sa.send(&text(i))).0, text(i));
            assert_eq!(inflate_ok(&mut b, &sb.send(&text(i + 7))).0, text(i + 7));
            // A takeover direction in between keeps its own window intact.
            assert_eq!(inflate_ok(&mut t, &st.send(&text(i))).0, text(i));
        }
        assert!(!a.holds_state() && !b.holds_state());
    }

    /// A direction released at its FIN holds no zlib state any more, and should bytes still
    /// come, a message that refers back to earlier ones is refused, never decoded against a
    /// window it no longer has.
    #[test]
    fn released_direction_holds_nothing_and_never_guesses() {
        let m1 = b"The quick brown fox jumps over the lazy dog; 0123456789 unique-one".to_vec();
        let mut m2 = m1.clone();
        m2.extend_from_slice(b" again");
        let mut s = Sender::new(true, 15);
        let (c1, c2) = (s.send(&m1), s.send(&m2));
        let mut a = Inflater::new(true);
        assert_eq!(inflate_ok(&mut a, &c1).0, m1);
        assert!(a.holds_state());
        a.release();
        assert!(!a.holds_state());
        assert_eq!(
            a.inflate(&c2, &mut Vec::new(), 1 << 20),
            Err(InflateError::MissingHistory)
        );
    }

    /// A pooled zlib state carries nothing of the direction that used it before: a message
    /// whose back-references point into that direction's plaintext fails instead of decoding
    /// against the stale window.
    #[test]
    fn pooled_state_keeps_no_history() {
        let m1 = b"The quick brown fox jumps over the lazy dog; 0123456789 unique-one".to_vec();
        let mut m2 = m1.clone();
        m2.extend_from_slice(b" and then something new");
        let mut s = Sender::new(true, 15);
        let (c1, c2) = (s.send(&m1), s.send(&m2));
        assert!(
            c2.len() < m2.len() / 2,
            "message 2 must back-reference message 1"
        );

        let mut a = Inflater::new(true);
        assert_eq!(inflate_ok(&mut a, &c1).0, m1);
        drop(a); // its state goes to this thread's pool
        let mut b = Inflater::new(true);
        let mut out = Vec::new();
        assert!(b.inflate(&c2, &mut out, 1 << 20).is_err());
        assert!(out.is_empty());
        // And the state decodes a fresh direction exactly afterwards.
        let mut s = Sender::new(true, 15);
        assert_eq!(inflate_ok(&mut b, &s.send(&m2)).0, m2);
    }

    #[test]
    fn corrupt_is_reported() {
        let mut inf = Inflater::new(true);
        // BTYPE=11 is reserved (RFC 1951 §3.2.3).
        assert_eq!(
            inf.inflate(&[0x07, 0xff], &mut Vec::new(), 100),
            Err(InflateError::Corrupt)
        );
        // And the inflater works again afterwards (fresh window).
        let mut s = Sender::new(true, 15);
        assert_eq!(inflate_ok(&mut inf, &s.send(b"hello")).0, b"hello");
    }

    #[test]
    fn cap_keeps_counting_exactly() {
        let m: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut s = Sender::new(true, 15);
        let c = s.send(&m);
        let next = s.send(&m[..1000]);
        let mut inf = Inflater::new(true);
        let mut out = Vec::new();
        let r = inf.inflate(&c, &mut out, 1 << 20);
        assert_eq!(
            r,
            Ok(Inflated {
                len: 3_000_000,
                truncated: true,
                history_reset: false,
                stopped: false
            })
        );
        assert_eq!(out, &m[..1 << 20]);
        assert!(out.capacity() <= (1 << 20) + CHUNK + 4096);
        // The window stayed in sync past the cap.
        assert_eq!(inflate_ok(&mut inf, &next).0, &m[..1000]);
    }

    #[test]
    fn deflate_bomb_is_bounded() {
        // 64 MiB of zeros streamed through the compressor (never held): ~64 KB compressed.
        let mut c = Compress::new(Compression::best(), false);
        let zeros = vec![0u8; 1 << 20];
        let mut bomb = Vec::new();
        for _ in 0..64 {
            let mut pos = 0;
            while pos < zeros.len() {
                bomb.reserve(64 * 1024);
                let i0 = c.total_in();
                let r = c.compress_vec(&zeros[pos..], &mut bomb, FlushCompress::None);
                assert!(r.is_ok());
                pos += (c.total_in() - i0) as usize;
            }
        }
        loop {
            bomb.reserve(64 * 1024);
            let r = c.compress_vec(&[], &mut bomb, FlushCompress::Sync);
            assert!(r.is_ok());
            if bomb.len() < bomb.capacity() {
                break;
            }
        }
        bomb.truncate(bomb.len() - 4);
        assert!(bomb.len() < 1 << 20);

        let cap = 256 * 1024;
        let mut inf = Inflater::new(true);
        let mut out = Vec::new();
        let r = inf.inflate(&bomb, &mut out, cap);
        let Ok(r) = r else { panic!("{r:?}") };
        assert!(r.stopped && r.truncated);
        assert!(r.len >= hard_bound(cap) && r.len < hard_bound(cap) + 2 * CHUNK as u64);
        assert_eq!(out.len(), cap);
        assert!(out.iter().all(|&b| b == 0));
        assert!(
            out.capacity() <= cap + CHUNK + 4096,
            "memory stays near the cap"
        );
        // Stopping loses the window: the next message is decoded as after a gap.
        let mut s = Sender::new(true, 15);
        let (o, r) = inflate_ok(&mut inf, &s.send(b"after the bomb"));
        assert_eq!(
            (o.as_slice(), r.history_reset),
            (&b"after the bomb"[..], true)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn inflate_deflate_round_trip(
            msgs in proptest::collection::vec(
                proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), any::<u8>()], 0..400),
                1..20),
            takeover: bool,
            wbits in 9u8..=15,
        ) {
            let mut s = Sender::new(takeover, wbits);
            let mut inf = Inflater::new(takeover);
            for m in &msgs {
                let c = s.send(m);
                let mut out = Vec::new();
                let r = inf.inflate(&c, &mut out, 1 << 20);
                prop_assert_eq!(r.map(|r| r.len), Ok(m.len() as u64));
                prop_assert_eq!(&out, m);
            }
        }

        /// Compressed bytes fed in pieces of any sizes (gathered or decoded as they come)
        /// decode to the same bytes as the whole message, for interleaved directions with and
        /// without takeover sharing the thread's states.
        #[test]
        fn pieces_decode_like_whole(
            msgs in proptest::collection::vec(
                proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), any::<u8>()], 0..3000),
                1..12),
            pieces in proptest::collection::vec(prop_oneof![1usize..64, 1000usize..40_000], 1..5),
            takeover: bool,
        ) {
            let (mut sa, mut sb) = (Sender::new(takeover, 15), Sender::new(false, 15));
            let (mut a, mut b) = (Inflater::new(takeover), Inflater::new(false));
            let mut piece = pieces.iter().cycle();
            for m in &msgs {
                let (ca, cb) = (sa.send(m), sb.send(m));
                // Direction b's whole messages go in between a's pieces.
                let mut run = a.begin(1 << 20);
                let mut out = Vec::new();
                let mut rest = &ca[..];
                while !rest.is_empty() {
                    let n = (*piece.next().unwrap_or(&1)).min(rest.len());
                    a.feed(&mut run, &rest[..n], &mut |d| out.extend_from_slice(d));
                    rest = &rest[n..];
                    let mut ob = Vec::new();
                    prop_assert!(b.inflate(&cb, &mut ob, 1 << 20).is_ok());
                    prop_assert_eq!(&ob, m);
                }
                let r = a.end(run, &mut Output::Lend(&mut |d: &[u8]| out.extend_from_slice(d)));
                prop_assert_eq!(r.map(|r| r.len), Ok(m.len() as u64));
                prop_assert_eq!(&out, m);
            }
        }
    }
}
