//! Tests of TCP reassembly: takes hand-built segments (and proptest-generated segmentations of
//! random streams) and checks the events and counters `TcpConn` and `FlowTable` give.

use std::net::SocketAddr;

use proptest::prelude::*;

use super::*;
use crate::config::Limits;
use crate::net::{TcpFlags, TcpPacket};

const SYN: u8 = TcpFlags::SYN;
const ACK: u8 = TcpFlags::ACK;
const FIN: u8 = TcpFlags::FIN;
const RST: u8 = TcpFlags::RST;
const PSH: u8 = TcpFlags::PSH;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn client() -> SocketAddr {
    addr("10.0.0.1:50000")
}

fn server() -> SocketAddr {
    addr("10.0.0.2:80")
}

/// An event with owned bytes, to compare whole sequences.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Syn(Dir),
    Data(Dir, Vec<u8>),
    Gap(Dir, u64),
    Fin(Dir),
    Rst(Dir, u8, Option<u16>),
    Anomaly(Dir, &'static str),
}

fn own(ev: StreamEvent<'_>) -> Ev {
    match ev {
        StreamEvent::Syn { dir, .. } => Ev::Syn(dir),
        StreamEvent::Data { dir, bytes, .. } => Ev::Data(dir, bytes.to_vec()),
        StreamEvent::Gap { dir, len, .. } => Ev::Gap(dir, len),
        StreamEvent::Fin { dir, .. } => Ev::Fin(dir),
        StreamEvent::Rst {
            dir, ttl, ip_id, ..
        } => Ev::Rst(dir, ttl, ip_id),
        StreamEvent::Anomaly { dir, kind, .. } => Ev::Anomaly(dir, kind),
    }
}

struct Seg<'a> {
    from_client: bool,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &'a [u8],
    missing: u32,
    ttl: u8,
}

impl<'a> Seg<'a> {
    fn packet(&self) -> TcpPacket<'a> {
        let (src, dst) = if self.from_client {
            (client(), server())
        } else {
            (server(), client())
        };
        TcpPacket {
            src,
            dst,
            seq: self.seq,
            ack: self.ack,
            flags: TcpFlags(self.flags),
            window: 65535,
            ttl: self.ttl,
            ip_id: Some(self.seq as u16),
            payload: self.payload,
            missing: self.missing,
        }
    }
}

fn c<'a>(seq: u32, ack: u32, flags: u8, payload: &'a [u8]) -> Seg<'a> {
    Seg {
        from_client: true,
        seq,
        ack,
        flags,
        payload,
        missing: 0,
        ttl: 64,
    }
}

fn s<'a>(seq: u32, ack: u32, flags: u8, payload: &'a [u8]) -> Seg<'a> {
    Seg {
        from_client: false,
        seq,
        ack,
        flags,
        payload,
        missing: 0,
        ttl: 57,
    }
}

/// A connection under test with everything it reported so far.
struct H {
    conn: Option<TcpConn>,
    limits: Limits,
    events: Vec<Ev>,
    t: i64,
}

impl H {
    fn new() -> H {
        H::with_limits(Limits::default())
    }

    fn with_limits(limits: Limits) -> H {
        H {
            conn: None,
            limits,
            events: Vec::new(),
            t: 0,
        }
    }

    fn feed(&mut self, seg: Seg<'_>) -> Vec<Ev> {
        let pkt = seg.packet();
        let limits = &self.limits;
        let conn = self.conn.get_or_insert_with(|| TcpConn::new(&pkt, limits));
        self.t += 1000;
        let mut got = Vec::new();
        conn.segment(Ts(self.t), &pkt, &mut |ev| got.push(own(ev)));
        self.events.extend(got.iter().cloned());
        got
    }

    fn finish(&mut self) -> Vec<Ev> {
        let mut got = Vec::new();
        if let Some(conn) = self.conn.as_mut() {
            conn.finish(Ts(self.t + 1), &mut |ev| got.push(own(ev)));
        }
        self.events.extend(got.iter().cloned());
        got
    }

    fn conn(&self) -> &TcpConn {
        self.conn.as_ref().unwrap()
    }

