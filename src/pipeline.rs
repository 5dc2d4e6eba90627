//! The driver: takes packets from a capture, runs them through link/IP decode, TCP reassembly
//! and each connection's session, and gives the resulting events, in capture order, to a sink.
//!
//! It owns the flow table and decides when a connection is over: closed (after a short linger,
//! so a late RST still counts), idle, evicted by the flow cap, replaced by a new SYN on the same
//! ports, or cut by the end of the capture.

use std::collections::VecDeque;
use std::io;

use crate::analysis::{AnalysisOptions, AnalysisSink};
use crate::capture::{CaptureReader, Packet};
use crate::config::Config;
use crate::error::Error;
use crate::event::Event;
use crate::net::{self, TcpPacket};
use crate::session::{Ctx, HeldPayload, Session};
use crate::sink::{CaptureSummary, EventSink, LiveStats, Position};
use crate::tcp::{FlowKey, FlowTable, TcpConn};
use crate::types::{ConnId, Ts};

/// Capture time a connection closed by FIN or RST stays tracked, so that the packets which
/// follow a close (a late RST, a retransmitted FIN) are still attributed to it.
const CLOSE_LINGER_NS: i64 = 2_000_000_000;
/// How often (capture time) closed and idle flows are looked for; a sharded run sweeps on the
/// same clock so that its output is the same.
pub(crate) const SWEEP_EVERY_NS: i64 = 1_000_000_000;

struct Flow {
    tcp: TcpConn,
    session: Session,
    /// Sequence number of the packet that created it.
    born: u64,
    /// When it was last active, as the flow table orders flows: `(seq, 0)` for a packet,
    /// `(seq, 1 + closing seq)` for a sweep's look at a closed flow's key.
    touched: (u64, u64),
}

/// Runs one segment through its flow's reassembly and session; returns whether this segment
/// closed the connection (FIN both ways or RST).
fn feed(flow: &mut Flow, tp: &TcpPacket<'_>, now: Ts, mut ctx: Ctx<'_>) -> bool {
    let was_closed = flow.tcp.is_closed();
    let dir = flow.tcp.direction(tp);
    let Flow { tcp, session, .. } = flow;
    session.packet(dir, now);
    tcp.segment(now, tp, &mut |ev| session.stream_event(ev, &mut ctx));
    !was_closed && tcp.is_closed()
}

/// Runs packets through the stages; see the module doc.
pub struct Pipeline<S: EventSink> {
    cfg: Config,
    flows: FlowTable<Flow>,
    /// Flows closed and lingering: key, close time, sequence number of the closing packet.
    closing: VecDeque<(FlowKey, Ts, u64)>,
    next_id: ConnId,
    queue: Vec<Event>,
    held: HeldPayload,
    sink: S,
    summary: CaptureSummary,
    last_sweep: Option<Ts>,
    /// WebSocket connections announced and not yet ended.
    open: u64,
    /// Sequence number of the packet being handled.
    seq: u64,
    /// Sweeps come from outside ([`Pipeline::sweep_at`]) and event groups are announced to the
    /// sink with their [`Position`].
    sharded: bool,
}

impl<S: EventSink> Pipeline<S> {
    /// A pipeline writing to `sink`.
    pub fn new(cfg: Config, sink: S) -> Pipeline<S> {
        let flows = FlowTable::new(cfg.limits.max_flows);
        // A sink that writes as it goes holds nothing: no reason to drop payloads for it.
        let held = HeldPayload::new(if sink.holds_payloads() {
            cfg.limits.max_held_payload_bytes
        } else {
            u64::MAX
        });
        Pipeline {
            cfg,
            flows,
            closing: VecDeque::new(),
            next_id: 1,
            queue: Vec::new(),
            held,
            sink,
            summary: CaptureSummary::default(),
            last_sweep: None,
            open: 0,
            seq: 0,
            sharded: false,
        }
    }

    /// A pipeline for one shard of a capture's flows ([`crate::parallel`]): fed with
    /// [`Pipeline::packet_at`], swept with [`Pipeline::sweep_at`] when the whole capture's clock
    /// says so, and telling `sink` the [`Position`] of each group of events.
    pub fn sharded(cfg: Config, sink: S) -> Pipeline<S> {
        let mut p = Pipeline::new(cfg, sink);
        p.sharded = true;
        p
    }

