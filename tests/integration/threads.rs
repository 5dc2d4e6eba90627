//! `--threads N` gives the output of one thread, byte for byte (text, JSON, NDJSON): on every
//! sample, on public corpus captures with many streams and large clock jumps, and on a capture
//! that plays every Ethernet sample at once, so that dozens of connections open, close, time out
//! and get swept while spread over several workers.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use wsinspect::capture::CaptureReader;
use wsinspect::config::{Config, PayloadMode};
use wsinspect::output::json::JsonSink;
use wsinspect::output::ndjson::NdjsonSink;
use wsinspect::output::select::{SelectSink, Selection};
use wsinspect::output::text::TextSink;
use wsinspect::query::Query;

use crate::util::{corpus, run_sharded, sample, temp_path, wsinspect};

/// Text summary, JSON document and NDJSON stream of a run.
fn outputs(path: &Path, cfg: &Config, threads: usize) -> [Vec<u8>; 3] {
    let (mut text, mut json, mut ndjson) = (Vec::new(), Vec::new(), Vec::new());
    run_sharded(path, cfg, threads, TextSink::with_color(&mut text, false));
    run_sharded(
        path,
        cfg,
        threads,
        JsonSink::new(&mut json, cfg.frames, true),
    );
    run_sharded(path, cfg, threads, NdjsonSink::new(&mut ndjson, false));
    [text, json, ndjson]
}

/// Asserts that 2, 3 and 4 threads write what one thread writes; returns the one-thread NDJSON.
fn assert_same(path: &Path, cfg: &Config) -> Vec<u8> {
    let [text, json, ndjson] = outputs(path, cfg, 1);
    for threads in 2..=4 {
        let [t, j, n] = outputs(path, cfg, threads);
        for (what, one, many) in [
            ("text", &text, &t),
            ("JSON", &json, &j),
            ("NDJSON", &ndjson, &n),
        ] {
            assert!(
                one == many,
                "{}: {what} with {threads} threads differs from one thread:\n{}",
                path.display(),
                first_difference(one, many)
            );
        }
    }
    ndjson
}

/// The first line that differs, for a readable failure.
fn first_difference(a: &[u8], b: &[u8]) -> String {
    let (a, b) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("line {}:\n  1 thread:  {x}\n  N threads: {y}", i + 1);
        }
    }
    format!("lengths {} and {}", a.len(), b.len())
}

/// Every event line of an NDJSON stream, parsed.
fn events(ndjson: &[u8]) -> Vec<serde_json::Value> {
    ndjson
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("NDJSON line"))
        .collect()
}

fn full() -> Config {
    Config {
        frames: true,
        payloads: PayloadMode::Full,
        ..Config::default()
    }
}

/// Every capture in samples/, with its key log when it has one.
fn samples() -> Vec<(PathBuf, Option<PathBuf>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(sample("")).expect("samples/") {
        let path = entry.expect("entry").path();
        let name = path.to_string_lossy().into_owned();
        if !(name.ends_with(".pcap") || name.ends_with(".pcapng")) {
            continue;
        }
        let keys = path.with_extension("keys");
        out.push((path, keys.exists().then_some(keys)));
    }
    out.sort();
    out
}

#[test]
fn every_sample_gives_the_same_output_with_more_threads() {
    let samples = samples();
    assert!(samples.len() >= 20, "samples/ lost its captures");
    let mut connections = 0;
    for (path, keys) in &samples {
        let mut cfg = full();
        if let Some(keys) = keys {
            cfg.keylog.add(&std::fs::read(keys).expect("key log"));
        }
        let ndjson = assert_same(path, &cfg);
        connections += events(&ndjson)
            .iter()
            .filter(|e| e["event"] == "connection_open")
            .count();
        // Default settings too: previews instead of payloads, no frames.
        assert_same(path, &Config::default());
    }
    assert!(connections >= samples.len(), "{connections} connections");
}

#[test]
fn corpus_captures_with_many_streams_and_clock_jumps_give_the_same_output() {
    for name in [
        // 98 TCP streams and a 78-million-second jump: idle flows are swept in every worker.
        "arkime/arkime_synthetic.pcap",
        // 98 TCP streams, lost segments, a 184-million-second jump.
        "ndpi/1kxun.pcap",
        // Two connections, one captured twice over.
        "evsetool/cap.pcapng",
        // Two connections one after the other.
        "zeek/wstunnel-ssh.pcap",
        // GTP-U in VLAN.
        "ndpi/false_positives.pcapng",
    ] {
        assert_same(&corpus(name), &full());
    }
}

