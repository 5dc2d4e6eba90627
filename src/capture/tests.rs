//! Tests of the capture reader: corpus captures checked against tshark, synthetic pcap/pcapng
//! variants, truncation, garbage, gzip and buffer growth.

use std::io::{self, Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::net::{self, Skip};

fn corpus(rel: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus")).join(rel)
}

fn corpus_bytes(rel: &str) -> Vec<u8> {
    std::fs::read(corpus(rel)).expect("corpus file")
}

/// A path in the temp dir that no other test (or test run) uses.
fn temp_path(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "wsinspect-capture-{}-{n}-{tag}",
        std::process::id()
    ))
}

/// An owned copy of a packet, for comparing whole captures.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Owned {
    number: u64,
    ts: Ts,
    linktype: u32,
    data: Vec<u8>,
    origlen: u32,
}

fn drain(r: &mut CaptureReader) -> Vec<Owned> {
    let mut out = Vec::new();
    while let Some(p) = r.next_packet().expect("next_packet") {
        out.push(Owned {
            number: p.number,
            ts: p.ts,
            linktype: p.linktype,
            data: p.data.to_vec(),
            origlen: p.origlen,
        });
    }
    // The end is sticky.
    assert!(r.next_packet().expect("after end").is_none());
    out
}

fn read_bytes(bytes: Vec<u8>) -> Result<CaptureReader, Error> {
    CaptureReader::from_reader(Box::new(Cursor::new(bytes)))
}

fn read_all(bytes: Vec<u8>) -> (Vec<Owned>, bool) {
    let mut r = read_bytes(bytes).expect("open");
    let pkts = drain(&mut r);
    (pkts, r.truncated())
}

fn open_corpus(rel: &str) -> (CaptureReader, Vec<Owned>) {
    let mut r = CaptureReader::open(&corpus(rel)).expect("open corpus file");
    let pkts = drain(&mut r);
    (r, pkts)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

// ---- builders for synthetic captures ----

fn pcap_header(magic: u32, big_endian: bool, linktype: u32) -> Vec<u8> {
    let mut h = Vec::new();
    let ng = Ng {
        out: Vec::new(),
        be: big_endian,
    };
    let (w16, w32) = (|v| ng.u16(v), |v| ng.u32(v));
    h.extend_from_slice(&w32(magic));
    h.extend_from_slice(&w16(2));
    h.extend_from_slice(&w16(4));
    h.extend_from_slice(&w32(0));
    h.extend_from_slice(&w32(0));
    h.extend_from_slice(&w32(65535));
    h.extend_from_slice(&w32(linktype));
    h
}

fn pcap_record(big_endian: bool, sec: u32, frac: u32, data: &[u8], origlen: u32) -> Vec<u8> {
    let w32: fn(u32) -> [u8; 4] = if big_endian {
        u32::to_be_bytes
    } else {
        u32::to_le_bytes
    };
    let mut r = Vec::new();
    for v in [sec, frac, data.len() as u32, origlen] {
        r.extend_from_slice(&w32(v));
    }
    r.extend_from_slice(data);
    r
}

/// A little pcapng writer; `be` picks the section's byte order.
struct Ng {
    out: Vec<u8>,
    be: bool,
}

impl Ng {
    fn new() -> Ng {
        Ng {
            out: Vec::new(),
            be: false,
        }
    }
    fn u16(&self, v: u16) -> [u8; 2] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn u32(&self, v: u32) -> [u8; 4] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn block(&mut self, ty: u32, body: &[u8]) {
        let len = 12 + body.len() as u32;
        assert!(len.is_multiple_of(4));
        let (t, l) = (self.u32(ty), self.u32(len));
        self.out.extend_from_slice(&t);
        self.out.extend_from_slice(&l);
        self.out.extend_from_slice(body);
        self.out.extend_from_slice(&l);
    }
    fn shb(&mut self, be: bool) {
        self.be = be;
        let mut b = Vec::new();
        b.extend_from_slice(&self.u32(0x1a2b_3c4d));
        b.extend_from_slice(&self.u16(1));
        b.extend_from_slice(&self.u16(0));
        b.extend_from_slice(&[0xff; 8]);
        self.block(0x0a0d_0d0a, &b);
    }
    fn opt(&self, b: &mut Vec<u8>, code: u16, val: &[u8]) {
        b.extend_from_slice(&self.u16(code));
        b.extend_from_slice(&self.u16(val.len() as u16));
        b.extend_from_slice(val);
        while !b.len().is_multiple_of(4) {
            b.push(0);
        }
    }
    fn idb(&mut self, linktype: u16, tsresol: Option<u8>, tsoffset: Option<i64>) {
        let mut b = Vec::new();
        b.extend_from_slice(&self.u16(linktype));
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&self.u32(262144));
        if let Some(r) = tsresol {
            self.opt(&mut b, 9, &[r]);
        }
        if let Some(o) = tsoffset {
            let v = if self.be {
                o.to_be_bytes()
            } else {
                o.to_le_bytes()
            };
            self.opt(&mut b, 14, &v);
        }
        if tsresol.is_some() || tsoffset.is_some() {
            self.opt(&mut b, 0, &[]);
        }
        self.block(1, &b);
    }
    fn epb(&mut self, if_id: u32, ts: u64, data: &[u8], origlen: u32) {
        let mut b = Vec::new();
        b.extend_from_slice(&self.u32(if_id));
        b.extend_from_slice(&self.u32((ts >> 32) as u32));
        b.extend_from_slice(&self.u32(ts as u32));
        b.extend_from_slice(&self.u32(data.len() as u32));
        b.extend_from_slice(&self.u32(origlen));
        b.extend_from_slice(data);
        while !b.len().is_multiple_of(4) {
            b.push(0);
        }
        self.block(6, &b);
    }
    fn spb(&mut self, data: &[u8]) {
        let mut b = Vec::new();
        b.extend_from_slice(&self.u32(data.len() as u32));
        b.extend_from_slice(data);
        while !b.len().is_multiple_of(4) {
            b.push(0);
        }
        self.block(3, &b);
    }
}