    /// The sink.
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// Adds TLS key log text (a pcapng Decryption Secrets Block) for the packets that follow.
    pub fn add_secrets(&mut self, keylog: &[u8]) {
        self.cfg.keylog.add(keylog);
    }

    /// Feeds one captured packet.
    pub fn packet(&mut self, pkt: &Packet<'_>) -> io::Result<()> {
        self.seq = self.summary.packets;
        self.packet_inner(pkt)
    }

    /// Feeds packet number `seq` (counted over the whole capture from 0) of a sharded pipeline.
    pub fn packet_at(&mut self, seq: u64, pkt: &Packet<'_>) -> io::Result<()> {
        self.seq = seq;
        self.packet_inner(pkt)
    }

    /// The sweep a single pipeline would run after packet `seq` (at its time `now`), in a
    /// sharded pipeline, which does not sweep by itself: ends the closed and idle flows.
    pub fn sweep_at(&mut self, seq: u64, now: Ts) -> io::Result<()> {
        self.seq = seq;
        self.sweep(now)
    }

    fn packet_inner(&mut self, pkt: &Packet<'_>) -> io::Result<()> {
        let now = pkt.ts;
        let seq = self.seq;
        let s = &mut self.summary;
        s.count_packet(now);
        let tp = match net::decode(pkt.linktype, pkt.data) {
            Ok(tp) => tp,
            Err(skip) => {
                s.skipped.count(&skip);
                return Ok(());
            }
        };
        s.tcp_packets += 1;
        let key = FlowKey::of(&tp);
        // The common case, a segment of a flow already tracked, costs one lookup.
        let closed_now = match self.flows.get_mut(&key, now) {
            Some(flow) if !flow.tcp.starts_new_connection(&tp) => {
                flow.touched = (seq, 0);
                feed(
                    flow,
                    &tp,
                    now,
                    Ctx {
                        cfg: &self.cfg,
                        next_id: &mut self.next_id,
                        out: &mut self.queue,
                        held: &mut self.held,
                    },
                )
            }
            found => {
                if found.is_some()
                    && let Some(old) = self.flows.remove(&key)
                {
                    self.end_flow(old, now, "reused");
                }
                let tcp = TcpConn::new(&tp, &self.cfg.limits);
                let session = Session::new(tcp.client(), tcp.server(), tp.flags.syn(), now);
                // Evicted flows end before the new one says anything, as in capture order.
                let flow = Flow {
                    tcp,
                    session,
                    born: seq,
                    touched: (seq, 0),
                };
                for (_, evicted) in self.flows.insert(key, flow, now) {
                    self.summary.flows_evicted += 1;
                    self.end_flow(evicted, now, "evicted");
                }
                match self.flows.get_mut(&key, now) {
                    Some(flow) => feed(
                        flow,
                        &tp,
                        now,
                        Ctx {
                            cfg: &self.cfg,
                            next_id: &mut self.next_id,
                            out: &mut self.queue,
                            held: &mut self.held,
                        },
                    ),
                    None => false,
                }
            }
        };
        if closed_now {
            self.closing.push_back((key, now, seq));
        }
        if self.sharded {
            return self.emit(Position {
                seq,
                ..Position::default()
            });
        }
        if self
            .last_sweep
            .is_none_or(|t| now.0.saturating_sub(t.0) >= SWEEP_EVERY_NS)
        {
            self.sweep(now)?;
        }
        self.drain()
    }

    /// Time passes without packets (a live capture's clock): ends the flows whose close linger
    /// or idle timeout ran out by `now`, as a packet at `now` would.
    pub fn tick(&mut self, now: Ts) -> io::Result<()> {
        if self
            .last_sweep
            .is_none_or(|t| now.0.saturating_sub(t.0) >= SWEEP_EVERY_NS)
        {
            self.sweep(now)?;
        }
        self.drain()
    }

    /// WebSocket connections announced and not yet ended.
    pub fn connections_open(&self) -> u64 {
        self.open
    }

