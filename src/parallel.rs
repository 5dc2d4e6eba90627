//! Sharded analysis (`--threads N`): takes a capture file and gives the same events, in the same
//! order, with the same connection ids, as the single pipeline of [`crate::pipeline`], using
//! N worker threads.
//!
//! The calling thread reads the capture, decodes each packet just far enough to find its TCP
//! flow, copies it into the current epoch's buffer and lists it, tagged with its sequence number
//! in the file, for worker `hash(flow) % N` (both directions of a flow hash alike). Every
//! [`EPOCH_BYTES`] of capture, each worker gets its list of the epoch (empty or not) and a
//! shared reference to the epoch: its bytes and its sweep points, the packets after which a
//! single pipeline would look for closed and idle flows. Sweeps follow the whole capture's clock,
//! so every worker sees time advance even when it gets no packets.
//!
//! Each worker runs a [`Pipeline::sharded`] over its flows; its sink records each event with its
//! [`Position`] (the packet, or sweep step, or end of capture that produced it). A worker's
//! answer for an epoch says it is done with every packet of the epoch: that is the watermark
//! the merge needs. The calling thread merges the N answers of the oldest epoch by position
//! (a worker's own events stay in their order), renumbers connections in merged order (each
//! worker numbers its own), and feeds the result to the analysis stage and the sink, which
//! therefore see one stream, as from one pipeline; proxy legs are linked across workers there.
//!
//! Memory stays bounded: at most [`EPOCHS_IN_FLIGHT`] epochs are out at once, and their buffers
//! come back with the answers to be reused.
//!
//! The output is the single pipeline's, byte for byte, except in two cases where the flows of
//! different workers would have to share a limit or a clock decision:
//! - The caps over all flows are per worker: `max_flows` is split evenly between them (flow
//!   state stays within the single pipeline's bound), `max_held_payload_bytes` applies to each
//!   (a JSON document may then hold up to N times it). Which flow is evicted, or which message
//!   loses its held payload, once a cap is reached can differ.
//! - A sweep stops, in each worker, at the first lingering closed flow or idle flow that is not
//!   due; one pipeline stops at the first of all flows. These differ only when capture time goes
//!   backwards, or when a flow that took over the ports of a closed one stays silent for the
//!   whole idle timeout: a worker may then end a flow one sweep earlier. Exactness there would
//!   take a barrier between the workers at every sweep.

use std::hash::BuildHasher;
use std::io;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use foldhash::fast::FixedState;

use crate::analysis::{AnalysisOptions, AnalysisSink};
use crate::capture::{CaptureReader, Packet};
use crate::config::Config;
use crate::error::Error;
use crate::event::Event;
use crate::net;
use crate::pipeline::{self, Pipeline, Progress, SWEEP_EVERY_NS};
use crate::sink::{CaptureSummary, EventSink, Position, SkipCounts};
use crate::tcp::FlowKey;
use crate::types::{ConnId, Ts};

/// Capture bytes per epoch: enough work per batch that handing batches around costs nothing
/// measurable, little enough that the epochs in flight hold a few megabytes. Half a MiB instead
/// of 1 MiB took the 1 GB text summary with two threads from 75 to 69 MB of peak RSS for the
/// same CPU time (median of 5).
pub const EPOCH_BYTES: usize = 512 << 10;
/// Packets per epoch at most (small packets).
const EPOCH_PACKETS: usize = 8192;
/// Epochs handed out and not yet merged: lets workers run ahead of the merge while one of them
/// finishes a heavy epoch. Each thread blocks less often with more in flight, and on two cores
/// every block is a wake-up that costs: 8 instead of 4 took the 1 GB text summary with two
/// threads from 2.28 s to 2.06 s (median of 5), for about 6 MB more peak memory.
pub const EPOCHS_IN_FLIGHT: usize = 8;
/// Packets between two progress reports.
const PROGRESS_EVERY: u64 = 8192;

/// Events with the position that produced each, in position order.
type Events = Vec<(Position, Event)>;

/// One packet in a batch: where its bytes are in the epoch and what the reader said about it.
struct Meta {
    seq: u64,
    number: u64,
    ts: Ts,
    linktype: u32,
    origlen: u32,
    start: usize,
    end: usize,
}