fn tcp_frame(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(1000, 80, 1, 100)
        .write(&mut v, payload)
        .expect("build");
    v
}

/// Offsets of the end of each record in a little-endian pcap file.
fn pcap_record_ends(bytes: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let caplen =
            u32::from_le_bytes(bytes[at + 8..at + 12].try_into().expect("4 bytes")) as usize;
        at += 16 + caplen;
        ends.push(at);
    }
    assert_eq!(at, bytes.len());
    ends
}

// ---- corpus captures ----

#[test]
fn zeek_ethernet_pcap() {
    let (r, pkts) = open_corpus("zeek/broker-websocket.pcap");
    assert_eq!(pkts.len(), 22);
    assert_eq!(r.format(), Format::Pcap);
    assert!(!r.gzipped() && !r.truncated());
    assert_eq!(r.link_types(), &[linktype::ETHERNET]);
    assert_eq!(r.skipped_packets(), 0);
    assert_eq!(r.bytes_consumed(), 5103);
    // tshark -T fields -e frame.time_epoch: 1705243573.136079000
    assert_eq!(pkts[0].ts, Ts(1_705_243_573_136_079_000));
    for (i, p) in pkts.iter().enumerate() {
        assert_eq!(p.number, i as u64 + 1);
        assert_eq!(p.linktype, linktype::ETHERNET);
        assert!(p.origlen as usize >= p.data.len());
        net::decode(p.linktype, &p.data).expect("every packet is TCP");
    }
    assert!(pkts.windows(2).all(|w| w[0].ts <= w[1].ts));
}

#[test]
fn evsetool_sll_pcapng_nanoseconds() {
    let (r, pkts) = open_corpus("evsetool/cap.pcapng");
    assert_eq!(pkts.len(), 66);
    assert_eq!(r.format(), Format::PcapNg);
    assert_eq!(r.link_types(), &[linktype::LINUX_SLL]);
    // tshark -T fields -e frame.time_epoch -c 1: 1734005682.951486383
    assert_eq!(pkts[0].ts, Ts(1_734_005_682_951_486_383));
    // capinfos: last packet 2.411423842 s later.
    assert_eq!(pkts[65].ts.0 - pkts[0].ts.0, 2_411_423_842);
    for p in &pkts {
        net::decode(p.linktype, &p.data).expect("every packet is TCP");
    }
}

#[test]
fn suricata_sll_pcap() {
    let (r, pkts) = open_corpus("suricata-verify/websocket-ping/input.pcap");
    assert_eq!(pkts.len(), 19);
    assert_eq!(r.link_types(), &[linktype::LINUX_SLL]);
    assert_eq!(pkts[0].ts, Ts(1_394_016_340_965_052_000));
    for p in &pkts {
        net::decode(p.linktype, &p.data).expect("every packet is TCP");
    }
}

