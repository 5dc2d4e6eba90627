//! Hostile captures, generated here deterministically into temporary files: broken file
//! structure, lying headers, floods, bombs and terminal escapes. Each hostile part is mixed with
//! the real connection of samples/node-basic.pcap, which must still be reported exactly as its
//! peers saw it. The binary runs under an address-space limit and a time limit: a case that
//! panics, hangs or exhausts memory fails.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use etherparse::PacketBuilder;
use flate2::{Compress, Compression, FlushCompress};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use wsinspect::http::accept_for_key;
use wsinspect::ws::frame::{FrameHeader, encode_header, minimal_header_len};
use wsinspect::ws::mask::unmask;

use crate::util::{anomaly_kinds, connections, payload_bytes, sample, temp_path, truth_files};

/// Address space the binary may use (KiB). Generous next to what it needs (tens of MB), far
/// below what a bomb or a flood would take unbounded.
const MEMORY_KIB: u64 = 1 << 20;
/// Wall-clock limit per run, generous for a debug build on a busy 2-core machine.
const TIME_LIMIT: Duration = Duration::from_secs(120);
/// Microseconds since the epoch of the first hostile packet (after node-basic's packets).
const T0: u64 = 1_800_000_000_000_000;

// ---------------------------------------------------------------------------------------------
// Writing captures

/// A classic little-endian microsecond pcap with Ethernet link type.
struct Pcap<W: Write> {
    out: W,
}

impl<W: Write> Pcap<W> {
    fn new(mut out: W) -> Pcap<W> {
        out.write_all(&global_header()).expect("write");
        Pcap { out }
    }

    fn record(&mut self, ts_us: u64, data: &[u8]) {
        self.record_with(ts_us, data, data.len() as u32, data.len() as u32);
    }

    /// A record whose header may lie about the captured (`caplen`) and original length.
    fn record_with(&mut self, ts_us: u64, data: &[u8], caplen: u32, origlen: u32) {
        let mut h = Vec::with_capacity(16);
        h.extend_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
        h.extend_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
        h.extend_from_slice(&caplen.to_le_bytes());
        h.extend_from_slice(&origlen.to_le_bytes());
        self.out.write_all(&h).expect("write");
        self.out.write_all(data).expect("write");
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.out.write_all(bytes).expect("write");
    }
}

fn global_header() -> Vec<u8> {
    let mut h = Vec::with_capacity(24);
    h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&262_144u32.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    h
}

/// node-basic.pcap's packets: (timestamp in µs, bytes).
fn good_packets() -> Vec<(u64, Vec<u8>)> {
    let file = std::fs::read(sample("node-basic.pcap")).expect("node-basic.pcap");
    assert_eq!(&file[..4], &0xa1b2_c3d4u32.to_le_bytes());
    assert_eq!(&file[20..24], &1u32.to_le_bytes(), "Ethernet expected");
    let mut out = Vec::new();
    let mut at = 24;
    let word = |i: usize| u32::from_le_bytes([file[i], file[i + 1], file[i + 2], file[i + 3]]);
    while at + 16 <= file.len() {
        let ts = u64::from(word(at)) * 1_000_000 + u64::from(word(at + 4));
        let caplen = word(at + 8) as usize;
        out.push((ts, file[at + 16..at + 16 + caplen].to_vec()));
        at += 16 + caplen;
    }
    out
}

/// One side of a synthetic TCP connection (IPv4 over Ethernet).
struct Flow {
    client: ([u8; 4], u16),
    server: ([u8; 4], u16),
    seq: [u32; 2],
    ts: u64,
}

impl Flow {
    fn new(n: u8, ts: u64) -> Flow {
        Flow {
            client: ([10, 1, 0, n], 40_000 + u16::from(n)),
            server: ([10, 2, 0, 1], 8080),
            seq: [1_000, 900_000],
            ts,
        }
    }

