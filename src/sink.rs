//! What the sinks receive: the `EventSink` trait every output (and the analysis stage in front
//! of them) implements, the capture summary handed to it at the end, a live capture's counters,
//! and the position a sharded pipeline tags each group of events with.
//!
//! Plain types with no logic beyond counting: the driver (`pipeline`, `parallel`, the live
//! capture) calls the trait, the analysis stage and the outputs implement it, so it sits below
//! all of them.

use std::io;

use serde::Serialize;

use crate::diagnosis::DiagnosisSummary;
use crate::event::Event;
use crate::net::Skip;
use crate::types::Ts;

/// Receives the event stream.
pub trait EventSink {
    /// One event, in capture order.
    fn event(&mut self, ev: Event) -> io::Result<()>;
    /// The capture is over; no more events follow.
    fn finish(&mut self, summary: &CaptureSummary) -> io::Result<()>;
    /// A live capture's counters, taken now and then while it runs and once when it stops
    /// (before `finish`). Sinks that only describe connections ignore them.
    fn stats(&mut self, _stats: &LiveStats) -> io::Result<()> {
        Ok(())
    }
    /// Writes out what is buffered: a live capture calls this when it has read every packet
    /// waiting, so a reader sees events at once without a write per event under load.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// Whether message payloads stay in memory until their connection ends, so that
    /// [`crate::config::Limits::max_held_payload_bytes`] applies.
    fn holds_payloads(&self) -> bool {
        true
    }
    /// Where the events that follow come from. Only a sharded pipeline (`Pipeline::sharded`)
    /// calls it, so that `parallel` can merge the streams of several pipelines into the order
    /// one pipeline would give.
    fn position(&mut self, _pos: Position) {}
}

/// The place of a group of events in the order one pipeline over the whole capture would give
/// them; positions compare in that order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// Sequence number of the packet being handled, or `u64::MAX` once the capture is over.
    pub seq: u64,
    /// What happens at `seq`: 0 the packet itself (or, at the end, the flows still tracked);
    /// 1 closed flows ended by the sweep after it; 2 idle flows ended by that sweep.
    pub phase: u8,
    /// The order within the phase: the sequence number of the packet that closed the flow (1),
    /// the flow's last activity (2), the packet that created the flow (end of capture).
    pub key: (u64, u64),
}

/// Collects events in memory (tests, small captures).
impl EventSink for Vec<Event> {
    fn event(&mut self, ev: Event) -> io::Result<()> {
        self.push(ev);
        Ok(())
    }
    fn finish(&mut self, _: &CaptureSummary) -> io::Result<()> {
        Ok(())
    }
}

/// Packets that gave no TCP segment, by reason.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SkipCounts {
    /// Not TCP over IPv4/IPv6.
    pub not_tcp: u64,
    /// IP fragments (not reassembled).
    pub ip_fragments: u64,
    /// Headers cut or inconsistent.
    pub malformed: u64,
    /// On an interface of an unsupported link type.
    pub unsupported_link: u64,
}

impl SkipCounts {
    /// Counts one packet skipped for `why`.
    pub fn count(&mut self, why: &Skip) {
        match why {
            Skip::NotTcp => self.not_tcp += 1,
            Skip::IpFragment => self.ip_fragments += 1,
            Skip::Malformed(_) => self.malformed += 1,
            Skip::UnsupportedLink(_) => self.unsupported_link += 1,
        }
    }
}

/// What the capture held, written at the end of every output.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CaptureSummary {
    /// The path as given (`-` for standard input).
    pub file: String,
    /// `pcap` or `pcapng`.
    pub format: &'static str,
    /// Whether the file was gzip-compressed.
    pub gzip: bool,
    /// Link types declared in the file (tcpdump.org numbers).
    pub link_types: Vec<u32>,
    /// Packets read.
    pub packets: u64,
    /// Bytes of capture read (decompressed).
    pub bytes: u64,
    /// First packet time.
    pub first_ts: Option<Ts>,
    /// Last packet time.
    pub last_ts: Option<Ts>,
    /// Whether the file ended in the middle of a record.
    pub truncated: bool,
    /// TCP segments decoded.
    pub tcp_packets: u64,
    /// Packets skipped, by reason.
    pub skipped: SkipCounts,
    /// WebSocket connections found.
    pub connections: u64,
    /// Flows dropped because the flow table was full.
    pub flows_evicted: u64,
    /// Connections written after `--filter`/`--conn`/`--since`/`--until` (absent without them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selected: Option<u64>,
    /// A live capture's last counters (absent for a file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveStats>,
    /// Connections by outcome (filled by the analysis stage; sinks write it as `summary`).
    #[serde(skip)]
    pub diagnosis: Option<DiagnosisSummary>,
}

impl CaptureSummary {
    /// Counts one packet read at capture time `now` (the clock may go backwards: `last_ts` is
    /// the latest seen).
    pub fn count_packet(&mut self, now: Ts) {
        self.packets += 1;
        self.first_ts.get_or_insert(now);
        self.last_ts = Some(self.last_ts.map_or(now, |t| t.max(now)));
    }
}

/// Counters of a live capture: what libpcap saw and dropped, and what the pipeline holds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LiveStats {
    /// When the counters were read (wall clock).
    pub ts: Ts,
    /// Seconds since the capture started.
    pub elapsed: f64,
    /// Packets that passed the filter (libpcap `ps_recv`).
    pub received: u64,
    /// Packets the kernel dropped because its buffer was full: read too slowly (`ps_drop`).
    pub dropped_kernel: u64,
    /// Packets the interface or its driver dropped (`ps_ifdrop`).
    pub dropped_interface: u64,
    /// Packets wsinspect captured but dropped because its queue to the analysis was full: the
    /// analysis fell behind by more than `--queue-size`.
    pub dropped_queue: u64,
    /// Packets analysed.
    pub packets: u64,
    /// Captured bytes of those packets.
    pub bytes: u64,
    /// WebSocket connections open now.
    pub connections_open: u64,
    /// TCP flows tracked now.
    pub flows: u64,
    /// Whether these are the counters at the end of the capture.
    #[serde(rename = "final")]
    pub is_final: bool,
}