#[test]
fn ndn_ipv6_pcap() {
    let (_, pkts) = open_corpus("ndn-tools/ipv6-websocket-segmented.pcap");
    assert_eq!(pkts.len(), 13);
    for p in &pkts {
        let t = net::decode(p.linktype, &p.data).expect("every packet is TCP");
        assert!(t.src.is_ipv6() && t.dst.is_ipv6() && t.ip_id.is_none());
    }
}

#[test]
fn ndpi_vlan_frames_decode_without_error() {
    let (r, pkts) = open_corpus("ndpi/false_positives.pcapng");
    assert_eq!(pkts.len(), 120);
    assert_eq!(r.link_types(), &[linktype::ETHERNET]);
    let tagged = pkts
        .iter()
        .filter(|p| p.data.get(12..14) == Some(&[0x81, 0x00][..]))
        .count();
    assert_eq!(tagged, 114);
    // The WebSocket is inside GTP-U over UDP: nothing here is TCP at the outer layer.
    for p in &pkts {
        assert_eq!(
            net::decode(p.linktype, &p.data).err(),
            Some(Skip::NotTcp),
            "packet {}",
            p.number
        );
    }
}

/// Every corpus capture: packet count as tshark gives it and TCP count as tshark's `tcp && !gtp`.
#[test]
fn whole_corpus_counts() {
    let table: &[(&str, usize, usize)] = &[
        ("arkime/websocket.pcap", 19, 19),
        ("evsetool/cap.pcapng", 66, 66),
        ("ndn-tools/ipv4-websocket-segmented.pcap", 23, 23),
        ("ndn-tools/ipv6-websocket-segmented.pcap", 13, 13),
        ("ndpi/1kxun.pcap", 1723, 1381),
        ("ndpi/false_positives.pcapng", 120, 0),
        ("ndpi/http_origin_different_than_host.pcap", 4, 0),
        ("ndpi/tls_heur__vmess-websocket.pcapng", 100, 96),
        ("ndpi/websocket.pcap", 5, 5),
        ("pcap2har/websocket.pcap", 19, 19),
        ("scapy-pr4579/websocket_compressed_session.pcap", 13, 13),
        ("scapy-pr4579/websocket_invalid_handshakes.pcap", 19, 19),
        ("suricata-verify/http-request-header-multi/input.pcap", 5, 5),
        (
            "suricata-verify/websocket-compressed/example_websocket.pcap",
            27,
            27,
        ),
        ("suricata-verify/websocket-control-frag/input.pcap", 15, 15),
        ("suricata-verify/websocket/basic_websockets.pcap", 21, 21),
        ("zeek/fragmented-http-reply.pcap", 18, 18),
        ("zeek/http-websocket.pcap", 27, 27),
        ("zeek/jupyter-websocket.pcap", 20, 20),
        ("zeek/message-too-big-status.pcap", 14, 14),
        ("zeek/oversized-close-frame.pcapng", 8, 8),
        ("zeek/pr5646/websocket_baseline.pcap", 15, 15),
        ("zeek/pr5646/websocket_compressed.pcap", 15, 15),
        ("zeek/reply-ping-coalesced.pcap", 16, 16),
        ("zeek/reply-ping-separate.pcap", 18, 18),
        ("zeek/two-binary-fragments.pcap", 18, 18),
        ("zeek/wrong-accept-header.pcap", 12, 12),
        ("zeek/wstunnel-http.pcap", 13, 13),
        ("zeek/wstunnel-https.pcap", 124, 124),
        ("zeek/wstunnel-ssh.pcap", 258, 258),
    ];
    for &(rel, n, tcp) in table {
        let (r, pkts) = open_corpus(rel);
        assert!(!r.truncated(), "{rel}");
        assert_eq!(pkts.len(), n, "{rel}");
        let mut got_tcp = 0;
        for p in &pkts {
            match net::decode(p.linktype, &p.data) {
                Ok(_) => got_tcp += 1,
                Err(Skip::Malformed(why)) => panic!("{rel} packet {}: {why}", p.number),
                Err(_) => {}
            }
        }
        assert_eq!(got_tcp, tcp, "{rel}");
    }
}

