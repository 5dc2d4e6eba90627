//! The UI's data: takes the event stream, gives one [`Conn`] per connection with compact
//! timeline entries and a bounded store of payload bytes for the detail pane.
//!
//! A row is created by `ConnectionOpen`, filled by `Handshake`, counted up by every message and
//! finalised by `ConnectionEnd` (which carries the diagnosis). Timeline entries are small fixed
//! records; payloads are kept as bytes until a total budget is spent, after which the entry says
//! that its payload was not kept.

use std::collections::HashMap;

use base64::Engine as _;

use crate::event::{ConnectionEnd, Event, Handshake, MessageEvent, PayloadEncoding};
use crate::query::{Facts, Queryable};
use crate::types::{ConnId, Dir, Ts};

/// Default total of payload bytes kept for the detail pane (see `--tui-memory`).
pub const DEFAULT_PAYLOAD_BUDGET: u64 = 256 << 20;

/// What a timeline entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The upgrade request and its answer.
    Handshake,
    /// A text message.
    Text,
    /// A binary message.
    Binary,
    /// A ping frame.
    Ping,
    /// A pong frame.
    Pong,
    /// A close frame.
    Close,
    /// TCP FIN.
    Fin,
    /// TCP RST.
    Rst,
    /// Bytes missing from the capture.
    Gap,
    /// A broken rule or a limit hit.
    Anomaly,
    /// One frame (only with `--frames`).
    Frame,
}

impl Kind {
    /// Ping, pong and close: what "hide control frames" hides.
    pub fn is_control(self) -> bool {
        matches!(self, Kind::Ping | Kind::Pong | Kind::Close)
    }
}

/// Flag bits of an [`Entry`].
pub mod flag {
    /// Compressed with permessage-deflate.
    pub const COMPRESSED: u8 = 1;
    /// The message is not complete (`truncated`, `incomplete` or `undecodable`).
    pub const NOT_COMPLETE: u8 = 2;
    /// A frame's FIN bit.
    pub const FIN: u8 = 4;
    /// The payload existed but was not kept (over the memory budget).
    pub const DROPPED: u8 = 8;
    /// A frame with RSV1 set.
    pub const RSV1: u8 = 16;
}

/// Marks "no index" in the `u32` index fields.
pub const NONE: u32 = u32::MAX;

/// One line of a connection's timeline; a fixed-size record so that a million of them stay
/// cheap.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// Capture time.
    pub ts: Ts,
    /// Decoded size (messages), payload length (control frames, frames) or missing bytes (gaps).
    pub len: u64,
    /// Bytes on the wire (compressed size).
    pub wire: u64,
    /// Ping id (ping/pong), close code (close), frames (message), opcode (frame).
    pub aux: u32,
    /// Index into the connection's payloads, or [`NONE`].
    pub payload: u32,
    /// Index into the connection's texts (close reason, anomaly detail, status), or [`NONE`].
    pub text: u32,
    /// Round trip of a ping/pong pair, microseconds, or [`NONE`].
    pub rtt_us: u32,
    /// What it is.
    pub kind: Kind,
    /// Direction; `None` for entries about the connection (handshake, some anomalies).
    pub dir: Option<Dir>,
    /// [`flag`] bits.
    pub flags: u8,
}

impl Entry {
    fn new(ts: Ts, kind: Kind, dir: Option<Dir>) -> Entry {
        Entry {
            ts,
            len: 0,
            wire: 0,
            aux: NONE,
            payload: NONE,
            text: NONE,
            rtt_us: NONE,
            kind,
            dir,
            flags: 0,
        }
    }
}

/// A payload kept for the detail pane.
#[derive(Clone, Debug)]
pub struct Payload {
    /// Decoded bytes.
    pub bytes: Box<[u8]>,
    /// Whether the message was text.
    pub text: bool,
}