    fn packet(&mut self, c2s: bool, flags: u8, payload: &[u8]) -> (u64, Vec<u8>) {
        let (src, dst) = if c2s {
            (self.client, self.server)
        } else {
            (self.server, self.client)
        };
        let i = usize::from(!c2s);
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src.0, dst.0, 64)
            .tcp(src.1, dst.1, self.seq[i], 65_000);
        let b = if flags & 0x02 != 0 { b.syn() } else { b };
        let b = if flags & 0x10 != 0 {
            b.ack(self.seq[1 - i])
        } else {
            b
        };
        let b = if flags & 0x01 != 0 { b.fin() } else { b };
        let mut out = Vec::with_capacity(payload.len() + 64);
        b.write(&mut out, payload).expect("packet");
        let adv = payload.len() as u32 + u32::from(flags & 0x03 != 0);
        self.seq[i] = self.seq[i].wrapping_add(adv);
        self.ts += 100;
        (self.ts, out)
    }

    fn handshake(&mut self) -> Vec<(u64, Vec<u8>)> {
        vec![
            self.packet(true, 0x02, b""),
            self.packet(false, 0x12, b""),
            self.packet(true, 0x10, b""),
        ]
    }

    /// `bytes` from one side in segments of at most 1448 bytes.
    fn send(&mut self, c2s: bool, bytes: &[u8]) -> Vec<(u64, Vec<u8>)> {
        bytes
            .chunks(1448)
            .map(|c| self.packet(c2s, 0x10, c))
            .collect()
    }

    /// TCP handshake, then an HTTP upgrade with the right accept key; `extra` request headers.
    fn upgrade(&mut self, extra: &[u8], deflate: bool) -> Vec<(u64, Vec<u8>)> {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let ext = if deflate {
            "Sec-WebSocket-Extensions: permessage-deflate\r\n"
        } else {
            ""
        };
        let mut req = format!(
            "GET /hostile HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{ext}"
        )
        .into_bytes();
        req.extend_from_slice(extra);
        req.extend_from_slice(b"\r\n");
        let resp = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n{ext}\r\n",
            accept_for_key(key)
        );
        let mut p = self.handshake();
        p.extend(self.send(true, &req));
        p.extend(self.send(false, resp.as_bytes()));
        p
    }
}

/// A frame (client frames masked).
fn frame(opcode: u8, rsv1: bool, payload: &[u8], masked: bool) -> Vec<u8> {
    let mask = masked.then_some([0x11, 0x22, 0x33, 0x44]);
    let h = FrameHeader {
        fin: true,
        rsv: if rsv1 { 4 } else { 0 },
        opcode,
        mask,
        payload_len: payload.len() as u64,
        header_len: minimal_header_len(payload.len() as u64, masked),
    };
    let mut out = Vec::new();
    encode_header(&h, &mut out);
    let mut p = payload.to_vec();
    if let Some(k) = mask {
        unmask(&mut p, k, 0);
    }
    out.extend(p);
    out
}

/// A frame header claiming `len` payload bytes, written raw (any 64-bit value).
fn raw_header_64(opcode: u8, len: u64) -> Vec<u8> {
    let mut v = vec![0x80 | opcode, 127];
    v.extend_from_slice(&len.to_be_bytes());
    v
}

/// Writes node-basic's packets plus `hostile` (merged by timestamp) to a temporary capture.
fn capture_with(name: &str, hostile: Vec<(u64, Vec<u8>)>) -> PathBuf {
    let mut all = good_packets();
    all.extend(hostile);
    all.sort_by_key(|p| p.0);
    let path = temp_path(name);
    let mut pcap = Pcap::new(BufWriter::new(File::create(&path).expect("create")));
    for (ts, p) in &all {
        pcap.record(*ts, p);
    }
    pcap.out.flush().expect("flush");
    path
}

// ---------------------------------------------------------------------------------------------
// Running and checking

struct Run {
    status: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
    elapsed: Duration,
}