    /// TCP flows tracked.
    pub fn flows(&self) -> usize {
        self.flows.len()
    }

    /// Writes out every event so far and asks the sink to flush its output.
    pub fn flush(&mut self) -> io::Result<()> {
        self.drain()?;
        self.sink.flush()
    }

    /// Hands a live capture's counters to the sink, after every event before them.
    pub fn stats(&mut self, stats: &LiveStats) -> io::Result<()> {
        self.drain()?;
        self.sink.stats(stats)
    }

    /// Ends flows that closed a while ago or went idle.
    fn sweep(&mut self, now: Ts) -> io::Result<()> {
        self.last_sweep = Some(now);
        let seq = self.seq;
        while let Some(&(key, closed_at, closed_seq)) = self.closing.front() {
            if now.0.saturating_sub(closed_at.0) < CLOSE_LINGER_NS {
                break;
            }
            self.closing.pop_front();
            // The key may have been reused or evicted since; only end a flow that is still closed.
            // The look-up counts as activity in the flow table, so it is recorded as such.
            let still_closed = self.flows.get_mut(&key, closed_at).is_some_and(|f| {
                f.touched = (seq, closed_seq.saturating_add(1));
                f.tcp.is_closed()
            });
            if still_closed && let Some(flow) = self.flows.remove(&key) {
                let end = flow.tcp.last_ts();
                self.end_flow(flow, end, "closed");
                self.emit(Position {
                    seq,
                    phase: 1,
                    key: (closed_seq, 0),
                })?;
            }
        }
        for (_, flow) in self.flows.expire(now, self.cfg.limits.idle_timeout_ns) {
            let touched = flow.touched;
            self.end_flow(flow, now, "idle_timeout");
            self.emit(Position {
                seq,
                phase: 2,
                key: touched,
            })?;
        }
        Ok(())
    }

    /// In a sharded pipeline, hands the events queued so far to the sink as coming from `pos`;
    /// a single pipeline keeps them queued for its next drain.
    fn emit(&mut self, pos: Position) -> io::Result<()> {
        if !self.sharded || self.queue.is_empty() {
            return Ok(());
        }
        self.sink.position(pos);
        self.drain()
    }

    fn end_flow(&mut self, mut flow: Flow, ts: Ts, ended_by: &'static str) {
        let mut ctx = Ctx {
            cfg: &self.cfg,
            next_id: &mut self.next_id,
            out: &mut self.queue,
            held: &mut self.held,
        };
        let Flow { tcp, session, .. } = &mut flow;
        tcp.finish(ts, &mut |ev| session.stream_event(ev, &mut ctx));
        let ended_by = if ended_by == "capture_end" && tcp.is_closed() {
            "closed"
        } else {
            ended_by
        };
        // The sink lets go of the connection's messages when it ends.
        self.held.release(session.held_payload());
        if let Some(end) = session.end(ts, ended_by, tcp.stats()) {
            self.summary.connections += 1;
            self.queue.push(Event::ConnectionEnd(Box::new(end)));
        }
    }

    fn drain(&mut self) -> io::Result<()> {
        for ev in self.queue.drain(..) {
            match ev {
                Event::ConnectionOpen(_) => self.open += 1,
                Event::ConnectionEnd(_) => self.open = self.open.saturating_sub(1),
                _ => {}
            }
            self.sink.event(ev)?;
        }
        Ok(())
    }

    /// The capture is over: ends every flow still tracked and gives the sink the summary.
    pub fn finish(self, capture: CaptureSummary) -> io::Result<(S, CaptureSummary)> {
        let end = self.summary.last_ts;
        self.finish_at(end, capture)
    }

    /// [`Pipeline::finish`] for a sharded pipeline: the flows still tracked end at `last_ts`,
    /// the last packet time of the whole capture (not of this shard). The summary counts this
    /// shard's packets, connections and evicted flows.
    pub fn finish_sharded(self, last_ts: Option<Ts>) -> io::Result<(S, CaptureSummary)> {
        self.finish_at(last_ts, CaptureSummary::default())
    }