/// What every worker of an epoch reads: the bytes of all its packets, once, and the epoch's
/// sweep points and key log text. One copy shared by the workers rather than one buffer per
/// worker, each of which grew to more than its share: the buffers in flight held 8.7 MB of heap
/// on the 1 GB benchmark capture with two workers, and now 5.3 MB (valgrind massif).
struct Epoch {
    /// TLS key log text read before this epoch's packets.
    secrets: Vec<u8>,
    data: Vec<u8>,
    /// Packets after which to sweep, with their time.
    sweeps: Vec<(u64, Ts)>,
}

impl Default for Epoch {
    fn default() -> Self {
        Epoch {
            secrets: Vec::new(),
            // Room for the last packet past the mark without regrowing.
            data: Vec::with_capacity(EPOCH_BYTES + (64 << 10)),
            sweeps: Vec::new(),
        }
    }
}

impl Epoch {
    fn clear(&mut self) {
        self.secrets.clear();
        self.data.clear();
        self.sweeps.clear();
    }
}

/// One worker's share of an epoch, and on the way back, the events it produced.
struct Batch {
    epoch: Arc<Epoch>,
    /// This worker's packets, in sequence order.
    packets: Vec<Meta>,
    events: Events,
}

enum ToWorker {
    Epoch(Batch),
    /// The capture is over; its last packet time.
    Finish(Option<Ts>),
}

enum FromWorker {
    Epoch(Batch),
    Finished(Events, Box<CaptureSummary>),
    Failed(io::Error),
}

/// A worker pipeline's sink: keeps each event with the position the pipeline announced.
struct ShardSink {
    pos: Position,
    out: Events,
    holds_payloads: bool,
}

impl EventSink for ShardSink {
    fn event(&mut self, ev: Event) -> io::Result<()> {
        self.out.push((self.pos, ev));
        Ok(())
    }
    fn finish(&mut self, _: &CaptureSummary) -> io::Result<()> {
        Ok(())
    }
    fn holds_payloads(&self) -> bool {
        self.holds_payloads
    }
    fn position(&mut self, pos: Position) {
        self.pos = pos;
    }
}

/// The number of worker threads `--threads` defaults to: the cores this process may use.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Whether a run on `threads` threads should decompress a gzipped capture on a thread of its
/// own, ahead of the reader. Decompressing costs 2.3 to 3.0 s of CPU per GB of the benchmark's
/// capture here, more than a worker's share of the analysis once there are two (about 1.8 s
/// each), so:
/// - one thread: whenever there is a second core;
/// - two workers on two cores: no. The run is bound by its total CPU, and a fourth busy thread
///   made it slower (1.35 → 1.46 s on 300 MB, median of 7);
/// - three cores or more: yes, even with a worker on every core, since the reading thread
///   would otherwise decompress alone while the workers wait for it. This is reasoned from the
///   CPU split above, not measured: the benchmark machine has two cores.
pub fn decompress_ahead(threads: usize) -> bool {
    let cores = default_threads();
    if threads <= 1 { cores >= 2 } else { cores >= 3 }
}

/// [`pipeline::run_observed`] on `threads` worker threads (one thread: exactly that function).
pub fn run_observed<S: EventSink>(
    reader: &mut CaptureReader,
    name: &str,
    cfg: Config,
    analysis: AnalysisOptions,
    sink: S,
    threads: usize,
    observe: &mut dyn FnMut(Progress),
) -> Result<(S, CaptureSummary), Error> {
    if threads <= 1 {
        return pipeline::run_observed(reader, name, cfg, analysis, sink, observe);
    }
    // Flow state lives in the workers: together they keep the single pipeline's bound. Held
    // payloads are the sink's, but each worker counts only its own connections' share, so a
    // connection under the cap keeps its payloads as with one thread.
    let mut shard_cfg = cfg;
    shard_cfg.limits.max_flows = shard_cfg.limits.max_flows.div_ceil(threads).max(1);
    let holds_payloads = sink.holds_payloads();
    std::thread::scope(|scope| {
        let mut to = Vec::with_capacity(threads);
        let mut from = Vec::with_capacity(threads);
        for i in 0..threads {
            let (tx, rx) = sync_channel(EPOCHS_IN_FLIGHT + 1);
            let (back_tx, back_rx) = sync_channel(EPOCHS_IN_FLIGHT + 1);
            let cfg = shard_cfg.clone();
            std::thread::Builder::new()
                .name(format!("wsinspect-worker-{i}"))
                .spawn_scoped(scope, move || worker(cfg, holds_payloads, &rx, &back_tx))
                .map_err(Error::Thread)?;
            to.push(tx);
            from.push(back_rx);
        }
        let run = Coordinator {
            to,
            from,
            sink: AnalysisSink::new(sink, analysis),
            ids: vec![Default::default(); threads],
            next_id: 1,
            in_flight: 0,
            epochs: Vec::new(),
            lists: Vec::new(),
            connections_ended: 0,
        };
        run.read(reader, name, observe)
    })
}

