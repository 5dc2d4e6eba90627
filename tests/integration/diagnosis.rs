//! The analysis stage against what really happened: every sample's termination kind, who ended
//! it, the close code each side's own close event reported (from the truth files), and that the
//! verdict names the mechanism; the public corpus for kinds other tools' READMEs describe and for
//! false alarms; and the CLI switches (`--timeout`, `--fail-on`, NDJSON and text output).

use serde_json::Value;

use crate::util::{connections, corpus, doc, sample, truth_doc, truth_files, wsinspect};

fn diagnosis(conn: &Value) -> &Value {
    let d = &conn["diagnosis"];
    assert!(d.is_object(), "no diagnosis on {}", conn["id"]);
    d
}

fn truth(scenario: &str) -> Value {
    let path = sample(&format!("{scenario}.truth.json"));
    serde_json::from_slice(&std::fs::read(&path).expect("truth")).expect("truth is JSON")
}

fn by_port(conns: &[Value], port: u64) -> &Value {
    conns
        .iter()
        .find(|c| {
            c["client"]
                .as_str()
                .unwrap_or_default()
                .ends_with(&format!(":{port}"))
        })
        .unwrap_or_else(|| panic!("no connection from client port {port}"))
}

/// Every side with a log: its close event's code and `was_clean` are what we say it observed.
#[test]
fn observed_codes_match_every_truth_file() {
    let mut checked = 0;
    for (scenario, t) in truth_files() {
        let conns = connections(&truth_doc(&t));
        for tc in t["connections"].as_array().expect("connections") {
            let c = by_port(&conns, tc["client_port"].as_u64().expect("port"));
            let d = diagnosis(c);
            for (side, field) in [
                ("client", "client_observed_code"),
                ("server", "server_observed_code"),
            ] {
                let close = &tc[side]["close"];
                if tc[side].is_null() || close.is_null() {
                    continue;
                }
                let ctx = format!("{scenario} {side} (port {})", tc["client_port"]);
                assert_eq!(d[field], close["code"], "{ctx}: observed code; {d}");
                assert_eq!(d["was_clean"], close["was_clean"], "{ctx}: was_clean");
                checked += 1;
            }
            // The handshake as an endpoint with a log saw it (a proxy leg lacks one side).
            let seen = if tc["client"].is_null() {
                &tc["server"]
            } else {
                &tc["client"]
            };
            if seen["handshake"]["status"] != 101 {
                assert_eq!(d["kind"], "rejected_upgrade", "{scenario}");
                assert!(d["client_observed_code"].is_null(), "{scenario}");
            }
        }
    }
    assert!(checked >= 30, "only {checked} sides checked");
}

/// (scenario, kind, by, words the verdict must contain) for every connection of the scenario.
const EXPECT: &[(&str, &str, &str, &[&str])] = &[
    (
        "server-terminate",
        "fin_without_close",
        "server",
        &[
            "server closed the TCP connection (FIN) without a close frame",
            "client saw 1006",
        ],
    ),
    (
        "server-sigkill",
        "rst_without_close",
        "server",
        &[
            "server reset the connection (RST)",
            "killed",
            "client saw 1006",
        ],
    ),
    (
        "heartbeat-timeout",
        "fin_without_close",
        "server",
        &[
            "Heartbeat timeout",
            "ping went unanswered",
            "client saw 1006",
            "after the connection was closed",
        ],
    ),
    (
        "chromium-client",
        "fin_without_close",
        "server",
        &["browser saw 1006", "without a close frame"],
    ),
    (
        "proxy-502",
        "rejected_upgrade",
        "server",
        &["502", "proxy could not reach its backend", "nginx"],
    ),
    (
        "node-basic",
        "clean_close",
        "client",
        &["Clean close", "1000"],
    ),
    ("python-basic", "clean_close", "client", &["Clean close"]),
    ("ipv6", "clean_close", "client", &["Clean close"]),
    ("sll2-any", "clean_close", "client", &["Clean close"]),
    (
        "keepalive-then-upgrade",
        "clean_close",
        "client",
        &["Clean close"],
    ),
    (
        "mixed-node-client-python-server",
        "clean_close",
        "client",
        &["Clean close"],
    ),
    (
        "node-deflate-takeover",
        "clean_close",
        "server",
        &["server closed with 1001"],
    ),
    (
        "node-deflate-no-takeover",
        "clean_close",
        "client",
        &["client closed with 4001"],
    ),
    ("python-deflate", "clean_close", "client", &["Clean close"]),
    (
        "python-deflate-no-takeover",
        "clean_close",
        "server",
        &["server closed with 4002"],
    ),
];

