//! Writes a deterministic, realistic classic pcap of WebSocket traffic for the benchmark.
//!
//! ```text
//! cargo run --release --example gen_capture -- --size 1G --conns 1000 --out bench-data/mixed-1G.pcap \
//!     [--seed N] [--compressed-share 0.5] [--max-message BYTES]
//! ```
//!
//! The capture looks like the backend side of a busy TLS-terminating proxy: `--conns` WebSocket
//! connections open at once (clients 10.x.y.z, servers 10.0.0.1-3 on ports 8080 and 80), their
//! packets interleaved in time; a connection that ends is replaced by a new one. Every connection
//! has a TCP three-way handshake, an HTTP/1.1 upgrade with a correct `Sec-WebSocket-Accept`, then
//! chat, telemetry, market-data or binary-stream messages (client frames masked, server frames
//! not), pings answered by pongs, and a close handshake with FIN/ACK both ways (some end with RST,
//! a few stay open). About `--compressed-share` of the connections negotiate permessage-deflate;
//! most of those keep their compression context across messages, like real peers. TCP segments
//! carry at most 1448 bytes (MSS 1460 minus the timestamp option), sequence and acknowledgment
//! numbers are consistent, and the receiver acknowledges every second segment or after a delay.
//!
//! Plain WebSocket on port 443 would not be realistic (443 carries TLS, and tshark decodes it as
//! TLS, so the comparison would be meaningless); the backend leg of a proxy on 8080/80 is.
//!
//! Same seed and options give the same file, on any machine: the work is split into a fixed
//! number of shards (from `--conns` only), each on its own thread with its own random stream, and
//! their packets are merged by timestamp. The file is streamed to disk; memory grows with the
//! number of open connections, not the file size (about 0.55 MB per connection that compresses
//! with context takeover, for the two compressors' state: some 350 MB for `--conns 1000`).

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Instant;

use base64::Engine as _;
use etherparse::{IpHeaders, IpNumber, Ipv4Header, PacketBuilder, TcpOptionElement};
use flate2::{Compress, Compression, FlushCompress};
use sha1::{Digest as _, Sha1};

/// Seconds since the Unix epoch of the first packet (2023-11-14 22:13:20 UTC).
const EPOCH_S: u64 = 1_700_000_000;
/// Largest TCP payload per segment: MSS 1460 minus the 12 bytes of the timestamp option.
const MSS: usize = 1448;
const C2S: usize = 0;
const S2C: usize = 1;

const FIN: u8 = 1;
const SYN: u8 = 2;
const RST: u8 = 4;
const ACK: u8 = 16;

const OP_CONT: u8 = 0;
const OP_TEXT: u8 = 1;
const OP_BINARY: u8 = 2;
const OP_CLOSE: u8 = 8;
const OP_PING: u8 = 9;
const OP_PONG: u8 = 10;

// ---------------------------------------------------------------------------------------------
// Command line

struct Args {
    size: u64,
    conns: usize,
    out: PathBuf,
    seed: u64,
    compressed_share: f64,
    max_message: usize,
}

const USAGE: &str =
    "usage: gen_capture --size SIZE --out FILE [--conns N] [--seed N] [--compressed-share F]

  --size SIZE             target file size; K, M, G suffixes are powers of 1024 (e.g. 100M, 1G)
  --out FILE              the pcap to write (its directory is created)
  --conns N               connections open at the same time (default 100)
  --seed N                random seed; same seed and options give the same file (default 1)
  --compressed-share F    share of connections negotiating permessage-deflate (default 0.5)
  --max-message BYTES     draw a message again while it is larger than this (default: no limit),
                          for captures of small messages only; K, M suffixes as for --size";

fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (num, mult) = match t.chars().last()? {
        'k' | 'K' => (&t[..t.len() - 1], 1u64 << 10),
        'm' | 'M' => (&t[..t.len() - 1], 1 << 20),
        'g' | 'G' => (&t[..t.len() - 1], 1 << 30),
        't' | 'T' => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let v: f64 = num.trim().parse().ok()?;
    (v > 0.0).then_some((v * mult as f64) as u64)
}

fn parse_args() -> Result<Args, String> {
    let mut size = None;
    let mut out = None;
    let mut conns = 100usize;
    let mut seed = 1u64;
    let mut share = 0.5f64;
    let mut max_message = usize::MAX;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        if key == "-h" || key == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or(format!("{key} needs a value"))
        };
        match key.as_str() {
            "--size" => {
                let v = value()?;
                size = Some(parse_size(&v).ok_or(format!("bad --size {v:?}"))?);
            }
            "--out" | "-o" => out = Some(PathBuf::from(value()?)),
            "--conns" => {
                let v = value()?;
                conns = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or(format!("bad --conns {v:?}"))?;
            }
            "--seed" => {
                let v = value()?;
                seed = v.parse().map_err(|_| format!("bad --seed {v:?}"))?;
            }
            "--compressed-share" => {
                let v = value()?;
                share = v
                    .parse()
                    .ok()
                    .filter(|f| (0.0..=1.0).contains(f))
                    .ok_or(format!("bad --compressed-share {v:?}"))?;
            }
            "--max-message" => {
                let v = value()?;
                max_message = parse_size(&v)
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|&n| n >= 64)
                    .ok_or(format!("bad --max-message {v:?} (64 bytes at least)"))?;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Args {
        size: size.ok_or("--size is required")?,
        conns,
        out: out.ok_or("--out is required")?,
        seed,
        compressed_share: share,
        max_message,
    })
}

// ---------------------------------------------------------------------------------------------
// pcap output
//
// The traffic is made by a fixed number of shards (derived from --conns only, so the file does
// not depend on the machine), each with its own connections, random stream and clock, on its own
// thread. Each shard hands finished pcap records in chunks to the main thread, which merges them
// by timestamp into one file: packets of all shards interleave in time as on a busy proxy.

/// Finished pcap records of one shard, with each record's timestamp and end offset.
struct Chunk {
    data: Vec<u8>,
    marks: Vec<(u64, usize)>,
}

const CHUNK_BYTES: usize = 1 << 20;

impl Chunk {
    fn new() -> Chunk {
        Chunk {
            data: Vec::with_capacity(CHUNK_BYTES + 70_000),
            marks: Vec::with_capacity(4096),
        }
    }
}

struct Out {
    chunk: Chunk,
    tx: SyncSender<Chunk>,
    bytes: u64,
    packets: u64,
}

impl Out {
    fn send(&mut self) -> io::Result<()> {
        let full = std::mem::replace(&mut self.chunk, Chunk::new());
        self.tx
            .send(full)
            .map_err(|_| io::Error::other("writer thread stopped"))
    }
}