#[test]
fn arkime_synthetic_mixed_traffic() {
    let (_, pkts) = open_corpus("arkime/arkime_synthetic.pcap");
    assert_eq!(pkts.len(), 918);
    let mut tcp = 0;
    for p in &pkts {
        match net::decode(p.linktype, &p.data) {
            Ok(_) => tcp += 1,
            Err(Skip::Malformed(why)) => panic!("packet {}: {why}", p.number),
            Err(_) => {}
        }
    }
    // tshark: `tcp && !gtp` matches 733 packets.
    assert_eq!(tcp, 733);
}

// ---- gzip ----

#[test]
fn gzip_gives_the_same_packets() {
    for rel in ["zeek/wstunnel-ssh.pcap", "evsetool/cap.pcapng"] {
        let raw = corpus_bytes(rel);
        let (plain, t1) = read_all(raw.clone());
        let mut r = read_bytes(gzip(&raw)).expect("open gz");
        assert!(r.gzipped());
        let gz = drain(&mut r);
        assert_eq!(plain, gz, "{rel}");
        assert!(!t1 && !r.truncated());
        assert_eq!(r.bytes_consumed(), raw.len() as u64);

        // Two members concatenated (as `cat a.gz b.gz` makes) read as one stream.
        let cut = raw.len() / 3;
        let mut multi = gzip(&raw[..cut]);
        multi.extend_from_slice(&gzip(&raw[cut..]));
        let (m, t) = read_all(multi);
        assert_eq!(plain, m, "{rel} multi-member");
        assert!(!t);
    }
}

#[test]
fn gzip_file_on_disk() {
    let path = temp_path("cap.pcapng.gz");
    std::fs::write(&path, gzip(&corpus_bytes("evsetool/cap.pcapng"))).expect("write");
    let mut r = CaptureReader::open(&path).expect("open");
    let n = drain(&mut r).len();
    std::fs::remove_file(&path).ok();
    assert_eq!(n, 66);
    assert!(r.gzipped());
}

#[test]
fn gzip_cut_short_is_truncated() {
    let raw = corpus_bytes("zeek/wstunnel-ssh.pcap");
    let (all, _) = read_all(raw.clone());
    let gz = gzip(&raw);
    let (pkts, truncated) = read_all(gz[..gz.len() / 2].to_vec());
    assert!(truncated);
    assert!(!pkts.is_empty() && pkts.len() < all.len());
    assert_eq!(pkts[..], all[..pkts.len()]);
    // Missing only the gzip trailer: all packets, still flagged.
    let (pkts, truncated) = read_all(gz[..gz.len() - 4].to_vec());
    assert_eq!(pkts.len(), all.len());
    assert!(truncated);
}

// ---- truncation and garbage ----

#[test]
fn pcap_cut_anywhere_returns_earlier_packets() {
    let raw = corpus_bytes("zeek/broker-websocket.pcap");
    let ends = pcap_record_ends(&raw);
    let (all, _) = read_all(raw.clone());
    let mut cuts: Vec<usize> = (24..raw.len()).step_by(37).collect();
    for &e in &ends {
        cuts.extend([e - 1, e, e + 1, e + 8]);
    }
    for cut in cuts.into_iter().filter(|&c| c <= raw.len()) {
        let (pkts, truncated) = read_all(raw[..cut].to_vec());
        let complete = ends.iter().filter(|&&e| e <= cut).count();
        assert_eq!(pkts.len(), complete, "cut at {cut}");
        assert_eq!(pkts[..], all[..complete]);
        let on_boundary = cut == 24 || ends.contains(&cut);
        assert_eq!(truncated, !on_boundary, "cut at {cut}");
    }
}

#[test]
fn truncated_file_on_disk() {
    let raw = corpus_bytes("evsetool/cap.pcapng");
    // Cut in the middle of the last packet block (other blocks may follow it).
    let ends = pcapng_block_ends(&raw);
    let last_epb_end = ends
        .windows(2)
        .filter(|w| raw[w[0]..w[0] + 4] == 6u32.to_le_bytes())
        .map(|w| w[1])
        .next_back()
        .expect("an EPB");
    let path = temp_path("cut.pcapng");
    std::fs::write(&path, &raw[..last_epb_end - 20]).expect("write");
    let mut r = CaptureReader::open(&path).expect("open");
    let pkts = drain(&mut r);
    std::fs::remove_file(&path).ok();
    assert!(r.truncated());
    assert_eq!(pkts.len(), 65);
    assert_eq!(pkts.last().map(|p| p.number), Some(65));
}