    fn stats(&self) -> &TcpStats {
        self.conn().stats()
    }

    /// The stream of one direction as bytes, with gaps as `#` runs.
    fn stream(&self, dir: Dir) -> Vec<u8> {
        let mut v = Vec::new();
        for ev in &self.events {
            match ev {
                Ev::Data(d, b) if *d == dir => v.extend_from_slice(b),
                Ev::Gap(d, n) if *d == dir => v.extend(std::iter::repeat_n(b'#', *n as usize)),
                _ => {}
            }
        }
        v
    }

    /// The usual handshake: client ISN 1000, server ISN 5000.
    fn handshake(&mut self) {
        self.feed(c(1000, 0, SYN, b""));
        self.feed(s(5000, 1001, SYN | ACK, b""));
        self.feed(c(1001, 5001, ACK, b""));
    }
}

use Dir::{C2s, S2c};

fn data(dir: Dir, b: &[u8]) -> Ev {
    Ev::Data(dir, b.to_vec())
}

#[test]
fn in_order_delivery() {
    let mut h = H::new();
    assert_eq!(h.feed(c(1000, 0, SYN, b"")), vec![Ev::Syn(C2s)]);
    assert_eq!(h.feed(s(5000, 1001, SYN | ACK, b"")), vec![Ev::Syn(S2c)]);
    assert_eq!(
        h.feed(c(1001, 5001, ACK | PSH, b"hello")),
        vec![data(C2s, b"hello")]
    );
    assert_eq!(
        h.feed(c(1006, 5001, ACK | PSH, b" world")),
        vec![data(C2s, b" world")]
    );
    assert_eq!(
        h.feed(s(5001, 1012, ACK | PSH, b"hi")),
        vec![data(S2c, b"hi")]
    );
    assert!(h.finish().is_empty());
    let st = h.stats();
    assert!(h.conn().syn_seen());
    assert_eq!(h.conn().client(), client());
    assert_eq!(h.conn().server(), server());
    assert_eq!(st.syn_ts, Some(Ts(1000)));
    assert_eq!(st.synack_ts, Some(Ts(2000)));
    assert_eq!(st.packets, [3, 2]);
    assert_eq!(st.payload_bytes, [11, 2]);
    assert_eq!(st.retransmissions, [0, 0]);
    assert_eq!(st.out_of_order, [0, 0]);
    assert_eq!(st.gap_bytes, [0, 0]);
    assert_eq!(st.ttl[0].min, Some(64));
    assert_eq!(st.ttl[1].last, Some(57));
    assert_eq!(h.conn().last_ts(), Ts(5000));
}

#[test]
fn orientation_from_synack_and_ports() {
    let limits = Limits::default();
    let synack = s(5000, 1001, SYN | ACK, b"").packet();
    let conn = TcpConn::new(&synack, &limits);
    assert_eq!((conn.client(), conn.server()), (client(), server()));
    assert_eq!(conn.direction(&synack), S2c);
    // No SYN: the higher port is the client, whoever sends first.
    let data = s(5000, 1001, ACK, b"x").packet();
    let conn = TcpConn::new(&data, &limits);
    assert_eq!((conn.client(), conn.server()), (client(), server()));
    assert!(!conn.syn_seen());
    // Equal ports: the first sender.
    let mut p = data;
    p.src = addr("10.0.0.2:9000");
    p.dst = addr("10.0.0.1:9000");
    let conn = TcpConn::new(&p, &limits);
    assert_eq!(conn.client(), p.src);
}

#[test]
fn out_of_order_is_buffered_then_delivered() {
    let mut h = H::new();
    h.handshake();
    assert!(h.feed(c(1011, 5001, ACK, b"klmno")).is_empty());
    assert!(h.feed(c(1006, 5001, ACK, b"fghij")).is_empty());
    assert_eq!(
        h.feed(c(1001, 5001, ACK, b"abcde")),
        vec![
            data(C2s, b"abcde"),
            data(C2s, b"fghij"),
            data(C2s, b"klmno")
        ]
    );
    assert_eq!(h.stats().out_of_order, [2, 0]);
    assert_eq!(h.stats().retransmissions, [0, 0]);
}

