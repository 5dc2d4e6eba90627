//! The JSON document: takes the event stream, gives `{"schema_version", "connections": [...],
//! "capture": {...}, "summary": {...}}`.
//!
//! Connections are written as they end, in the order they ended; each carries its `id`.
//! `capture` comes last because its counts are only known at the end; `summary` (connections by
//! outcome, from the analysis stage) follows it. Message, frame, close and anomaly objects have
//! the same fields as the matching NDJSON events. `docs/json-schema.md` and
//! `docs/wsinspect.schema.json` describe it.
//!
//! Memory. A connection's messages, frames, pings, unanswered pongs and anomalies sit inside its
//! object, so they wait until it ends, and a connection open for the whole capture would hold
//! all of its records. They wait in memory up to a cap on the bytes held for all open
//! connections ([`DEFAULT_MEMORY_CAP`], `--json-memory`; a rough estimate per record: its size
//! plus its strings). Past the cap, the connections holding the most move their records to a
//! temporary file ([`super::spool`]) until a quarter of the cap is free again; what comes later
//! waits in memory until the next time. Memory thus follows the cap and the connections open,
//! not the size of the capture; the file follows the records of open connections that were
//! moved (for a connection open through the whole capture, its share of the document).
//!
//! The document is the same byte for byte whatever was moved. A moved record is stored as the
//! exact JSON text serde_json writes for it at its place in the document (under `--pretty`,
//! indented for its depth) and goes back into its list as a raw value. A ping is the exception:
//! its pong may complete it after it was moved, so it is stored as a fixed-size binary record,
//! patched in place when the pong comes, and serialised when its connection is written.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::mem;

use serde::ser::{Error as _, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use crate::diagnosis::Diagnosis;
use crate::event::{
    AnomalyEvent, CloseEvent, ConnectionEnd, DirStats, Event, FrameEvent, Handshake,
    MAX_PENDING_PINGS, MessageEvent, PingEvent, PongEvent, TcpSummary,
};
use crate::output::SCHEMA_VERSION;
use crate::output::escape::C1Escaping;
use crate::output::spool::{self, Chain, ChainReader, Spool};
use crate::sink::{CaptureSummary, EventSink};
use crate::types::{ConnId, Dir, Ts};

/// Bytes of records the document holds in memory for open connections unless told otherwise.
pub const DEFAULT_MEMORY_CAP: u64 = 16 << 20;

/// A ping and the pong that answered it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PingRecord {
    /// When the ping was captured.
    pub ts: Ts,
    /// Who sent the ping.
    pub dir: Dir,
    /// Ping payload length.
    pub len: u64,
    /// When the matching pong was captured.
    pub pong_ts: Option<Ts>,
    /// Milliseconds from ping to pong.
    pub rtt_ms: Option<f64>,
}

/// The pings of one direction a pong may still answer. A pong only ever names one of the last
/// [`MAX_PENDING_PINGS`] unanswered pings of the other side, so keeping as many here, dropped
/// and removed as the session does, finds every ping it can name; older pings are final and can
/// sit in the spool as they are.
const ANSWERABLE_PINGS: usize = MAX_PENDING_PINGS;

/// Which list of its connection a spooled record belongs to: the first byte of its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Message,
    Frame,
    Ping,
    UnmatchedPong,
    Anomaly,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Message,
        Kind::Frame,
        Kind::Ping,
        Kind::UnmatchedPong,
        Kind::Anomaly,
    ];

    fn index(self) -> usize {
        self as usize
    }

    fn from_byte(b: u8) -> Option<Kind> {
        Kind::ALL.get(usize::from(b)).copied()
    }
}

/// A spooled record's header: its kind (1 byte), then its length (8 bytes, little-endian).
const HEADER: u64 = 9;

/// A spooled ping: `ts` (8), `dir` (1), `len` (8), then from [`PONG_AT`] what the pong sets:
/// `pong_ts` (presence 1, value 8) and `rtt_ms` (presence 1, value 8). Little-endian.
const PING_LEN: usize = 35;
const PONG_AT: usize = 17;

