//! Damaged captures, derived from real ones: cut anywhere, bytes corrupted, snaplen-cut packets,
//! segments dropped or reordered. Nothing may panic, and what came before the damage must still
//! be reported.

use std::path::Path;

use serde_json::Value;
use wsinspect::capture::CaptureReader;
use wsinspect::config::{Config, PayloadMode};
use wsinspect::output::json::JsonSink;
use wsinspect::pipeline;

use crate::util::{connections, corpus, doc, payload_text, sample, temp_path};

/// Runs the pipeline on bytes in memory; `None` when the input is rejected outright.
fn analyse_bytes(bytes: Vec<u8>) -> Option<Value> {
    let mut reader = CaptureReader::from_reader(Box::new(std::io::Cursor::new(bytes))).ok()?;
    let mut out = Vec::new();
    let cfg = Config {
        frames: true,
        payloads: PayloadMode::Full,
        ..Config::default()
    };
    pipeline::run(
        &mut reader,
        "mem",
        cfg,
        JsonSink::new(&mut out, true, false),
    )
    .ok()?;
    Some(serde_json::from_slice(&out).expect("output is JSON"))
}

/// One classic pcap record: its 16-byte header and its packet bytes.
type Record = (Vec<u8>, Vec<u8>);

/// Classic pcap: the global header and the records.
fn records(file: &[u8]) -> (Vec<u8>, Vec<Record>) {
    assert_eq!(
        &file[..4],
        &0xa1b2_c3d4u32.to_le_bytes(),
        "little-endian µs pcap expected"
    );
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= file.len() {
        let caplen = u32::from_le_bytes(file[at + 8..at + 12].try_into().unwrap()) as usize;
        out.push((
            file[at..at + 16].to_vec(),
            file[at + 16..at + 16 + caplen].to_vec(),
        ));
        at += 16 + caplen;
    }
    (file[..24].to_vec(), out)
}

fn assemble(header: &[u8], recs: &[Record]) -> Vec<u8> {
    let mut out = header.to_vec();
    for (h, p) in recs {
        out.extend_from_slice(h);
        out.extend_from_slice(p);
    }
    out
}

#[test]
fn cut_anywhere_never_panics_and_keeps_the_start() {
    for name in [
        "zeek/two-binary-fragments.pcap",
        "evsetool/cap.pcapng",
        "zeek/oversized-close-frame.pcapng",
    ] {
        let bytes = std::fs::read(corpus(name)).unwrap();
        let whole = doc(&corpus(name));
        let total = connections(&whole)
            .iter()
            .map(|c| c["messages"].as_array().unwrap().len())
            .sum::<usize>();
        let mut last = 0;
        let step = (bytes.len() / 97).max(1);
        for cut in (0..bytes.len()).step_by(step) {
            let Some(d) = analyse_bytes(bytes[..cut].to_vec()) else {
                continue;
            };
            let n: usize = connections(&d)
                .iter()
                .map(|c| c["messages"].as_array().unwrap().len())
                .sum();
            // More of the file never means fewer messages.
            assert!(
                n >= last,
                "{name}: cut at {cut} gave {n} messages, fewer than an earlier cut ({last})"
            );
            assert!(n <= total);
            last = n;
        }
        assert_eq!(last, total, "{name}");
    }
}

#[test]
fn corrupted_bytes_never_panic() {
    let mut rng = fastrand::Rng::with_seed(6455);
    for name in [
        "samples/node-deflate-takeover.pcap",
        "samples/python-deflate.pcap",
        "zeek/fragmented-http-reply.pcap",
        "evsetool/cap.pcapng",
    ] {
        let path = if let Some(s) = name.strip_prefix("samples/") {
            sample(s)
        } else {
            corpus(name)
        };
        let bytes = std::fs::read(&path).unwrap();
        for _ in 0..150 {
            let mut b = bytes.clone();
            for _ in 0..rng.usize(1..20) {
                let i = rng.usize(24..b.len());
                b[i] = rng.u8(..);
            }
            let _ = analyse_bytes(b);
        }
    }
}

