//! One TCP connection: takes every segment of a 4-tuple and gives, in causal order, the SYN /
//! data / gap / FIN / RST events of both directions plus per-direction counters.
//!
//! Orientation is fixed when the connection is created; the two directions are reassembled
//! independently (see `reassembly`), and this layer adds what needs both: the peer's ACK as
//! evidence of lost bytes, RSTs that end the connection, and port-reuse detection.

use std::net::SocketAddr;

use super::reassembly::{Half, Sink};
use super::{StreamEvent, TcpStats, TtlStats};
use crate::config::Limits;
use crate::net::TcpPacket;
use crate::types::{Dir, Ts};

/// How far a RST's sequence (or acknowledgment) number may be from where the stream stands and
/// still be taken as part of this connection. Deliberately loose: the point is to drop RSTs of
/// another incarnation of the 4-tuple, not to validate like a TCP stack (windows scale to 1 GiB).
const RST_WINDOW: i64 = 1 << 30;

/// One TCP connection: orientation, two reassemblers and the lifecycle.
pub struct TcpConn {
    client: SocketAddr,
    server: SocketAddr,
    /// Reassemblers indexed by [`Dir::index`].
    halves: [Half; 2],
    stats: TcpStats,
    /// Initial sequence number of the first SYN without ACK.
    syn_isn: Option<u32>,
    rst_seen: bool,
    /// The last RST reported (direction, time, sequence number, IP id), to skip a second copy
    /// of the very same packet.
    last_rst: Option<(Dir, Ts, u32, Option<u16>)>,
    last_ts: Ts,
}

impl TcpConn {
    /// Starts tracking from the first captured segment. The client is the sender of a SYN without
    /// ACK, or the receiver of a SYN-ACK; without either, the side with the higher port (ties:
    /// the sender of this first segment).
    ///
    /// This only fixes the orientation: feed `first` to [`TcpConn::segment`] as well.
    pub fn new(first: &TcpPacket<'_>, limits: &Limits) -> TcpConn {
        let f = first.flags;
        let (src, dst) = (first.src, first.dst);
        let receiver_is_client = if f.syn() {
            f.ack()
        } else {
            dst.port() > src.port()
        };
        let (client, server) = if receiver_is_client {
            (dst, src)
        } else {
            (src, dst)
        };
        let cap = limits.max_ooo_bytes_per_dir;
        TcpConn {
            client,
            server,
            halves: [Half::new(cap), Half::new(cap)],
            stats: TcpStats::default(),
            syn_isn: None,
            rst_seen: false,
            last_rst: None,
            last_ts: Ts::default(),
        }
    }

    /// The client endpoint in this connection's orientation.
    pub fn client(&self) -> SocketAddr {
        self.client
    }

    /// The server endpoint in this connection's orientation.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// Whether the client's SYN was captured (so the stream starts at its beginning).
    pub fn syn_seen(&self) -> bool {
        self.halves[Dir::C2s.index()].syn.is_some()
    }

    /// The direction of a segment of this connection.
    pub fn direction(&self, pkt: &TcpPacket<'_>) -> Dir {
        if pkt.src == self.client && pkt.dst == self.server {
            Dir::C2s
        } else {
            Dir::S2c
        }
    }

    /// Whether this segment opens a new connection on the same 4-tuple: a SYN after this
    /// connection was closed by FIN both ways or by RST, or a SYN with another initial sequence
    /// number.
    ///
    /// Without an earlier SYN, a SYN also opens a new connection when its sender's stream was
    /// already picked up mid-stream at a sequence number other than that SYN's ISN + 1.
    pub fn starts_new_connection(&self, pkt: &TcpPacket<'_>) -> bool {
        let f = pkt.flags;
        if !f.syn() || f.ack() || f.rst() {
            return false;
        }
        if self.is_closed() {
            return true;
        }
        if let Some(isn) = self.syn_isn {
            return pkt.seq != isn;
        }
        // Mid-stream pickup: the sender's stream was anchored at a sequence number this SYN
        // cannot precede, so the SYN belongs to a later incarnation of the 4-tuple.
        let h = &self.halves[self.direction(pkt).index()];
        h.base().is_some_and(|b| b != pkt.seq.wrapping_add(1))
    }