/// Runs the binary under the address-space and time limits.
fn run_limited(args: &[&str]) -> Run {
    let bin = env!("CARGO_BIN_EXE_wsinspect");
    let mut script = format!("ulimit -v {MEMORY_KIB} && exec \"$0\"");
    for i in 0..args.len() {
        script.push_str(&format!(" \"${}\"", i + 1));
    }
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let out_path = temp_path(&format!("out-{}", RUNS.fetch_add(1, Ordering::Relaxed)));
    let out_file = File::create(&out_path).expect("stdout file");
    let start = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(bin)
        .args(args)
        .stdout(out_file)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
            }
            let stdout = std::fs::read(&out_path).unwrap_or_default();
            let _ = std::fs::remove_file(&out_path);
            return Run {
                status: status.code(),
                stdout,
                stderr,
                elapsed: start.elapsed(),
            };
        }
        if start.elapsed() > TIME_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("wsinspect {args:?} ran over {TIME_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `--json --payloads full` on a file that must be analysed (exit 0) and parses it.
fn analyse(path: &Path, extra: &[&str]) -> Value {
    let p = path.to_str().expect("utf-8 path");
    let mut args = vec![p, "--json", "--payloads", "full"];
    args.extend_from_slice(extra);
    let run = run_limited(&args);
    assert_eq!(
        run.status,
        Some(0),
        "{p}: exit {:?}, stderr: {}",
        run.status,
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    serde_json::from_slice(&run.stdout).expect("JSON output")
}

/// node-basic's connection is in `doc` with every message as the peers sent it.
fn good_connection_intact(doc: &Value) {
    let truth = truth_files()
        .into_iter()
        .find(|(name, _)| name == "node-basic")
        .map(|(_, t)| t)
        .expect("node-basic truth");
    let t = &truth["connections"][0];
    let port = t["client_port"].as_u64().expect("port");
    let conns = connections(doc);
    let conn = conns
        .iter()
        .find(|c| c["client"].as_str().unwrap_or_default() == format!("127.0.0.1:{port}"))
        .unwrap_or_else(|| panic!("good connection missing from {doc}"));
    for (side, dir) in [("client", "c2s"), ("server", "s2c")] {
        let want: Vec<(String, u64, String)> = t[side]["sent"]
            .as_array()
            .expect("sent")
            .iter()
            .map(|m| {
                (
                    m["type"].as_str().unwrap_or_default().to_owned(),
                    m["len"].as_u64().unwrap_or_default(),
                    m["sha256"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let got: Vec<(String, u64, String)> = conn["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .filter(|m| m["dir"] == dir)
            .map(|m| {
                (
                    m["type"].as_str().unwrap_or_default().to_owned(),
                    m["len"].as_u64().unwrap_or_default(),
                    hex::encode(Sha256::digest(payload_bytes(m))),
                )
            })
            .collect();
        assert_eq!(got, want, "{dir} messages of the good connection");
    }
    assert!(
        anomaly_kinds(conn).is_empty(),
        "good connection: {:?}",
        anomaly_kinds(conn)
    );
    assert_eq!(conn["diagnosis"]["kind"], "clean_close");
}

/// The connection of `Flow::new(n, ..)`.
fn hostile_conn(doc: &Value, n: u8) -> Value {
    let client = format!("10.1.0.{n}:{}", 40_000 + u16::from(n));
    connections(doc)
        .into_iter()
        .find(|c| c["client"] == client.as_str())
        .unwrap_or_else(|| panic!("no connection from {client}"))
}

// ---------------------------------------------------------------------------------------------
// Unreadable files: a clear error and exit status 2

#[test]
fn unreadable_files_fail_with_a_clear_error() {
    let mut bad_magic = global_header();
    bad_magic[..4].copy_from_slice(b"\x7fELF");
    let short_header = global_header()[..10].to_vec();
    for (name, bytes, says) in [
        ("bad-magic", bad_magic, "not a"),
        ("short-header", short_header, "not a"),
        ("empty", Vec::new(), "not a"),
    ] {
        let path = temp_path(name);
        std::fs::write(&path, &bytes).expect("write");
        let run = run_limited(&[path.to_str().expect("path")]);
        let _ = std::fs::remove_file(&path);
        assert_eq!(run.status, Some(2), "{name}: {}", run.stderr);
        assert!(
            run.stderr.starts_with("wsinspect: ") && run.stderr.to_lowercase().contains(says),
            "{name}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{name}: {}", run.stderr);
    }
}

// ---------------------------------------------------------------------------------------------
// Broken records: analysed up to the damage, the rest counted

#[test]
fn broken_records_leave_the_good_connection_intact() {
    let good = good_packets();
    let mut f = Flow::new(1, T0);
    let syn = f.packet(true, 0x02, b"").1;
    let path = temp_path("records");
    let mut pcap = Pcap::new(BufWriter::new(File::create(&path).expect("create")));
    let t_end = good.last().map(|p| p.0).unwrap_or(0);
    for (i, (ts, p)) in good.iter().enumerate() {
        pcap.record(*ts, p);
        match i {
            // Zero-length packets.
            2 => pcap.record_with(*ts, b"", 0, 0),
            // caplen larger than the wire length.
            4 => pcap.record_with(*ts, &syn, syn.len() as u32, 20),
            // Time going backwards by an hour.
            6 => pcap.record(ts.saturating_sub(3_600_000_000), &syn),
            _ => {}
        }
    }
    // caplen over the snaplen (262144), with the bytes present.
    let big = vec![0u8; 300_000];
    pcap.record_with(t_end + 1, &big, big.len() as u32, big.len() as u32);
    // A record header cut in the middle: the file ends there.
    pcap.raw(&[1, 2, 3, 4, 5, 6, 7]);
    pcap.out.flush().expect("flush");
    drop(pcap);
    let doc = analyse(&path, &[]);
    let _ = std::fs::remove_file(&path);
    good_connection_intact(&doc);
    let cap = &doc["capture"];
    assert_eq!(cap["truncated"], true, "{cap}");
    // Every record but the cut one is read: the good packets, the zero-length one, the SYN
    // whose caplen exceeds its length, the one going back in time and the one over the snaplen.
    assert_eq!(
        cap["packets"].as_u64(),
        Some(good.len() as u64 + 4),
        "{cap}"
    );
    // The zero-length packet is malformed, the zeros over the snaplen are no IP packet.
    assert_eq!(cap["skipped"]["malformed"].as_u64(), Some(1), "{cap}");
    assert_eq!(cap["skipped"]["not_tcp"].as_u64(), Some(1), "{cap}");
    // The last time is the latest seen, not the last record's, when time went backwards.
    assert_eq!(
        cap["last_ts"].as_f64(),
        Some((t_end + 1) as f64 / 1e6),
        "{cap}"
    );
}

#[test]
fn lying_ip_and_tcp_headers_are_counted_and_skipped() {
    let mut hostile = Vec::new();
    let mut f = Flow::new(2, T0);
    for (ts, mut p) in f.handshake() {
        hostile.push((ts, p.clone()));
        // IP total length too short (below the IP header), then too long (past the capture).
        p[16..18].copy_from_slice(&10u16.to_be_bytes());
        hostile.push((ts, p.clone()));
        p[16..18].copy_from_slice(&60_000u16.to_be_bytes());
        hostile.push((ts, p.clone()));
        p[16..18].copy_from_slice(&40u16.to_be_bytes());
        // TCP data offset too small (2 words), then past the packet (15 words).
        p[14 + 20 + 12] = 2 << 4;
        hostile.push((ts, p.clone()));
        p[14 + 20 + 12] = 15 << 4;
        hostile.push((ts, p));
    }
    let path = capture_with("lies", hostile);
    let doc = analyse(&path, &[]);
    let _ = std::fs::remove_file(&path);
    good_connection_intact(&doc);
    let skipped = &doc["capture"]["skipped"];
    // Three packets per handshake packet carry a lie that makes them undecodable.
    assert!(skipped["malformed"].as_u64() >= Some(9), "{skipped}");
}

// ---------------------------------------------------------------------------------------------
// Floods and bombs: caps hit, memory and time bounded, the connection analysed on

#[test]
fn syn_flood_of_a_million_flows_is_bounded_by_the_flow_cap() {
    const FLOWS: u32 = 1_000_000;
    let good = good_packets();
    let path = temp_path("flood");
    let mut pcap = Pcap::new(BufWriter::with_capacity(
        1 << 20,
        File::create(&path).expect("create"),
    ));
    let template = Flow::new(3, T0).packet(true, 0x02, b"").1;
    // The flood is spread evenly between the good packets, so the good flow stays active enough
    // that least-recently-active eviction never picks it.
    let per_gap = FLOWS as usize / good.len() + 1;
    let mut sent = 0u32;
    for (ts, p) in &good {
        pcap.record(*ts, p);
        for _ in 0..per_gap {
            if sent == FLOWS {
                break;
            }
            let mut syn = template.clone();
            // Source address 10.x.y.z and port vary: every SYN is a new flow.
            syn[26..30].copy_from_slice(&(0x0A00_0000 | (sent >> 4)).to_be_bytes());
            syn[34..36].copy_from_slice(&(10_000 + (sent & 0xF) as u16).to_be_bytes());
            pcap.record(*ts, &syn);
            sent += 1;
        }
    }
    pcap.out.flush().expect("flush");
    drop(pcap);
    let doc = analyse(&path, &[]);
    let _ = std::fs::remove_file(&path);
    good_connection_intact(&doc);
    let cap = &doc["capture"];
    assert_eq!(
        cap["tcp_packets"].as_u64(),
        Some(u64::from(FLOWS) + good.len() as u64)
    );
    let evicted = cap["flows_evicted"].as_u64().unwrap_or_default();
    let max_flows = wsinspect::config::Limits::default().max_flows as u64;
    assert!(
        evicted >= u64::from(FLOWS) - max_flows,
        "{evicted} evicted: {cap}"
    );
}

/// Raw DEFLATE of `n` MiB of zeros, sync-flushed, the 00 00 ff ff tail removed.
fn zeros_deflated(mib: usize) -> Vec<u8> {
    let mut c = Compress::new(Compression::best(), false);
    let zeros = vec![0u8; 1 << 20];
    let mut out = Vec::with_capacity(mib * 1100 + 64);
    for i in 0..mib {
        let flush = if i + 1 == mib {
            FlushCompress::Sync
        } else {
            FlushCompress::None
        };
        let mut pos = 0;
        loop {
            out.reserve(64 << 10);
            let before = c.total_in();
            c.compress_vec(&zeros[pos..], &mut out, flush)
                .expect("compress");
            pos += (c.total_in() - before) as usize;
            if pos == zeros.len() && out.len() < out.capacity() {
                break;
            }
        }
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

#[test]
fn deflate_bomb_stops_at_the_bound_and_the_connection_goes_on() {
    let bomb = zeros_deflated(1024);
    assert!(bomb.len() < 1_200_000, "{} bytes", bomb.len());
    let mut f = Flow::new(4, T0);
    let mut hostile = f.upgrade(b"", true);
    hostile.extend(f.send(false, &frame(2, true, &bomb, false)));
    // A later message from a fresh compressor: self-contained, so exact without the window.
    let mut fresh = Compress::new(Compression::default(), false);
    let mut after = Vec::with_capacity(256);
    fresh
        .compress_vec(b"still here", &mut after, FlushCompress::Sync)
        .expect("compress");
    after.truncate(after.len() - 4);
    hostile.extend(f.send(false, &frame(1, true, &after, false)));
    hostile.extend(f.send(true, &frame(1, false, b"client still here", true)));
    let path = capture_with("bomb", hostile);
    let doc = analyse(&path, &["--max-message-bytes", "1048576"]);
    let _ = std::fs::remove_file(&path);
    good_connection_intact(&doc);
    let conn = hostile_conn(&doc, 4);
    let kinds = anomaly_kinds(&conn);
    assert!(
        kinds.contains(&"inflate_bound_exceeded".to_owned()),
        "{kinds:?}"
    );
    assert!(kinds.contains(&"message_too_large".to_owned()), "{kinds:?}");
    let msgs = conn["messages"].as_array().expect("messages");
    assert_eq!(msgs[0]["status"], "truncated");
    let bound = wsinspect::deflate::hard_bound(1 << 20);
    let len = msgs[0]["len"].as_u64().unwrap_or_default();
    assert!(len >= bound && len < 1 << 30, "decoding went to {len}");
    assert_eq!(payload_bytes(&msgs[0]).len(), 1 << 20);
    let texts: Vec<Vec<u8>> = msgs[1..].iter().map(payload_bytes).collect();
    assert_eq!(
        texts,
        [b"still here".to_vec(), b"client still here".to_vec()]
    );
}

#[test]
fn frame_lengths_of_two_to_the_63_and_more() {
    let mut hostile = Vec::new();
    // 2^63 and 2^64-1 have the top bit set (RFC 6455 §5.2 forbids it); 2^63-1 is legal but far
    // over the frame cap, and swallows the rest of its direction.
    for (n, len) in [(5u8, 1u64 << 63), (6, u64::MAX), (7, (1 << 63) - 1)] {
        let mut f = Flow::new(n, T0 + u64::from(n) * 1_000_000);
        hostile.extend(f.upgrade(b"", false));
        hostile.extend(f.send(false, &frame(1, false, b"before", false)));
        hostile.extend(f.send(false, &raw_header_64(2, len)));
        for _ in 0..10 {
            hostile.extend(f.send(false, &frame(1, false, b"after", false)));
        }
        hostile.extend(f.send(true, &frame(1, false, b"client side", true)));
    }
    let path = capture_with("lengths", hostile);
    let doc = analyse(&path, &[]);
    let _ = std::fs::remove_file(&path);
    good_connection_intact(&doc);
    for n in [5, 6] {
        let conn = hostile_conn(&doc, n);
        assert!(
            anomaly_kinds(&conn).contains(&"invalid_length".to_owned()),
            "{n}: {:?}",
            anomaly_kinds(&conn)
        );
        let texts: Vec<String> = conn["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| String::from_utf8_lossy(&payload_bytes(m)).into_owned())
            .collect();
        // Frames are found again after the bad header, and the other direction is untouched.
        assert!(texts.contains(&"after".to_owned()), "{n}: {texts:?}");
        assert!(texts.contains(&"client side".to_owned()), "{n}: {texts:?}");
    }
    let conn = hostile_conn(&doc, 7);
    assert!(anomaly_kinds(&conn).contains(&"frame_too_large".to_owned()));
    let texts: Vec<Vec<u8>> = conn["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["dir"] == "c2s")
        .map(payload_bytes)
        .collect();
    assert_eq!(texts, [b"client side".to_vec()]);
}

#[test]
fn megabyte_http_header_is_capped_without_rescanning() {
    let mut f = Flow::new(8, T0);
    let mut hostile = f.handshake();
    let mut req = b"GET /big HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Big: "
        .to_vec();
    req.resize(req.len() + (1 << 20), b'a');
    req.extend_from_slice(b"\r\n\r\n");
    // Small segments: each one would make a naive parser rescan the head from its start.
    for c in req.chunks(200) {
        hostile.push(f.packet(true, 0x10, c));
    }
    let path = capture_with("header", hostile);
    let start = Instant::now();
    let doc = analyse(&path, &[]);
    let _ = std::fs::remove_file(&path);
    good_connection_intact(&doc);
    let conn = hostile_conn(&doc, 8);
    assert!(
        anomaly_kinds(&conn).contains(&"http_header_too_large".to_owned()),
        "{:?}",
        anomaly_kinds(&conn)
    );
    assert!(start.elapsed() < TIME_LIMIT);
}

// ---------------------------------------------------------------------------------------------
// Captured text never drives the terminal; invalid UTF-8 anywhere is reported, not fatal

#[test]
fn escapes_and_invalid_utf8_everywhere() {
    let esc = "\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}31m";
    let mut f = Flow::new(9, T0);
    // Header values with escapes and with bytes that are not UTF-8.
    // An escape in a header makes the head invalid HTTP: reported on its connection.
    let mut g = Flow::new(10, T0);
    let mut hostile = g.upgrade(format!("User-Agent: x{esc}\r\n").as_bytes(), false);
    // C1 controls and bytes that are not UTF-8 are legal in header values.
    let mut extra = "User-Agent: x\u{9b}31m\u{85}\r\n".to_string().into_bytes();
    extra.extend_from_slice(b"X-Raw: \xff\xfe\xc3\x28\r\n");
    hostile.extend(f.upgrade(&extra, false));
    hostile.extend(f.send(false, &frame(1, false, esc.as_bytes(), false)));
    hostile.extend(f.send(false, &frame(1, false, b"bad \xc3\x28 utf8", false)));
    hostile.extend(f.send(true, &frame(1, false, b"\xff\xfe\xfd", true)));
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"\xff bye \x1b[31m");
    hostile.extend(f.send(true, &frame(8, false, &close, true)));
    let mut close2 = 1000u16.to_be_bytes().to_vec();
    close2.extend_from_slice(esc.as_bytes());
    hostile.extend(f.send(false, &frame(8, false, &close2, false)));
    hostile.push(f.packet(true, 0x11, b""));
    hostile.push(f.packet(false, 0x11, b""));
    let path = capture_with("escapes", hostile);
    let p = path.to_str().expect("path").to_owned();

    let doc = analyse(&path, &[]);
    good_connection_intact(&doc);
    let conn = hostile_conn(&doc, 9);
    let kinds = anomaly_kinds(&conn);
    for k in ["invalid_utf8_text", "invalid_utf8_close_reason"] {
        assert!(kinds.contains(&k.to_owned()), "{k}: {kinds:?}");
    }
    let refused = hostile_conn(&doc, 10);
    assert_eq!(anomaly_kinds(&refused), ["http_invalid"]);
    let text = run_limited(&[&p]);
    let ndjson = run_limited(&[&p, "--ndjson", "--payloads", "full"]);
    let _ = std::fs::remove_file(&path);
    for (what, run) in [("text", &text), ("ndjson", &ndjson)] {
        assert_eq!(run.status, Some(0), "{what}: {}", run.stderr);
        let out = String::from_utf8(run.stdout.clone()).expect("output is UTF-8");
        // No control character of the capture's, C0 or C1, reaches the output raw.
        let bad: Vec<char> = out
            .chars()
            .filter(|&c| c.is_control() && c != '\n')
            .collect();
        assert!(bad.is_empty(), "{what} output carries {bad:?}");
    }
    // The text output names the connection and its close.
    let out = String::from_utf8_lossy(&text.stdout);
    assert!(out.contains("10.1.0.9"), "{out}");
    assert!(text.elapsed < TIME_LIMIT);
}

// ---------------------------------------------------------------------------------------------
// Memory held for open connections

#[test]
fn held_payloads_are_capped_and_released_when_a_connection_ends() {
    let good_start = good_packets()[0].0;
    // A connection well before the good one: 100 messages of 2000 bytes, then FIN both ways.
    let mut f = Flow::new(11, good_start - 100_000_000);
    let mut hostile = f.upgrade(b"", false);
    for i in 0..100u8 {
        hostile.extend(f.send(false, &frame(1, false, &[b'a' + i % 26; 2000], false)));
    }
    hostile.push(f.packet(true, 0x11, b""));
    hostile.push(f.packet(false, 0x11, b""));
    let path = capture_with("held", hostile);
    let p = path.to_str().expect("path");
    // The good connection holds some 96 kB of payloads (its binary ones as base64).
    let doc = analyse(&path, &["--max-held-payload-bytes", "120000"]);
    let ndjson = run_limited(&[
        p,
        "--ndjson",
        "--payloads",
        "full",
        "--max-held-payload-bytes",
        "120000",
    ]);
    let _ = std::fs::remove_file(&path);

    // The capped connection ended (and let go of its payloads) before the good one began.
    good_connection_intact(&doc);
    let conn = hostile_conn(&doc, 11);
    assert_eq!(anomaly_kinds(&conn), ["payload_memory_cap"]);
    let msgs = conn["messages"].as_array().expect("messages");
    assert_eq!(msgs.len(), 100);
    let with_payload = msgs.iter().filter(|m| m["payload"].is_string()).count();
    assert_eq!(with_payload, 60, "120 000 bytes hold 60 payloads of 2000");
    assert!(msgs.iter().all(|m| m["len"] == 2000));

    // NDJSON holds nothing, so nothing is dropped.
    assert_eq!(ndjson.status, Some(0), "{}", ndjson.stderr);
    let out = String::from_utf8_lossy(&ndjson.stdout);
    assert!(!out.contains("payload_memory_cap"));
    let full = out
        .lines()
        .filter(|l| l.contains("\"event\":\"message\"") && l.contains("\"payload\":"))
        .count();
    assert_eq!(full, 100 + 8, "messages with payload");
}

#[test]
fn bytes_behind_an_unanswered_upgrade_are_capped() {
    // Sent after the request but never answered: held until the cap, then decoded as frames.
    let mut g = Flow::new(12, T0);
    let mut hostile = g.handshake();
    hostile.extend(g.send(
        true,
        b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    ));
    for _ in 0..100 {
        hostile.extend(g.send(true, &frame(2, false, &[7; 1000], true)));
    }
    let path = capture_with("early", hostile);
    let doc = analyse(&path, &[]);
    let _ = std::fs::remove_file(&path);
    good_connection_intact(&doc);
    let conn = hostile_conn(&doc, 12);
    assert!(
        anomaly_kinds(&conn).contains(&"early_data_too_large".to_owned()),
        "{:?}",
        anomaly_kinds(&conn)
    );
    let msgs = conn["messages"].as_array().expect("messages");
    assert_eq!(msgs.len(), 100, "every frame decoded");
    assert!(msgs.iter().all(|m| payload_bytes(m) == [7; 1000]));
}