#[test]
fn snaplen_cut_packets_are_gaps_not_lies() {
    // node-basic carries a 70,000-byte message over loopback; cut every packet to 200 bytes.
    let (header, mut recs) = records(&std::fs::read(sample("node-basic.pcap")).unwrap());
    for (h, p) in &mut recs {
        if p.len() > 200 {
            p.truncate(200);
            h[8..12].copy_from_slice(&200u32.to_le_bytes());
        }
    }
    let d = analyse_bytes(assemble(&header, &recs)).expect("readable");
    let whole = connections(&doc(&sample("node-basic.pcap")));
    let c = &connections(&d)[0];
    assert!(
        !c["tcp"]["gaps"].as_array().unwrap().is_empty(),
        "snaplen cuts are gaps"
    );
    // The close handshake fits in 200 bytes and is still decoded.
    assert_eq!(c["close"], whole[0]["close"]);
    // Every message is either exact or says it is incomplete: never wrong bytes.
    let full: Vec<&Value> = whole[0]["messages"].as_array().unwrap().iter().collect();
    for m in c["messages"].as_array().unwrap() {
        match m["status"].as_str().unwrap() {
            "complete" => assert!(
                full.iter().any(|f| f["payload"] == m["payload"]),
                "a complete message must be exact: {m}"
            ),
            "incomplete" => assert!(m.get("payload").is_none()),
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        c["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["status"] == "incomplete")
    );
}

/// The index of the packet carrying the n-th client→server data frame after the handshake.
fn data_packet(recs: &[Record], port: u16, skip: usize) -> usize {
    let mut seen = 0;
    for (i, (_, p)) in recs.iter().enumerate() {
        let Ok(tp) = wsinspect::net::decode(1, p) else {
            continue;
        };
        // A masked text or binary frame at the start of the segment.
        let frame_start = tp.payload.len() > 2
            && matches!(tp.payload[0] & 0x0f, 1 | 2)
            && tp.payload[1] & 0x80 != 0;
        if tp.dst.port() == port && frame_start {
            if seen == skip {
                return i;
            }
            seen += 1;
        }
    }
    panic!("no such packet");
}

/// A sample as analysed whole, and its records with the `skip`-th client data segment found.
fn sample_with_segment(name: &str, skip: usize) -> (Value, Vec<u8>, Vec<Record>, usize) {
    let (header, recs) = records(&std::fs::read(sample(name)).unwrap());
    let whole = doc(&sample(name));
    let server = connections(&whole)[0]["server"]
        .as_str()
        .unwrap()
        .to_owned();
    let port: u16 = server.rsplit(':').next().unwrap().parse().unwrap();
    let i = data_packet(&recs, port, skip);
    (whole, header, recs, i)
}

#[test]
fn a_lost_segment_costs_only_what_it_carried() {
    // Uncompressed: dropping one data segment loses that message only.
    let (whole, header, mut recs, i) = sample_with_segment("python-basic.pcap", 2);
    let whole = connections(&whole);
    recs.remove(i);
    let d = analyse_bytes(assemble(&header, &recs)).expect("readable");
    let c = &connections(&d)[0];
    assert_eq!(
        c["tcp"]["gaps"].as_array().unwrap().len(),
        1,
        "{}",
        c["tcp"]
    );
    let texts = |c: &Value| {
        c["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["status"] == "complete")
            .map(payload_text)
            .collect::<Vec<_>>()
    };
    let (before, after) = (texts(&whole[0]), texts(c));
    assert!(
        after.len() < before.len() && after.len() + 2 >= before.len(),
        "{} of {} survive",
        after.len(),
        before.len()
    );
    assert!(after.iter().all(|t| before.contains(t)), "nothing invented");
    assert_eq!(
        c["close"], whole[0]["close"],
        "the close handshake after the loss is decoded"
    );
}

#[test]
fn a_lost_segment_with_context_takeover_is_never_guessed() {
    let (whole, header, mut recs, i) = sample_with_segment("node-deflate-takeover.pcap", 1);
    let whole = connections(&whole);
    recs.remove(i);
    let d = analyse_bytes(assemble(&header, &recs)).expect("readable");
    let c = &connections(&d)[0];
    let originals: Vec<String> = whole[0]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(payload_text)
        .collect();
    let mut undecodable = 0;
    for m in c["messages"].as_array().unwrap() {
        match m["status"].as_str().unwrap() {
            "complete" => assert!(originals.contains(&payload_text(m)), "wrong plaintext: {m}"),
            "undecodable" | "incomplete" => undecodable += 1,
            other => panic!("status {other}"),
        }
    }
    assert!(
        undecodable > 0,
        "later compressed messages need the lost history"
    );
}

#[test]
fn reordered_segments_reassemble_the_same() {
    let (b, header, mut recs, i) = sample_with_segment("node-basic.pcap", 1);
    recs.swap(i, i + 1);
    let a = analyse_bytes(assemble(&header, &recs)).expect("readable");
    let msgs = |d: &Value| {
        connections(d)[0]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["dir"].clone(), m["len"].clone(), m["payload"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(msgs(&a), msgs(&b));
}

#[test]
fn a_garbage_tail_keeps_the_good_part() {
    let mut bytes = std::fs::read(sample("ipv6.pcap")).unwrap();
    let good = doc(&sample("ipv6.pcap"));
    bytes.extend(std::iter::repeat_n(0xA5u8, 5000));
    let path = temp_path("garbage-tail.pcap");
    std::fs::write(&path, &bytes).unwrap();
    let d = doc(Path::new(&path));
    std::fs::remove_file(&path).ok();
    assert_eq!(d["capture"]["truncated"], true);
    assert_eq!(
        connections(&d)[0]["messages"],
        connections(&good)[0]["messages"]
    );
}

#[test]
fn a_tiny_flow_cap_evicts_and_still_reports() {
    use wsinspect::config::Limits;
    // 98 TCP streams through a table of 4 flows: evictions happen and are counted; the one
    // WebSocket connection is still found (whole, or in pieces picked up again mid-stream).
    let cfg = Config {
        limits: Limits {
            max_flows: 4,
            ..Limits::default()
        },
        ..Config::default()
    };
    let d = crate::util::doc_with(&corpus("arkime/arkime_synthetic.pcap"), cfg);
    assert!(d["capture"]["flows_evicted"].as_u64().unwrap() > 0);
    let conns = connections(&d);
    assert!(!conns.is_empty());
    let whole = connections(&doc(&corpus("arkime/arkime_synthetic.pcap")));
    assert_eq!(whole.len(), 1);
    assert!(
        conns.iter().all(|c| c["server"] == whole[0]["server"]),
        "only the WebSocket flow is reported"
    );
}
