//! The JSON document: `{"schema_version", "connections": [...], "capture": {...}}`.
//!
//! Connections are written as they end (so the document streams and memory stays bounded), in
//! the order they ended; each carries its `id`. `capture` comes last because its counts are only
//! known at the end; `summary` (connections by outcome, from the analysis stage) follows it. Message, frame, close and anomaly objects have the same fields as the
//! matching NDJSON events. `docs/json-schema.md` and `docs/wsinspect.schema.json` describe it.

use std::collections::HashMap;
use std::io::{self, Write};

use serde::Serialize;

use crate::diagnosis::Diagnosis;
use crate::event::{
    AnomalyEvent, CloseEvent, ConnectionEnd, DirStats, Event, FrameEvent, Handshake, MessageEvent,
    PingEvent, PongEvent, TcpSummary,
};
use crate::output::SCHEMA_VERSION;
use crate::output::escape::C1Escaping;
use crate::sink::{CaptureSummary, EventSink};
use crate::types::{ConnId, Dir, Ts};

/// A ping and the pong that answered it.
#[derive(Clone, Debug, Serialize)]
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

/// What is gathered for a connection until it ends.
#[derive(Default)]
struct Pending {
    messages: Vec<MessageEvent>,
    frames: Vec<FrameEvent>,
    pings: Vec<(u32, PingRecord)>,
    unmatched_pongs: Vec<PongEvent>,
    anomalies: Vec<AnomalyEvent>,
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
    messages: &'a [MessageEvent],
    #[serde(skip_serializing_if = "Option::is_none")]
    frames: Option<&'a [FrameEvent]>,
    pings: Vec<&'a PingRecord>,
    unmatched_pongs: &'a [PongEvent],
    close: &'a [CloseEvent],
    tcp: &'a TcpSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: &'a Option<crate::tls::TlsInfo>,
    anomalies: &'a [AnomalyEvent],
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
}

impl<W: Write> JsonSink<W> {
    /// A sink writing to `out`; `frames` adds each connection's frame list; `pretty` indents.
    pub fn new(out: W, frames: bool, pretty: bool) -> JsonSink<W> {
        JsonSink {
            out: C1Escaping::new(out),
            frames,
            pretty,
            open: HashMap::new(),
            written: 0,
        }
    }

    fn write_value<T: Serialize>(&mut self, v: &T) -> io::Result<()> {
        // serde_json writes token by token; gathered here first, the escaping writer scans
        // large pieces instead of each small write (a fixed buffer, whatever the value's size).
        let mut w = io::BufWriter::with_capacity(64 << 10, &mut self.out);
        if self.pretty {
            serde_json::to_writer_pretty(&mut w, v)?;
        } else {
            serde_json::to_writer(&mut w, v)?;
        }
        w.flush()
    }

    fn connection(&mut self, end: &ConnectionEnd) -> io::Result<()> {
        let p = self.open.remove(&end.conn).unwrap_or_default();
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
            messages: &p.messages,
            frames: self.frames.then_some(&p.frames[..]),
            pings: p.pings.iter().map(|(_, r)| r).collect(),
            unmatched_pongs: &p.unmatched_pongs,
            close: &end.close,
            tcp: &end.tcp,
            tls: &end.tls,
            anomalies: &p.anomalies,
            diagnosis: &end.diagnosis,
        };
        self.write_value(&doc)
    }
}

impl<W: Write> EventSink for JsonSink<W> {
    fn event(&mut self, ev: Event) -> io::Result<()> {
        let conn = ev.conn();
        match ev {
            Event::ConnectionEnd(end) => return self.connection(&end),
            Event::Message(m) => self.open.entry(conn).or_default().messages.push(m),
            Event::Frame(f) => self.open.entry(conn).or_default().frames.push(f),
            Event::Ping(PingEvent {
                ts,
                dir,
                len,
                ping_id,
                ..
            }) => {
                let rec = PingRecord {
                    ts,
                    dir,
                    len,
                    pong_ts: None,
                    rtt_ms: None,
                };
                self.open
                    .entry(conn)
                    .or_default()
                    .pings
                    .push((ping_id, rec));
            }
            Event::Pong(pong) => {
                let p = self.open.entry(conn).or_default();
                let ping = pong
                    .ping_id
                    .and_then(|id| p.pings.iter_mut().find(|(i, _)| *i == id));
                match ping {
                    Some((_, rec)) => {
                        rec.pong_ts = Some(pong.ts);
                        rec.rtt_ms = pong.rtt_ms;
                    }
                    None => p.unmatched_pongs.push(pong),
                }
            }
            Event::Anomaly(a) => self.open.entry(conn).or_default().anomalies.push(a),
            Event::ConnectionOpen(_)
            | Event::Handshake(_)
            | Event::Close(_)
            | Event::Tcp(_)
            | Event::Gap(_) => {}
        }
        Ok(())
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
        self.write_value(summary)?;
        if let Some(d) = &summary.diagnosis {
            self.out.write_all(if self.pretty {
                b",\n\"summary\":"
            } else {
                b",\"summary\":"
            })?;
            self.write_value(d)?;
        }
        self.out.write_all(b"}\n")?;
        self.out.flush()
    }
}