#[test]
fn duplicates_are_delivered_once() {
    let mut h = H::new();
    h.handshake();
    h.feed(c(1001, 5001, ACK, b"abc"));
    assert!(h.feed(c(1001, 5001, ACK, b"abc")).is_empty());
    // A duplicate of a buffered segment.
    h.feed(c(1010, 5001, ACK, b"xyz"));
    assert!(h.feed(c(1010, 5001, ACK, b"xyz")).is_empty());
    // A SYN retransmission is no new SYN.
    assert!(h.feed(c(1000, 0, SYN, b"")).is_empty());
    h.feed(c(1004, 5001, ACK, b"defghi"));
    assert_eq!(h.stream(C2s), b"abcdefghixyz");
    assert_eq!(h.stats().retransmissions, [3, 0]);
}

#[test]
fn overlap_with_same_bytes() {
    let mut h = H::new();
    h.handshake();
    let stream = b"0123456789abcdefghij";
    h.feed(c(1006, 5001, ACK, &stream[5..15]));
    h.feed(c(1013, 5001, ACK, &stream[12..18]));
    h.feed(c(1001, 5001, ACK, &stream[0..10]));
    h.feed(c(1003, 5001, ACK, &stream[2..20]));
    assert_eq!(h.stream(C2s), stream);
    assert!(
        !h.events
            .iter()
            .any(|e| matches!(e, Ev::Anomaly(..) | Ev::Gap(..)))
    );
}

#[test]
fn overlap_with_conflicting_bytes_keeps_first() {
    let mut h = H::new();
    h.handshake();
    h.feed(c(1006, 5001, ACK, b"XXXXX"));
    let got = h.feed(c(1001, 5001, ACK, b"abcdefghij"));
    assert_eq!(
        got,
        vec![
            data(C2s, b"abcde"),
            Ev::Anomaly(C2s, "tcp_overlap_conflict"),
            data(C2s, b"XXXXX"),
        ]
    );
    // Already delivered bytes are not kept, so a conflicting copy of them is just old.
    assert!(h.feed(c(1001, 5001, ACK, b"zzzz")).is_empty());
}

#[test]
fn sequence_wraparound() {
    let mut h = H::new();
    let isn = u32::MAX - 5;
    h.feed(c(isn, 0, SYN, b""));
    // Offsets 0..4 sit before 2^32, 4.. after it; deliver the later part first.
    h.feed(c(isn.wrapping_add(9), 0, ACK, b"ijkl"));
    h.feed(c(isn.wrapping_add(5), 0, ACK, b"efgh"));
    h.feed(c(isn.wrapping_add(1), 0, ACK, b"abcd"));
    h.feed(c(isn.wrapping_add(13), 0, ACK | FIN, b"mn"));
    assert_eq!(h.stream(C2s), b"abcdefghijklmn");
    assert_eq!(h.events.last(), Some(&Ev::Fin(C2s)));
}

#[test]
fn long_stream_crosses_2_pow_32_several_times() {
    // Offsets are 64-bit: the same sequence numbers come round again later in the stream.
    let mut h = H::new();
    h.feed(c(7, 0, SYN, b""));
    let chunk = vec![1u8; 60_000];
    let mut seq = 8u32;
    for _ in 0..150_000 {
        h.feed(c(seq, 0, ACK, &chunk));
        seq = seq.wrapping_add(chunk.len() as u32);
        h.events.clear();
    }
    h.feed(c(seq, 0, ACK, b"end"));
    assert_eq!(h.events, vec![data(C2s, b"end")]);
    assert_eq!(h.stats().gap_bytes, [0, 0]);
    assert_eq!(h.stats().retransmissions, [0, 0]);
}

