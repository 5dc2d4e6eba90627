//! TCP reassembly: takes decoded TCP segments and gives, per connection and direction, the byte
//! stream in order (with explicit gaps for bytes the capture lacks) plus the SYN/FIN/RST
//! lifecycle with timestamps and TTLs.

use std::net::SocketAddr;

use crate::config::Limits;
use crate::net::TcpPacket;
use crate::types::{Dir, Ts};

/// The two endpoints of a TCP connection, in a canonical order so both directions map to one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    lo: SocketAddr,
    hi: SocketAddr,
}

impl FlowKey {
    /// The key of the flow a segment belongs to.
    pub fn of(pkt: &TcpPacket<'_>) -> FlowKey {
        if pkt.src <= pkt.dst {
            FlowKey { lo: pkt.src, hi: pkt.dst }
        } else {
            FlowKey { lo: pkt.dst, hi: pkt.src }
        }
    }
}

/// What reassembly reports, in stream order per direction.
#[derive(Debug)]
pub enum StreamEvent<'a> {
    /// A SYN from the client (`C2s`) or a SYN-ACK from the server (`S2c`), first copy only.
    Syn { dir: Dir, ts: Ts, ttl: u8 },
    /// In-order bytes.
    Data { dir: Dir, ts: Ts, bytes: &'a [u8] },
    /// `len` bytes of the stream that the capture does not hold.
    Gap { dir: Dir, ts: Ts, len: u64 },
    /// The first FIN in a direction, once the stream is complete up to it.
    Fin { dir: Dir, ts: Ts, ttl: u8, ip_id: Option<u16> },
    /// A RST (each distinct one).
    Rst { dir: Dir, ts: Ts, ttl: u8, ip_id: Option<u16> },
    /// Something odd at the TCP level, e.g. a retransmission whose bytes differ.
    Anomaly { dir: Dir, ts: Ts, kind: &'static str, detail: String },
}

/// TTL / hop-limit values seen in one direction on packets that were not FIN or RST.
#[derive(Clone, Copy, Debug, Default)]
pub struct TtlStats {
    /// Smallest value seen.
    pub min: Option<u8>,
    /// Largest value seen.
    pub max: Option<u8>,
    /// The most recent value.
    pub last: Option<u8>,
}

/// Per-connection TCP counters, indexed by [`Dir::index`].
#[derive(Clone, Debug, Default)]
pub struct TcpStats {
    /// When the client's SYN was captured.
    pub syn_ts: Option<Ts>,
    /// When the server's SYN-ACK was captured.
    pub synack_ts: Option<Ts>,
    /// Packets per direction.
    pub packets: [u64; 2],
    /// Payload bytes per direction (as captured, retransmissions included).
    pub payload_bytes: [u64; 2],
    /// Segments whose bytes had all been seen already (exact duplicates included).
    pub retransmissions: [u64; 2],
    /// Segments that arrived ahead of a hole.
    pub out_of_order: [u64; 2],
    /// Bytes reported as gaps.
    pub gap_bytes: [u64; 2],
    /// TTLs of ordinary packets.
    pub ttl: [TtlStats; 2],
}

/// One TCP connection: orientation, two reassemblers and the lifecycle.
pub struct TcpConn {
    _private: (),
}

impl TcpConn {
    /// Starts tracking from the first captured segment. The client is the sender of a SYN without
    /// ACK, or the receiver of a SYN-ACK; without either, the side with the higher port (ties:
    /// the sender of this first segment).
    pub fn new(first: &TcpPacket<'_>, limits: &Limits) -> TcpConn {
        let _ = (first, limits);
        unimplemented!()
    }

    /// The client endpoint in this connection's orientation.
    pub fn client(&self) -> SocketAddr {
        unimplemented!()
    }

    /// The server endpoint in this connection's orientation.
    pub fn server(&self) -> SocketAddr {
        unimplemented!()
    }

    /// Whether the client's SYN was captured (so the stream starts at its beginning).
    pub fn syn_seen(&self) -> bool {
        unimplemented!()
    }

    /// The direction of a segment of this connection.
    pub fn direction(&self, pkt: &TcpPacket<'_>) -> Dir {
        let _ = pkt;
        unimplemented!()
    }

    /// Whether this segment opens a new connection on the same 4-tuple: a SYN after this
    /// connection was closed by FIN both ways or by RST, or a SYN with another initial sequence
    /// number.
    pub fn starts_new_connection(&self, pkt: &TcpPacket<'_>) -> bool {
        let _ = pkt;
        unimplemented!()
    }

    /// Feeds one segment; reports what became known, in order.
    pub fn segment(&mut self, ts: Ts, pkt: &TcpPacket<'_>, out: &mut dyn FnMut(StreamEvent<'_>)) {
        let _ = (ts, pkt, out);
        unimplemented!()
    }

    /// The capture ended or the flow is evicted: delivers what is buffered, holes as gaps.
    pub fn finish(&mut self, ts: Ts, out: &mut dyn FnMut(StreamEvent<'_>)) {
        let _ = (ts, out);
        unimplemented!()
    }

    /// Whether the connection is over: a RST was seen, or a FIN each way.
    pub fn is_closed(&self) -> bool {
        unimplemented!()
    }

    /// Timestamp of the last segment fed.
    pub fn last_ts(&self) -> Ts {
        unimplemented!()
    }

    /// Counters so far.
    pub fn stats(&self) -> &TcpStats {
        unimplemented!()
    }
}

/// A bounded map of flows with least-recently-active eviction.
pub struct FlowTable<T> {
    _private: std::marker::PhantomData<T>,
}

impl<T> FlowTable<T> {
    /// A table holding at most `max_flows` flows.
    pub fn new(max_flows: usize) -> FlowTable<T> {
        let _ = max_flows;
        unimplemented!()
    }

    /// The flow's value, marking it active at `now`.
    pub fn get_mut(&mut self, key: &FlowKey, now: Ts) -> Option<&mut T> {
        let _ = (key, now);
        unimplemented!()
    }

    /// Adds a flow. When the table is full, returns the flows evicted to make room (least
    /// recently active first), so the caller can finish them.
    pub fn insert(&mut self, key: FlowKey, value: T, now: Ts) -> Vec<(FlowKey, T)> {
        let _ = (key, value, now);
        unimplemented!()
    }

    /// Removes a flow.
    pub fn remove(&mut self, key: &FlowKey) -> Option<T> {
        let _ = key;
        unimplemented!()
    }

    /// Removes and returns every flow idle since before `now - idle_ns`, oldest first.
    pub fn expire(&mut self, now: Ts, idle_ns: i64) -> Vec<(FlowKey, T)> {
        let _ = (now, idle_ns);
        unimplemented!()
    }

    /// Removes and returns every flow, in order of first insertion.
    pub fn drain(&mut self) -> Vec<(FlowKey, T)> {
        unimplemented!()
    }

    /// Flows tracked now.
    pub fn len(&self) -> usize {
        unimplemented!()
    }

    /// Whether no flow is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