/// One connection as the UI shows it.
#[derive(Clone, Debug)]
pub struct Conn {
    /// Connection id.
    pub id: ConnId,
    /// Client `ip:port`.
    pub client: String,
    /// Server `ip:port`.
    pub server: String,
    /// Start (SYN or first packet).
    pub start: Ts,
    /// Last event seen.
    pub last: Ts,
    /// The handshake, once seen.
    pub handshake: Option<Handshake>,
    /// Messages each way (index: [`Dir::index`]).
    pub messages: [u64; 2],
    /// Decoded bytes each way.
    pub bytes: [u64; 2],
    /// Wire bytes each way.
    pub wire: [u64; 2],
    /// Close codes sent by each side (first close frame of each).
    pub close_sent: [Option<u16>; 2],
    /// Anomalies seen so far.
    pub anomalies: u64,
    /// The summary with its diagnosis, once the connection ended.
    pub end: Option<Box<ConnectionEnd>>,
    /// Timeline entries in capture order.
    pub entries: Vec<Entry>,
    /// Whether any entry is a frame.
    pub has_frames: bool,
    /// Payload bytes kept.
    pub payloads: Vec<Payload>,
    /// Short texts entries refer to.
    pub texts: Vec<Box<str>>,
    pending_pings: HashMap<u32, usize>,
}

impl Conn {
    fn new(id: ConnId, client: String, server: String, ts: Ts) -> Conn {
        Conn {
            id,
            client,
            server,
            start: ts,
            last: ts,
            handshake: None,
            messages: [0; 2],
            bytes: [0; 2],
            wire: [0; 2],
            close_sent: [None; 2],
            anomalies: 0,
            end: None,
            entries: Vec::new(),
            has_frames: false,
            payloads: Vec::new(),
            texts: Vec::new(),
            pending_pings: HashMap::new(),
        }
    }

    fn text(&mut self, s: &str) -> u32 {
        let i = u32::try_from(self.texts.len()).unwrap_or(NONE);
        if i != NONE {
            self.texts.push(s.into());
        }
        i
    }

    /// The `Host` header.
    pub fn host(&self) -> Option<&str> {
        self.handshake.as_ref().and_then(|h| h.host.as_deref())
    }

    /// The request target.
    pub fn path(&self) -> Option<&str> {
        self.handshake.as_ref().and_then(|h| h.path.as_deref())
    }

    /// The chosen subprotocol.
    pub fn subprotocol(&self) -> Option<&str> {
        self.handshake
            .as_ref()
            .and_then(|h| h.subprotocol.as_deref())
    }

    /// Whether permessage-deflate is in effect.
    pub fn compressed(&self) -> bool {
        self.handshake
            .as_ref()
            .is_some_and(|h| h.permessage_deflate.is_some())
    }

    /// End time: the summary's, else the last event so far.
    pub fn end_ts(&self) -> Ts {
        self.end.as_ref().map_or(self.last, |e| e.end_ts)
    }

    /// The codes each side observed (client, server), once diagnosed.
    pub fn observed(&self) -> (Option<u16>, Option<u16>) {
        self.end
            .as_ref()
            .and_then(|e| e.diagnosis.as_ref())
            .map_or((None, None), |d| {
                (d.client_observed_code, d.server_observed_code)
            })
    }

    /// The termination kind name, once diagnosed.
    pub fn kind(&self) -> Option<&'static str> {
        self.end
            .as_ref()
            .and_then(|e| e.diagnosis.as_ref())
            .map(|d| d.kind.as_str())
    }

    /// A kept payload.
    pub fn payload(&self, e: &Entry) -> Option<&Payload> {
        self.payloads.get(usize::try_from(e.payload).ok()?)
    }

    /// A text an entry refers to.
    pub fn entry_text(&self, e: &Entry) -> Option<&str> {
        self.texts.get(usize::try_from(e.text).ok()?).map(|s| &**s)
    }
}

impl Queryable for Conn {
    fn facts(&self) -> Facts<'_> {
        if let Some(end) = &self.end {
            return end.facts();
        }
        let mut codes: Vec<u16> = self.close_sent.iter().flatten().copied().collect();
        codes.dedup();
        Facts {
            client: &self.client,
            server: &self.server,
            host: self.host(),
            path: self.path(),
            subprotocol: self.subprotocol(),
            kind: None,
            codes,
            abnormal: false,
            anomalies: self.anomalies,
            open: true,
            verdict: None,
        }
    }
}