#[test]
fn gap_declared_when_peer_acks_unseen_bytes() {
    let mut h = H::new();
    h.handshake();
    h.feed(c(1001, 5001, ACK, b"aaaa"));
    // 1005..1009 is never captured.
    assert!(h.feed(c(1009, 5001, ACK, b"cccc")).is_empty());
    assert_eq!(
        h.feed(s(5001, 1013, ACK, b"")),
        vec![Ev::Gap(C2s, 4), data(C2s, b"cccc")]
    );
    // An ACK beyond everything seen: the receiver got bytes the capture lacks entirely.
    assert_eq!(h.feed(s(5001, 1020, ACK, b"")), vec![Ev::Gap(C2s, 7)]);
    // The missing bytes turning up later are old news.
    assert!(h.feed(c(1005, 5001, ACK, b"bbbb")).is_empty());
    h.feed(c(1020, 5001, ACK, b"dd"));
    assert_eq!(h.stream(C2s), b"aaaa####cccc#######dd");
    assert_eq!(h.stats().gap_bytes, [11, 0]);
    assert_eq!(h.stats().retransmissions, [1, 0]);
}

#[test]
fn gap_declared_when_buffer_cap_is_hit() {
    let limits = Limits {
        max_ooo_bytes_per_dir: 10,
        ..Limits::default()
    };
    let mut h = H::with_limits(limits);
    h.handshake();
    assert!(h.feed(c(1011, 5001, ACK, b"bbbbb")).is_empty());
    assert!(h.feed(c(1021, 5001, ACK, b"ddddd")).is_empty());
    // 15 bytes would be buffered: give up on the first hole only.
    assert_eq!(
        h.feed(c(1031, 5001, ACK, b"fffff")),
        vec![
            Ev::Anomaly(C2s, "tcp_ooo_cap"),
            Ev::Gap(C2s, 10),
            data(C2s, b"bbbbb")
        ]
    );
    // The anomaly is reported once per direction; a segment larger than the cap is not held.
    let got = h.feed(c(1041, 5001, ACK, b"hhhhhhhhhhhh"));
    assert_eq!(
        got,
        vec![
            Ev::Gap(C2s, 5),
            data(C2s, b"ddddd"),
            Ev::Gap(C2s, 5),
            data(C2s, b"fffff"),
            Ev::Gap(C2s, 5),
            data(C2s, b"hhhhhhhhhhhh"),
        ]
    );
    h.finish();
    assert_eq!(h.stats().gap_bytes, [25, 0]);
    assert_eq!(h.stream(C2s).len(), 52);
}

#[test]
fn snaplen_cut_segments_are_gaps() {
    let mut h = H::new();
    h.handshake();
    let mut seg = c(1001, 5001, ACK, b"abc");
    seg.missing = 5;
    assert_eq!(h.feed(seg), vec![data(C2s, b"abc"), Ev::Gap(C2s, 5)]);
    assert_eq!(h.feed(c(1009, 5001, ACK, b"ij")), vec![data(C2s, b"ij")]);
    // A cut segment ahead of a hole: its cut part comes out as a gap in place, without waiting.
    let mut seg = c(1015, 5001, ACK, b"op");
    seg.missing = 3;
    assert!(h.feed(seg).is_empty());
    assert_eq!(
        h.feed(c(1011, 5001, ACK, b"klmn")),
        vec![data(C2s, b"klmn"), data(C2s, b"op"), Ev::Gap(C2s, 3)]
    );
    assert_eq!(h.feed(c(1020, 5001, ACK | FIN, b"")), vec![Ev::Fin(C2s)]);
    assert_eq!(h.stream(C2s), b"abc#####ijklmnop###");
    assert_eq!(h.stats().gap_bytes, [8, 0]);
}

#[test]
fn fin_with_data_and_close() {
    let mut h = H::new();
    h.handshake();
    assert_eq!(
        h.feed(c(1001, 5001, ACK | FIN, b"bye")),
        vec![data(C2s, b"bye"), Ev::Fin(C2s)]
    );
    assert!(!h.conn().is_closed());
    // A retransmitted FIN is not reported again.
    assert!(h.feed(c(1001, 5001, ACK | FIN, b"bye")).is_empty());
    assert_eq!(h.feed(s(5001, 1005, ACK | FIN, b"")), vec![Ev::Fin(S2c)]);
    assert!(h.conn().is_closed());
    assert_eq!(h.stats().retransmissions, [1, 0]);
    assert_eq!(h.stats().ttl[0].max, Some(64));
}

