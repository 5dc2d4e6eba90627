//! Inflates the messages a wsinspect build with `bench/floor/measure.patch` recorded
//! (`WSI_FLOOR_DUMP=FILE`), with zlib-rs through flate2 and nothing else: each message in one
//! `decompress_vec` call into a buffer already large enough, with its direction's own state under
//! context takeover (dropped after the direction's last message, as wsinspect drops it at FIN)
//! and one reset state otherwise. Prints the time in capture order and with the messages grouped
//! by direction (warm states; an order a streaming reader cannot use).
//!
//! Usage: replay DUMP [ROUNDS]

use std::collections::HashMap;
use std::time::Instant;

use flate2::{Decompress, FlushDecompress};

struct Message {
    dir: u64,
    takeover: bool,
    bytes: Vec<u8>,
}

fn read_dump(data: &[u8]) -> Vec<Message> {
    let mut open: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut msgs = Vec::new();
    let mut rest = data;
    while let Some((head, tail)) = rest.split_at_checked(14) {
        let dir = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        let (takeover, kind) = (head[8] == 1, head[9]);
        let len = u32::from_le_bytes(head[10..14].try_into().expect("4 bytes")) as usize;
        let Some((bytes, tail)) = tail.split_at_checked(len) else {
            break;
        };
        rest = tail;
        if kind == 0 {
            open.entry(dir).or_default().extend_from_slice(bytes);
        } else {
            let bytes = open.remove(&dir).unwrap_or_default();
            msgs.push(Message {
                dir,
                takeover,
                bytes,
            });
        }
    }
    msgs
}

fn run(msgs: &[Message], order: &[usize], last: &HashMap<u64, usize>) -> (u64, f64, usize) {
    let mut states: HashMap<u64, Decompress> = HashMap::new();
    let mut shared = Decompress::new(false);
    let mut out: Vec<u8> = Vec::with_capacity(32 << 20);
    let (mut total, mut most) = (0u64, 0usize);
    let start = Instant::now();
    for &i in order {
        let m = &msgs[i];
        let d = if m.takeover {
            states
                .entry(m.dir)
                .or_insert_with(|| Decompress::new(false))
        } else {
            shared.reset(false);
            &mut shared
        };
        out.clear();
        let mut pos = 0;
        loop {
            if out.capacity() - out.len() < 64 << 10 {
                out.reserve(1 << 20);
            }
            let (in0, out0) = (d.total_in(), out.len());
            if d.decompress_vec(&m.bytes[pos..], &mut out, FlushDecompress::Sync)
                .is_err()
            {
                break;
            }
            pos += (d.total_in() - in0) as usize;
            let stalled = out.len() == out0 && d.total_in() == in0;
            if stalled || (pos >= m.bytes.len() && out.len() < out.capacity()) {
                break;
            }
        }
        total += out.len() as u64;
        most = most.max(states.len());
        if last.get(&m.dir) == Some(&i) {
            states.remove(&m.dir);
        }
    }
    (total, start.elapsed().as_secs_f64(), most)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: replay DUMP [ROUNDS]");
    let rounds: usize = args
        .next()
        .map_or(3, |r| r.parse().expect("ROUNDS: a number"));
    let data = std::fs::read(&path).expect("cannot read the dump");
    let msgs = read_dump(&data);
    drop(data);
    let compressed: usize = msgs.iter().map(|m| m.bytes.len()).sum();
    println!(
        "{} messages, {} bytes compressed (tail included)",
        msgs.len(),
        compressed
    );
    let last: HashMap<u64, usize> = msgs.iter().enumerate().map(|(i, m)| (m.dir, i)).collect();
    let capture: Vec<usize> = (0..msgs.len()).collect();
    let mut grouped = capture.clone();
    grouped.sort_by_key(|&i| msgs[i].dir);
    for round in 1..=rounds {
        for (label, order) in [
            ("capture order", &capture),
            ("grouped by direction", &grouped),
        ] {
            let (out, secs, most) = run(&msgs, order, &last);
            println!(
                "round {round}: zlib-rs alone, {label:<20} {secs:.3} s  {:>5.0} MB/s of output ({out} bytes), at most {most} states at once",
                out as f64 / secs / 1e6
            );
        }
    }
}