/// Runs one shard's pipeline until told the capture is over (or the reader goes away).
fn worker(cfg: Config, holds_payloads: bool, rx: &Receiver<ToWorker>, tx: &SyncSender<FromWorker>) {
    let sink = ShardSink {
        pos: Position::default(),
        out: Vec::new(),
        holds_payloads,
    };
    let mut pipeline = Pipeline::sharded(cfg, sink);
    while let Ok(msg) = rx.recv() {
        let answer = match msg {
            ToWorker::Epoch(mut batch) => match run_epoch(&mut pipeline, &mut batch) {
                Ok(()) => FromWorker::Epoch(batch),
                Err(e) => FromWorker::Failed(e),
            },
            ToWorker::Finish(last_ts) => {
                let answer = match pipeline.finish_sharded(last_ts) {
                    Ok((sink, summary)) => FromWorker::Finished(sink.out, Box::new(summary)),
                    Err(e) => FromWorker::Failed(e),
                };
                let _ = tx.send(answer);
                return;
            }
        };
        if tx.send(answer).is_err() {
            return;
        }
    }
}

/// Feeds one epoch's packets and sweeps, in sequence order; leaves the events in the batch.
fn run_epoch(pipeline: &mut Pipeline<ShardSink>, batch: &mut Batch) -> io::Result<()> {
    let epoch = &*batch.epoch;
    if !epoch.secrets.is_empty() {
        pipeline.add_secrets(&epoch.secrets);
    }
    // The recycled (empty) event buffer becomes the sink's; the sink's filled one goes back.
    std::mem::swap(&mut pipeline.sink_mut().out, &mut batch.events);
    let mut sweeps = epoch.sweeps.iter().peekable();
    for m in &batch.packets {
        // A sweep after packet S comes after S's own events, before S + 1's.
        while let Some(&&(seq, now)) = sweeps.peek()
            && seq < m.seq
        {
            pipeline.sweep_at(seq, now)?;
            sweeps.next();
        }
        let pkt = Packet {
            number: m.number,
            ts: m.ts,
            linktype: m.linktype,
            data: epoch.data.get(m.start..m.end).unwrap_or(&[]),
            origlen: m.origlen,
        };
        pipeline.packet_at(m.seq, &pkt)?;
    }
    for &(seq, now) in sweeps {
        pipeline.sweep_at(seq, now)?;
    }
    std::mem::swap(&mut pipeline.sink_mut().out, &mut batch.events);
    Ok(())
}

/// The calling thread's side: reads and shares out packets, merges the workers' answers.
struct Coordinator<S: EventSink> {
    to: Vec<SyncSender<ToWorker>>,
    from: Vec<Receiver<FromWorker>>,
    sink: AnalysisSink<S>,
    /// Per worker: its connection ids to the run's, for the connections open now.
    ids: Vec<foldhash::HashMap<ConnId, ConnId>>,
    next_id: ConnId,
    in_flight: usize,
    /// Epochs back from every worker, cleared for reuse.
    epochs: Vec<Epoch>,
    /// Packet lists and event buffers back from the workers, cleared for reuse.
    lists: Vec<(Vec<Meta>, Events)>,
    connections_ended: u64,
}

/// What the reading thread counts itself: the packets that reach no worker, and the clock.
#[derive(Default)]
struct Counts {
    packets: u64,
    first_ts: Option<Ts>,
    last_ts: Option<Ts>,
    skipped: SkipCounts,
    last_sweep: Option<Ts>,
}

fn stopped() -> Error {
    Error::Thread(io::Error::other("a worker thread stopped"))
}