fn pcap_header(w: &mut impl Write) -> io::Result<()> {
    // Classic pcap, little endian, microseconds, version 2.4, Ethernet.
    w.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    w.write_all(&2u16.to_le_bytes())?;
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&0i32.to_le_bytes())?; // thiszone
    w.write_all(&0u32.to_le_bytes())?; // sigfigs
    w.write_all(&262_144u32.to_le_bytes())?; // snaplen
    w.write_all(&1u32.to_le_bytes()) // LINKTYPE_ETHERNET
}

// ---------------------------------------------------------------------------------------------
// WebSocket helpers

fn accept_for(key: &str) -> String {
    let d = Sha1::new()
        .chain_update(key.as_bytes())
        .chain_update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
        .finalize();
    base64::engine::general_purpose::STANDARD.encode(d)
}

/// Appends one frame; `mask` is the client's masking key (RFC 6455 §5.3).
fn put_frame(
    out: &mut Vec<u8>,
    fin: bool,
    rsv1: bool,
    opcode: u8,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    out.push(((fin as u8) << 7) | ((rsv1 as u8) << 6) | opcode);
    let m = if mask.is_some() { 0x80 } else { 0 };
    let n = payload.len();
    if n < 126 {
        out.push(m | n as u8);
    } else if n <= 0xffff {
        out.push(m | 126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    match mask {
        Some(k) => {
            out.extend_from_slice(&k);
            let start = out.len();
            out.extend_from_slice(payload);
            let k64 = u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]]);
            let body = &mut out[start..];
            let mut chunks = body.chunks_exact_mut(8);
            for c in &mut chunks {
                let v = u64::from_ne_bytes(c.try_into().unwrap()) ^ k64;
                c.copy_from_slice(&v.to_ne_bytes());
            }
            for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
                *b ^= k[i & 3];
            }
        }
        None => out.extend_from_slice(payload),
    }
}

/// Compresses one message with a sync flush and strips the trailing `00 00 ff ff` (RFC 7692 §7.2.1).
fn deflate_message(c: &mut Compress, input: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(input.len() + input.len() / 8 + 128);
    let in0 = c.total_in();
    loop {
        let done = (c.total_in() - in0) as usize;
        c.compress_vec(&input[done..], out, FlushCompress::Sync)
            .expect("deflate failed");
        let done = (c.total_in() - in0) as usize;
        if done == input.len() && out.len() < out.capacity() {
            break;
        }
        out.reserve(out.capacity().max(256));
    }
    assert!(
        out.ends_with(&[0, 0, 0xff, 0xff]),
        "sync flush did not end with an empty stored block"
    );
    out.truncate(out.len() - 4);
}

// ---------------------------------------------------------------------------------------------
// Content

const WORDS: &[&str] = &[
    "the",
    "a",
    "is",
    "to",
    "and",
    "of",
    "in",
    "it",
    "you",
    "that",
    "for",
    "on",
    "with",
    "this",
    "we",
    "be",
    "are",
    "have",
    "not",
    "at",
    "can",
    "just",
    "will",
    "do",
    "so",
    "deploy",
    "build",
    "release",
    "meeting",
    "tomorrow",
    "today",
    "thanks",
    "please",
    "check",
    "ticket",
    "review",
    "merge",
    "branch",
    "server",
    "latency",
    "looks",
    "good",
    "fixed",
    "broken",
    "again",
    "issue",
    "customer",
    "dashboard",
    "lunch",
    "coffee",
    "ok",
    "sure",
    "maybe",
    "later",
    "now",
    "here",
    "there",
    "update",
    "logs",
    "error",
    "timeout",
    "retry",
    "cache",
    "database",
    "query",
];
const NAMES: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yasmin",
];
const CHANNELS: &[&str] = &[
    "general",
    "random",
    "engineering",
    "support",
    "ops-alerts",
    "design",
    "sales",
];
const SYMBOLS: &[&str] = &[
    "BTC-USD", "ETH-USD", "SOL-USD", "ETH-BTC", "ADA-USD", "DOGE-USD", "LTC-EUR", "XRP-USD",
];
const STATUSES: &[&str] = &["online", "away", "busy", "offline"];

/// A decimal number written from an integer count of 10^-decimals units (much faster than
/// formatting floats).
struct Fx(u64, usize);

impl std::fmt::Display for Fx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = 10u64.pow(self.1 as u32);
        write!(f, "{}.{:0w$}", self.0 / p, self.0 % p, w = self.1)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Profile {
    /// Browser chat: messages both ways, presence lists and history snapshots from the server.
    Chat,
    /// Devices pushing readings; the server acknowledges and sometimes sends configuration.
    Telemetry,
    /// Market data: tickers, order-book updates and snapshots from the server.
    Market,
    /// Binary stream (media chunks, protobuf-like records) with small text control messages.
    Binary,
}

struct Gen {
    rng: fastrand::Rng,
    clock_us: u64,
    out: Out,
    /// Microseconds the clock moves per packet at most: the shards together keep one pace.
    tick_max: u64,
    /// Shared by every no-context-takeover stream: reset before each message.
    no_ctx: Compress,
    /// Largest message to send (`--max-message`).
    max_message: usize,
    msg: Vec<u8>,
    comp: Vec<u8>,
    ending: bool,
    /// Bytes queued by all connections and not yet sent.
    pending: u64,
    // statistics
    conns_opened: u64,
    conns_deflate: u64,
    messages: u64,
    messages_compressed: u64,
    frames: u64,
    big_frames: u64,
}

