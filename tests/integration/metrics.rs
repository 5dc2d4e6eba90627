//! Prometheus metrics: counted from real captures and compared with what the peers logged, and
//! served over HTTP in the exposition format.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;

use serde_json::Value;
use wsinspect::analysis::AnalysisOptions;
use wsinspect::capture::CaptureReader;
use wsinspect::config::Config;
use wsinspect::event::Event;
use wsinspect::output::metrics::{self, Metrics, MetricsSink};
use wsinspect::pipeline;

use crate::util::sample;

/// `series -> value` from the text exposition (`name{labels} value`).
fn parse(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn scrape(file: &str) -> HashMap<String, f64> {
    let path = sample(file);
    let mut reader = CaptureReader::open(&path).expect("open");
    let m = Metrics::new();
    pipeline::run_with(
        &mut reader,
        file,
        Config::default(),
        AnalysisOptions::default(),
        MetricsSink::new(Vec::<Event>::new(), m.clone()),
    )
    .expect("run");
    parse(&m.render())
}

fn truth(file: &str) -> Value {
    let path = sample(&file.replace(".pcap", ".truth.json"));
    serde_json::from_slice(&std::fs::read(path).expect("truth")).expect("JSON")
}

#[test]
fn counters_match_what_the_peers_sent_and_saw() {
    // Captures with one leg per connection (no proxy), whose peers both kept a log.
    for file in [
        "node-basic.pcap",
        "app-close-codes.pcap",
        "python-deflate.pcap",
        "node-deflate-takeover.pcap",
        "mixed-node-client-python-server.pcap",
        "server-sigkill.pcap",
    ] {
        let got = scrape(file);
        let t = truth(file);
        let conns = t["connections"].as_array().expect("connections");
        let mut want: HashMap<String, f64> = HashMap::new();
        for c in conns {
            for (side, dir) in [("client", "c2s"), ("server", "s2c")] {
                for msg in c[side]["sent"].as_array().into_iter().flatten() {
                    let ty = msg["type"].as_str().expect("type");
                    let labels = format!("{{dir=\"{dir}\",type=\"{ty}\"}}");
                    *want
                        .entry(format!("wsinspect_messages_total{labels}"))
                        .or_default() += 1.0;
                    *want
                        .entry(format!("wsinspect_message_bytes_total{labels}"))
                        .or_default() += msg["len"].as_f64().expect("len");
                }
                if let Some(code) = c[side]["close"]["code"].as_u64() {
                    *want
                        .entry(format!(
                            "wsinspect_close_observed_total{{side=\"{side}\",code=\"{code}\"}}"
                        ))
                        .or_default() += 1.0;
                }
            }
        }
        assert!(!want.is_empty(), "{file}: the truth has messages");
        for (series, value) in &want {
            assert_eq!(got.get(series), Some(value), "{file}: {series}");
        }
        let ended: f64 = got
            .iter()
            .filter(|(k, _)| k.starts_with("wsinspect_connections_ended_total"))
            .map(|(_, v)| v)
            .sum();
        assert_eq!(ended, conns.len() as f64, "{file}");
        assert_eq!(got.get("wsinspect_connections_open"), Some(&0.0), "{file}");
        assert_eq!(
            got.get("wsinspect_connection_duration_seconds_count"),
            Some(&(conns.len() as f64)),
            "{file}"
        );
    }
}

#[test]
fn termination_kinds_and_rtts_are_counted() {
    let got = scrape("server-sigkill.pcap");
    assert!(
        got.keys()
            .any(|k| k.starts_with("wsinspect_connections_ended_total{kind=\"rst")),
        "{got:?}"
    );
    assert_eq!(
        got.get("wsinspect_close_observed_total{side=\"client\",code=\"1006\"}"),
        Some(&1.0)
    );
    let basic = scrape("node-basic.pcap");
    // One ping, answered: one RTT observation of a few milliseconds.
    assert_eq!(basic.get("wsinspect_ping_rtt_seconds_count"), Some(&1.0));
    let rtt = basic["wsinspect_ping_rtt_seconds_sum"];
    assert!(rtt > 0.0 && rtt < 1.0, "{rtt}");
    assert_eq!(basic.get("wsinspect_pings_total{dir=\"c2s\"}"), Some(&1.0));
}

fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

#[test]
fn served_over_http() {
    let m = Metrics::new();
    m.capture_totals(5, 1, 0);
    let (addr, _thread) =
        metrics::serve("127.0.0.1:0".parse().expect("addr"), m.clone()).expect("serve");
    let ok = get(addr, "/metrics");
    assert!(
        ok.starts_with("HTTP/1.1 200") || ok.starts_with("HTTP/1.0 200"),
        "{ok}"
    );
    assert!(ok.contains("application/openmetrics-text"), "{ok}");
    assert!(ok.contains("wsinspect_capture_packets_total 5"), "{ok}");
    assert!(ok.trim_end().ends_with("# EOF"), "{ok}");
    // Later counts show in the next scrape.
    m.capture_totals(9, 1, 0);
    assert!(get(addr, "/metrics").contains("wsinspect_capture_packets_total 9"));
    assert!(get(addr, "/").contains(" 404 "));
    // The port is taken now: a second server on it is a clear error.
    assert!(metrics::serve(addr, m).is_err());
}

#[test]
fn grafana_dashboard_names_only_metrics_that_exist() {
    // A family shows its `# TYPE` line once it has a series: give each one.
    let m = Metrics::new();
    for file in ["node-basic.pcap", "server-sigkill.pcap"] {
        let path = sample(file);
        let mut reader = CaptureReader::open(&path).expect("open");
        pipeline::run_with(
            &mut reader,
            file,
            Config::default(),
            AnalysisOptions::default(),
            MetricsSink::new(Vec::<Event>::new(), m.clone()),
        )
        .expect("run");
    }
    m.observe(&Event::Anomaly(wsinspect::event::AnomalyEvent {
        conn: 1,
        ts: wsinspect::types::Ts(0),
        dir: None,
        kind: "wrong_accept",
        detail: String::new(),
    }));
    m.capture_totals(1, 1, 1);
    let mut names = std::collections::BTreeSet::new();
    for line in m.render().lines() {
        let mut words = line.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
            (words.next(), words.next(), words.next(), words.next())
        {
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            for s in suffixes {
                names.insert(format!("{name}{s}"));
            }
        }
    }
    assert!(names.contains("wsinspect_connections_open"), "{names:?}");
    let dash: Value = serde_json::from_slice(
        &std::fs::read(sample("../docs/dashboards/grafana-wsinspect.json")).expect("dashboard"),
    )
    .expect("dashboard is JSON");
    let mut used = std::collections::BTreeSet::new();
    for panel in dash["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            let mut rest = expr;
            while let Some(at) = rest.find("wsinspect_") {
                let tail = &rest[at..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(tail.len());
                let name = &tail[..end];
                assert!(
                    names.contains(name),
                    "panel {}: {name} is not exposed",
                    panel["title"]
                );
                used.insert(name.to_owned());
                rest = &tail[end..];
            }
        }
    }
    assert!(
        used.len() >= 10,
        "the dashboard queries the metrics: {used:?}"
    );
}