/// Every connection, built from events.
#[derive(Debug)]
pub struct Model {
    /// Connections in order of discovery.
    pub conns: Vec<Conn>,
    index: HashMap<ConnId, usize>,
    /// Payload bytes still allowed.
    pub budget_left: u64,
    /// The budget given.
    pub budget: u64,
    /// Payloads not kept because the budget was spent.
    pub dropped_payloads: u64,
    /// Events taken in.
    pub events: u64,
}

impl Model {
    /// An empty model keeping at most `payload_budget` payload bytes.
    pub fn new(payload_budget: u64) -> Model {
        Model {
            conns: Vec::new(),
            index: HashMap::new(),
            budget_left: payload_budget,
            budget: payload_budget,
            dropped_payloads: 0,
            events: 0,
        }
    }

    /// Position of a connection in `conns`.
    pub fn position(&self, id: ConnId) -> Option<usize> {
        self.index.get(&id).copied()
    }

    fn conn(&mut self, id: ConnId, ts: Ts) -> &mut Conn {
        let i = match self.index.get(&id) {
            Some(&i) => i,
            None => {
                // Events of a connection whose open was not seen (a producer that joined late).
                let i = self.conns.len();
                self.conns
                    .push(Conn::new(id, String::new(), String::new(), ts));
                self.index.insert(id, i);
                i
            }
        };
        &mut self.conns[i]
    }

    /// Takes one event; returns the position of the connection it touched.
    pub fn ingest(&mut self, ev: Event) -> usize {
        self.events += 1;
        let id = ev.conn();
        if let Event::ConnectionOpen(o) = &ev
            && !self.index.contains_key(&id)
        {
            self.index.insert(id, self.conns.len());
            self.conns
                .push(Conn::new(id, o.client.clone(), o.server.clone(), o.ts));
        }
        let pos = match self.index.get(&id) {
            Some(&i) => i,
            None => {
                let ts = match &ev {
                    Event::ConnectionEnd(e) => e.start_ts,
                    _ => Ts::default(),
                };
                self.conn(id, ts);
                self.conns.len() - 1
            }
        };
        let budget_left = &mut self.budget_left;
        let dropped = &mut self.dropped_payloads;
        let c = &mut self.conns[pos];
        match ev {
            Event::ConnectionOpen(_) => {}
            Event::Handshake(h) => {
                c.last = c.last.max(h.ts);
                let mut e = Entry::new(h.ts, Kind::Handshake, None);
                e.aux = u32::from(h.handshake.status.unwrap_or(0));
                c.entries.push(e);
                c.handshake = Some(h.handshake);
            }
            Event::Message(m) => {
                c.last = c.last.max(m.ts);
                let d = m.dir.index();
                c.messages[d] += 1;
                c.bytes[d] += m.len;
                c.wire[d] += m.wire_len;
                let mut e = Entry::new(
                    m.ts,
                    if m.kind == "text" {
                        Kind::Text
                    } else {
                        Kind::Binary
                    },
                    Some(m.dir),
                );
                e.len = m.len;
                e.wire = m.wire_len;
                e.aux = m.frames;
                if m.compressed {
                    e.flags |= flag::COMPRESSED;
                }
                if m.status != "complete" {
                    e.flags |= flag::NOT_COMPLETE;
                    let status = match m.undecodable_reason {
                        Some(why) => format!("{}: {why}", m.status),
                        None => m.status.to_owned(),
                    };
                    e.text = c.text(&status);
                }
                keep_payload(c, &mut e, m, budget_left, dropped);
                c.entries.push(e);
            }
            Event::Ping(p) => {
                c.last = c.last.max(p.ts);
                let mut e = Entry::new(p.ts, Kind::Ping, Some(p.dir));
                e.len = p.len;
                e.aux = p.ping_id;
                c.pending_pings.insert(p.ping_id, c.entries.len());
                c.entries.push(e);
            }
            Event::Pong(p) => {
                c.last = c.last.max(p.ts);
                let mut e = Entry::new(p.ts, Kind::Pong, Some(p.dir));
                e.len = p.len;
                if let Some(id) = p.ping_id {
                    e.aux = id;
                }
                if let Some(rtt) = p.rtt_ms {
                    e.rtt_us = rtt_us(rtt);
                }
                // The ping's line shows the round trip too, so a pair reads from either end.
                if let Some(id) = p.ping_id
                    && let Some(i) = c.pending_pings.remove(&id)
                    && let Some(ping) = c.entries.get_mut(i)
                {
                    ping.rtt_us = e.rtt_us;
                }
                c.entries.push(e);
            }
            Event::Close(cl) => {
                c.last = c.last.max(cl.ts);
                let d = cl.dir.index();
                if c.close_sent[d].is_none() {
                    c.close_sent[d] = cl.code;
                }
                let mut e = Entry::new(cl.ts, Kind::Close, Some(cl.dir));
                if let Some(code) = cl.code {
                    e.aux = u32::from(code);
                }
                if !cl.reason.is_empty() {
                    e.text = c.text(&cl.reason);
                }
                c.entries.push(e);
            }
            Event::Tcp(t) => {
                c.last = c.last.max(t.ts);
                let kind = if t.kind == "rst" {
                    Kind::Rst
                } else {
                    Kind::Fin
                };
                let mut e = Entry::new(t.ts, kind, Some(t.dir));
                e.aux = u32::from(t.ttl);
                c.entries.push(e);
            }
            Event::Gap(g) => {
                c.last = c.last.max(g.ts);
                let mut e = Entry::new(g.ts, Kind::Gap, Some(g.dir));
                e.len = g.len;
                c.entries.push(e);
            }
            Event::Anomaly(a) => {
                c.last = c.last.max(a.ts);
                c.anomalies += 1;
                let mut e = Entry::new(a.ts, Kind::Anomaly, a.dir);
                e.text = c.text(&format!("{}: {}", a.kind, a.detail));
                c.entries.push(e);
            }
            Event::Frame(f) => {
                c.last = c.last.max(f.ts);
                c.has_frames = true;
                let mut e = Entry::new(f.ts, Kind::Frame, Some(f.dir));
                e.len = f.len;
                e.aux = u32::from(f.opcode);
                if f.fin {
                    e.flags |= flag::FIN;
                }
                if f.rsv & 4 != 0 {
                    e.flags |= flag::RSV1;
                }
                c.entries.push(e);
            }
            Event::ConnectionEnd(end) => {
                if c.client.is_empty() {
                    c.client.clone_from(&end.client);
                    c.server.clone_from(&end.server);
                    c.start = end.start_ts;
                }
                if c.handshake.is_none() {
                    c.handshake.clone_from(&end.handshake);
                }
                c.last = c.last.max(end.end_ts);
                c.anomalies = c.anomalies.max(end.anomaly_count);
                c.pending_pings = HashMap::new();
                c.end = Some(end);
            }
        }
        pos
    }
}