#[test]
fn fin_waits_for_reordered_data() {
    let mut h = H::new();
    h.handshake();
    h.feed(c(1001, 5001, ACK, b"ab"));
    // The FIN is captured before the last data segment.
    assert!(h.feed(c(1005, 5001, ACK | FIN, b"")).is_empty());
    assert_eq!(
        h.feed(c(1003, 5001, ACK, b"cd")),
        vec![data(C2s, b"cd"), Ev::Fin(C2s)]
    );
}

#[test]
fn fin_past_a_hole_becomes_gap_on_ack_retransmission_or_finish() {
    // The peer acknowledges the FIN: the hole was a capture loss.
    let mut h = H::new();
    h.handshake();
    h.feed(c(1001, 5001, ACK, b"ab"));
    assert!(h.feed(c(1005, 5001, ACK | FIN, b"")).is_empty());
    assert_eq!(
        h.feed(s(5001, 1006, ACK, b"")),
        vec![Ev::Gap(C2s, 2), Ev::Fin(C2s)]
    );

    // The FIN is retransmitted.
    let mut h = H::new();
    h.handshake();
    h.feed(c(1001, 5001, ACK, b"ab"));
    h.feed(c(1005, 5001, ACK | FIN, b""));
    assert_eq!(
        h.feed(c(1005, 5001, ACK | FIN, b"")),
        vec![Ev::Gap(C2s, 2), Ev::Fin(C2s)]
    );

    // The capture ends.
    let mut h = H::new();
    h.handshake();
    h.feed(c(1001, 5001, ACK, b"ab"));
    h.feed(c(1005, 5001, ACK | FIN, b""));
    h.feed(c(1003, 5001, ACK, b""));
    assert_eq!(h.finish(), vec![Ev::Gap(C2s, 2), Ev::Fin(C2s)]);
    assert!(h.finish().is_empty());
}

#[test]
fn rst_ends_the_connection() {
    let mut h = H::new();
    h.handshake();
    h.feed(c(1001, 5001, ACK, b"ab"));
    h.feed(c(1010, 5001, ACK, b"zz"));
    let mut rst = s(5001, 0, RST, b"");
    rst.ttl = 3;
    // Buffered data is flushed first, so the RST comes last.
    assert_eq!(
        h.feed(rst),
        vec![
            Ev::Gap(C2s, 7),
            data(C2s, b"zz"),
            Ev::Rst(S2c, 3, Some(5001))
        ]
    );
    assert!(h.conn().is_closed());
    // TTLs of FIN/RST packets are not ordinary.
    assert_eq!(h.stats().ttl[1].min, Some(57));
    // A second, different RST is reported too; one far out of the stream is not.
    assert_eq!(
        h.feed(c(1012, 0, RST, b"")),
        vec![Ev::Rst(C2s, 64, Some(1012))]
    );
    assert_eq!(
        h.feed(c(1012 + (1 << 31), 0, RST, b"")),
        vec![Ev::Anomaly(C2s, "tcp_rst_out_of_window")]
    );
}

#[test]
fn rst_answering_a_syn() {
    let mut h = H::new();
    h.feed(c(1000, 0, SYN, b""));
    assert_eq!(
        h.feed(s(0, 1001, RST | ACK, b"")),
        vec![Ev::Rst(S2c, 57, Some(0))]
    );
    assert!(h.conn().is_closed());
    // The retried SYN is a new connection.
    assert!(
        h.conn()
            .starts_new_connection(&c(1000, 0, SYN, b"").packet())
    );
}

#[test]
fn mid_stream_pickup() {
    let mut h = H::new();
    // The server speaks first in the capture; orientation comes from the ports.
    assert_eq!(
        h.feed(s(90_000, 7000, ACK, b"srv")),
        vec![data(S2c, b"srv")]
    );
    assert_eq!(h.conn().client(), client());
    assert!(!h.conn().syn_seen());
    assert_eq!(
        h.feed(c(7000, 90_003, ACK, b"cli")),
        vec![data(C2s, b"cli")]
    );
    // Data from before the first segment seen is old.
    assert!(h.feed(s(89_990, 7003, ACK, b"0123456789")).is_empty());
    assert_eq!(
        h.feed(s(90_003, 7003, ACK, b"more")),
        vec![data(S2c, b"more")]
    );
    assert!(
        !h.conn()
            .starts_new_connection(&c(6999, 0, SYN, b"").packet())
    );
    assert!(
        h.conn()
            .starts_new_connection(&c(123, 0, SYN, b"").packet())
    );
}