impl Gen {
    fn now_ms(&self) -> u64 {
        EPOCH_S * 1000 + self.clock_us / 1000
    }

    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[self.rng.usize(..list.len())]
    }

    fn sentence(&mut self, min: usize, max: usize) {
        let n = self.rng.usize(min..=max);
        for i in 0..n {
            if i > 0 {
                self.msg.push(b' ');
            }
            let w = self.pick(WORDS);
            self.msg.extend_from_slice(w.as_bytes());
        }
        if self.rng.u8(..) < 40 {
            self.msg.push(if self.rng.bool() { b'?' } else { b'!' });
        }
    }

    fn chat_message_json(&mut self, seq: u64) {
        let uid = self.rng.u32(1000..1200);
        let name = NAMES[uid as usize % NAMES.len()];
        let ch = self.pick(CHANNELS);
        let ts = self.now_ms() - self.rng.u64(0..5000);
        let id = self.rng.u64(..);
        let _ = write!(
            self.msg,
            r#"{{"type":"message","channel":"{ch}","id":"m-{id:016x}","seq":{seq},"user":{{"id":{uid},"name":"{name}","avatar":"https://cdn.example.com/avatars/{uid}.png"}},"text":""#
        );
        self.sentence(2, 40);
        let _ = write!(self.msg, r#"","ts":{ts},"edited":false,"reactions":["#);
        for i in 0..self.rng.usize(0..3) {
            let r = ["+1", "heart", "eyes", "tada"][self.rng.usize(..4)];
            let _ = write!(
                self.msg,
                r#"{}{{"emoji":"{r}","count":{}}}"#,
                if i > 0 { "," } else { "" },
                self.rng.u8(1..9)
            );
        }
        self.msg.extend_from_slice(b"]}");
    }

    /// Fills `self.msg` with the next message of this profile and direction; returns the opcode.
    fn message(&mut self, profile: Profile, dir: usize, seq: u64) -> u8 {
        self.msg.clear();
        let r = self.rng.u32(..1000);
        let ts = self.now_ms();
        // A few very large binary messages everywhere: uploads, snapshots, media key frames.
        // Random bytes, so they stay above 65535 bytes after compression (64-bit length frames).
        if r < 2 || (profile == Profile::Binary && r < 12) {
            let n = self.rng.usize(66_000..200_000);
            self.msg.resize(n, 0);
            self.rng.fill(&mut self.msg);
            return OP_BINARY;
        }
        match (profile, dir) {
            (Profile::Chat, S2C) => {
                if r < 700 {
                    self.chat_message_json(seq);
                } else if r < 850 {
                    let uid = self.rng.u32(1000..1200);
                    let ch = self.pick(CHANNELS);
                    let _ = write!(
                        self.msg,
                        r#"{{"type":"typing","channel":"{ch}","user":{uid},"ts":{ts}}}"#
                    );
                } else if r < 960 {
                    let ch = self.pick(CHANNELS);
                    let _ = write!(
                        self.msg,
                        r#"{{"type":"presence","channel":"{ch}","ts":{ts},"online":["#
                    );
                    for i in 0..self.rng.usize(3..250) {
                        let uid = 1000 + i as u32 * 3 + self.rng.u32(0..3);
                        let st = self.pick(STATUSES);
                        let name = NAMES[uid as usize % NAMES.len()];
                        let _ = write!(
                            self.msg,
                            r#"{}{{"id":{uid},"name":"{name}","status":"{st}","last_seen":{}}}"#,
                            if i > 0 { "," } else { "" },
                            ts - self.rng.u64(0..3_600_000)
                        );
                    }
                    self.msg.extend_from_slice(b"]}");
                } else {
                    let ch = self.pick(CHANNELS);
                    let _ = write!(
                        self.msg,
                        r#"{{"type":"history","channel":"{ch}","messages":["#
                    );
                    for i in 0..self.rng.usize(10..150) {
                        if i > 0 {
                            self.msg.push(b',');
                        }
                        self.chat_message_json(seq.saturating_sub(i as u64));
                    }
                    self.msg.extend_from_slice(b"],\"has_more\":true}");
                }
                OP_TEXT
            }
            (Profile::Chat, _) => {
                let ch = self.pick(CHANNELS);
                if r < 600 {
                    let nonce = self.rng.u64(..);
                    let _ = write!(
                        self.msg,
                        r#"{{"op":"send","channel":"{ch}","nonce":"{nonce:x}","text":""#
                    );
                    self.sentence(1, 30);
                    self.msg.extend_from_slice(b"\"}");
                } else if r < 900 {
                    let _ = write!(self.msg, r#"{{"op":"typing","channel":"{ch}"}}"#);
                } else {
                    let _ = write!(
                        self.msg,
                        r#"{{"op":"read","channel":"{ch}","up_to":{seq}}}"#
                    );
                }
                OP_TEXT
            }
            (Profile::Telemetry, C2S) => {
                let dev = 1 + seq % 97;
                let _ = write!(
                    self.msg,
                    r#"{{"device":"sensor-{dev:04}","fw":"2.4.1","seq":{seq},"ts":{ts},"metrics":{{"temp_c":{},"humidity":{},"voltage":{},"rssi":-{},"uptime_s":{}}}"#,
                    Fx(1500 + self.rng.u64(..1500), 2),
                    Fx(300 + self.rng.u64(..400), 1),
                    Fx(3000 + self.rng.u64(..400), 3),
                    self.rng.u8(40..95),
                    ts / 1000 - EPOCH_S + 86_400
                );
                if r < 300 {
                    self.msg.extend_from_slice(br#","samples":["#);
                    for i in 0..self.rng.usize(16..1200) {
                        let _ = write!(
                            self.msg,
                            "{}{}",
                            if i > 0 { "," } else { "" },
                            Fx(self.rng.u64(..10_000), 3)
                        );
                    }
                    self.msg.push(b']');
                }
                self.msg.push(b'}');
                OP_TEXT
            }
            (Profile::Telemetry, _) => {
                if r < 900 {
                    let _ = write!(
                        self.msg,
                        r#"{{"ack":{seq},"status":"ok","server_ts":{ts}}}"#
                    );
                } else {
                    let _ = write!(
                        self.msg,
                        r#"{{"type":"config","sample_interval_ms":{},"report_interval_s":{},"thresholds":{{"temp_c":{{"min":5,"max":40}},"humidity":{{"min":20,"max":80}}}},"firmware":{{"channel":"stable","latest":"2.4.1"}}}}"#,
                        self.rng.u32(100..5000),
                        self.rng.u32(5..300)
                    );
                }
                OP_TEXT
            }
            (Profile::Market, S2C) => {
                let sym = self.pick(SYMBOLS);
                let px = 10_000 + self.rng.u64(..5_000_000); // cents
                if r < 550 {
                    let _ = write!(
                        self.msg,
                        r#"{{"type":"ticker","sequence":{seq},"product_id":"{sym}","price":"{}","open_24h":"{}","volume_24h":"{}","best_bid":"{}","best_ask":"{}","side":"{}","time":"{ts}","trade_id":{},"last_size":"{}"}}"#,
                        Fx(px, 2),
                        Fx(px * 98 / 100, 2),
                        Fx(self.rng.u64(..1_000_000_000_000), 8),
                        Fx(px - 1, 2),
                        Fx(px + 1, 2),
                        if self.rng.bool() { "buy" } else { "sell" },
                        self.rng.u32(..),
                        Fx(self.rng.u64(..100_000_000), 8)
                    );
                } else if r < 950 {
                    let _ = write!(
                        self.msg,
                        r#"{{"type":"l2update","product_id":"{sym}","time":"{ts}","changes":["#
                    );
                    for i in 0..self.rng.usize(1..40) {
                        let side = if self.rng.bool() { "buy" } else { "sell" };
                        let _ = write!(
                            self.msg,
                            r#"{}["{side}","{}","{}"]"#,
                            if i > 0 { "," } else { "" },
                            Fx(px + self.rng.u64(..2000) - 1000, 2),
                            Fx(self.rng.u64(..300_000_000), 8)
                        );
                    }
                    self.msg.extend_from_slice(b"]}");
                } else {
                    let _ = write!(
                        self.msg,
                        r#"{{"type":"snapshot","product_id":"{sym}","bids":["#
                    );
                    let levels = self.rng.usize(50..600);
                    for i in 0..levels {
                        let _ = write!(
                            self.msg,
                            r#"{}["{}","{}"]"#,
                            if i > 0 { "," } else { "" },
                            Fx(px - i as u64, 2),
                            Fx(self.rng.u64(..500_000_000), 8)
                        );
                    }
                    self.msg.extend_from_slice(br#"],"asks":["#);
                    for i in 0..levels {
                        let _ = write!(
                            self.msg,
                            r#"{}["{}","{}"]"#,
                            if i > 0 { "," } else { "" },
                            Fx(px + i as u64, 2),
                            Fx(self.rng.u64(..500_000_000), 8)
                        );
                    }
                    self.msg.extend_from_slice(b"]}");
                }
                OP_TEXT
            }
            (Profile::Market, _) => {
                let a = self.pick(SYMBOLS);
                let b = self.pick(SYMBOLS);
                let op = if r < 800 { "subscribe" } else { "unsubscribe" };
                let _ = write!(
                    self.msg,
                    r#"{{"type":"{op}","product_ids":["{a}","{b}"],"channels":["ticker","level2_batch",{{"name":"status"}}]}}"#
                );
                OP_TEXT
            }
            (Profile::Binary, S2C) => {
                if r < 100 {
                    let _ = write!(
                        self.msg,
                        r#"{{"type":"stats","bitrate":{},"dropped":{},"ts":{ts}}}"#,
                        self.rng.u32(200..8000),
                        self.rng.u8(..5)
                    );
                    return OP_TEXT;
                }
                let n = if r < 700 {
                    self.rng.usize(100..4000)
                } else {
                    self.rng.usize(4000..40_000)
                };
                if r.is_multiple_of(3) {
                    // Encrypted/encoded media: incompressible.
                    self.msg.resize(n, 0);
                    self.rng.fill(&mut self.msg);
                } else {
                    // protobuf-like records: constant tags, varying numbers, short random blobs.
                    while self.msg.len() < n {
                        self.msg.extend_from_slice(&[0x08, 0x96, 0x01, 0x12]);
                        self.msg.extend_from_slice(&(seq as u32).to_le_bytes());
                        self.msg.extend_from_slice(&ts.to_le_bytes());
                        self.msg.extend_from_slice(b"\x1a\x10track-0001/video");
                        let k = self.rng.usize(4..48);
                        let at = self.msg.len();
                        self.msg.resize(at + k, 0);
                        self.rng.fill(&mut self.msg[at..]);
                    }
                }
                OP_BINARY
            }
            (Profile::Binary, _) => {
                if r < 500 {
                    // Input events: small binary.
                    let n = self.rng.usize(12..96);
                    self.msg.extend_from_slice(&[0x01, 0x00]);
                    self.msg.extend_from_slice(&ts.to_be_bytes());
                    while self.msg.len() < n {
                        self.msg.push(self.rng.u8(..16));
                    }
                    OP_BINARY
                } else {
                    let _ = write!(
                        self.msg,
                        r#"{{"type":"heartbeat","seq":{seq},"buffer_ms":{}}}"#,
                        self.rng.u32(0..3000)
                    );
                    OP_TEXT
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Connections

enum Action {
    /// A segment without payload from `dir` with these flags.
    Ctl(usize, u8),
    Request,
    Response,
    /// One data message from `dir`.
    Msg(usize),
    Ping(usize),
    Pong(usize, Vec<u8>),
    Close(usize, u16, &'static str),
    CloseEcho(usize, u16),
    /// The connection stays open: stop here without closing.
    Abandon,
}

#[derive(PartialEq)]
enum State {
    Handshake,
    Open,
    Closing,
}

struct Deflate {
    /// The peers reset their compressor after each message (`*_no_context_takeover`).
    no_ctx: bool,
    window_bits: u8,
    level: u32,
    /// Per direction, created on first use; unused when `no_ctx`.
    comp: [Option<Box<Compress>>; 2],
}

struct Conn {
    ip: [[u8; 4]; 2],
    port: [u16; 2],
    mac: [[u8; 6]; 2],
    ttl: [u8; 2],
    seq: [u32; 2],
    win: [u16; 2],
    ts_base: [u32; 2],
    ip_id: [u16; 2],
    /// Bytes written by the application and not yet sent, per direction.
    buf: [Vec<u8>; 2],
    pos: [usize; 2],
    /// Segments received by side `d` since it last acknowledged.
    unacked: [u32; 2],
    ack_due: [bool; 2],
    actions: VecDeque<Action>,
    state: State,
    profile: Profile,
    deflate: Option<Deflate>,
    msgs_left: u32,
    seq_no: u64,
    request: Vec<u8>,
    response: Vec<u8>,
}

const BROWSER_UAS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
];

fn http_date(unix_s: u64) -> String {
    let days = unix_s / 86_400;
    let secs = unix_s % 86_400;
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(m - 1) as usize];
    format!(
        "{weekday}, {d:02} {month} {y} {:02}:{:02}:{:02} GMT",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

impl Conn {
    fn new(g: &mut Gen, client_ip: [u8; 4], client_port: u16, share: f64) -> Conn {
        let rng = &mut g.rng;
        let profile = match rng.u8(..100) {
            0..40 => Profile::Chat,
            40..60 => Profile::Telemetry,
            60..85 => Profile::Market,
            _ => Profile::Binary,
        };
        let (server_ip, server_port, host, path) = match profile {
            Profile::Chat => (
                [10, 0, 0, 1],
                8080,
                "chat.example.com",
                format!("/ws?room={}", rng.u32(1..500)),
            ),
            Profile::Telemetry => (
                [10, 0, 0, 2],
                80,
                "ingest.example.net",
                "/v2/devices/stream".to_string(),
            ),
            Profile::Market => (
                [10, 0, 0, 1],
                8080,
                "feed.example.com",
                "/market".to_string(),
            ),
            Profile::Binary => (
                [10, 0, 0, 3],
                8080,
                "media.example.org",
                format!("/live/{}", rng.u32(1..50)),
            ),
        };
        let negotiated = rng.f64() < share;
        let browser = profile == Profile::Chat
            || profile == Profile::Market
            || (profile == Profile::Binary && rng.bool());
        let ua = if browser {
            BROWSER_UAS[rng.usize(..BROWSER_UAS.len())]
        } else if negotiated || rng.bool() {
            [
                "Python/3.11 websockets/12.0",
                "okhttp/4.12.0",
                "Dart/3.3 (dart:io)",
            ][rng.usize(..3)]
        } else {
            ["Go-http-client/1.1", "sensor-agent/2.4.1", "libwebsockets"][rng.usize(..3)]
        };
        // Non-browser clients that never offer compression.
        let offers = browser
            || ua.starts_with("Python")
            || ua.starts_with("okhttp")
            || ua.starts_with("Dart")
            || negotiated;
        let mut key_raw = [0u8; 16];
        rng.fill(&mut key_raw);
        let key = base64::engine::general_purpose::STANDARD.encode(key_raw);
        let accept = accept_for(&key);

        let offer = if ua.contains("Firefox") || ua.starts_with("okhttp") {
            "permessage-deflate"
        } else {
            "permessage-deflate; client_max_window_bits"
        };
        let mut req = Vec::with_capacity(700);
        let _ = write!(req, "GET {path} HTTP/1.1\r\nHost: {host}\r\n");
        if browser {
            let _ = write!(
                req,
                "Connection: Upgrade\r\nPragma: no-cache\r\nCache-Control: no-cache\r\nUser-Agent: {ua}\r\nUpgrade: websocket\r\nOrigin: https://{host}\r\nSec-WebSocket-Version: 13\r\nAccept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\nCookie: session={:032x}; _ga=GA1.2.{}.{}\r\nX-Forwarded-For: 203.0.113.{}\r\nX-Forwarded-Proto: https\r\nSec-WebSocket-Key: {key}\r\n",
                rng.u128(..),
                rng.u32(..),
                rng.u32(1_600_000_000..1_700_000_000),
                rng.u8(1..255)
            );
        } else {
            let _ = write!(
                req,
                "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nUser-Agent: {ua}\r\nOrigin: https://{host}\r\nX-Forwarded-For: 198.51.100.{}\r\n",
                rng.u8(1..255)
            );
        }
        if offers {
            let _ = write!(req, "Sec-WebSocket-Extensions: {offer}\r\n");
        }
        req.extend_from_slice(b"\r\n");

        let mut deflate = None;
        let mut resp_ext = String::new();
        if negotiated {
            let v = rng.u8(..100);
            let (no_ctx, bits) = if v < 20 {
                resp_ext =
                    "permessage-deflate; client_no_context_takeover; server_no_context_takeover"
                        .into();
                (true, 15)
            } else if v < 32 && offer.contains("client_max_window_bits") {
                resp_ext =
                    "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
                        .into();
                (false, 12)
            } else {
                resp_ext = "permessage-deflate".into();
                (false, 15)
            };
            deflate = Some(Deflate {
                no_ctx,
                window_bits: bits,
                level: if rng.bool() { 1 } else { 6 },
                comp: [None, None],
            });
        }
        let server = ["nginx", "uvicorn", "gunicorn"][rng.usize(..3)];
        let mut resp = Vec::with_capacity(300);
        let _ = write!(
            resp,
            "HTTP/1.1 101 Switching Protocols\r\nServer: {server}\r\nDate: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {accept}\r\n",
            http_date(EPOCH_S + g.clock_us / 1_000_000)
        );
        if !resp_ext.is_empty() {
            let _ = write!(resp, "Sec-WebSocket-Extensions: {resp_ext}\r\n");
        }
        resp.extend_from_slice(b"\r\n");

        let msgs_left = match rng.u8(..100) {
            0..70 => rng.u32(5..200),
            70..95 => rng.u32(200..2000),
            _ => rng.u32(2000..20_000),
        };
        let mut actions = VecDeque::new();
        actions.extend([
            Action::Ctl(C2S, SYN),
            Action::Ctl(S2C, SYN | ACK),
            Action::Ctl(C2S, ACK),
            Action::Request,
            Action::Response,
        ]);
        g.conns_opened += 1;
        g.conns_deflate += negotiated as u64;
        let rng = &mut g.rng;
        Conn {
            ip: [client_ip, server_ip],
            port: [client_port, server_port],
            mac: [
                [0x02, 0x42, 0xac, 0x11, 0x00, 0x02],
                [0x02, 0x42, 0x0a, 0x00, 0x00, server_ip[3]],
            ],
            ttl: [64 - rng.u8(0..4), 64],
            seq: [rng.u32(..), rng.u32(..)],
            win: [rng.u16(500..2048), rng.u16(500..1024)],
            ts_base: [rng.u32(..), rng.u32(..)],
            ip_id: [rng.u16(..), rng.u16(..)],
            buf: [Vec::new(), Vec::new()],
            pos: [0, 0],
            unacked: [0, 0],
            ack_due: [false, false],
            actions,
            state: State::Handshake,
            profile,
            deflate,
            msgs_left,
            seq_no: rng.u64(1..1_000_000),
            request: req,
            response: resp,
        }
    }

    /// Writes one TCP segment from `dir` carrying `payload`.
    fn segment(&mut self, g: &mut Gen, dir: usize, flags: u8, payload: &[u8]) -> io::Result<()> {
        g.clock_us += g.rng.u64(1..=g.tick_max);
        let peer = dir ^ 1;
        let mut ip = Ipv4Header::new(0, self.ttl[dir], IpNumber::TCP, self.ip[dir], self.ip[peer])
            .expect("ipv4 header");
        ip.identification = self.ip_id[dir];
        self.ip_id[dir] = self.ip_id[dir].wrapping_add(1);
        let tsval = self.ts_base[dir].wrapping_add((g.clock_us / 1000) as u32);
        let tsecr = if flags == SYN {
            0
        } else {
            self.ts_base[peer].wrapping_add((g.clock_us / 1000) as u32)
        };
        let win = if flags & SYN != 0 {
            [64_240, 65_160][dir]
        } else {
            self.win[dir]
        };
        let mut b = PacketBuilder::ethernet2(self.mac[dir], self.mac[peer])
            .ip(IpHeaders::Ipv4(ip, Default::default()))
            .tcp(self.port[dir], self.port[peer], self.seq[dir], win);
        b = if flags & SYN != 0 {
            b.options(&[
                TcpOptionElement::MaximumSegmentSize(1460),
                TcpOptionElement::SelectiveAcknowledgementPermitted,
                TcpOptionElement::Timestamp(tsval, tsecr),
                TcpOptionElement::Noop,
                TcpOptionElement::WindowScale(7),
            ])
        } else {
            b.options(&[
                TcpOptionElement::Noop,
                TcpOptionElement::Noop,
                TcpOptionElement::Timestamp(tsval, tsecr),
            ])
        }
        .expect("tcp options");
        if flags & SYN != 0 {
            b = b.syn();
        }
        if flags & FIN != 0 {
            b = b.fin();
        }
        if flags & RST != 0 {
            b = b.rst();
        }
        if flags & ACK != 0 {
            b = b.ack(self.seq[peer]);
        }
        let at_end = !payload.is_empty() && self.pos[dir] == self.buf[dir].len();
        if at_end {
            b = b.psh();
        }
        let len = b.size(payload.len());
        let ts = EPOCH_S * 1_000_000 + g.clock_us;
        let w = &mut g.out.chunk.data;
        w.extend_from_slice(&((ts / 1_000_000) as u32).to_le_bytes());
        w.extend_from_slice(&((ts % 1_000_000) as u32).to_le_bytes());
        w.extend_from_slice(&(len as u32).to_le_bytes());
        w.extend_from_slice(&(len as u32).to_le_bytes());
        b.write(w, payload).map_err(io::Error::other)?;
        let end = w.len();
        g.out.chunk.marks.push((ts, end));
        g.out.bytes += 16 + len as u64;
        g.out.packets += 1;
        if end >= CHUNK_BYTES {
            g.out.send()?;
        }
        self.seq[dir] =
            self.seq[dir].wrapping_add(payload.len() as u32 + (flags & (SYN | FIN) != 0) as u32);
        if flags & ACK != 0 {
            self.unacked[dir] = 0;
            self.ack_due[dir] = false;
        }
        Ok(())
    }

    /// Sends the next segment of pending data from `dir`.
    fn send_data(&mut self, g: &mut Gen, dir: usize) -> io::Result<()> {
        let rem = self.buf[dir].len() - self.pos[dir];
        let mut n = rem.min(MSS);
        // Now and then the writer hands TCP a shorter piece (frame header written on its own,
        // a partial write): frames then split at odd places.
        if n > 1 && g.rng.u8(..100) < 3 {
            n = g.rng.usize(1..n);
        }
        let start = self.pos[dir];
        self.pos[dir] += n;
        g.pending -= n as u64;
        let data = std::mem::take(&mut self.buf[dir]);
        self.segment(g, dir, ACK, &data[start..start + n])?;
        self.buf[dir] = data;
        let peer = dir ^ 1;
        self.unacked[peer] += 1;
        if self.unacked[peer] >= 2 {
            self.ack_due[peer] = true;
        }
        if self.pos[dir] == self.buf[dir].len() {
            self.buf[dir].clear();
            self.pos[dir] = 0;
            if self.unacked[peer] > 0 && g.rng.bool() {
                self.ack_due[peer] = true; // delayed ACK timer
            }
            // Give back the memory of a large message: a thousand idle connections add up.
            if self.buf[dir].capacity() > 1 << 14 {
                self.buf[dir] = Vec::new();
            }
        }
        Ok(())
    }

    /// Appends one data message (or control frame) from `dir` to its send buffer.
    fn queue_message(&mut self, g: &mut Gen, dir: usize) {
        self.seq_no += 1;
        let mut opcode = g.message(self.profile, dir, self.seq_no);
        // A profile's small messages keep their share among themselves when the large ones are
        // drawn again (a profile with none, after 100 draws, has its message cut); without a
        // limit no draw is added, so the default file stays the same.
        for _ in 0..100 {
            if g.msg.len() <= g.max_message {
                break;
            }
            opcode = g.message(self.profile, dir, self.seq_no);
        }
        if g.msg.len() > g.max_message {
            // A text is cut at a character boundary, so it stays valid UTF-8.
            let cut = match std::str::from_utf8(&g.msg[..g.max_message]) {
                Err(e) if opcode == OP_TEXT => e.valid_up_to(),
                _ => g.max_message,
            };
            g.msg.truncate(cut);
        }
        g.messages += 1;
        let mut rsv1 = false;
        // Some implementations skip compressing tiny messages; RSV1 then stays clear.
        let compress = self.deflate.is_some() && !(g.msg.len() < 48 && g.rng.u8(..4) == 0);
        if compress {
            let d = self.deflate.as_mut().unwrap();
            let c: &mut Compress = if d.no_ctx {
                g.no_ctx.reset();
                &mut g.no_ctx
            } else {
                let (bits, level) = (d.window_bits, d.level);
                d.comp[dir].get_or_insert_with(|| {
                    Box::new(Compress::new_with_window_bits(
                        Compression::new(level),
                        false,
                        bits,
                    ))
                })
            };
            deflate_message(c, &g.msg, &mut g.comp);
            rsv1 = true;
            g.messages_compressed += 1;
        }
        let payload: &[u8] = if rsv1 { &g.comp } else { &g.msg };
        let buf = &mut self.buf[dir];
        let before = buf.len();
        // Large messages are sometimes sent as several frames (RFC 6455 §5.4).
        if payload.len() > 8192 && g.rng.u8(..100) < 8 {
            let piece = if g.rng.bool() { 4096 } else { 16_384 };
            let mut chunks = payload.chunks(piece).peekable();
            let mut first = true;
            while let Some(c) = chunks.next() {
                let last = chunks.peek().is_none();
                let mask = (dir == C2S).then(|| g.rng.u32(..).to_ne_bytes());
                put_frame(
                    buf,
                    last,
                    rsv1 && first,
                    if first { opcode } else { OP_CONT },
                    c,
                    mask,
                );
                g.frames += 1;
                first = false;
            }
        } else {
            let mask = (dir == C2S).then(|| g.rng.u32(..).to_ne_bytes());
            put_frame(buf, true, rsv1, opcode, payload, mask);
            g.frames += 1;
            g.big_frames += (payload.len() > 0xffff) as u64;
        }
        g.pending += (buf.len() - before) as u64;
    }

    fn queue_control(&mut self, g: &mut Gen, dir: usize, opcode: u8, payload: &[u8]) {
        let mask = (dir == C2S).then(|| g.rng.u32(..).to_ne_bytes());
        let before = self.buf[dir].len();
        put_frame(&mut self.buf[dir], true, false, opcode, payload, mask);
        g.pending += (self.buf[dir].len() - before) as u64;
        g.frames += 1;
    }

    /// Decides what the connection does next once everything queued has been sent.
    fn plan(&mut self, g: &mut Gen) {
        if self.state == State::Open && (self.msgs_left == 0 || g.ending) {
            self.state = State::Closing;
            if g.ending && g.rng.u8(..100) < 3 {
                self.actions.push_back(Action::Abandon);
                return;
            }
            let v = g.rng.u8(..100);
            let by = if g.rng.u8(..100) < 60 { S2C } else { C2S };
            let (code, reason) = match (by, g.rng.u8(..10)) {
                (C2S, 0) => (1001, ""),
                (_, 1) => (1000, "bye"),
                (S2C, 2) => (1000, "session ended"),
                _ => (1000, ""),
            };
            if v < 6 {
                // Abrupt end: no close handshake, one side resets.
                let side = if g.rng.bool() { C2S } else { S2C };
                self.actions.push_back(Action::Ctl(side, RST | ACK));
                return;
            }
            self.actions.push_back(Action::Close(by, code, reason));
            if v < 14 {
                // Close handshake, then the client resets instead of a FIN exchange.
                self.actions.push_back(Action::Ctl(C2S, RST | ACK));
            } else if g.rng.bool() {
                // The server closes TCP first (RFC 6455 §7.1.1); the client's FIN carries its ACK.
                self.actions.extend([
                    Action::Ctl(S2C, FIN | ACK),
                    Action::Ctl(C2S, FIN | ACK),
                    Action::Ctl(S2C, ACK),
                ]);
            } else {
                self.actions.extend([
                    Action::Ctl(S2C, FIN | ACK),
                    Action::Ctl(C2S, ACK),
                    Action::Ctl(C2S, FIN | ACK),
                    Action::Ctl(S2C, ACK),
                ]);
            }
            return;
        }
        if self.state != State::Open {
            return;
        }
        let r = g.rng.u16(..1000);
        if r < 12 {
            self.actions.push_back(Action::Ping(S2C));
        } else if r < 16 {
            self.actions.push_back(Action::Ping(C2S));
        } else {
            // A burst of 1-4 messages, mostly one way: small ones then share segments.
            let server_share = match self.profile {
                Profile::Chat => 60,
                Profile::Telemetry => 35,
                Profile::Market => 92,
                Profile::Binary => 75,
            };
            let n = if g.rng.u8(..100) < 25 {
                g.rng.u32(2..=4)
            } else {
                1
            };
            for _ in 0..n.min(self.msgs_left) {
                let dir = if g.rng.u8(..100) < server_share {
                    S2C
                } else {
                    C2S
                };
                self.actions.push_back(Action::Msg(dir));
                self.msgs_left -= 1;
            }
        }
    }

    /// Writes one packet (or queues the next thing to send). Returns false once the connection is over.
    fn step(&mut self, g: &mut Gen) -> io::Result<bool> {
        for side in [C2S, S2C] {
            if self.ack_due[side] && (self.buf[side].len() == self.pos[side] || g.rng.bool()) {
                return self.segment(g, side, ACK, &[]).map(|()| true);
            }
        }
        let pend = [
            self.buf[C2S].len() > self.pos[C2S],
            self.buf[S2C].len() > self.pos[S2C],
        ];
        if pend[0] || pend[1] {
            let dir = if pend[0] && pend[1] {
                g.rng.usize(..2)
            } else if pend[0] {
                C2S
            } else {
                S2C
            };
            self.send_data(g, dir)?;
            return Ok(true);
        }
        if self.actions.is_empty() {
            self.plan(g);
            if self.actions.is_empty() {
                return Ok(false);
            }
        }
        match self.actions.pop_front().unwrap() {
            Action::Ctl(dir, flags) => {
                self.segment(g, dir, flags, &[])?;
                if flags & RST != 0 {
                    return Ok(false);
                }
            }
            Action::Request => {
                let req = std::mem::take(&mut self.request);
                self.buf[C2S].extend_from_slice(&req);
                g.pending += req.len() as u64;
            }
            Action::Response => {
                let resp = std::mem::take(&mut self.response);
                self.buf[S2C].extend_from_slice(&resp);
                g.pending += resp.len() as u64;
                self.state = State::Open;
            }
            Action::Msg(dir) => {
                self.queue_message(g, dir);
                // Messages queued together go out together, in both directions.
                while let Some(Action::Msg(d)) = self.actions.front() {
                    let d = *d;
                    self.actions.pop_front();
                    self.queue_message(g, d);
                }
            }
            Action::Ping(dir) => {
                let payload: Vec<u8> = match g.rng.u8(..3) {
                    0 => Vec::new(),
                    1 => g.now_ms().to_be_bytes().to_vec(),
                    _ => b"keepalive".to_vec(),
                };
                self.queue_control(g, dir, OP_PING, &payload);
                self.actions.push_front(Action::Pong(dir ^ 1, payload));
            }
            Action::Pong(dir, payload) => self.queue_control(g, dir, OP_PONG, &payload),
            Action::Close(dir, code, reason) => {
                let mut p = code.to_be_bytes().to_vec();
                p.extend_from_slice(reason.as_bytes());
                self.queue_control(g, dir, OP_CLOSE, &p);
                self.actions.push_front(Action::CloseEcho(dir ^ 1, code));
            }
            Action::CloseEcho(dir, code) => {
                self.queue_control(g, dir, OP_CLOSE, &code.to_be_bytes())
            }
            Action::Abandon => return Ok(false),
        }
        Ok(true)
    }
}

// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Stats {
    packets: u64,
    bytes: u64,
    conns: u64,
    conns_deflate: u64,
    messages: u64,
    messages_compressed: u64,
    frames: u64,
    big_frames: u64,
}

struct Shard {
    seed: u64,
    conns: usize,
    size: u64,
    share: f64,
    max_message: usize,
    tick_max: u64,
    /// Client addresses of this shard (no other shard uses them, so 4-tuples never clash).
    pool: Vec<[u8; 4]>,
}

fn run_shard(sh: Shard, tx: SyncSender<Chunk>) -> io::Result<Stats> {
    let mut g = Gen {
        rng: fastrand::Rng::with_seed(sh.seed),
        clock_us: 0,
        out: Out {
            chunk: Chunk::new(),
            tx,
            bytes: 0,
            packets: 0,
        },
        tick_max: sh.tick_max,
        no_ctx: Compress::new(Compression::new(6), false),
        max_message: sh.max_message,
        msg: Vec::new(),
        comp: Vec::new(),
        ending: false,
        pending: 0,
        conns_opened: 0,
        conns_deflate: 0,
        messages: 0,
        messages_compressed: 0,
        frames: 0,
        big_frames: 0,
    };
    let mut live: HashSet<([u8; 4], u16)> = HashSet::new();
    let pool = &sh.pool;
    let new_conn = |g: &mut Gen, live: &mut HashSet<([u8; 4], u16)>| loop {
        let ip = pool[g.rng.usize(..pool.len())];
        let port = g.rng.u16(32_768..61_000);
        if live.insert((ip, port)) {
            return Conn::new(g, ip, port, sh.share);
        }
    };
    let mut active: Vec<Conn> = Vec::with_capacity(sh.conns);
    // Connections arrive over the first part of the capture rather than all at once.
    let ramp = (sh.conns as u64 * 20).min(sh.size / 4000).max(1);
    loop {
        // Stop early enough that what is still in flight (finishing messages, closing
        // connections) brings the file close to the target.
        let in_flight = g.pending + g.pending / 16 + active.len() as u64 * 700;
        if !g.ending && g.out.bytes + in_flight >= sh.size {
            g.ending = true;
        }
        if !g.ending
            && active.len() < sh.conns
            && (active.is_empty() || g.rng.u64(..ramp) < sh.conns as u64)
        {
            let c = new_conn(&mut g, &mut live);
            active.push(c);
            continue;
        }
        if active.is_empty() {
            break;
        }
        let i = g.rng.usize(..active.len());
        if !active[i].step(&mut g)? {
            let c = active.swap_remove(i);
            live.remove(&(c.ip[C2S], c.port[C2S]));
        }
    }
    g.out.send()?;
    Ok(Stats {
        packets: g.out.packets,
        bytes: g.out.bytes,
        conns: g.conns_opened,
        conns_deflate: g.conns_deflate,
        messages: g.messages,
        messages_compressed: g.messages_compressed,
        frames: g.frames,
        big_frames: g.big_frames,
    })
}

/// Merges the shards' records by timestamp (ties: lower shard first) into the file.
fn merge(w: &mut impl Write, rxs: Vec<Receiver<Chunk>>) -> io::Result<()> {
    struct Stream {
        rx: Receiver<Chunk>,
        chunk: Chunk,
        next: usize,
    }
    let mut streams: Vec<Stream> = Vec::new();
    for rx in rxs {
        if let Ok(chunk) = rx.recv() {
            streams.push(Stream { rx, chunk, next: 0 });
        }
    }
    loop {
        // Drop exhausted streams, refilling the others.
        let mut i = 0;
        while i < streams.len() {
            let s = &mut streams[i];
            if s.next < s.chunk.marks.len() {
                i += 1;
                continue;
            }
            match s.rx.recv() {
                Ok(chunk) => {
                    s.chunk = chunk;
                    s.next = 0;
                }
                Err(_) => {
                    streams.remove(i);
                }
            }
        }
        if streams.is_empty() {
            return Ok(());
        }
        let mut best = 0;
        for (i, s) in streams.iter().enumerate().skip(1) {
            if s.chunk.marks[s.next].0 < streams[best].chunk.marks[streams[best].next].0 {
                best = i;
            }
        }
        // Copy every record of the best stream that still comes before the others' next one.
        let limit = streams
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != best)
            .map(|(i, s)| (s.chunk.marks[s.next].0, i))
            .min()
            .unwrap_or((u64::MAX, usize::MAX));
        let s = &mut streams[best];
        let from = if s.next == 0 {
            0
        } else {
            s.chunk.marks[s.next - 1].1
        };
        let mut to = from;
        while s.next < s.chunk.marks.len() && (s.chunk.marks[s.next].0, best) < limit {
            to = s.chunk.marks[s.next].1;
            s.next += 1;
        }
        w.write_all(&s.chunk.data[from..to])?;
    }
}

fn run(args: &Args) -> io::Result<Stats> {
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut w = BufWriter::with_capacity(1 << 20, File::create(&args.out)?);
    pcap_header(&mut w)?;
    let shards = (args.conns / 64).clamp(1, 8);
    let mut rng = fastrand::Rng::with_seed(args.seed);
    // Client addresses: a pool of hosts, several connections per host (NAT, several tabs).
    let hosts = (args.conns / 3).clamp(shards, 60_000);
    let mut seen = HashSet::new();
    let mut pool = Vec::with_capacity(hosts);
    while pool.len() < hosts {
        let ip = [10, rng.u8(1..255), rng.u8(..=255), rng.u8(1..255)];
        if seen.insert(ip) {
            pool.push(ip);
        }
    }
    let mut rxs = Vec::new();
    let mut handles = Vec::new();
    for i in 0..shards {
        let (tx, rx) = sync_channel(2);
        rxs.push(rx);
        let sh = Shard {
            seed: rng.u64(..),
            conns: args.conns / shards + (i < args.conns % shards) as usize,
            size: args.size.saturating_sub(24) / shards as u64,
            share: args.compressed_share,
            max_message: args.max_message,
            tick_max: 40 * shards as u64,
            pool: pool.iter().skip(i).step_by(shards).copied().collect(),
        };
        handles.push(std::thread::spawn(move || run_shard(sh, tx)));
    }
    let merged = merge(&mut w, rxs);
    let mut total = Stats {
        bytes: 24,
        ..Stats::default()
    };
    for h in handles {
        let st = h
            .join()
            .map_err(|_| io::Error::other("a generator thread panicked"))??;
        total.packets += st.packets;
        total.bytes += st.bytes;
        total.conns += st.conns;
        total.conns_deflate += st.conns_deflate;
        total.messages += st.messages;
        total.messages_compressed += st.messages_compressed;
        total.frames += st.frames;
        total.big_frames += st.big_frames;
    }
    merged?;
    w.flush()?;
    Ok(total)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("gen_capture: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    match run(&args) {
        Ok(t) => {
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{}: {} packets, {} bytes ({:.1} MB) in {:.1} s ({:.0} MB/s); {} connections ({} permessage-deflate, {:.0}%); {} messages in {} frames ({} over 64 KiB), {:.1}% of messages compressed",
                args.out.display(),
                t.packets,
                t.bytes,
                t.bytes as f64 / 1e6,
                secs,
                t.bytes as f64 / 1e6 / secs,
                t.conns,
                t.conns_deflate,
                100.0 * t.conns_deflate as f64 / t.conns.max(1) as f64,
                t.messages,
                t.frames,
                t.big_frames,
                100.0 * t.messages_compressed as f64 / t.messages.max(1) as f64
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen_capture: {}: {e}", args.out.display());
            ExitCode::FAILURE
        }
    }
}
