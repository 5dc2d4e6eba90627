//! TCP reassembly: takes decoded TCP segments and gives, per connection and direction, the byte
//! stream in order (with explicit gaps for bytes the capture lacks) plus the SYN/FIN/RST
//! lifecycle with timestamps and TTLs.

use std::net::SocketAddr;

use crate::net::TcpPacket;
use crate::types::{Dir, Ts};

mod conn;
mod reassembly;
mod seq;
mod table;
#[cfg(test)]
mod tests;

pub use conn::TcpConn;
pub use table::{Drain, FlowTable};

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
            FlowKey {
                lo: pkt.src,
                hi: pkt.dst,
            }
        } else {
            FlowKey {
                lo: pkt.dst,
                hi: pkt.src,
            }
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
    Fin {
        dir: Dir,
        ts: Ts,
        ttl: u8,
        ip_id: Option<u16>,
    },
    /// A RST (each distinct one).
    Rst {
        dir: Dir,
        ts: Ts,
        ttl: u8,
        ip_id: Option<u16>,
    },
    /// Something odd at the TCP level, e.g. a retransmission whose bytes differ.
    Anomaly {
        dir: Dir,
        ts: Ts,
        kind: &'static str,
        detail: String,
    },
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