/// Writes a nanosecond pcap that plays every Ethernet sample at once, each starting `stagger_ns`
/// after the previous one, and returns its path and the key log of the wss samples.
fn all_samples_at_once(stagger_ns: i64) -> (PathBuf, Vec<u8>) {
    let mut packets = Vec::new();
    let mut keylog = Vec::new();
    let mut played = 0i64;
    for (path, keys) in samples() {
        let mut reader = CaptureReader::open(&path).expect("sample");
        if reader.link_types() != [1] {
            continue;
        }
        let mut first = None;
        while let Some(p) = reader.next_packet().expect("sample packet") {
            let first = *first.get_or_insert(p.ts.0);
            let ts = 1_700_000_000_000_000_000 + played * stagger_ns + (p.ts.0 - first);
            packets.push((ts, p.data.to_vec()));
        }
        if let Some(keys) = keys {
            keylog.extend(std::fs::read(keys).expect("key log"));
            keylog.push(b'\n');
        }
        played += 1;
    }
    assert!(played >= 20, "only {played} Ethernet samples");
    // Stable: each sample's packets keep their order.
    packets.sort_by_key(|(ts, _)| *ts);
    let mut pcap = Vec::new();
    pcap.extend(0xa1b2_3c4d_u32.to_le_bytes());
    pcap.extend(2u16.to_le_bytes());
    pcap.extend(4u16.to_le_bytes());
    pcap.extend([0u8; 8]);
    pcap.extend(262_144u32.to_le_bytes());
    pcap.extend(1u32.to_le_bytes());
    for (ts, data) in &packets {
        let len = u32::try_from(data.len()).expect("packet length");
        let secs = u32::try_from(ts / 1_000_000_000).expect("seconds");
        let nanos = u32::try_from(ts % 1_000_000_000).expect("nanoseconds");
        for field in [secs, nanos, len, len] {
            pcap.extend(field.to_le_bytes());
        }
        pcap.extend(data);
    }
    let path = temp_path(&format!("all-samples-{stagger_ns}.pcap"));
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(&pcap))
        .expect("write the merged capture");
    (path, keylog)
}

#[test]
fn concurrent_connections_over_many_workers_give_the_same_output() {
    // All at once (ports may collide between samples: a reused flow stays in one worker), and
    // staggered by 700 ms so that sweeps end closed flows between other flows' packets.
    for stagger_ns in [0, 700_000_000] {
        let (path, keylog) = all_samples_at_once(stagger_ns);
        let mut cfg = full();
        cfg.keylog.add(&keylog);
        let ndjson = assert_same(&path, &cfg);
        let evs = events(&ndjson);
        let opened = evs
            .iter()
            .filter(|e| e["event"] == "connection_open")
            .count();
        assert!(opened >= 25, "{opened} connections");
        // Ids in order of discovery, as one pipeline numbers them.
        let ids: Vec<u64> = evs
            .iter()
            .filter(|e| e["event"] == "connection_open")
            .filter_map(|e| e["conn"].as_u64())
            .collect();
        assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
        // A short idle timeout: silent flows end in sweeps, in whichever worker holds them.
        let mut short = cfg.clone();
        short.limits.idle_timeout_ns = 1_000_000_000;
        let ndjson = assert_same(&path, &short);
        assert!(
            events(&ndjson)
                .iter()
                .any(|e| e["event"] == "connection_end" && e["ended_by"] == "idle_timeout"),
            "no connection timed out"
        );
        // A selection after the merge: filtered JSON is the same too.
        for threads in [1, 3] {
            let sel = Selection {
                predicate: Some(Box::new(Query::parse("-verdict:clean").expect("query"))),
                ..Selection::default()
            };
            let mut out = Vec::new();
            run_sharded(
                &path,
                &cfg,
                threads,
                SelectSink::new(JsonSink::new(&mut out, true, false), sel),
            );
            let doc: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
            let n = doc["connections"].as_array().map_or(0, Vec::len);
            assert!(n > 0 && n < opened, "{n} of {opened} selected");
        }
        std::fs::remove_file(&path).ok();
    }
}

#[test]
fn the_threads_option_keeps_the_output_and_refuses_zero() {
    let (path, keylog) = all_samples_at_once(300_000_000);
    let keys = temp_path("all-samples.keys");
    std::fs::write(&keys, &keylog).expect("write keys");
    let (path_s, keys_s) = (path.to_str().expect("path"), keys.to_str().expect("path"));
    for args in [
        vec!["--no-tui", "--color", "never"],
        vec!["--ndjson", "--frames", "--filter", "anomaly"],
    ] {
        let mut one = vec![path_s, "--keylog", keys_s, "--threads", "1"];
        one.extend(&args);
        let mut two = vec![path_s, "--keylog", keys_s, "--threads", "2"];
        two.extend(&args);
        let (a, b) = (wsinspect(&one), wsinspect(&two));
        assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
        assert!(!a.stdout.is_empty());
        assert_eq!(a.stdout, b.stdout, "{args:?}");
        assert_eq!(a.status.code(), b.status.code());
    }
    let zero = wsinspect(&[path_s, "--threads", "0"]);
    assert_eq!(zero.status.code(), Some(2));
    std::fs::remove_file(&path).ok();
    std::fs::remove_file(&keys).ok();
}