#[test]
fn every_sample_gets_the_right_kind_side_and_mechanism() {
    for (scenario, kind, by, words) in EXPECT {
        let conns = connections(&doc(&sample(&format!("{scenario}.pcap"))));
        let t = truth(scenario);
        for tc in t["connections"].as_array().expect("connections") {
            let c = by_port(&conns, tc["client_port"].as_u64().expect("port"));
            let d = diagnosis(c);
            assert_eq!(d["kind"], *kind, "{scenario}: {d}");
            assert_eq!(d["by"], *by, "{scenario}: {d}");
            let verdict = d["verdict"].as_str().expect("verdict");
            for w in *words {
                assert!(verdict.contains(w), "{scenario}: {w:?} not in {verdict:?}");
            }
            assert_eq!(d["abnormal"], *kind != "clean_close", "{scenario}");
            assert!(!d["evidence"].as_array().expect("evidence").is_empty());
        }
    }
}

#[test]
fn app_close_codes_are_clean_with_the_closer_named() {
    let conns = connections(&doc(&sample("app-close-codes.pcap")));
    let got: Vec<(String, String, u64)> = conns
        .iter()
        .map(|c| {
            let d = diagnosis(c);
            assert_eq!(d["kind"], "clean_close");
            assert_eq!(d["was_clean"], true);
            (
                c["handshake"]["path"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                d["by"].as_str().unwrap_or_default().to_owned(),
                d["client_observed_code"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("/a".to_owned(), "client".to_owned(), 1001),
            ("/b".to_owned(), "server".to_owned(), 1008),
            ("/c".to_owned(), "server".to_owned(), 4401),
        ]
    );
}

#[test]
fn rejected_upgrades_name_the_status_and_the_cause() {
    let conns = connections(&doc(&sample("rejected-upgrade.pcap")));
    assert_eq!(conns.len(), 2);
    let v: Vec<&str> = conns
        .iter()
        .map(|c| diagnosis(c)["verdict"].as_str().unwrap_or_default())
        .collect();
    assert!(
        v[0].contains("403 Forbidden") && v[0].contains("refused"),
        "{}",
        v[0]
    );
    assert!(
        v[1].contains("401 Unauthorized") && v[1].contains("authentication"),
        "{}",
        v[1]
    );
}

#[test]
fn backend_1011_is_linked_across_the_proxy() {
    let conns = connections(&doc(&sample("backend-1011-behind-proxy.pcap")));
    assert_eq!(conns.len(), 2);
    let (front, back) = (&conns[0], &conns[1]);
    assert_eq!(diagnosis(front)["linked_leg"], back["id"]);
    assert_eq!(diagnosis(back)["linked_leg"], front["id"]);
    for c in [front, back] {
        let d = diagnosis(c);
        assert_eq!(d["kind"], "clean_close");
        assert_eq!(d["by"], "server");
        let v = d["verdict"].as_str().unwrap_or_default();
        assert!(
            v.contains("the backend closed 1011 first")
                && v.contains("the proxy sent close 1011 to the client"),
            "{v}"
        );
    }
}

#[test]
fn nginx_idle_timeout_without_and_with_the_user_timeout() {
    let conns = connections(&doc(&sample("nginx-idle-timeout.pcap")));
    assert_eq!(conns.len(), 2);
    // nginx is the server of the first leg and the client of the second: it sent both FINs.
    for (c, by, other) in [
        (&conns[0], "server", &conns[1]),
        (&conns[1], "client", &conns[0]),
    ] {
        let d = diagnosis(c);
        assert_eq!(d["kind"], "fin_without_close");
        assert_eq!(d["by"], by);
        assert_eq!(d["linked_leg"], other["id"]);
        let v = d["verdict"].as_str().unwrap_or_default();
        assert!(v.contains("proxy") && v.contains("both legs"), "{v}");
        assert!(v.contains("3.0 s"), "{v}");
        assert!(!v.contains("nginx proxy_read_timeout (3"), "{v}");
        let s = d["idle"]["final_silence_s"].as_f64().unwrap_or_default();
        assert!((2.9..3.2).contains(&s), "silence {s}");
    }
    let out = wsinspect(&[
        sample("nginx-idle-timeout.pcap")
            .to_str()
            .unwrap_or_default(),
        "--json",
        "--timeout",
        "nginx=3s",
    ]);
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    for c in connections(&doc) {
        let d = diagnosis(&c);
        let v = d["verdict"].as_str().unwrap_or_default();
        assert!(
            v.contains("Matches nginx proxy_read_timeout (3.0 s)"),
            "{v}"
        );
        assert_eq!(d["timeout_matches"][0]["source"], "user");
    }
    assert_eq!(doc["summary"]["by_kind"]["fin_without_close"], 2);
}

#[test]
fn heartbeat_figures() {
    let conns = connections(&doc(&sample("heartbeat-timeout.pcap")));
    let hb = &diagnosis(&conns[0])["heartbeat"];
    assert_eq!(hb["pinger"], "server");
    assert_eq!(hb["pings"], 1);
    assert_eq!(hb["unanswered"], 1);
    assert_eq!(hb["late_pongs"], 1);
    let node = connections(&doc(&sample("node-basic.pcap")));
    let hb = &diagnosis(&node[0])["heartbeat"];
    assert_eq!(hb["unanswered"], 0);
    assert!(
        hb["rtt_p50_ms"]
            .as_f64()
            .is_some_and(|r| r > 0.0 && r < 1000.0)
    );
}

#[test]
fn corpus_kinds_and_no_false_alarms() {
    let d = |name: &str| {
        let conns = connections(&doc(&corpus(name)));
        assert_eq!(conns.len(), 1, "{name}");
        diagnosis(&conns[0]).clone()
    };
    let broker = d("zeek/broker-websocket.pcap");
    assert_eq!(broker["kind"], "close_unanswered");
    assert_eq!(broker["by"], "client");
    assert_eq!(broker["client_observed_code"], 1006);
    assert_eq!(broker["server_observed_code"], 1000);
    // FIN then RST from the client, no close frame: the FIN ends it; a quick ping before the FIN
    // is not a missed heartbeat.
    let ping = d("suricata-verify/websocket-ping/input.pcap");
    assert_eq!(ping["kind"], "fin_without_close");
    assert_eq!(ping["by"], "client");
    assert!(
        !ping["verdict"]
            .as_str()
            .unwrap_or_default()
            .contains("Heartbeat")
    );
    let ev = ping["evidence"].to_string();
    let (fin, rst) = (
        ev.find("FIN from the client"),
        ev.find("RST from the client"),
    );
    assert!(fin.is_some() && rst.is_some() && fin < rst, "{ev}");
    for clean in [
        "zeek/reply-ping-separate.pcap",
        "zeek/two-binary-fragments.pcap",
        "zeek/pr5646/websocket_baseline.pcap",
        "zeek/http-websocket.pcap",
    ] {
        let dg = d(clean);
        assert_eq!(dg["kind"], "clean_close", "{clean}");
        assert_eq!(dg["abnormal"], false, "{clean}");
        assert!(dg.get("violations").is_none(), "{clean}: {dg}");
        assert!(dg.get("timeout_matches").is_none(), "{clean}");
    }
    // An empty close payload is reported as 1005 by both sides.
    assert_eq!(d("zeek/http-websocket.pcap")["client_observed_code"], 1005);
    // Unmasked client frames break RFC 6455 §5.1: ws answers WS_ERR_EXPECTED_MASK, 1002.
    let v = &ping["violations"][0];
    assert_eq!(v["kind"], "unmasked_client_frame");
    assert_eq!(v["close_code"], 1002);
    assert_eq!(v["ws_error"], "WS_ERR_EXPECTED_MASK");
}

#[test]
fn max_payload_is_flagged_with_1009() {
    let out = wsinspect(&[
        sample("node-basic.pcap").to_str().unwrap_or_default(),
        "--json",
        "--max-payload",
        "65536",
    ]);
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let c = &connections(&doc)[0];
    let big: Vec<&Value> = c["anomalies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["kind"] == "message_over_max_payload")
        .collect();
    assert_eq!(big.len(), 1, "only the 70,000-byte message");
    assert_eq!(diagnosis(c)["violations"][0]["close_code"], 1009);
    // The default (ws's 100 MiB) flags nothing.
    let c = &connections(&crate::util::doc(&sample("node-basic.pcap")))[0];
    assert!(c["anomalies"].as_array().is_some_and(|a| a.is_empty()));
}

#[test]
fn fail_on_exit_codes() {
    let run = |file: &str, what: &str| {
        wsinspect(&[sample(file).to_str().unwrap_or_default(), "--fail-on", what])
            .status
            .code()
    };
    assert_eq!(run("node-basic.pcap", "abnormal"), Some(0));
    assert_eq!(run("server-terminate.pcap", "abnormal"), Some(1));
    assert_eq!(run("server-terminate.pcap", "anomaly"), Some(0));
    let out = wsinspect(&[
        corpus("suricata-verify/websocket-ping/input.pcap")
            .to_str()
            .unwrap_or_default(),
        "--fail-on",
        "anomaly",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let out = wsinspect(&["x.pcap", "--timeout", "nginx"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a bad --timeout is a usage error"
    );
}

#[test]
fn ndjson_and_text_carry_the_diagnosis() {
    let file = sample("server-sigkill.pcap");
    let out = wsinspect(&[file.to_str().unwrap_or_default(), "--ndjson"]);
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let end = lines
        .iter()
        .find(|l| l["event"] == "connection_end")
        .expect("connection_end");
    assert_eq!(end["diagnosis"]["kind"], "rst_without_close");
    let last = lines.last().expect("lines");
    assert_eq!(last["event"], "capture_end");
    assert_eq!(last["summary"]["by_kind"]["rst_without_close"], 1);
    assert_eq!(last["summary"]["by_client_code"]["1006"], 1);
    let out = wsinspect(&[file.to_str().unwrap_or_default()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("diagnosis: rst_without_close (client saw 1006"),
        "{text}"
    );
    assert!(
        text.contains("verdict: The server reset the connection"),
        "{text}"
    );
    assert!(text.contains("outcomes: rst_without_close x1"), "{text}");
}
