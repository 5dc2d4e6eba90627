//! `--json-memory`: past its cap the JSON document moves records of open connections to a
//! temporary file, and the document stays the same byte for byte. Checked on real captures
//! (answered and unanswered pings, frames, anomalies, a wss:// capture with its key log),
//! compact and indented, with every record moved, some, or none, on one thread and two; the
//! held bytes are watched after every event.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;
use wsinspect::config::{Config, PayloadMode};
use wsinspect::event::Event;
use wsinspect::output::json::{DEFAULT_MEMORY_CAP, JsonSink};
use wsinspect::sink::{CaptureSummary, EventSink};

use crate::util::{corpus, run_sharded, sample, wsinspect};

/// A JSON sink whose held bytes are checked against its cap after every event.
struct Watched<W: Write> {
    inner: JsonSink<W>,
    cap: u64,
    peak_held: u64,
    peak_disk: u64,
}

impl<W: Write> EventSink for Watched<W> {
    fn event(&mut self, ev: Event) -> io::Result<()> {
        self.inner.event(ev)?;
        let held = self.inner.held_bytes();
        assert!(held <= self.cap, "{held} bytes held, cap {}", self.cap);
        self.peak_held = self.peak_held.max(held);
        self.peak_disk = self.peak_disk.max(self.inner.spool_disk_bytes());
        Ok(())
    }

    fn finish(&mut self, summary: &CaptureSummary) -> io::Result<()> {
        self.inner.finish(summary)
    }
}

/// What one run wrote and what its sink did.
struct Run {
    doc: Vec<u8>,
    spooled: u64,
    peak_held: u64,
    peak_disk: u64,
    disk_at_end: u64,
}

fn run(path: &Path, cfg: &Config, pretty: bool, cap: u64, threads: usize) -> Run {
    let mut doc = Vec::new();
    let sink = Watched {
        inner: JsonSink::with_memory(&mut doc, cfg.frames, pretty, cap),
        cap,
        peak_held: 0,
        peak_disk: 0,
    };
    let sink = run_sharded(path, cfg, threads, sink);
    let (spooled, disk_at_end) = (sink.inner.spooled_records(), sink.inner.spool_disk_bytes());
    Run {
        spooled,
        peak_held: sink.peak_held,
        peak_disk: sink.peak_disk,
        disk_at_end,
        doc,
    }
}

/// Records the document lists: what the sink held until each connection ended.
fn records(doc: &[u8], frames: bool) -> u64 {
    let doc: Value = serde_json::from_slice(doc).expect("the document is JSON");
    let mut lists = vec!["messages", "pings", "unmatched_pongs", "anomalies"];
    if frames {
        lists.push("frames");
    }
    let conns = doc["connections"].as_array().expect("connections");
    conns
        .iter()
        .flat_map(|c| {
            lists
                .iter()
                .map(move |l| c[*l].as_array().map_or(0, Vec::len))
        })
        .sum::<usize>() as u64
}

/// Captures with what each exercises; a key log for wss://.
fn captures() -> Vec<(PathBuf, Option<PathBuf>)> {
    vec![
        // A ping answered by its pong, after the ping was spooled when the cap is 0.
        (sample("heartbeat-timeout.pcap"), None),
        // Deflate with context takeover: 15 messages and an answered ping.
        (sample("node-deflate-takeover.pcap"), None),
        (
            sample("wss-node-tls13-aes256-deflate.pcap"),
            Some(sample("wss-node-tls13-aes256-deflate.keys")),
        ),
        // Two connections, 144 messages, 7 pings never answered.
        (corpus("zeek/wstunnel-ssh.pcap"), None),
        // Five failed upgrades on one connection: 17 anomalies.
        (
            corpus("scapy-pr4579/websocket_invalid_handshakes.pcap"),
            None,
        ),
    ]
}

/// A cap that a few records exceed: lists end up part spooled, part in memory.
const SMALL_CAP: u64 = 1500;

