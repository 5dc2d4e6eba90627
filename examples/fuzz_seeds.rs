//! Writes seed inputs for the fuzz targets (`fuzz/`) from real captures, in each target's input
//! format, into `fuzz/corpus/<target>/`. Seeds are written at run time only: third-party
//! captures are never committed.
//!
//! ```text
//! cargo run --example fuzz_seeds -- fuzz/corpus samples ../shared/corpus
//! ```
//!
//! Each directory is searched recursively for `*.pcap`, `*.pcapng` and `*.pcap.gz`.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use flate2::{Compress, Compression, FlushCompress};
use wsinspect::capture::CaptureReader;
use wsinspect::net;

/// Largest capture used whole (pipeline and reader seeds); libFuzzer mutates small inputs best.
const MAX_WHOLE: u64 = 256 << 10;
/// Link types in the order the `net_decode` target indexes them.
const LINKTYPES: [u32; 9] = [1, 113, 276, 101, 0, 12, 228, 229, 147];

fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        let name = p.to_string_lossy();
        if p.is_dir() {
            captures(&p, out);
        } else if name.ends_with(".pcap") || name.ends_with(".pcapng") || name.ends_with(".pcap.gz")
        {
            out.push(p);
        }
    }
}

struct Writer {
    root: PathBuf,
    n: usize,
}

impl Writer {
    fn put(&mut self, target: &str, bytes: &[u8]) -> std::io::Result<()> {
        let dir = self.root.join(target);
        fs::create_dir_all(&dir)?;
        self.n += 1;
        fs::File::create(dir.join(format!("seed-{:06}", self.n)))?.write_all(bytes)
    }
}

/// Frame-decoder input: a config byte, then pieces of at most 127 bytes, each behind its
/// length byte.
fn chunked(cfg: u8, stream: &[u8]) -> Vec<u8> {
    let mut v = vec![cfg];
    for piece in stream.chunks(127) {
        v.push(piece.len() as u8);
        v.extend_from_slice(piece);
    }
    v
}

/// Message-assembler input: one record per piece of `text` (FIN on the last), compressed for
/// real when `compress`.
fn messages(cfg: u8, texts: &[&[u8]], compress: bool) -> Vec<u8> {
    let mut v = vec![cfg];
    for t in texts {
        let pieces: Vec<&[u8]> = t.chunks(200).collect();
        for (i, p) in pieces.iter().enumerate() {
            let fin = if i + 1 == pieces.len() { 0x80 } else { 0 };
            let op = if i == 0 { 1 } else { 0 };
            let rsv = if compress && i == 0 { 0x40 } else { 0 };
            v.extend_from_slice(&[fin | rsv | op, p.len() as u8, u8::from(compress)]);
            v.extend_from_slice(p);
        }
    }
    v
}

fn run() -> Result<usize, String> {
    let mut args = std::env::args().skip(1);
    let root = PathBuf::from(
        args.next()
            .ok_or("usage: fuzz_seeds OUT_DIR CAPTURE_DIR...")?,
    );
    let mut files = Vec::new();
    for dir in args {
        captures(Path::new(&dir), &mut files);
    }
    let mut w = Writer { root, n: 0 };
    let err = |e: std::io::Error| e.to_string();
    for path in &files {
        let size = fs::metadata(path).map(|m| m.len()).unwrap_or(u64::MAX);
        if size <= MAX_WHOLE {
            let bytes = fs::read(path).map_err(err)?;
            w.put("capture_reader", &bytes).map_err(err)?;
            for cfg in [0u8, 1, 3, 13] {
                let mut v = vec![cfg];
                v.extend_from_slice(&bytes);
                w.put("pipeline", &v).map_err(err)?;
            }
        }
        let Ok(mut reader) = CaptureReader::open(path) else {
            continue;
        };
        let mut payloads: Vec<Vec<u8>> = Vec::new();
        let mut n = 0;
        while let Ok(Some(pkt)) = reader.next_packet() {
            n += 1;
            if n <= 8
                && let Some(i) = LINKTYPES.iter().position(|&l| l == pkt.linktype)
            {
                let mut v = vec![i as u8];
                v.extend_from_slice(pkt.data);
                w.put("net_decode", &v).map_err(err)?;
            }
            if let Ok(tp) = net::decode(pkt.linktype, pkt.data)
                && !tp.payload.is_empty()
                && payloads.len() < 64
            {
                payloads.push(tp.payload.to_vec());
            }
        }
        for p in &payloads {
            if p.starts_with(b"GET ") || p.starts_with(b"HTTP/1.") {
                w.put("http_upgrade", p).map_err(err)?;
            } else {
                w.put("frame_decoder", &chunked(0, p)).map_err(err)?;
                w.put("frame_decoder", &chunked(1, p)).map_err(err)?;
            }
        }
        let texts: Vec<&[u8]> = payloads.iter().take(6).map(Vec::as_slice).collect();
        w.put("message_inflate", &messages(0, &texts, true))
            .map_err(err)?;
        w.put("message_inflate", &messages(1, &texts, true))
            .map_err(err)?;
    }
    // Reassembly input has no capture form: a handshake and a few in-order, overlapping and
    // out-of-order segments, as 8-byte records.
    let recs: [[u8; 8]; 8] = [
        [0, 0x02, 0, 0, 0, 0, 0, 0],
        [1, 0x12, 0, 0, 0, 1, 0, 0],
        [0, 0x10, 1, 0, 0, 1, 100, 0],
        [0, 0x10, 201, 0, 10, 1, 50, 0],
        [0, 0x10, 101, 0, 20, 1, 100, 0],
        [1, 0x18, 1, 0, 30, 16, 200, 0],
        [0, 0x11, 251, 0, 0, 13, 0, 0],
        [1, 0x11, 201, 0, 0, 16, 0, 0],
    ];
    for cfg in [0u8, 1, 9] {
        let mut v = vec![cfg];
        v.extend(recs.iter().flatten());
        w.put("tcp_reassembly", &v).map_err(err)?;
    }
    // A small deflate bomb for the assembler: 64 KiB of zeros in one compressed message.
    let mut c = Compress::new(Compression::best(), false);
    let mut bomb = Vec::with_capacity(1024);
    c.compress_vec(&[0u8; 65536], &mut bomb, FlushCompress::Sync)
        .map_err(|e| e.to_string())?;
    let mut v = vec![2u8, 0xC2, bomb.len().min(255) as u8, 0];
    v.extend_from_slice(&bomb[..bomb.len().min(255)]);
    w.put("message_inflate", &v).map_err(err)?;
    Ok(w.n)
}

fn main() -> ExitCode {
    match run() {
        Ok(n) => {
            eprintln!("fuzz_seeds: wrote {n} seeds");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fuzz_seeds: {e}");
            ExitCode::from(2)
        }
    }
}