impl<S: EventSink> Coordinator<S> {
    fn read(
        mut self,
        reader: &mut CaptureReader,
        name: &str,
        observe: &mut dyn FnMut(Progress),
    ) -> Result<(S, CaptureSummary), Error> {
        let n = self.to.len();
        let hasher = FixedState::with_seed(0);
        let mut epoch = self.epoch();
        let mut packets: Vec<Vec<Meta>> = (0..n).map(|_| Vec::new()).collect();
        let (mut epoch_bytes, mut epoch_packets) = (0usize, 0usize);
        let mut secrets = Vec::new();
        let mut c = Counts::default();
        loop {
            let pkt = reader.next_packet_and_secrets(&mut secrets)?;
            if !secrets.is_empty() {
                // Keys apply from the next packet on: close the epoch so they come before it.
                if epoch_packets > 0 || !epoch.sweeps.is_empty() {
                    self.send_epoch(&mut epoch, &mut packets)?;
                    (epoch_bytes, epoch_packets) = (0, 0);
                }
                epoch.secrets.extend_from_slice(&secrets);
                secrets.clear();
            }
            let Some(pkt) = pkt else { break };
            // Same counting as `Pipeline::packet`.
            let seq = c.packets;
            let now = pkt.ts;
            c.packets += 1;
            c.first_ts.get_or_insert(now);
            c.last_ts = Some(c.last_ts.map_or(now, |t| t.max(now)));
            match net::decode(pkt.linktype, pkt.data) {
                Err(skip) => c.skipped.count(&skip),
                Ok(tp) => {
                    let key = FlowKey::of(&tp);
                    let w = (hasher.hash_one(key) % n as u64) as usize;
                    if let Some(list) = packets.get_mut(w) {
                        let start = epoch.data.len();
                        epoch.data.extend_from_slice(pkt.data);
                        list.push(Meta {
                            seq,
                            number: pkt.number,
                            ts: now,
                            linktype: pkt.linktype,
                            origlen: pkt.origlen,
                            start,
                            end: epoch.data.len(),
                        });
                    }
                    epoch_bytes += pkt.data.len();
                    epoch_packets += 1;
                    if c.last_sweep
                        .is_none_or(|t| now.0.saturating_sub(t.0) >= SWEEP_EVERY_NS)
                    {
                        c.last_sweep = Some(now);
                        epoch.sweeps.push((seq, now));
                    }
                }
            }
            if epoch_bytes >= EPOCH_BYTES || epoch_packets >= EPOCH_PACKETS {
                self.send_epoch(&mut epoch, &mut packets)?;
                (epoch_bytes, epoch_packets) = (0, 0);
            }
            if c.packets.is_multiple_of(PROGRESS_EVERY) {
                observe(Progress {
                    bytes: reader.bytes_consumed(),
                    packets: c.packets,
                    connections: self.connections_ended,
                });
            }
        }
        if epoch_packets > 0 || !epoch.sweeps.is_empty() {
            self.send_epoch(&mut epoch, &mut packets)?;
        }
        while self.in_flight > 0 {
            self.merge_epoch()?;
        }
        let worker_summary = self.finish(c.last_ts)?;
        observe(Progress {
            bytes: reader.bytes_consumed(),
            packets: c.packets,
            connections: self.connections_ended,
        });
        let unsupported = reader.skipped_packets();
        let mut skipped = c.skipped;
        skipped.unsupported_link += unsupported;
        let mut capture = CaptureSummary {
            file: name.to_owned(),
            format: reader.format().as_str(),
            gzip: reader.gzipped(),
            link_types: reader.link_types().to_vec(),
            bytes: reader.bytes_consumed(),
            truncated: reader.truncated(),
            // Packets on unsupported interfaces never reach the pipeline but are part of the file.
            packets: unsupported + c.packets,
            first_ts: c.first_ts,
            last_ts: c.last_ts,
            skipped,
            ..worker_summary
        };
        self.sink.finish(&capture).map_err(Error::Output)?;
        let (sink, diagnosis) = self.sink.into_parts();
        capture.diagnosis = Some(diagnosis);
        Ok((sink, capture))
    }

    fn epoch(&mut self) -> Epoch {
        self.epochs.pop().unwrap_or_default()
    }

    /// Hands every worker its packets of the epoch (after merging the oldest epoch when enough
    /// are out), and starts a new epoch.
    fn send_epoch(&mut self, epoch: &mut Epoch, packets: &mut [Vec<Meta>]) -> Result<(), Error> {
        if self.in_flight >= EPOCHS_IN_FLIGHT {
            self.merge_epoch()?;
        }
        let shared = Arc::new(std::mem::replace(epoch, self.epoch()));
        for (i, list) in packets.iter_mut().enumerate() {
            let (next, events) = self.lists.pop().unwrap_or_default();
            let batch = Batch {
                epoch: Arc::clone(&shared),
                packets: std::mem::replace(list, next),
                events,
            };
            let tx = self.to.get(i).ok_or_else(stopped)?;
            tx.send(ToWorker::Epoch(batch)).map_err(|_| stopped())?;
        }
        self.in_flight += 1;
        Ok(())
    }