fn rtt_us(ms: f64) -> u32 {
    let us = (ms * 1000.0).round();
    if us.is_finite() && us >= 0.0 && us < f64::from(NONE) {
        us as u32
    } else {
        NONE - 1
    }
}

fn keep_payload(
    c: &mut Conn,
    e: &mut Entry,
    m: MessageEvent,
    budget_left: &mut u64,
    dropped: &mut u64,
) {
    let Some(p) = m.payload else { return };
    let bytes = match m.payload_encoding {
        Some(PayloadEncoding::Base64) => base64::engine::general_purpose::STANDARD
            .decode(p.as_bytes())
            .unwrap_or_default(),
        _ => p.into_bytes(),
    };
    let n = bytes.len() as u64;
    let idx = u32::try_from(c.payloads.len()).unwrap_or(NONE);
    if n > *budget_left || idx == NONE {
        e.flags |= flag::DROPPED;
        *dropped += 1;
        return;
    }
    *budget_left -= n;
    e.payload = idx;
    c.payloads.push(Payload {
        bytes: bytes.into_boxed_slice(),
        text: m.kind == "text",
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_stays_small() {
        // A million timeline entries must stay well under 100 MB.
        assert!(
            std::mem::size_of::<Entry>() <= 56,
            "{}",
            std::mem::size_of::<Entry>()
        );
    }

    #[test]
    fn rtt_is_clamped() {
        assert_eq!(rtt_us(1.5), 1500);
        assert_eq!(rtt_us(-1.0), NONE - 1);
        assert_eq!(rtt_us(f64::NAN), NONE - 1);
    }
}