fn encode_ping(r: &PingRecord) -> [u8; PING_LEN] {
    let mut b = [0; PING_LEN];
    b[..8].copy_from_slice(&r.ts.0.to_le_bytes());
    b[8] = r.dir.index() as u8;
    b[9..PONG_AT].copy_from_slice(&r.len.to_le_bytes());
    b[PONG_AT..].copy_from_slice(&encode_pong(r.pong_ts, r.rtt_ms));
    b
}

fn encode_pong(pong_ts: Option<Ts>, rtt_ms: Option<f64>) -> [u8; PING_LEN - PONG_AT] {
    let mut b = [0; PING_LEN - PONG_AT];
    if let Some(ts) = pong_ts {
        b[0] = 1;
        b[1..9].copy_from_slice(&ts.0.to_le_bytes());
    }
    if let Some(rtt) = rtt_ms {
        b[9] = 1;
        b[10..].copy_from_slice(&rtt.to_bits().to_le_bytes());
    }
    b
}

fn decode_ping(b: &[u8]) -> Option<PingRecord> {
    let b: &[u8; PING_LEN] = b.try_into().ok()?;
    let u64_at = |at: usize| {
        let mut v = [0; 8];
        v.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(v)
    };
    let dir = match b[8] {
        0 => Dir::C2s,
        1 => Dir::S2c,
        _ => return None,
    };
    Some(PingRecord {
        ts: Ts(u64_at(0) as i64),
        dir,
        len: u64_at(9),
        pong_ts: (b[PONG_AT] == 1).then(|| Ts(u64_at(PONG_AT + 1) as i64)),
        rtt_ms: (b[PONG_AT + 9] == 1).then(|| f64::from_bits(u64_at(PONG_AT + 10))),
    })
}

/// Where a ping's record is: an index into `Pending::pings`, or the position in the
/// connection's chain of the part its pong patches.
#[derive(Clone, Copy, Debug)]
enum PingPlace {
    Memory(usize),
    Spool(u64),
}

/// What is gathered for a connection until it ends: records moved to the spool first, then
/// those still in memory, list by list.
#[derive(Default)]
struct Pending {
    messages: Vec<MessageEvent>,
    frames: Vec<FrameEvent>,
    pings: Vec<PingRecord>,
    unmatched_pongs: Vec<PongEvent>,
    anomalies: Vec<AnomalyEvent>,
    /// Estimated bytes of the records above.
    held: u64,
    /// The records moved to the spool, all lists mixed, each list in order...
    spooled: Chain,
    /// ... and how many of each kind.
    spooled_counts: [u64; Kind::ALL.len()],
    /// Pings a pong may still answer, by the direction of the ping: (`ping_id`, place).
    answerable: [VecDeque<(u32, PingPlace)>; 2],
}

impl Pending {
    /// The ping a pong sent in `dir` answers, no longer answerable after this.
    fn answered(&mut self, dir: Dir, id: u32) -> Option<PingPlace> {
        let q = &mut self.answerable[dir.flip().index()];
        q.iter()
            .position(|&(i, _)| i == id)
            .and_then(|at| q.remove(at))
            .map(|(_, place)| place)
    }

    /// Completes the ping at `place` with its pong.
    fn complete(
        &mut self,
        place: PingPlace,
        pong_ts: Ts,
        rtt_ms: Option<f64>,
        spool: &mut Spool,
    ) -> io::Result<()> {
        match place {
            PingPlace::Memory(i) => {
                if let Some(rec) = self.pings.get_mut(i) {
                    rec.pong_ts = Some(pong_ts);
                    rec.rtt_ms = rtt_ms;
                }
                Ok(())
            }
            PingPlace::Spool(at) => {
                spool.patch(&self.spooled, at, &encode_pong(Some(pong_ts), rtt_ms))
            }
        }
    }
}

/// Estimated bytes a record holds: its size and its strings' buffers.
fn message_bytes(m: &MessageEvent) -> u64 {
    let strings = m.preview.as_ref().map_or(0, String::capacity)
        + m.payload.as_ref().map_or(0, String::capacity);
    (mem::size_of::<MessageEvent>() + strings) as u64
}

fn anomaly_bytes(a: &AnomalyEvent) -> u64 {
    (mem::size_of::<AnomalyEvent>() + a.detail.capacity()) as u64
}