/// Offsets of the end of each block in a little-endian pcapng file.
fn pcapng_block_ends(bytes: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        at += u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
        ends.push(at);
    }
    assert_eq!(at, bytes.len());
    ends
}

#[test]
fn pcapng_cut_anywhere_returns_earlier_packets() {
    let raw = corpus_bytes("zeek/oversized-close-frame.pcapng");
    let ends = pcapng_block_ends(&raw);
    let (all, _) = read_all(raw.clone());
    let shb_end = ends[0];
    for cut in 0..shb_end {
        assert!(
            matches!(read_bytes(raw[..cut].to_vec()), Err(Error::NotACapture(_))),
            "cut at {cut}"
        );
    }
    for cut in shb_end..=raw.len() {
        let (pkts, truncated) = read_all(raw[..cut].to_vec());
        assert_eq!(pkts[..], all[..pkts.len()], "cut at {cut}");
        assert_eq!(truncated, !ends.contains(&cut), "cut at {cut}");
    }
}

#[test]
fn garbage_after_a_valid_start_is_truncation() {
    let raw = corpus_bytes("zeek/broker-websocket.pcap");
    let mut bytes = raw.clone();
    let mut x: u32 = 12345;
    for _ in 0..3000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        bytes.push((x >> 16) as u8);
    }
    let (pkts, truncated) = read_all(bytes);
    assert!(truncated);
    assert_eq!(pkts.len(), 22);

    let ng = corpus_bytes("evsetool/cap.pcapng");
    let mut bytes = ng.clone();
    bytes.extend_from_slice(&[0xee; 100]);
    let (pkts, truncated) = read_all(bytes);
    assert!(truncated);
    assert_eq!(pkts.len(), 66);
}

#[test]
fn not_a_capture() {
    for bytes in [
        Vec::new(),
        b"hello world, this is not a pcap file at all".to_vec(),
        vec![0xd4, 0xc3],
        vec![0; 100],
    ] {
        match read_bytes(bytes.clone()) {
            Err(Error::NotACapture(why)) => assert!(!why.is_empty()),
            Err(e) => panic!("{bytes:?}: {e}"),
            Ok(_) => panic!("{bytes:?} opened"),
        }
    }
    // A pcap magic with the rest of the header missing.
    assert!(matches!(
        read_bytes(vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0]),
        Err(Error::NotACapture(_))
    ));
    // gzip of garbage, and gzip that is itself broken.
    assert!(matches!(
        read_bytes(gzip(b"not a capture either")),
        Err(Error::NotACapture(_))
    ));
    assert!(matches!(
        read_bytes(vec![0x1f, 0x8b, 0, 0, 0]),
        Err(Error::NotACapture(_))
    ));
    let empty = temp_path("empty.pcap");
    std::fs::write(&empty, b"").expect("write");
    let r = CaptureReader::open(&empty);
    std::fs::remove_file(&empty).ok();
    assert!(matches!(r, Err(Error::NotACapture(_))));
}

#[test]
fn missing_file_is_open_error() {
    let path = temp_path("does-not-exist.pcap");
    match CaptureReader::open(&path) {
        Err(Error::Open { path: p, .. }) => assert_eq!(p, path),
        other => panic!("{:?}", other.err()),
    }
}

#[test]
fn unsupported_first_link_type() {
    let bytes = pcap_header(0xa1b2_c3d4, false, 147);
    assert!(matches!(
        read_bytes(bytes),
        Err(Error::UnsupportedLinkType(147))
    ));
    let mut ng = Ng::new();
    ng.shb(false);
    ng.idb(147, None, None);
    ng.idb(1, None, None);
    assert!(matches!(
        read_bytes(ng.out),
        Err(Error::UnsupportedLinkType(147))
    ));
}

// ---- pcap variants ----

#[test]
fn pcap_byte_orders_and_precisions() {
    let frame = tcp_frame(b"data");
    for (magic, be, frac, want) in [
        (0xa1b2_c3d4u32, false, 123_456u32, 123_456_000i64),
        (0xa1b2_c3d4, true, 123_456, 123_456_000),
        (0xa1b2_3c4d, false, 123_456_789, 123_456_789),
        (0xa1b2_3c4d, true, 123_456_789, 123_456_789),
    ] {
        let mut b = pcap_header(magic, be, linktype::ETHERNET);
        b.extend(pcap_record(
            be,
            1_700_000_000,
            frac,
            &frame,
            frame.len() as u32,
        ));
        b.extend(pcap_record(be, 1_700_000_001, 0, &frame[..40], 1500));
        let (pkts, truncated) = read_all(b);
        assert!(!truncated);
        assert_eq!(pkts.len(), 2);
        assert_eq!(
            pkts[0].ts,
            Ts(1_700_000_000_000_000_000 + want),
            "magic {magic:x} be {be}"
        );
        assert_eq!(pkts[0].data, frame);
        assert_eq!((pkts[1].data.len(), pkts[1].origlen), (40, 1500));
    }
}