    fn finish_at(
        mut self,
        end: Option<Ts>,
        mut capture: CaptureSummary,
    ) -> io::Result<(S, CaptureSummary)> {
        let end = end.unwrap_or_default();
        for (_, flow) in self.flows.drain() {
            let born = flow.born;
            self.end_flow(flow, end, "capture_end");
            self.emit(Position {
                seq: u64::MAX,
                phase: 0,
                key: (born, 0),
            })?;
        }
        self.drain()?;
        let s = &self.summary;
        capture.packets += s.packets;
        capture.first_ts = s.first_ts;
        capture.last_ts = s.last_ts;
        capture.tcp_packets = s.tcp_packets;
        let unsupported = capture.skipped.unsupported_link;
        capture.skipped = s.skipped.clone();
        capture.skipped.unsupported_link += unsupported;
        capture.connections = s.connections;
        capture.flows_evicted = s.flows_evicted;
        self.sink.finish(&capture)?;
        Ok((self.sink, capture))
    }
}

/// Reads a whole capture through a pipeline and the analysis stage (default options) into `sink`.
///
/// `name` is what the summary calls the file. A capture cut short is analysed up to the cut and
/// flagged `truncated`; only unreadable input and sink write failures are errors.
pub fn run<S: EventSink>(
    reader: &mut CaptureReader,
    name: &str,
    cfg: Config,
    sink: S,
) -> Result<(S, CaptureSummary), Error> {
    run_with(reader, name, cfg, AnalysisOptions::default(), sink)
}

/// [`run`] with the analysis stage's options (user timeouts, payload limit).
pub fn run_with<S: EventSink>(
    reader: &mut CaptureReader,
    name: &str,
    cfg: Config,
    analysis: AnalysisOptions,
    sink: S,
) -> Result<(S, CaptureSummary), Error> {
    run_observed(reader, name, cfg, analysis, sink, &mut |_| {})
}

/// How far a run has got, for a progress display.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    /// Bytes of capture read (decompressed).
    pub bytes: u64,
    /// Packets read.
    pub packets: u64,
    /// WebSocket connections ended so far.
    pub connections: u64,
}

/// Packets between two calls of a [`run_observed`] observer: often enough for a smooth display,
/// rare enough to cost nothing.
const PROGRESS_EVERY: u64 = 8192;

/// [`run_with`], calling `observe` now and then (and once at the end) with how far it has got.
pub fn run_observed<S: EventSink>(
    reader: &mut CaptureReader,
    name: &str,
    cfg: Config,
    analysis: AnalysisOptions,
    sink: S,
    observe: &mut dyn FnMut(Progress),
) -> Result<(S, CaptureSummary), Error> {
    let mut pipeline = Pipeline::new(cfg, AnalysisSink::new(sink, analysis));
    let mut packets = 0u64;
    let mut secrets = Vec::new();
    loop {
        let pkt = reader.next_packet_and_secrets(&mut secrets)?;
        if !secrets.is_empty() {
            pipeline.add_secrets(&secrets);
            secrets.clear();
        }
        let Some(pkt) = pkt else { break };
        pipeline.packet(&pkt).map_err(Error::Output)?;
        packets += 1;
        if packets.is_multiple_of(PROGRESS_EVERY) {
            observe(Progress {
                bytes: reader.bytes_consumed(),
                packets,
                connections: pipeline.summary.connections,
            });
        }
    }
    observe(Progress {
        bytes: reader.bytes_consumed(),
        packets,
        connections: pipeline.summary.connections,
    });
    let capture = CaptureSummary {
        file: name.to_owned(),
        format: reader.format().as_str(),
        gzip: reader.gzipped(),
        link_types: reader.link_types().to_vec(),
        bytes: reader.bytes_consumed(),
        truncated: reader.truncated(),
        ..CaptureSummary::default()
    };
    let mut capture = capture;
    // Packets on unsupported interfaces never reach the pipeline but are part of the file.
    capture.packets = reader.skipped_packets();
    capture.skipped.unsupported_link = reader.skipped_packets();
    let (sink, mut capture) = pipeline.finish(capture).map_err(Error::Output)?;
    let (sink, diagnosis) = sink.into_parts();
    capture.diagnosis = Some(diagnosis);
    Ok((sink, capture))
}