/// Appends records to one connection's chain: serialised into `scratch`, framed and gathered
/// in `staging`, written a block or so at a time.
struct ChainWriter<'a> {
    spool: &'a mut Spool,
    chain: &'a mut Chain,
    staging: &'a mut Vec<u8>,
    scratch: &'a mut Vec<u8>,
    pretty: bool,
}

/// What a list element of a connection object is indented by under `--pretty`, beyond what it
/// has when serialised alone: the connection object is written at depth 0, its lists at depth 1,
/// their elements at depth 2, at two spaces a level.
const ELEMENT_INDENT: &[u8] = b"    ";

impl ChainWriter<'_> {
    /// Position in the chain of the next byte appended.
    fn pos(&self) -> u64 {
        self.chain.len() + self.staging.len() as u64
    }

    fn header(&mut self, kind: Kind, len: usize) {
        self.staging.push(kind as u8);
        self.staging.extend_from_slice(&(len as u64).to_le_bytes());
    }

    /// A record as the JSON text it has as a list element of a connection object.
    fn json<T: Serialize>(&mut self, kind: Kind, value: &T) -> io::Result<()> {
        self.scratch.clear();
        if self.pretty {
            serde_json::to_writer_pretty(&mut *self.scratch, value)?;
            // The pretty printer starts a line only between tokens and JSON strings hold no raw
            // newline, so every `\n` starts a line that needs the element's depth added.
            let lines = memchr::memchr_iter(b'\n', self.scratch).count();
            self.header(kind, self.scratch.len() + lines * ELEMENT_INDENT.len());
            for (i, line) in self.scratch.split(|&b| b == b'\n').enumerate() {
                if i > 0 {
                    self.staging.push(b'\n');
                    self.staging.extend_from_slice(ELEMENT_INDENT);
                }
                self.staging.extend_from_slice(line);
            }
        } else {
            serde_json::to_writer(&mut *self.scratch, value)?;
            self.header(kind, self.scratch.len());
            self.staging.extend_from_slice(self.scratch);
        }
        self.flush_full()
    }

    /// Every record of one list, in order; the list's buffer goes back to the allocator.
    fn all<T: Serialize>(
        &mut self,
        kind: Kind,
        list: Vec<T>,
        counts: &mut [u64],
    ) -> io::Result<()> {
        for value in &list {
            self.json(kind, value)?;
        }
        if let Some(c) = counts.get_mut(kind.index()) {
            *c += list.len() as u64;
        }
        Ok(())
    }

    fn ping(&mut self, rec: &PingRecord) -> io::Result<()> {
        self.header(Kind::Ping, PING_LEN);
        self.staging.extend_from_slice(&encode_ping(rec));
        self.flush_full()
    }

    fn flush_full(&mut self) -> io::Result<()> {
        if self.staging.len() >= spool::BLOCK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.spool.append(self.chain, self.staging)?;
        self.staging.clear();
        // One huge record (a whole payload) must not keep its buffers' size for the run.
        for buf in [&mut *self.staging, &mut *self.scratch] {
            if buf.capacity() > 4 * spool::BLOCK {
                buf.shrink_to(2 * spool::BLOCK);
            }
        }
        Ok(())
    }
}

/// Where a connection's spooled records are.
#[derive(Clone, Copy)]
struct Spooled<'a> {
    spool: &'a Spool,
    chain: &'a Chain,
    counts: &'a [u64; Kind::ALL.len()],
}

/// One list of a connection object: its spooled records, then those in memory.
struct List<'a, T> {
    kind: Kind,
    spooled: Spooled<'a>,
    memory: &'a [T],
}

/// The next record's kind and length.
fn next_header(r: &mut ChainReader<'_>) -> io::Result<(Kind, u64)> {
    let mut h = [0; HEADER as usize];
    r.read_exact(&mut h)?;
    let mut len = [0; 8];
    len.copy_from_slice(&h[1..]);
    let len = u64::from_le_bytes(len);
    match Kind::from_byte(h[0]) {
        Some(kind) if len <= r.remaining() => Ok((kind, len)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the JSON document's temporary file does not read back as written",
        )),
    }
}