#[test]
fn modified_pcap() {
    let frame = tcp_frame(b"kuznetsov");
    let mut b = pcap_header(0xa1b2_cd34, false, linktype::ETHERNET);
    for i in 0..3u32 {
        let mut rec = pcap_record(false, 100 + i, 5, &frame, frame.len() as u32);
        // The modified format adds ifindex, protocol, packet type and padding after the header.
        rec.splice(16..16, [1, 0, 0, 0, 0, 8, 0, 0]);
        b.extend(rec);
    }
    let (pkts, truncated) = read_all(b);
    assert!(!truncated);
    assert_eq!(pkts.len(), 3);
    assert_eq!(pkts[2].ts, Ts(102_000_005_000));
    assert_eq!(pkts[2].data, frame);
}

#[test]
fn pcap_fcs_bits_in_link_type_are_ignored() {
    let frame = tcp_frame(b"x");
    let mut b = pcap_header(0xa1b2_c3d4, false, 0x1400_0001);
    b.extend(pcap_record(false, 1, 0, &frame, frame.len() as u32));
    let mut r = read_bytes(b).expect("open");
    assert_eq!(r.link_types(), &[linktype::ETHERNET]);
    assert_eq!(drain(&mut r).len(), 1);
}

#[test]
fn empty_pcap_has_no_packets() {
    let (pkts, truncated) = read_all(pcap_header(0xa1b2_c3d4, false, 1));
    assert!(pkts.is_empty() && !truncated);
}

// ---- pcapng variants ----

#[test]
fn pcapng_interfaces_sections_and_resolutions() {
    let frame = tcp_frame(b"ng");
    let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&frame[14..]);
    let mut ng = Ng::new();
    ng.shb(false);
    ng.idb(1, None, None); // default µs
    ng.idb(147, Some(9), None); // unsupported
    ng.idb(113, Some(0x80 | 20), Some(1_000)); // 2^-20 s units, +1000 s
    ng.idb(1, Some(12), Some(-5)); // picoseconds, -5 s
    ng.epb(0, 1_700_000_000_123_456, &frame, frame.len() as u32); // #1
    ng.epb(1, 7, &frame, frame.len() as u32); // #2 skipped
    ng.epb(2, (5u64 << 20) | (1 << 19), &sll, sll.len() as u32); // #3: 5.5 s
    ng.epb(3, 10_000_000_000_123, &frame[..30], 300); // #4: 10.000000000123 s
    ng.spb(&frame); // #5: SPB on interface 0
    ng.block(5, &[0; 12]); // an interface statistics block to ignore
    ng.block(0x0000_0123, &[1, 2, 3, 4]); // a block type nobody knows, to ignore
    ng.epb(9, 0, &frame, frame.len() as u32); // #6: no such interface: skipped
    // A second, big-endian section whose interface 0 is SLL.
    ng.shb(true);
    ng.idb(113, Some(3), Some(10));
    ng.epb(0, 2_500, &sll, sll.len() as u32); // #7: 2.5 s
    ng.spb(&sll); // #8
    let mut r = read_bytes(ng.out).expect("open");
    let pkts = drain(&mut r);
    assert!(!r.truncated());
    assert_eq!(r.link_types(), &[1, 147, 113]);
    assert_eq!(r.skipped_packets(), 2);
    let numbers: Vec<u64> = pkts.iter().map(|p| p.number).collect();
    assert_eq!(numbers, [1, 3, 4, 5, 7, 8]);
    let ts: Vec<i64> = pkts.iter().map(|p| p.ts.0).collect();
    assert_eq!(
        ts,
        [
            1_700_000_000_123_456_000,
            1_005_500_000_000,
            5_000_000_000,
            5_000_000_000,
            12_500_000_000,
            12_500_000_000
        ]
    );
    let lts: Vec<u32> = pkts.iter().map(|p| p.linktype).collect();
    assert_eq!(lts, [1, 113, 1, 1, 113, 113]);
    assert_eq!((pkts[2].data.len(), pkts[2].origlen), (30, 300));
    assert_eq!(pkts[3].data, frame, "SPB data without padding");
    for p in &pkts {
        if p.origlen as usize == p.data.len() {
            net::decode(p.linktype, &p.data).expect("tcp");
        }
    }
}

