//! Microbenchmarks of the hot stages: frame header parsing, unmasking, inflation and in-order
//! TCP reassembly. `cargo bench` runs them (divan); `cargo bench -- unmask` runs one group.
//!
//! Inputs are synthesised here (deterministically) so the benchmarks need no capture file:
//! JSON-like text messages compressed the way permessage-deflate peers do (raw DEFLATE, sync
//! flush, tail stripped, one compressor per direction), random masking keys, 1448-byte segments.

use std::hint::black_box;
use std::net::SocketAddr;

use divan::counter::{BytesCount, ItemsCount};
use divan::{Bencher, bench};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use wsinspect::config::Limits;
use wsinspect::deflate::Inflater;
use wsinspect::net::{TcpFlags, TcpPacket};
use wsinspect::tcp::TcpConn;
use wsinspect::types::Ts;
use wsinspect::ws::frame::{FrameHeader, encode_header, parse_header};
use wsinspect::ws::mask::{unmask, unmask_naive};

fn main() {
    divan::main();
}

/// A small deterministic generator (xorshift), so every run benchmarks the same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

// ------------------------------------------------------------------------------------------
// Frame headers

/// 1000 encoded headers of the mix a capture holds: mostly short payloads, some 16-bit and a
/// few 64-bit lengths, client ones masked.
fn headers() -> Vec<u8> {
    let mut rng = Rng(7);
    let mut out = Vec::new();
    for i in 0..1000u64 {
        let len = match i % 10 {
            0..=6 => rng.next() % 126,
            7 | 8 => 126 + rng.next() % 60_000,
            _ => 70_000 + rng.next() % 100_000,
        };
        let h = FrameHeader {
            fin: true,
            rsv: if i % 2 == 0 { 0b100 } else { 0 },
            opcode: 1 + (i % 2) as u8,
            mask: (i % 3 == 0).then(|| (rng.next() as u32).to_be_bytes()),
            payload_len: len,
            header_len: 0,
        };
        encode_header(&h, &mut out);
    }
    out
}

#[bench]
fn frame_header_parse(b: Bencher) {
    let bytes = headers();
    b.counter(ItemsCount::new(1000usize)).bench(|| {
        let mut at = 0;
        let mut total = 0u64;
        while let Some(rest) = bytes.get(at..).filter(|r| !r.is_empty()) {
            match parse_header(black_box(rest)) {
                Ok(h) => {
                    total = total.wrapping_add(h.payload_len);
                    at += usize::from(h.header_len);
                }
                Err(_) => break,
            }
        }
        total
    });
}

// ------------------------------------------------------------------------------------------
// Unmasking

const UNMASK_SIZES: [usize; 4] = [125, 1448, 64 << 10, 1 << 20];

#[bench(args = UNMASK_SIZES)]
fn unmask_fast(b: Bencher, len: usize) {
    let mut buf: Vec<u8> = (0..len).map(|i| i as u8).collect();
    b.counter(BytesCount::new(len))
        .bench_local(|| unmask(black_box(&mut buf), [0x37, 0xfa, 0x21, 0x3d], 1));
}

#[bench(args = UNMASK_SIZES)]
fn unmask_bytewise(b: Bencher, len: usize) {
    let mut buf: Vec<u8> = (0..len).map(|i| i as u8).collect();
    b.counter(BytesCount::new(len))
        .bench_local(|| unmask_naive(black_box(&mut buf), [0x37, 0xfa, 0x21, 0x3d], 1));
}

/// The ceiling for unmasking: a plain copy of the same bytes (memory bandwidth).
#[bench(args = UNMASK_SIZES)]
fn unmask_ceiling_memcpy(b: Bencher, len: usize) {
    let src: Vec<u8> = (0..len).map(|i| i as u8).collect();
    let mut dst = vec![0u8; len];
    b.counter(BytesCount::new(len))
        .bench_local(|| dst.copy_from_slice(black_box(&src)));
}

// ------------------------------------------------------------------------------------------
// Inflation