impl<T: Serialize> Serialize for List<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let spooled = self.spooled.counts[self.kind.index()];
        let len = usize::try_from(spooled)
            .ok()
            .and_then(|n| n.checked_add(self.memory.len()));
        let mut seq = s.serialize_seq(len)?;
        if spooled > 0 {
            let mut r = self.spooled.spool.reader(self.spooled.chain);
            let mut body = Vec::new();
            let mut left = spooled;
            while left > 0 {
                let (kind, len) = next_header(&mut r).map_err(S::Error::custom)?;
                if kind != self.kind {
                    r.skip(len).map_err(S::Error::custom)?;
                    continue;
                }
                left -= 1;
                // `next_header` checked the length against what the chain holds.
                body.resize(len as usize, 0);
                r.read_exact(&mut body).map_err(S::Error::custom)?;
                if kind == Kind::Ping {
                    let rec = decode_ping(&body)
                        .ok_or_else(|| S::Error::custom("a spooled ping does not decode"))?;
                    seq.serialize_element(&rec)?;
                } else {
                    let raw: &RawValue = serde_json::from_slice(&body).map_err(S::Error::custom)?;
                    seq.serialize_element(raw)?;
                }
            }
        }
        for x in self.memory {
            seq.serialize_element(x)?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct ConnectionDoc<'a> {
    id: ConnId,
    client: &'a str,
    server: &'a str,
    start_ts: Ts,
    end_ts: Ts,
    ended_by: &'static str,
    handshake_seen: bool,
    handshake: &'a Option<Handshake>,
    upgrade_attempts: u32,
    stats: StatsDoc<'a>,
    messages: List<'a, MessageEvent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frames: Option<List<'a, FrameEvent>>,
    pings: List<'a, PingRecord>,
    unmatched_pongs: List<'a, PongEvent>,
    close: &'a [CloseEvent],
    tcp: &'a TcpSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: &'a Option<crate::tls::TlsInfo>,
    anomalies: List<'a, AnomalyEvent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    diagnosis: &'a Option<Diagnosis>,
}

#[derive(Serialize)]
struct StatsDoc<'a> {
    c2s: &'a DirStats,
    s2c: &'a DirStats,
}

/// Writes the JSON document.
pub struct JsonSink<W: Write> {
    /// C1 controls escaped: see [`C1Escaping`].
    out: C1Escaping<W>,
    frames: bool,
    pretty: bool,
    open: HashMap<ConnId, Pending>,
    written: u64,
    /// Bytes of records held in memory past which connections are spooled.
    cap: u64,
    /// Estimated bytes of records held in memory, over all open connections.
    held: u64,
    spool: Spool,
    /// Records moved to the spool during the run.
    spooled: u64,
    /// Framed records on their way to a chain, and one record's JSON: kept for their buffers.
    staging: Vec<u8>,
    scratch: Vec<u8>,
    /// `(held, connection)` while choosing what to spool; kept for its buffer.
    order: Vec<(u64, ConnId)>,
}

impl<W: Write> JsonSink<W> {
    /// A sink writing to `out`; `frames` adds each connection's frame list; `pretty` indents.
    /// Holds up to [`DEFAULT_MEMORY_CAP`] bytes of records in memory.
    pub fn new(out: W, frames: bool, pretty: bool) -> JsonSink<W> {
        JsonSink::with_memory(out, frames, pretty, DEFAULT_MEMORY_CAP)
    }

    /// [`JsonSink::new`] holding up to `cap` bytes of records of open connections in memory;
    /// beyond, records wait in a temporary file. 0 moves every record there at once.
    pub fn with_memory(out: W, frames: bool, pretty: bool, cap: u64) -> JsonSink<W> {
        JsonSink {
            out: C1Escaping::new(out),
            frames,
            pretty,
            open: HashMap::new(),
            written: 0,
            cap,
            held: 0,
            spool: Spool::new(),
            spooled: 0,
            staging: Vec::new(),
            scratch: Vec::new(),
            order: Vec::new(),
        }
    }