#[test]
fn ts_scales() {
    assert_eq!(TsScale::from_tsresol(6).to_ns(1_500_000), 1_500_000_000);
    assert_eq!(TsScale::from_tsresol(9).to_ns(7), 7);
    assert_eq!(TsScale::from_tsresol(0).to_ns(3), 3_000_000_000);
    assert_eq!(TsScale::from_tsresol(12).to_ns(1_234_567), 1_234);
    assert_eq!(TsScale::from_tsresol(0x80 | 10).to_ns(1024), 1_000_000_000);
    assert_eq!(TsScale::from_tsresol(0x80).to_ns(2), 2_000_000_000);
    assert_eq!(TsScale::from_tsresol(127).to_ns(u64::MAX), 0);
    assert_eq!(TsScale::from_tsresol(0xff).to_ns(u64::MAX), 0);
}

// ---- buffer management ----

#[test]
fn block_larger_than_the_buffer_grows_it() {
    let big = vec![0xabu8; (source::INITIAL_BUFFER * 5) / 4];
    let small = tcp_frame(b"after");
    let mut b = pcap_header(0xa1b2_c3d4, false, 1);
    b.extend(pcap_record(false, 1, 0, &small, small.len() as u32));
    b.extend(pcap_record(false, 2, 0, &big, big.len() as u32));
    b.extend(pcap_record(false, 3, 0, &small, small.len() as u32));
    let (pkts, truncated) = read_all(b);
    assert!(!truncated);
    assert_eq!(pkts.len(), 3);
    assert_eq!(pkts[1].data.len(), big.len());
    assert_eq!(pkts[2].data, small);

    let mut ng = Ng::new();
    ng.shb(false);
    ng.idb(1, None, None);
    ng.epb(0, 1, &big, big.len() as u32);
    ng.epb(0, 2, &small, small.len() as u32);
    let (pkts, truncated) = read_all(ng.out);
    assert!(!truncated);
    assert_eq!(pkts.len(), 2);
    assert_eq!(pkts[0].data.len(), big.len());
}

#[test]
fn absurd_block_sizes() {
    let small = tcp_frame(b"x");
    // A pcapng packet block declaring 100 MiB is a real block the reader will not hold.
    let mut ng = Ng::new();
    ng.shb(false);
    ng.idb(1, None, None);
    ng.epb(0, 1, &small, small.len() as u32);
    let mut bytes = ng.out;
    bytes.extend_from_slice(&6u32.to_le_bytes());
    bytes.extend_from_slice(&(100u32 << 20).to_le_bytes());
    bytes.resize(bytes.len() + source::INITIAL_BUFFER + 100, 0);
    let mut r = read_bytes(bytes).expect("open");
    assert!(r.next_packet().expect("first").is_some());
    assert!(matches!(r.next_packet(), Err(Error::BlockTooLarge(n)) if n == 100 << 20));

    // A pcap record claiming 100 MiB is garbage: stop, truncated.
    let mut b = pcap_header(0xa1b2_c3d4, false, 1);
    b.extend(pcap_record(false, 1, 0, &small, small.len() as u32));
    b.extend(
        pcap_record(false, 2, 0, &[], 100 << 20)[..8]
            .iter()
            .copied(),
    );
    b.extend_from_slice(&(100u32 << 20).to_le_bytes());
    b.extend_from_slice(&(100u32 << 20).to_le_bytes());
    b.resize(b.len() + source::INITIAL_BUFFER + 100, 0);
    let (pkts, truncated) = read_all(b);
    assert_eq!(pkts.len(), 1);
    assert!(truncated);
}

#[test]
fn block_whose_insides_overrun_it_is_corruption() {
    let small = tcp_frame(b"x");
    let mut ng = Ng::new();
    ng.shb(false);
    ng.idb(1, None, None);
    ng.epb(0, 1, &small, small.len() as u32);
    let good = ng.out.len();
    ng.epb(0, 2, &small, small.len() as u32);
    // Make the second EPB's caplen claim far more than its block holds.
    ng.out[good + 20..good + 24].copy_from_slice(&100_000u32.to_le_bytes());
    for _ in 0..2000 {
        ng.epb(0, 3, &small, small.len() as u32);
    }
    let (pkts, truncated) = read_all(ng.out);
    assert_eq!(pkts.len(), 1);
    assert!(truncated);
}