#[test]
fn synack_anchors_client_when_syn_missed() {
    let mut h = H::new();
    h.feed(s(5000, 1001, SYN | ACK, b""));
    h.feed(c(1005, 5001, ACK, b"efg"));
    assert_eq!(
        h.feed(c(1001, 5001, ACK, b"abcd")),
        vec![data(C2s, b"abcd"), data(C2s, b"efg")]
    );
    assert!(!h.conn().syn_seen());
}

#[test]
fn port_reuse_detection() {
    let mut h = H::new();
    h.handshake();
    let same = c(1000, 0, SYN, b"").packet();
    let other = c(777_777, 0, SYN, b"").packet();
    assert!(!h.conn().starts_new_connection(&same));
    assert!(h.conn().starts_new_connection(&other));
    assert!(
        !h.conn()
            .starts_new_connection(&s(9, 1, SYN | ACK, b"").packet())
    );
    h.feed(c(1001, 5001, ACK | FIN, b""));
    assert!(!h.conn().starts_new_connection(&same));
    h.feed(s(5001, 1002, ACK | FIN, b""));
    assert!(h.conn().is_closed());
    assert!(h.conn().starts_new_connection(&same));
}

#[test]
fn flow_key_is_symmetric() {
    let a = c(1, 0, ACK, b"").packet();
    let b = s(1, 0, ACK, b"").packet();
    assert_eq!(FlowKey::of(&a), FlowKey::of(&b));
}

fn key(n: u16) -> FlowKey {
    let p = TcpPacket {
        src: SocketAddr::from(([10, 0, 0, 1], n)),
        ..c(0, 0, 0, b"").packet()
    };
    FlowKey::of(&p)
}

fn keys<T>(v: &[(FlowKey, T)]) -> Vec<FlowKey> {
    v.iter().map(|(k, _)| *k).collect()
}

#[test]
fn table_evicts_least_recently_active() {
    let mut t = FlowTable::new(3);
    assert!(t.is_empty());
    for n in 1..=3 {
        assert!(t.insert(key(n), n, Ts(i64::from(n))).is_empty());
    }
    assert_eq!(t.get_mut(&key(1), Ts(10)).map(|v| *v), Some(1));
    let ev = t.insert(key(4), 4, Ts(11));
    assert_eq!(keys(&ev), vec![key(2)]);
    assert_eq!(t.len(), 3);
    assert!(t.get_mut(&key(2), Ts(12)).is_none());
    // Replacing a flow hands back the old value.
    let ev = t.insert(key(3), 33, Ts(13));
    assert_eq!(
        ev.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>(),
        vec![(key(3), 3)]
    );
    assert_eq!(t.remove(&key(4)), Some(4));
    assert_eq!(t.len(), 2);
}

#[test]
fn table_expire_and_drain_order() {
    let mut t = FlowTable::new(100);
    for n in 1..=5 {
        t.insert(key(n), n, Ts(i64::from(n) * 10));
    }
    t.get_mut(&key(1), Ts(100));
    t.get_mut(&key(2), Ts(5)); // a clock going back does not make a flow older
    let ex = t.expire(Ts(100), 55);
    assert_eq!(keys(&ex), vec![key(3), key(4)]);
    t.insert(key(6), 6, Ts(101));
    let all: Vec<_> = t.drain().collect();
    assert_eq!(keys(&all), vec![key(1), key(2), key(5), key(6)]);
    assert!(t.is_empty());
    assert!(t.expire(Ts(1000), 1).is_empty());
    t.insert(key(7), 7, Ts(1));
    assert_eq!(t.len(), 1);
}