/// 2000 messages of one direction (chat/market-data-like JSON, 40 B to 12 KB) compressed with
/// context takeover at level 6, as (plaintext length, compressed bytes without the tail).
fn compressed_messages() -> (Vec<(usize, Vec<u8>)>, usize) {
    let mut rng = Rng(42);
    let mut c = Compress::new(Compression::new(6), false);
    let mut msgs = Vec::new();
    let mut plain_total = 0;
    for i in 0..2000u64 {
        let items = 1 + (rng.next() % 40) as usize * usize::from(i % 7 == 0) * 4;
        let mut m = String::from("{\"type\":\"update\",\"seq\":");
        m.push_str(&i.to_string());
        m.push_str(",\"items\":[");
        for j in 0..items {
            let price = rng.next() % 100_000;
            let qty = rng.next() % 1000;
            if j > 0 {
                m.push(',');
            }
            m.push_str(&format!(
                "{{\"symbol\":\"SYM{}\",\"price\":{}.{:02},\"qty\":{qty},\"side\":\"{}\"}}",
                rng.next() % 50,
                price / 100,
                price % 100,
                if qty.is_multiple_of(2) { "buy" } else { "sell" }
            ));
        }
        m.push_str("]}");
        let plain = m.into_bytes();
        let mut out = Vec::with_capacity(plain.len() + 64);
        let mut pos = 0;
        loop {
            out.reserve(1024);
            let before = c.total_in();
            if c.compress_vec(&plain[pos..], &mut out, FlushCompress::Sync)
                .is_err()
            {
                break;
            }
            pos += (c.total_in() - before) as usize;
            if pos == plain.len() && out.len() < out.capacity() {
                break;
            }
        }
        if out.ends_with(&[0, 0, 0xff, 0xff]) {
            out.truncate(out.len() - 4);
        }
        plain_total += plain.len();
        msgs.push((plain.len(), out));
    }
    (msgs, plain_total)
}

/// Our inflater over the whole direction (counter: decoded bytes).
#[bench]
fn inflate_wsinspect(b: Bencher) {
    let (msgs, plain) = compressed_messages();
    let mut out = Vec::with_capacity(1 << 16);
    b.counter(BytesCount::new(plain)).bench_local(|| {
        let mut inf = Inflater::new(true);
        let mut total = 0u64;
        for (_, m) in &msgs {
            out.clear();
            if let Ok(r) = inf.inflate(m, &mut out, 16 << 20) {
                total += r.len;
            }
        }
        total
    });
}

/// zlib-rs through flate2, raw: the same messages, tail appended, one `decompress_vec` each
/// into a buffer already large enough (the least work any caller can do).
#[bench]
fn inflate_zlib_rs_raw(b: Bencher) {
    let (msgs, plain) = compressed_messages();
    let with_tail: Vec<(usize, Vec<u8>)> = msgs
        .iter()
        .map(|(n, m)| {
            let mut v = m.clone();
            v.extend_from_slice(&[0, 0, 0xff, 0xff]);
            (*n, v)
        })
        .collect();
    let mut out = Vec::with_capacity(1 << 20);
    b.counter(BytesCount::new(plain)).bench_local(|| {
        let mut d = Decompress::new(false);
        let mut total = 0u64;
        for (n, m) in &with_tail {
            out.clear();
            out.reserve(n + 64);
            if d.decompress_vec(m, &mut out, FlushDecompress::Sync).is_ok() {
                total += out.len() as u64;
            }
        }
        total
    });
}

// ------------------------------------------------------------------------------------------
// TCP reassembly

fn addr(s: &str) -> SocketAddr {
    s.parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 1)))
}

/// 1000 in-order full segments (1448 bytes) of one direction after a handshake, each with an
/// acknowledgment, through `TcpConn::segment` (counter: segments).
#[bench]
fn reassembly_in_order(b: Bencher) {
    const SEGS: usize = 1000;
    const MSS: usize = 1448;
    let payload: Vec<u8> = (0..MSS).map(|i| i as u8).collect();
    let (cl, sv) = (addr("10.1.2.3:40000"), addr("10.0.0.1:8080"));
    let pkt = |src, dst, seq: u32, ack: u32, flags: u8, payload| TcpPacket {
        src,
        dst,
        seq,
        ack,
        flags: TcpFlags(flags),
        window: 1000,
        ttl: 64,
        ip_id: Some(1),
        payload,
        missing: 0,
    };
    let limits = Limits::default();
    b.counter(ItemsCount::new(SEGS)).bench_local(|| {
        let syn = pkt(cl, sv, 1000, 0, TcpFlags::SYN, &[][..]);
        let mut conn = TcpConn::new(&syn, &limits);
        let mut bytes = 0usize;
        let mut out = |ev: wsinspect::tcp::StreamEvent<'_>| {
            if let wsinspect::tcp::StreamEvent::Data { bytes: b, .. } = ev {
                bytes += b.len();
            }
        };
        conn.segment(Ts(0), &syn, &mut out);
        let ack = TcpFlags::ACK;
        conn.segment(
            Ts(1),
            &pkt(sv, cl, 5000, 1001, TcpFlags::SYN | ack, &[][..]),
            &mut out,
        );
        for i in 0..SEGS {
            let seq = 1001u32.wrapping_add((i * MSS) as u32);
            conn.segment(
                Ts(2 + i as i64),
                &pkt(cl, sv, seq, 5001, ack, &payload[..]),
                &mut out,
            );
        }
        bytes
    });
}