/// Hands out the data a few bytes at a time, with interruptions, like a slow pipe.
struct Trickle {
    data: Vec<u8>,
    at: usize,
    calls: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.calls.is_multiple_of(5) {
            return Err(io::Error::from(io::ErrorKind::Interrupted));
        }
        let n = (self.calls % 7 + 1)
            .min(buf.len())
            .min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[test]
fn slow_reader_gives_the_same_packets() {
    for rel in ["zeek/broker-websocket.pcap", "evsetool/cap.pcapng"] {
        let raw = corpus_bytes(rel);
        let (want, _) = read_all(raw.clone());
        let mut r = CaptureReader::from_reader(Box::new(Trickle {
            data: raw.clone(),
            at: 0,
            calls: 0,
        }))
        .expect("open");
        assert_eq!(drain(&mut r), want, "{rel}");
        assert!(!r.truncated());
        let mut r = CaptureReader::from_reader(Box::new(Trickle {
            data: gzip(&raw),
            at: 0,
            calls: 0,
        }))
        .expect("open");
        assert_eq!(drain(&mut r), want, "{rel} gz");
    }
}

/// Returns its data, then fails.
struct Failing {
    data: Cursor<Vec<u8>>,
}

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.data.read(buf)? {
            0 => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "disk on fire",
            )),
            n => Ok(n),
        }
    }
}

#[test]
fn read_errors_are_reported() {
    let raw = corpus_bytes("zeek/broker-websocket.pcap");
    let mut r = CaptureReader::from_reader(Box::new(Failing {
        data: Cursor::new(raw[..1000].to_vec()),
    }))
    .expect("the start reads fine");
    let mut n = 0;
    let err = loop {
        match r.next_packet() {
            Ok(Some(_)) => n += 1,
            Ok(None) => panic!("a read error is not the end"),
            Err(e) => break e,
        }
    };
    assert!(n > 0);
    assert!(
        matches!(err, Error::Io(ref e) if e.kind() == io::ErrorKind::PermissionDenied),
        "{err}"
    );
    let gz = gzip(&raw);
    let r = CaptureReader::from_reader(Box::new(Failing {
        data: Cursor::new(gz[..10].to_vec()),
    }));
    assert!(matches!(r, Err(Error::Io(_))));
    let r = CaptureReader::from_reader(Box::new(Failing {
        data: Cursor::new(Vec::new()),
    }));
    assert!(matches!(r, Err(Error::Io(_))));
}

/// The gzip stream is decompressed on a thread of its own: a source failing in the middle still
/// gives every packet decompressed before the failure, then the source's own error.
#[test]
fn gzip_read_errors_mid_stream_are_reported() {
    let raw = corpus_bytes("zeek/broker-websocket.pcap");
    let (all, _) = read_all(raw.clone());
    let gz = gzip(&raw);
    let mut r = CaptureReader::from_reader(Box::new(Failing {
        data: Cursor::new(gz[..gz.len() / 2].to_vec()),
    }))
    .expect("the start reads fine");
    let mut got = Vec::new();
    let err = loop {
        match r.next_packet() {
            Ok(Some(p)) => got.push(p.data.to_vec()),
            Ok(None) => panic!("a read error is not the end"),
            Err(e) => break e,
        }
    };
    assert!(
        !got.is_empty() && got.len() < all.len(),
        "{} of {}",
        got.len(),
        all.len()
    );
    let before: Vec<Vec<u8>> = all.iter().take(got.len()).map(|p| p.data.clone()).collect();
    assert_eq!(got, before);
    assert!(
        matches!(err, Error::Io(ref e) if e.kind() == io::ErrorKind::PermissionDenied),
        "{err}"
    );
}

#[test]
fn bytes_consumed_tracks_progress() {
    let raw = corpus_bytes("zeek/broker-websocket.pcap");
    let ends = pcap_record_ends(&raw);
    let mut r = read_bytes(raw).expect("open");
    let mut i = 0;
    while r.next_packet().expect("next").is_some() {
        assert_eq!(r.bytes_consumed(), ends[i] as u64);
        i += 1;
    }
}