    /// Estimated bytes of records held in memory for open connections. At most the cap
    /// between events.
    pub fn held_bytes(&self) -> u64 {
        self.held
    }

    /// Records moved to the temporary file so far.
    pub fn spooled_records(&self) -> u64 {
        self.spooled
    }

    /// Bytes the temporary file takes: blocks of open connections' records, and free blocks.
    /// 0 once no open connection has records there.
    pub fn spool_disk_bytes(&self) -> u64 {
        self.spool.disk_bytes()
    }

    /// Adds a record to `conn`'s lists with `add`, which returns its estimated size, and moves
    /// records to the spool if that takes the sink past its cap.
    fn hold(&mut self, conn: ConnId, add: impl FnOnce(&mut Pending) -> u64) -> io::Result<()> {
        let p = self.open.entry(conn).or_default();
        let size = add(p);
        p.held += size;
        self.held += size;
        if self.held > self.cap {
            self.relieve()?;
        }
        Ok(())
    }

    /// Spools the connections holding the most until three quarters of the cap are held: a
    /// margin, so that a sink at its cap does not sort its connections on every record.
    fn relieve(&mut self) -> io::Result<()> {
        let low = self.cap - self.cap / 4;
        let mut order = mem::take(&mut self.order);
        order.clear();
        order.extend(
            self.open
                .iter()
                .filter(|(_, p)| p.held > 0)
                .map(|(&conn, p)| (p.held, conn)),
        );
        order.sort_unstable_by(|a, b| b.cmp(a));
        for &(_, conn) in &order {
            if self.held <= low {
                break;
            }
            self.spool_out(conn)?;
        }
        self.order = order;
        Ok(())
    }

    /// Moves every record `conn` holds in memory to the end of its chain.
    fn spool_out(&mut self, conn: ConnId) -> io::Result<()> {
        let Some(p) = self.open.get_mut(&conn) else {
            return Ok(());
        };
        self.held -= p.held;
        p.held = 0;
        // Left over only if an earlier spooling failed half way: not this chain's bytes.
        self.staging.clear();
        let mut w = ChainWriter {
            spool: &mut self.spool,
            chain: &mut p.spooled,
            staging: &mut self.staging,
            scratch: &mut self.scratch,
            pretty: self.pretty,
        };
        let mut counts = [0u64; Kind::ALL.len()];
        // Taken, not cleared: their buffers go back to the allocator now.
        w.all(Kind::Message, mem::take(&mut p.messages), &mut counts)?;
        w.all(Kind::Frame, mem::take(&mut p.frames), &mut counts)?;
        w.all(
            Kind::UnmatchedPong,
            mem::take(&mut p.unmatched_pongs),
            &mut counts,
        )?;
        w.all(Kind::Anomaly, mem::take(&mut p.anomalies), &mut counts)?;
        // The pings go one after the other, so ping `i` lies at a position computed from `i`.
        let first_ping = w.pos();
        let pings = mem::take(&mut p.pings);
        for rec in &pings {
            w.ping(rec)?;
        }
        counts[Kind::Ping.index()] += pings.len() as u64;
        w.flush()?;
        let moved = |place: &mut PingPlace| {
            if let PingPlace::Memory(i) = *place {
                *place = PingPlace::Spool(
                    first_ping + i as u64 * (HEADER + PING_LEN as u64) + HEADER + PONG_AT as u64,
                );
            }
        };
        p.answerable
            .iter_mut()
            .flatten()
            .for_each(|(_, place)| moved(place));
        for (total, n) in p.spooled_counts.iter_mut().zip(counts) {
            *total += n;
            self.spooled += n;
        }
        Ok(())
    }