#[test]
fn the_document_is_the_same_whatever_was_spooled() {
    let mut mixed = 0;
    for (path, keys) in captures() {
        for frames in [false, true] {
            for payloads in [PayloadMode::Preview, PayloadMode::Full] {
                let mut cfg = Config {
                    frames,
                    payloads,
                    ..Config::default()
                };
                if let Some(keys) = &keys {
                    cfg.keylog.add(&std::fs::read(keys).expect("key log"));
                }
                for pretty in [false, true] {
                    let what = format!(
                        "{} frames {frames} {payloads:?} pretty {pretty}",
                        path.display()
                    );
                    let whole = run(&path, &cfg, pretty, DEFAULT_MEMORY_CAP, 1);
                    let total = records(&whole.doc, frames);
                    assert!(total > 0, "{what}: no records to spool");
                    assert_eq!(whole.spooled, 0, "{what}: spooled under the default cap");
                    for (cap, threads) in [(0, 1), (0, 2), (SMALL_CAP, 1)] {
                        let r = run(&path, &cfg, pretty, cap, threads);
                        assert!(
                            r.doc == whole.doc,
                            "{what}: cap {cap}, {threads} threads: the document differs\n{}",
                            first_difference(&whole.doc, &r.doc)
                        );
                        if cap == 0 {
                            // Every record, at once: nothing is held between events.
                            assert_eq!(r.spooled, total, "{what}");
                            assert_eq!(r.peak_held, 0, "{what}");
                        } else if r.spooled > 0 && r.spooled < total {
                            mixed += 1;
                        }
                        assert_eq!(r.peak_disk > 0, r.spooled > 0, "{what}: cap {cap}");
                        assert_eq!(r.disk_at_end, 0, "{what}: cap {cap}: spool not emptied");
                    }
                }
            }
        }
    }
    // Lists that are part file, part memory were put together in most runs at the small cap.
    assert!(
        mixed >= 20,
        "only {mixed} runs mixed spooled and held records"
    );
}

#[test]
fn held_records_stay_under_the_cap_while_a_capture_runs() {
    let path = corpus("zeek/wstunnel-ssh.pcap");
    let cfg = Config {
        frames: true,
        payloads: PayloadMode::Full,
        ..Config::default()
    };
    let cap = 4096;
    // `Watched` fails the test if the held bytes pass the cap after any event.
    let r = run(&path, &cfg, false, cap, 1);
    let total = records(&r.doc, true);
    assert!(
        r.spooled > total / 2 && r.spooled < total,
        "{} of {total} records spooled",
        r.spooled
    );
    // The cap is used, not just respected: spooling stops at three quarters of it.
    assert!(r.peak_held > cap / 2, "peak {} bytes held", r.peak_held);
    assert!(r.peak_disk > 0 && r.disk_at_end == 0);
}

#[test]
fn json_memory_0_on_the_command_line_writes_the_same_document() {
    let capture = sample("node-deflate-takeover.pcap");
    let capture = capture.to_str().expect("path");
    for extra in [
        &["--pretty", "--frames", "--payloads", "full"][..],
        &["--payloads", "none"][..],
    ] {
        let args = |cap: Option<&'static str>| {
            let mut args = vec![capture, "--json", "-q"];
            args.extend_from_slice(extra);
            if let Some(cap) = cap {
                args.extend(["--json-memory", cap]);
            }
            args
        };
        let whole = wsinspect(&args(None));
        let spooled = wsinspect(&args(Some("0")));
        assert!(whole.status.success() && spooled.status.success());
        assert!(records(&whole.stdout, extra.contains(&"--frames")) > 0);
        assert!(
            spooled.stdout == whole.stdout,
            "{extra:?}\n{}",
            first_difference(&whole.stdout, &spooled.stdout)
        );
    }
}

#[test]
fn a_spool_that_cannot_be_created_is_a_clean_error() {
    let missing = std::env::temp_dir().join("wsinspect-no-such-dir/for-the-spool");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wsinspect"))
        .args([
            sample("node-basic.pcap").to_str().expect("path"),
            "--json",
            "--json-memory",
            "0",
        ])
        .env("TMPDIR", &missing)
        .output()
        .expect("run wsinspect");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("temporary file"), "{err}");
    assert!(err.contains("wsinspect-no-such-dir"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // With room in memory the same run needs no file at all.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wsinspect"))
        .args([sample("node-basic.pcap").to_str().expect("path"), "--json"])
        .env("TMPDIR", &missing)
        .output()
        .expect("run wsinspect");
    assert!(out.status.success());
}

/// Where two documents first differ, with some context (a compact document is one line).
fn first_difference(a: &[u8], b: &[u8]) -> String {
    let at = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let around = |d: &[u8]| {
        String::from_utf8_lossy(&d[at.saturating_sub(80)..(at + 80).min(d.len())]).into_owned()
    };
    format!(
        "lengths {} and {}, first difference at byte {at}:\n  held:    {}\n  spooled: {}",
        a.len(),
        b.len(),
        around(a),
        around(b)
    )
}