#[test]
fn table_survives_a_syn_flood() {
    let mut t = FlowTable::new(1000);
    let mut evicted = 0usize;
    for n in 0..1_000_000u32 {
        let p = TcpPacket {
            src: SocketAddr::from((n.to_be_bytes(), 1234)),
            ..c(0, 0, SYN, b"").packet()
        };
        evicted += t.insert(FlowKey::of(&p), n, Ts(i64::from(n))).len();
    }
    assert_eq!(t.len(), 1000);
    assert_eq!(evicted, 999_000);
    let all: Vec<_> = t.drain().collect();
    assert_eq!(all.first().map(|x| x.1), Some(999_000));
    assert_eq!(all.last().map(|x| x.1), Some(999_999));
}

/// Splits `stream` at `cuts` and adds the `extra` ranges (overlapping copies of the same bytes).
fn segments(len: usize, cuts: &[u16], extra: &[(u16, u16)]) -> Vec<(usize, usize)> {
    let mut bounds: Vec<usize> = cuts.iter().map(|&c| usize::from(c) % (len + 1)).collect();
    bounds.extend([0, len]);
    bounds.sort_unstable();
    bounds.dedup();
    let mut segs: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
    for &(a, b) in extra {
        let (a, b) = (usize::from(a) % (len + 1), usize::from(b) % (len + 1));
        if a != b {
            segs.push((a.min(b), a.max(b)));
        }
    }
    segs
}

/// Orders `items` by the random keys given.
fn shuffle<T>(items: Vec<T>, order: &[u32]) -> Vec<T> {
    let mut keyed: Vec<(u32, usize, T)> = items
        .into_iter()
        .enumerate()
        .map(|(i, x)| {
            (
                order.get(i % order.len().max(1)).copied().unwrap_or(0) ^ i as u32,
                i,
                x,
            )
        })
        .collect();
    keyed.sort_by_key(|(k, i, _)| (*k, *i));
    keyed.into_iter().map(|(_, _, x)| x).collect()
}