    /// Takes every worker's answer for the oldest epoch and writes its events in order.
    fn merge_epoch(&mut self) -> Result<(), Error> {
        let mut batches = Vec::with_capacity(self.from.len());
        for rx in &self.from {
            match rx.recv().map_err(|_| stopped())? {
                FromWorker::Epoch(b) => batches.push(b),
                FromWorker::Failed(e) => return Err(Error::Output(e)),
                FromWorker::Finished(..) => return Err(stopped()),
            }
        }
        self.in_flight -= 1;
        let mut streams: Vec<Events> = batches
            .iter_mut()
            .map(|b| std::mem::take(&mut b.events))
            .collect();
        self.merge(&mut streams).map_err(Error::Output)?;
        for (b, events) in batches.into_iter().zip(streams) {
            let Batch {
                epoch, mut packets, ..
            } = b;
            packets.clear();
            self.lists.push((packets, events));
            // The last worker's answer holds the last reference.
            if let Ok(mut epoch) = Arc::try_unwrap(epoch) {
                epoch.clear();
                self.epochs.push(epoch);
            }
        }
        Ok(())
    }

    /// Ends every worker's pipeline, writes the events of the flows still tracked, and adds up
    /// the workers' counts.
    fn finish(&mut self, last_ts: Option<Ts>) -> Result<CaptureSummary, Error> {
        for tx in &self.to {
            tx.send(ToWorker::Finish(last_ts)).map_err(|_| stopped())?;
        }
        let mut streams = Vec::with_capacity(self.from.len());
        let mut total = CaptureSummary::default();
        for rx in &self.from {
            match rx.recv().map_err(|_| stopped())? {
                FromWorker::Finished(events, s) => {
                    streams.push(events);
                    total.tcp_packets += s.tcp_packets;
                    total.connections += s.connections;
                    total.flows_evicted += s.flows_evicted;
                }
                FromWorker::Failed(e) => return Err(Error::Output(e)),
                FromWorker::Epoch(_) => return Err(stopped()),
            }
        }
        self.merge(&mut streams).map_err(Error::Output)?;
        Ok(total)
    }

    /// Writes the events of several workers' streams in position order; each stream is in
    /// position order already, and two workers never share a position.
    fn merge(&mut self, streams: &mut [Events]) -> io::Result<()> {
        let mut iters: Vec<_> = streams.iter_mut().map(|s| s.drain(..).peekable()).collect();
        loop {
            let mut best: Option<(usize, Position)> = None;
            for (i, it) in iters.iter_mut().enumerate() {
                if let Some(&(pos, _)) = it.peek()
                    && best.is_none_or(|(_, b)| pos < b)
                {
                    best = Some((i, pos));
                }
            }
            let Some((w, pos)) = best else { break };
            // Every event of this worker at this position goes out together.
            while let Some(it) = iters.get_mut(w)
                && let Some((_, ev)) = it.next_if(|(p, _)| *p == pos)
            {
                self.write(w, ev)?;
            }
        }
        Ok(())
    }

    /// Gives an event its run-wide connection id and passes it on.
    fn write(&mut self, worker: usize, mut ev: Event) -> io::Result<()> {
        let Some(ids) = self.ids.get_mut(worker) else {
            return Ok(());
        };
        let local = ev.conn();
        let id = if let Event::ConnectionOpen(_) = ev {
            let id = self.next_id;
            self.next_id += 1;
            ids.insert(local, id);
            id
        } else if let Event::ConnectionEnd(_) = ev {
            self.connections_ended += 1;
            ids.remove(&local).unwrap_or(local)
        } else {
            ids.get(&local).copied().unwrap_or(local)
        };
        set_conn(&mut ev, id);
        self.sink.event(ev)
    }
}

/// Sets the connection id of an event (and of the close frames a connection's end lists).
fn set_conn(ev: &mut Event, id: ConnId) {
    match ev {
        Event::ConnectionOpen(e) => e.conn = id,
        Event::Handshake(e) => e.conn = id,
        Event::Frame(e) => e.conn = id,
        Event::Message(e) => e.conn = id,
        Event::Ping(e) => e.conn = id,
        Event::Pong(e) => e.conn = id,
        Event::Close(e) => e.conn = id,
        Event::Tcp(e) => e.conn = id,
        Event::Gap(e) => e.conn = id,
        Event::Anomaly(e) => e.conn = id,
        Event::ConnectionEnd(e) => {
            e.conn = id;
            for c in &mut e.close {
                c.conn = id;
            }
        }
    }
}