    fn connection(&mut self, end: &ConnectionEnd) -> io::Result<()> {
        let p = self.open.remove(&end.conn).unwrap_or_default();
        self.held -= p.held;
        if self.written == 0 {
            write!(
                self.out,
                "{{\"schema_version\":\"{SCHEMA_VERSION}\",\"connections\":["
            )?;
        } else {
            self.out.write_all(b",")?;
        }
        if self.pretty {
            self.out.write_all(b"\n")?;
        }
        self.written += 1;
        let spooled = Spooled {
            spool: &self.spool,
            chain: &p.spooled,
            counts: &p.spooled_counts,
        };
        let doc = ConnectionDoc {
            id: end.conn,
            client: &end.client,
            server: &end.server,
            start_ts: end.start_ts,
            end_ts: end.end_ts,
            ended_by: end.ended_by,
            handshake_seen: end.handshake_seen,
            handshake: &end.handshake,
            upgrade_attempts: end.upgrade_attempts,
            stats: StatsDoc {
                c2s: &end.c2s,
                s2c: &end.s2c,
            },
            messages: list(Kind::Message, spooled, &p.messages),
            frames: self.frames.then(|| list(Kind::Frame, spooled, &p.frames)),
            pings: list(Kind::Ping, spooled, &p.pings),
            unmatched_pongs: list(Kind::UnmatchedPong, spooled, &p.unmatched_pongs),
            close: &end.close,
            tcp: &end.tcp,
            tls: &end.tls,
            anomalies: list(Kind::Anomaly, spooled, &p.anomalies),
            diagnosis: &end.diagnosis,
        };
        write_value(&mut self.out, self.pretty, &doc)?;
        self.spool.release(p.spooled)
    }
}

fn list<'a, T>(kind: Kind, spooled: Spooled<'a>, memory: &'a [T]) -> List<'a, T> {
    List {
        kind,
        spooled,
        memory,
    }
}

fn write_value<W: Write, T: Serialize>(
    out: &mut C1Escaping<W>,
    pretty: bool,
    v: &T,
) -> io::Result<()> {
    // serde_json writes token by token; gathered here first, the escaping writer scans large
    // pieces instead of each small write (a fixed buffer, whatever the value's size).
    let mut w = io::BufWriter::with_capacity(64 << 10, out);
    if pretty {
        serde_json::to_writer_pretty(&mut w, v)?;
    } else {
        serde_json::to_writer(&mut w, v)?;
    }
    w.flush()
}

impl<W: Write> EventSink for JsonSink<W> {
    fn event(&mut self, ev: Event) -> io::Result<()> {
        let conn = ev.conn();
        match ev {
            Event::ConnectionEnd(end) => self.connection(&end),
            Event::Message(m) => self.hold(conn, |p| {
                let size = message_bytes(&m);
                p.messages.push(m);
                size
            }),
            // Not written without `frames`: not kept either.
            Event::Frame(_) if !self.frames => Ok(()),
            Event::Frame(f) => self.hold(conn, |p| {
                p.frames.push(f);
                mem::size_of::<FrameEvent>() as u64
            }),
            Event::Ping(PingEvent {
                ts,
                dir,
                len,
                ping_id,
                ..
            }) => self.hold(conn, |p| {
                let place = PingPlace::Memory(p.pings.len());
                // The session forgets the oldest unanswered ping when it has this many.
                let q = &mut p.answerable[dir.index()];
                if q.len() >= ANSWERABLE_PINGS {
                    q.pop_front();
                }
                q.push_back((ping_id, place));
                p.pings.push(PingRecord {
                    ts,
                    dir,
                    len,
                    pong_ts: None,
                    rtt_ms: None,
                });
                mem::size_of::<PingRecord>() as u64
            }),
            Event::Pong(pong) => {
                let p = self.open.entry(conn).or_default();
                match pong.ping_id.and_then(|id| p.answered(pong.dir, id)) {
                    Some(place) => p.complete(place, pong.ts, pong.rtt_ms, &mut self.spool),
                    None => self.hold(conn, |p| {
                        p.unmatched_pongs.push(pong);
                        mem::size_of::<PongEvent>() as u64
                    }),
                }
            }
            Event::Anomaly(a) => self.hold(conn, |p| {
                let size = anomaly_bytes(&a);
                p.anomalies.push(a);
                size
            }),
            Event::ConnectionOpen(_)
            | Event::Handshake(_)
            | Event::Close(_)
            | Event::Tcp(_)
            | Event::Gap(_) => Ok(()),
        }
    }