    /// Feeds one segment; reports what became known, in order.
    pub fn segment(&mut self, ts: Ts, pkt: &TcpPacket<'_>, out: &mut dyn FnMut(StreamEvent<'_>)) {
        let dir = self.direction(pkt);
        let d = dir.index();
        let f = pkt.flags;
        self.last_ts = ts;
        let st = &mut self.stats;
        st.packets[d] = st.packets[d].saturating_add(1);
        st.payload_bytes[d] = st.payload_bytes[d].saturating_add(pkt.payload.len() as u64);
        if !f.fin() && !f.rst() {
            note_ttl(&mut st.ttl[d], pkt.ttl);
        }
        if f.rst() {
            self.rst(dir, ts, pkt, out);
            return;
        }

        let [c2s, s2c] = &mut self.halves;
        let (half, peer) = match dir {
            Dir::C2s => (c2s, s2c),
            Dir::S2c => (s2c, c2s),
        };
        let mut new_syn = false;
        if f.syn() {
            if half.syn.is_none() {
                half.syn = Some(pkt.seq);
                new_syn = true;
                out(StreamEvent::Syn {
                    dir,
                    ts,
                    ttl: pkt.ttl,
                });
                if f.ack() {
                    self.stats.synack_ts.get_or_insert(ts);
                } else {
                    self.stats.syn_ts.get_or_insert(ts);
                    self.syn_isn.get_or_insert(pkt.seq);
                }
            }
            half.anchor(pkt.seq.wrapping_add(1));
            // A SYN-ACK acknowledges the client's ISN + 1: the client's stream starts there
            // even when its SYN was not captured.
            if f.ack() {
                peer.anchor(pkt.ack);
            }
        }
        // The SYN occupies the sequence number before the first data byte.
        let data_seq = pkt.seq.wrapping_add(u32::from(f.syn()));
        // Mid-stream pickup: the first segment seen in a direction defines its offset 0.
        half.anchor(data_seq);

        // The acknowledgment says what the peer's receiver had before this segment was sent.
        if f.ack() {
            let mut peer_sink = Sink::new(dir.flip(), ts, out);
            peer.ack(pkt.ack, &mut peer_sink);
            let gaps = peer_sink.gap_bytes;
            let p = dir.flip().index();
            self.stats.gap_bytes[p] = self.stats.gap_bytes[p].saturating_add(gaps);
        }

        let mut sink = Sink::new(dir, ts, out);
        let taken = half.take_segment(data_seq, pkt.payload, pkt.missing, &mut sink);
        let mut new_fin = false;
        if f.fin() {
            let fin_seq = data_seq
                .wrapping_add(pkt.payload.len() as u32)
                .wrapping_add(pkt.missing);
            new_fin = half.note_fin(fin_seq, pkt.ttl, pkt.ip_id, &mut sink);
        }
        half.try_fin(&mut sink);

        let st = &mut self.stats;
        st.gap_bytes[d] = st.gap_bytes[d].saturating_add(sink.gap_bytes);
        let seq_len = pkt.payload.len() as u64
            + u64::from(pkt.missing)
            + u64::from(f.syn())
            + u64::from(f.fin());
        if seq_len > 0 && taken.new == 0 && !new_syn && !new_fin {
            st.retransmissions[d] = st.retransmissions[d].saturating_add(1);
        }
        if taken.ahead {
            st.out_of_order[d] = st.out_of_order[d].saturating_add(1);
        }
    }

    /// A RST: ends the connection. Its payload (diagnostic text at most) is not stream data.
    fn rst(&mut self, dir: Dir, ts: Ts, pkt: &TcpPacket<'_>, out: &mut dyn FnMut(StreamEvent<'_>)) {
        let half = &self.halves[dir.index()];
        let peer = &self.halves[dir.flip().index()];
        let near = |r: i64| r.abs() <= RST_WINDOW;
        let plausible = !half.anchored()
            || near(half.rel(pkt.seq))
            || (pkt.flags.ack() && peer.anchored() && near(peer.rel(pkt.ack)));
        if !plausible {
            out(StreamEvent::Anomaly {
                dir,
                ts,
                kind: "tcp_rst_out_of_window",
                detail: format!(
                    "RST with sequence number {} far outside the stream; ignored",
                    pkt.seq
                ),
            });
            return;
        }
        let id = (dir, ts, pkt.seq, pkt.ip_id);
        if self.last_rst == Some(id) {
            return;
        }
        self.last_rst = Some(id);
        // Neither side will retransmit after a reset, so whatever is still missing is lost:
        // report it before the RST so events stay in causal order.
        self.flush(ts, out);
        out(StreamEvent::Rst {
            dir,
            ts,
            ttl: pkt.ttl,
            ip_id: pkt.ip_id,
        });
        self.rst_seen = true;
    }

    /// Delivers everything buffered in both directions, holes as gaps, then pending FINs.
    fn flush(&mut self, ts: Ts, out: &mut dyn FnMut(StreamEvent<'_>)) {
        for dir in [Dir::C2s, Dir::S2c] {
            let d = dir.index();
            let mut sink = Sink::new(dir, ts, out);
            self.halves[d].flush(&mut sink);
            self.stats.gap_bytes[d] = self.stats.gap_bytes[d].saturating_add(sink.gap_bytes);
        }
    }

    /// The capture ended or the flow is evicted: delivers what is buffered, holes as gaps.
    pub fn finish(&mut self, ts: Ts, out: &mut dyn FnMut(StreamEvent<'_>)) {
        self.flush(ts, out);
    }

    /// Whether the connection is over: a RST was seen, or a FIN each way.
    pub fn is_closed(&self) -> bool {
        self.rst_seen || self.halves.iter().all(Half::fin_seen)
    }

    /// Timestamp of the last segment fed.
    pub fn last_ts(&self) -> Ts {
        self.last_ts
    }

    /// Counters so far.
    pub fn stats(&self) -> &TcpStats {
        &self.stats
    }
}

fn note_ttl(t: &mut TtlStats, ttl: u8) {
    t.min = Some(t.min.map_or(ttl, |m| m.min(ttl)));
    t.max = Some(t.max.map_or(ttl, |m| m.max(ttl)));
    t.last = Some(ttl);
}