fn isn() -> impl Strategy<Value = u32> {
    prop_oneof![any::<u32>(), (0u32..3000).prop_map(|d| u32::MAX - d)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_segmentation_and_order_gives_the_stream(
        stream in prop::collection::vec(any::<u8>(), 0..3000),
        isn in isn(),
        cuts in prop::collection::vec(any::<u16>(), 0..40),
        extra in prop::collection::vec((any::<u16>(), any::<u16>()), 0..20),
        order in prop::collection::vec(any::<u32>(), 1..64),
        with_fin in any::<bool>(),
    ) {
        let mut h = H::new();
        h.feed(c(isn, 0, SYN, b""));
        let mut segs: Vec<(usize, usize, u8)> =
            segments(stream.len(), &cuts, &extra).into_iter().map(|(a, b)| (a, b, ACK)).collect();
        if with_fin {
            segs.push((stream.len(), stream.len(), ACK | FIN));
        }
        for (a, b, flags) in shuffle(segs, &order) {
            let seq = isn.wrapping_add(1).wrapping_add(a as u32);
            h.feed(c(seq, 0, flags, &stream[a..b]));
        }
        let before_finish = h.events.len();
        h.finish();
        prop_assert_eq!(h.stream(C2s), stream.clone());
        prop_assert!(!h.events.iter().any(|e| matches!(e, Ev::Gap(..) | Ev::Anomaly(..))));
        let fins: Vec<usize> =
            h.events.iter().enumerate().filter(|(_, e)| **e == Ev::Fin(C2s)).map(|(i, _)| i).collect();
        if with_fin {
            // Complete before the end of the capture, so the FIN came out without `finish`.
            prop_assert_eq!(fins.len(), 1);
            prop_assert!(fins[0] < before_finish);
            prop_assert_eq!(fins[0], h.events.len() - 1);
        } else {
            prop_assert!(fins.is_empty());
        }
        prop_assert_eq!(h.stats().gap_bytes, [0, 0]);
    }

    #[test]
    fn lost_and_cut_segments_keep_offsets(
        stream in prop::collection::vec(any::<u8>(), 1..3000),
        isn in isn(),
        cuts in prop::collection::vec(any::<u16>(), 0..40),
        extra in prop::collection::vec((any::<u16>(), any::<u16>()), 0..20),
        order in prop::collection::vec(any::<u32>(), 1..64),
        fate in prop::collection::vec(0u8..10, 1..64),
        acks in prop::collection::vec(any::<u16>(), 0..6),
        fin_copies in 1usize..3,
        cap in prop_oneof![Just(1usize << 20), 0usize..400],
    ) {
        let limits = Limits { max_ooo_bytes_per_dir: cap, ..Limits::default() };
        let mut h = H::with_limits(limits);
        h.feed(c(isn, 0, SYN, b""));
        h.feed(s(9, isn.wrapping_add(1), SYN | ACK, b""));
        let len = stream.len();
        // (from, to, captured bytes, flags, from the server)
        let mut segs: Vec<(usize, usize, usize, u8, bool)> = Vec::new();
        for (i, (a, b)) in segments(len, &cuts, &extra).into_iter().enumerate() {
            match fate.get(i % fate.len()).copied().unwrap_or(0) {
                0 | 1 => {}                                            // lost
                2 => segs.push((a, b, (b - a) / 2, ACK, false)),       // cut by snaplen
                _ => segs.push((a, b, b - a, ACK, false)),
            }
        }
        for _ in 0..fin_copies {
            segs.push((len, len, 0, ACK | FIN, false));
        }
        // Truthful acknowledgments from the receiver (it had these bytes, the capture may not).
        for &k in &acks {
            let k = usize::from(k) % (len + 1);
            segs.push((k, k, 0, ACK, true));
        }
        for (a, b, captured, flags, from_server) in shuffle(segs, &order) {
            if from_server {
                h.feed(s(10, isn.wrapping_add(1).wrapping_add(a as u32), flags, b""));
            } else {
                let seq = isn.wrapping_add(1).wrapping_add(a as u32);
                let mut seg = c(seq, 10, flags, &stream[a..a + captured]);
                seg.missing = (b - a - captured) as u32;
                h.feed(seg);
            }
        }
        h.finish();
        let mut pos = 0usize;
        let mut fin_at = None;
        let mut gaps = 0u64;
        for (i, e) in h.events.iter().enumerate() {
            match e {
                Ev::Data(C2s, bytes) => {
                    prop_assert!(fin_at.is_none());
                    prop_assert!(!bytes.is_empty());
                    prop_assert_eq!(&bytes[..], &stream[pos..pos + bytes.len()]);
                    pos += bytes.len();
                }
                Ev::Gap(C2s, n) => {
                    prop_assert!(fin_at.is_none());
                    prop_assert!(*n > 0);
                    pos += *n as usize;
                    gaps += n;
                }
                Ev::Fin(C2s) => {
                    prop_assert!(fin_at.is_none());
                    fin_at = Some(i);
                }
                _ => {}
            }
        }
        prop_assert_eq!(pos, len);
        prop_assert!(fin_at.is_some());
        prop_assert_eq!(h.stats().gap_bytes[0], gaps);
    }

    #[test]
    fn garbage_never_panics(
        segs in prop::collection::vec(
            (any::<bool>(), any::<u32>(), any::<u32>(), any::<u8>(), 0usize..64, any::<u32>()),
            1..60,
        ),
        near in any::<bool>(),
        cap in 0usize..100,
    ) {
        let limits = Limits { max_ooo_bytes_per_dir: cap, ..Limits::default() };
        let mut h = H::with_limits(limits);
        let payload = [7u8; 64];
        for (from_client, seq, ack, flags, plen, missing) in segs {
            // Keep some runs within a window so reassembly paths are exercised, not only "old".
            let (seq, ack, missing) = if near { (seq % 300, ack % 300, missing % 50) } else { (seq, ack, missing) };
            let seg = Seg { from_client, seq, ack, flags, payload: &payload[..plen], missing, ttl: 1 };
            h.feed(seg);
        }
        h.finish();
        for dir in [C2s, S2c] {
            let gaps: u64 = h.events.iter().map(|e| match e { Ev::Gap(d, n) if *d == dir => *n, _ => 0 }).sum();
            prop_assert_eq!(gaps, h.stats().gap_bytes[dir.index()]);
            let fins = h.events.iter().filter(|e| **e == Ev::Fin(dir)).count();
            prop_assert!(fins <= 1);
        }
    }
}