    fn finish(&mut self, summary: &CaptureSummary) -> io::Result<()> {
        if self.written == 0 {
            write!(
                self.out,
                "{{\"schema_version\":\"{SCHEMA_VERSION}\",\"connections\":["
            )?;
        }
        self.out.write_all(if self.pretty {
            b"\n],\n\"capture\":"
        } else {
            b"],\"capture\":"
        })?;
        write_value(&mut self.out, self.pretty, summary)?;
        if let Some(d) = &summary.diagnosis {
            self.out.write_all(if self.pretty {
                b",\n\"summary\":"
            } else {
                b",\"summary\":"
            })?;
            write_value(&mut self.out, self.pretty, d)?;
        }
        self.out.write_all(b"}\n")?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn pings_round_trip_through_their_binary_record() {
        let mut rec = PingRecord {
            ts: Ts(-1_700_000_000_123_456_789),
            dir: Dir::S2c,
            len: u64::MAX - 3,
            pong_ts: None,
            rtt_ms: None,
        };
        let mut bytes = encode_ping(&rec);
        assert_eq!(decode_ping(&bytes), Some(rec.clone()));
        // The pong's patch changes only its own part of the record.
        bytes[PONG_AT..].copy_from_slice(&encode_pong(Some(Ts(42)), Some(0.1 + 0.2)));
        rec.pong_ts = Some(Ts(42));
        rec.rtt_ms = Some(0.1 + 0.2);
        assert_eq!(decode_ping(&bytes), Some(rec));
        bytes[8] = 2;
        assert_eq!(decode_ping(&bytes), None);
        assert_eq!(decode_ping(&bytes[1..]), None);
    }

    fn ts(secs: i64) -> Ts {
        Ts(secs * 1_000_000_000)
    }

    /// Two connections' events as the session gives them: pongs answer one of the last
    /// unanswered pings of the other side, far more than 64 pings stay unanswered (so the
    /// oldest are forgotten), pongs answer nothing, and messages and anomalies come between.
    /// Also the `pong_ts` each ping of connection 1 must end with, in order.
    fn ping_traffic() -> (Vec<Event>, Vec<Option<f64>>) {
        let mut evs = Vec::new();
        let mut want = Vec::new();
        let mut ids = [1u32, 1];
        let mut t = 0;
        for i in 0..240u32 {
            for conn in [1u64, 2] {
                t += 1;
                let c = conn as usize - 1;
                let dir = if i % 10 == 9 { Dir::S2c } else { Dir::C2s };
                evs.push(Event::Ping(PingEvent {
                    conn,
                    ts: ts(t),
                    dir,
                    len: u64::from(i),
                    ping_id: ids[c],
                }));
                ids[c] += 1;
                if conn == 1 {
                    want.push(None);
                }
                // Every other ping is answered five pings later; a ping sent by the server is
                // answered at once.
                let answered = if dir == Dir::S2c {
                    Some(i)
                } else {
                    (i % 2 == 0 && i >= 5).then(|| i - 5)
                };
                let answered = answered.filter(|&a| a == i || a % 10 != 9);
                if let Some(a) = answered {
                    t += 1;
                    evs.push(Event::Pong(PongEvent {
                        conn,
                        ts: ts(t),
                        dir: dir.flip(),
                        len: 0,
                        ping_id: Some(ids[c] - 1 - (i - a)),
                        rtt_ms: Some(1000.0 * (i - a) as f64 + 0.25),
                    }));
                    if conn == 1 {
                        want[a as usize] = Some(t as f64);
                    }
                }
                if i % 7 == 0 {
                    evs.push(Event::Pong(PongEvent {
                        conn,
                        ts: ts(t),
                        dir: Dir::S2c,
                        len: 3,
                        ping_id: None,
                        rtt_ms: None,
                    }));
                }
                if i % 3 == 0 {
                    evs.push(Event::Message(MessageEvent {
                        wire_len: 11,
                        preview: Some(format!("hello {i}\n\u{9b}")),
                        ..MessageEvent::text(conn, ts(t), dir, 5)
                    }));
                }
                if i % 50 == 0 {
                    evs.push(Event::Anomaly(AnomalyEvent {
                        conn,
                        ts: ts(t),
                        dir: None,
                        kind: "test",
                        detail: format!("anomaly {i}"),
                    }));
                }
            }
            if i == 150 {
                evs.push(end(2, t));
            }
        }
        evs.push(end(1, t));
        (evs, want)
    }

    fn end(conn: ConnId, t: i64) -> Event {
        Event::ConnectionEnd(Box::new(ConnectionEnd {
            conn,
            ts: ts(t),
            client: "10.0.0.1:40000".into(),
            server: "10.0.0.2:80".into(),
            start_ts: ts(0),
            end_ts: ts(t),
            ended_by: "fin",
            handshake_seen: true,
            handshake: None,
            upgrade_attempts: 1,
            c2s: DirStats::default(),
            s2c: DirStats::default(),
            close: Vec::new(),
            tcp: TcpSummary::default(),
            anomaly_count: 0,
            tls: None,
            diagnosis: None,
        }))
    }

    #[test]
    fn pongs_complete_their_pings_wherever_the_pings_are() {
        let (evs, want) = ping_traffic();
        for pretty in [false, true] {
            let mut docs = Vec::new();
            for cap in [DEFAULT_MEMORY_CAP, 0, 3000] {
                let mut out = Vec::new();
                let mut sink = JsonSink::with_memory(&mut out, false, pretty, cap);
                for ev in evs.iter().cloned() {
                    sink.event(ev).unwrap();
                    assert!(sink.held_bytes() <= cap);
                }
                sink.finish(&CaptureSummary::default()).unwrap();
                assert_eq!(sink.spooled_records() > 0, cap < DEFAULT_MEMORY_CAP);
                drop(sink);
                docs.push(out);
            }
            assert!(docs[1] == docs[0], "cap 0, pretty {pretty}");
            assert!(docs[2] == docs[0], "cap 3000, pretty {pretty}");
            let doc: Value = serde_json::from_slice(&docs[0]).unwrap();
            // Connection 2 ended first.
            let conn = &doc["connections"][1];
            assert_eq!(conn["id"], 1);
            let got: Vec<Option<f64>> = conn["pings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["pong_ts"].as_f64())
                .collect();
            assert_eq!(got, want);
            assert_eq!(conn["unmatched_pongs"].as_array().unwrap().len(), 35);
            assert_eq!(conn["anomalies"].as_array().unwrap().len(), 5);
        }
    }

    /// The fragment a record is spooled as, read back as the element of a list inside an object
    /// at depth 0, is what serde_json writes for the element itself, compact and indented.
    #[test]
    fn spooled_fragments_are_the_elements_serde_json_writes() {
        let elements = [
            json!({"a": 1, "s": "line\nbreak \u{9b} \"q\"", "n": {"x": [1.5, [], {}], "y": null}}),
            json!([]),
            json!({}),
            json!([{"deep": [[1], {"k": "v"}]}]),
            json!("text"),
        ];
        let whole = json!({"id": 1, "messages": elements.to_vec(), "after": true});
        for pretty in [false, true] {
            let mut staging = Vec::new();
            let mut scratch = Vec::new();
            let mut spool = Spool::new();
            let mut chain = Chain::default();
            let mut w = ChainWriter {
                spool: &mut spool,
                chain: &mut chain,
                staging: &mut staging,
                scratch: &mut scratch,
                pretty,
            };
            for e in &elements {
                w.json(Kind::Message, e).unwrap();
            }
            w.flush().unwrap();
            let counts = [elements.len() as u64, 0, 0, 0, 0];
            let spooled = Spooled {
                spool: &spool,
                chain: &chain,
                counts: &counts,
            };
            #[derive(Serialize)]
            struct Doc<'a> {
                id: u32,
                messages: List<'a, Value>,
                after: bool,
            }
            let doc = Doc {
                id: 1,
                messages: list(Kind::Message, spooled, &[]),
                after: true,
            };
            let (got, want) = if pretty {
                (
                    serde_json::to_string_pretty(&doc).unwrap(),
                    serde_json::to_string_pretty(&whole).unwrap(),
                )
            } else {
                (
                    serde_json::to_string(&doc).unwrap(),
                    serde_json::to_string(&whole).unwrap(),
                )
            };
            assert_eq!(got, want, "pretty: {pretty}");
        }
    }
}
