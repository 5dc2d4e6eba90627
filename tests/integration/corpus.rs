//! wsinspect against the public corpus and the expected outputs other projects recorded for it
//! (tshark's per-frame dissection, Zeek's logs, Arkime's session counters, Suricata-verify and
//! scapy expectations). Where wsinspect deliberately differs from a reference, the test says why.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::util::{anomaly_kinds, connections, corpus, doc, endpoint, message_texts, payload_text};

/// One frame as tshark dissected it.
#[derive(Debug, Clone, PartialEq)]
struct RefFrame {
    opcode: u64,
    fin: bool,
    rsv: u64,
    masked: bool,
    len: u64,
}

/// One packet row of the tshark reference.
#[derive(Debug, Clone)]
struct RefPacket {
    flow: String,
    frames: Vec<RefFrame>,
    close_code: Option<u64>,
    close_reason: String,
    text: String,
}

/// Parses the per-frame tables of `tshark-reference.txt`, by capture.
fn tshark_reference() -> BTreeMap<String, Vec<RefPacket>> {
    let text = std::fs::read_to_string(corpus("tshark-reference.txt")).expect("tshark reference");
    let mut out: BTreeMap<String, Vec<RefPacket>> = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("== ") {
            current = name.trim().to_owned();
            out.entry(current.clone()).or_default();
            continue;
        }
        let cols: Vec<&str> = line.trim().splitn(13, '|').map(str::trim).collect();
        if cols.len() < 12 || cols[0].parse::<u64>().is_err() {
            continue;
        }
        let list = |s: &str| {
            s.split(',')
                .map(|v| v.trim().to_owned())
                .collect::<Vec<_>>()
        };
        let (opcodes, fins, rsvs, masks, lens) = (
            list(cols[3]),
            list(cols[4]),
            list(cols[5]),
            list(cols[6]),
            list(cols[7]),
        );
        let mut ext16 = list(cols[8]).into_iter().filter(|v| !v.is_empty());
        let mut ext64 = list(cols[9]).into_iter().filter(|v| !v.is_empty());
        let frames = (0..opcodes.len())
            .map(|i| {
                let len7: u64 = lens[i].parse().expect("len");
                let len = match len7 {
                    126 => ext16.next().and_then(|v| v.parse().ok()).expect("ext16"),
                    127 => ext64.next().and_then(|v| v.parse().ok()).expect("ext64"),
                    n => n,
                };
                RefFrame {
                    opcode: opcodes[i].parse().expect("opcode"),
                    fin: fins[i] == "1",
                    rsv: u64::from_str_radix(rsvs[i].trim_start_matches("0x"), 16).expect("rsv"),
                    masked: masks[i] == "1",
                    len,
                }
            })
            .collect();
        out.get_mut(&current).expect("section").push(RefPacket {
            flow: cols[2].trim().to_owned(),
            frames,
            close_code: cols[10].trim().parse().ok(),
            close_reason: cols[11].trim().to_owned(),
            text: cols
                .get(12)
                .map(|t| t.trim().to_owned())
                .unwrap_or_default(),
        });
    }
    out
}

/// Our frames of a document, per `src -> dst`, in stream order.
fn our_frames(doc: &Value) -> BTreeMap<String, Vec<RefFrame>> {
    let mut out: BTreeMap<String, Vec<RefFrame>> = BTreeMap::new();
    for c in connections(doc) {
        let (client, server) = (
            endpoint(c["client"].as_str().unwrap()),
            endpoint(c["server"].as_str().unwrap()),
        );
        for f in c["frames"].as_array().unwrap() {
            let flow = if f["dir"] == "c2s" {
                format!("{client} -> {server}")
            } else {
                format!("{server} -> {client}")
            };
            out.entry(flow).or_default().push(RefFrame {
                opcode: f["opcode"].as_u64().unwrap(),
                fin: f["fin"].as_bool().unwrap(),
                rsv: f["rsv"].as_u64().unwrap(),
                masked: f["masked"].as_bool().unwrap(),
                len: f["len"].as_u64().unwrap(),
            });
        }
    }
    out
}

/// Flows where tshark dissects no frame but wsinspect rightly does, with why. (For
/// ndpi/websocket.pcap, which has no handshake either, the reference lists tshark's
/// "decode as" dissection, and wsinspect's mid-stream pickup must match it.)
const TSHARK_BLIND: &[(&str, &str, usize, &str)] = &[
    (
        "ndn-tools/ipv4-websocket-segmented.pcap",
        "131.179.196.220:59622",
        2,
        "the close handshake of an earlier connection whose start the capture missed: picked up mid-stream",
    ),
    (
        "pcap2har/ipv4-websocket-segmented.pcap",
        "131.179.196.220:59622",
        2,
        "the same capture as ndn-tools/ipv4-websocket-segmented.pcap",
    ),
    (
        "scapy-pr4579/websocket_invalid_handshakes.pcap",
        "127.0.0.1:",
        1,
        "after the fifth 101 the client does send a frame; tshark stops after the first 101, wsinspect follows what the peers did",
    ),
];

#[test]
fn frames_match_tshark_for_every_capture() {
    let reference = tshark_reference();
    assert!(
        reference.len() >= 30,
        "reference has {} captures",
        reference.len()
    );
    for (name, packets) in &reference {
        let ours = our_frames(&doc(&corpus(name)));
        let mut theirs: BTreeMap<String, Vec<RefFrame>> = BTreeMap::new();
        for p in packets {
            theirs
                .entry(p.flow.clone())
                .or_default()
                .extend(p.frames.iter().cloned());
        }
        let mut ours = ours;
        for (_, client, n, why) in TSHARK_BLIND.iter().filter(|(c, ..)| c == name) {
            let extra: Vec<String> = ours
                .keys()
                .filter(|f| f.contains(client) && !theirs.contains_key(*f))
                .cloned()
                .collect();
            let total: usize = extra.iter().map(|f| ours[f].len()).sum();
            assert_eq!(total, *n, "{name}: {why}");
            for f in extra {
                ours.remove(&f);
            }
        }
        assert_eq!(
            ours, theirs,
            "{name}: frames differ from tshark's dissection"
        );
    }
}

#[test]
fn texts_and_close_codes_match_tshark() {
    for (name, packets) in tshark_reference() {
        let d = doc(&corpus(&name));
        for c in connections(&d) {
            let (client, server) = (
                endpoint(c["client"].as_str().unwrap()),
                endpoint(c["server"].as_str().unwrap()),
            );
            if !packets.iter().any(|p| p.flow.contains(&client)) {
                continue; // a flow tshark does not dissect (see TSHARK_BLIND)
            }
            for (dir, flow) in [
                ("c2s", format!("{client} -> {server}")),
                ("s2c", format!("{server} -> {client}")),
            ] {
                // Single-frame text messages: tshark prints the (inflated) text, cut at 60 chars.
                let want: Vec<String> = packets
                    .iter()
                    .filter(|p| {
                        p.flow == flow
                            && p.frames.len() == 1
                            && p.frames[0].opcode == 1
                            && p.frames[0].fin
                    })
                    // tshark prints CR and LF as backslash escapes.
                    .map(|p| p.text.replace("\\r", "\r").replace("\\n", "\n"))
                    .collect();
                let got: Vec<String> = c["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|m| m["dir"] == dir && m["type"] == "text" && m["frames"] == 1)
                    .map(payload_text)
                    .collect();
                assert_eq!(got.len(), want.len(), "{name} {flow}: text message count");
                for (g, w) in got.iter().zip(&want) {
                    match w.strip_suffix("...") {
                        Some(prefix) => {
                            assert!(g.starts_with(prefix), "{name} {flow}: {g:?} vs {w:?}")
                        }
                        None => assert_eq!(g, w, "{name} {flow}"),
                    }
                }
                let want_close: Vec<(Option<u64>, &str)> = packets
                    .iter()
                    .filter(|p| p.flow == flow && p.frames.iter().any(|f| f.opcode == 8))
                    .map(|p| (p.close_code, p.close_reason.as_str()))
                    .collect();
                let got_close: Vec<(Option<u64>, String)> = c["close"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|x| x["dir"] == dir)
                    .map(|x| (x["code"].as_u64(), x["reason"].as_str().unwrap().to_owned()))
                    .collect();
                assert_eq!(
                    got_close.len(),
                    want_close.len(),
                    "{name} {flow}: close frames"
                );
                for ((gc, gr), (wc, wr)) in got_close.iter().zip(&want_close) {
                    assert_eq!(gc, wc, "{name} {flow}: close code");
                    // tshark cuts long reasons; ours are whole.
                    assert!(
                        gr.starts_with(wr.trim_end_matches("...")),
                        "{name} {flow}: reason {gr:?} vs {wr:?}"
                    );
                }
            }
        }
    }
}

/// Zeek's websocket.log rows: handshake fields by client port.
#[test]
fn handshakes_match_zeek_websocket_logs() {
    let logs = [
        (
            "zeek/baselines/scripts.base.protocols.websocket.broker-websocket/websocket.log",
            "zeek/broker-websocket.pcap",
        ),
        (
            "zeek/baselines/scripts.base.protocols.websocket.jupyter-websocket/websocket.log",
            "zeek/jupyter-websocket.pcap",
        ),
        (
            "zeek/baselines/scripts.base.protocols.websocket.key-accept-wrong/websocket.log",
            "zeek/wrong-accept-header.pcap",
        ),
        (
            "zeek/baselines/scripts.base.protocols.websocket.wstunnel-http/websocket.log",
            "zeek/wstunnel-http.pcap",
        ),
        (
            "zeek/baselines/scripts.base.protocols.websocket.wstunnel-https/websocket.log",
            "zeek/wstunnel-https.pcap",
        ),
        (
            "zeek/baselines/scripts.base.protocols.websocket.wstunnel-ssh/websocket.log",
            "zeek/wstunnel-ssh.pcap",
        ),
        (
            "zeek/pr5646/baselines/scripts.base.protocols.websocket.permessage-deflate/websocket.log",
            "zeek/pr5646/websocket_compressed.pcap",
        ),
    ];
    let mut rows_checked = 0;
    for (log, capture) in logs {
        let text = std::fs::read_to_string(corpus(log)).expect(log);
        // Cut logs start with a bare `ts` header line; whole ones name their fields in `#fields`.
        let header: Vec<&str> = text
            .lines()
            .find_map(|l| {
                if l.starts_with("ts\t") {
                    Some(l)
                } else {
                    l.strip_prefix("#fields\t")
                }
            })
            .expect("header")
            .split('\t')
            .collect();
        let conns = connections(&doc(&corpus(capture)));
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("ts\t") && !l.is_empty())
        {
            let row: BTreeMap<&str, &str> = header.iter().copied().zip(line.split('\t')).collect();
            let port = row["id.orig_p"];
            let c = conns
                .iter()
                .find(|c| c["client"].as_str().unwrap().ends_with(&format!(":{port}")))
                .unwrap_or_else(|| panic!("{capture}: no connection from port {port}"));
            let h = &c["handshake"];
            // Zeek writes an absent field as `-` and lists as comma-joined values.
            let opt = |v: &Value| v.as_str().map(str::to_owned).unwrap_or_else(|| "-".into());
            let offered: Vec<&str> = h["subprotocols_offered"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            let offered = if offered.is_empty() {
                "-".to_owned()
            } else {
                offered.join(",")
            };
            let ours_and_theirs = [
                (opt(&h["host"]), "host"),
                (opt(&h["path"]), "uri"),
                (opt(&h["user_agent"]), "user_agent"),
                (opt(&h["subprotocol"]), "subprotocol"),
                (offered, "client_protocols"),
                (opt(&h["extensions"]), "server_extensions"),
                (opt(&h["extensions_offered"]), "client_extensions"),
            ];
            for (ours, field) in ours_and_theirs {
                assert_eq!(ours, row[field], "{capture}: {field}");
            }
            rows_checked += 1;
        }
    }
    assert!(rows_checked >= 8, "only {rows_checked} Zeek rows checked");
}

fn messages<'a>(c: &'a Value, dir: &str) -> Vec<&'a Value> {
    c["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["dir"] == dir)
        .collect()
}

fn only_connection(name: &str) -> Value {
    let conns = connections(&doc(&corpus(name)));
    assert_eq!(conns.len(), 1, "{name}: connections");
    conns.into_iter().next().unwrap()
}

#[test]
fn evsetool_context_takeover_inflates_every_message_and_ignores_duplicates() {
    // EXPECTED.md: frames 25 and 43 (server, Docker bridge leg) inflate to these; 43 needs the
    // whole LZ77 history. Every bridge segment is captured twice and must count once.
    let conns = connections(&doc(&corpus("evsetool/cap.pcapng")));
    assert_eq!(conns.len(), 2);
    let bridge = conns
        .iter()
        .find(|c| c["server"] == "172.18.0.3:8180")
        .expect("bridge leg");
    let s2c = messages(bridge, "s2c");
    assert_eq!(s2c.len(), 4);
    assert_eq!(messages(bridge, "c2s").len(), 4);
    assert!(
        s2c.iter()
            .chain(messages(bridge, "c2s").iter())
            .all(|m| m["compressed"] == true && m["status"] == "complete")
    );
    assert_eq!(
        payload_text(s2c[0]),
        r#"[3,"bad9a3f6-ca80-4901-bb76-9034b8900b5b",{"status":"Accepted","currentTime":"2024-12-12T12:14:42.958Z","interval":14400}]"#
    );
    assert_eq!(
        payload_text(s2c[3]),
        r#"[3,"cee3e36b-34fb-45a8-a6b8-f5d394f32beb",{}]"#
    );
    assert!(bridge["tcp"]["retransmissions"].as_u64().unwrap() > 0);
    // The loopback leg carries the same messages.
    let lo = conns
        .iter()
        .find(|c| c["server"] == "127.0.0.1:8180")
        .expect("loopback leg");
    let lo_texts: Vec<String> = messages(lo, "s2c").into_iter().map(payload_text).collect();
    let bridge_texts: Vec<String> = s2c.into_iter().map(payload_text).collect();
    assert_eq!(lo_texts, bridge_texts);
}

#[test]
fn scapy_client_only_compression_with_small_window() {
    let c = only_connection("scapy-pr4579/websocket_compressed_session.pcap");
    let texts: Vec<String> = message_texts(&c);
    assert_eq!(texts, ["Hello", "\"Hello\"", "Hello2", "\"Hello2\""]);
    let compressed: Vec<bool> = c["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["compressed"].as_bool().unwrap())
        .collect();
    assert_eq!(compressed, [true, false, true, false]);
    assert_eq!(
        c["handshake"]["permessage_deflate"]["client_max_window_bits"],
        10
    );
}

#[test]
fn scapy_invalid_handshakes_are_reported_not_trusted() {
    // EXPECTED.md: five broken upgrade attempts on one connection, then a masked text fragment
    // that is never finished. wsinspect reports every rule each attempt breaks, and decodes the
    // frame the client really sent after the last 101.
    let c = only_connection("scapy-pr4579/websocket_invalid_handshakes.pcap");
    assert_eq!(c["upgrade_attempts"], 5);
    let kinds = anomaly_kinds(&c);
    for k in [
        "upgrade_not_get",
        "request_missing_upgrade",
        "missing_key",
        "unsupported_version",
        "response_missing_upgrade",
        "wrong_accept",
    ] {
        assert!(
            kinds.iter().any(|x| x == k),
            "missing anomaly {k}: {kinds:?}"
        );
    }
    let frames = c["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 1);
    assert_eq!(
        (
            frames[0]["opcode"].as_u64(),
            frames[0]["fin"].as_bool(),
            frames[0]["len"].as_u64()
        ),
        (Some(1), Some(false), Some(13))
    );
    assert!(
        c["messages"].as_array().unwrap().is_empty(),
        "the message is never finished"
    );
}

#[test]
fn suricata_compressed_server_messages_inflate() {
    // test.yaml: the alert content appears only in the inflated last message.
    let c = only_connection("suricata-verify/websocket-compressed/example_websocket.pcap");
    let s2c = messages(&c, "s2c");
    assert_eq!(s2c.len(), 10);
    assert!(
        s2c.iter()
            .all(|m| m["compressed"] == true && m["status"] == "complete")
    );
    assert!(payload_text(s2c[9]).contains("TOGGLE=5659131662f54334"));
    assert!(
        s2c[..9]
            .iter()
            .all(|m| !payload_text(m).contains("TOGGLE=5659131662f54334"))
    );
}

#[test]
fn suricata_control_frame_between_fragments() {
    let c = only_connection("suricata-verify/websocket-control-frag/input.pcap");
    let msgs = c["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        payload_text(&msgs[0]),
        "MALWARE_DOWNLOAD cmd.exe /c powershell -enc AAAA"
    );
    assert_eq!(msgs[0]["frames"], 2);
    let pings = c["pings"].as_array().unwrap();
    assert_eq!(pings.len(), 1);
    assert!(pings[0]["pong_ts"].is_number(), "the pong answers the ping");
}

#[test]
fn suricata_unmasked_client_ping() {
    // test.yaml: one ping and one pong event; the client's ping is not masked (RFC 6455 §5.1).
    let conns = connections(&doc(&corpus("suricata-verify/websocket-ping/input.pcap")));
    let c = conns
        .iter()
        .find(|c| !c["frames"].as_array().unwrap().is_empty())
        .expect("the connection with frames");
    assert!(
        anomaly_kinds(c)
            .iter()
            .any(|k| k == "unmasked_client_frame")
    );
    assert_eq!(
        c["stats"]["c2s"]["pings"].as_u64().unwrap() + c["stats"]["s2c"]["pings"].as_u64().unwrap(),
        1
    );
    assert_eq!(
        c["stats"]["c2s"]["pongs"].as_u64().unwrap() + c["stats"]["s2c"]["pongs"].as_u64().unwrap(),
        1
    );
}

#[test]
fn arkime_session_counters() {
    // websocket.test: frameCnt 5, maskedFromClient 2, payloadBytes 153.
    let c = only_connection("arkime/websocket.pcap");
    let frames = c["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 5);
    assert_eq!(frames.iter().filter(|f| f["masked"] == true).count(), 2);
    assert_eq!(
        frames
            .iter()
            .map(|f| f["len"].as_u64().unwrap())
            .sum::<u64>(),
        153
    );
    // arkime_synthetic.test: one WebSocket session among 98 TCP streams; close 1000 "bye-split".
    let c = only_connection("arkime/arkime_synthetic.pcap");
    assert_eq!(c["frames"].as_array().unwrap().len(), 5);
    assert_eq!(
        c["frames"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["masked"] == true)
            .count(),
        4
    );
    assert_eq!(c["close"][0]["code"], 1000);
    assert_eq!(c["close"][0]["reason"], "bye-split");
    let texts: Vec<String> = message_texts(&c);
    assert_eq!(texts, ["SplitFrameSample", "FragHeadPartFragTailPart"]);
}

#[test]
fn midstream_pickup_without_handshake() {
    // ndpi/websocket.pcap is arkime/websocket.pcap without its SYN and upgrade.
    let c = only_connection("ndpi/websocket.pcap");
    assert_eq!(c["handshake_seen"], false);
    assert!(c["handshake"].is_null());
    let full = only_connection("arkime/websocket.pcap");
    let texts = |c: &Value| {
        c["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["dir"].clone(), payload_text(m)))
            .collect::<Vec<_>>()
    };
    assert_eq!(texts(&c), texts(&full));
    assert_eq!(c["client"], full["client"]);
}

#[test]
fn no_false_positives_in_a_noisy_capture() {
    // 1kxun.pcap: 98 TCP streams; only three handshake-only upgrades (nDPI: HTTP.1kxun).
    let conns = connections(&doc(&corpus("ndpi/1kxun.pcap")));
    assert_eq!(
        conns.len(),
        3,
        "{:#?}",
        conns.iter().map(|c| &c["server"]).collect::<Vec<_>>()
    );
    for c in &conns {
        assert_eq!(c["handshake"]["status"], 101);
        assert!(
            c["handshake"]["host"]
                .as_str()
                .unwrap()
                .starts_with("ws.1kxun.mobi")
        );
        assert!(c["messages"].as_array().unwrap().is_empty());
    }
}

#[test]
fn upgrade_request_without_answer() {
    let c = only_connection("suricata-verify/http-request-header-multi/input.pcap");
    assert!(c["handshake"]["request_ts"].is_number());
    assert!(c["handshake"]["status"].is_null());
    assert!(c["frames"].as_array().unwrap().is_empty());
}

#[test]
fn zeek_protocol_violations_become_anomalies() {
    let c = only_connection("zeek/wrong-accept-header.pcap");
    let wrong = c["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "wrong_accept")
        .expect("wrong_accept");
    assert!(
        wrong["detail"]
            .as_str()
            .unwrap()
            .contains("N8ntNYkX6Qerw4tK3s/CYzpSZNc=")
    );
    assert_eq!(c["handshake"]["accept_valid"], false);

    // close-too-large: a 258-byte close frame (64-bit length form); the reason is 256 bytes.
    let c = only_connection("zeek/oversized-close-frame.pcapng");
    assert!(
        anomaly_kinds(&c)
            .iter()
            .any(|k| k == "control_frame_too_large")
    );
    assert_eq!(c["close"][0]["code"], 1000);
    assert_eq!(c["close"][0]["reason"].as_str().unwrap().len(), 256);

    // wstunnel-http: both client frames unmasked.
    let c = only_connection("zeek/wstunnel-http.pcap");
    assert!(
        anomaly_kinds(&c)
            .iter()
            .any(|k| k == "unmasked_client_frame")
    );

    // Clean captures raise no protocol anomaly.
    for clean in [
        "zeek/broker-websocket.pcap",
        "zeek/jupyter-websocket.pcap",
        "zeek/two-binary-fragments.pcap",
        "arkime/websocket.pcap",
    ] {
        let c = only_connection(clean);
        assert!(
            anomaly_kinds(&c).is_empty(),
            "{clean}: {:?}",
            anomaly_kinds(&c)
        );
    }
}

#[test]
fn zeek_close_with_reason_and_empty_close() {
    let c = only_connection("zeek/message-too-big-status.pcap");
    let closes = c["close"].as_array().unwrap();
    assert_eq!(closes[0]["dir"], "c2s");
    assert_eq!(closes[0]["code"], 1009);
    assert_eq!(closes[0]["name"], "message_too_big");
    assert_eq!(closes[0]["reason"], "over size limit (4 > 2 bytes)");
    assert_eq!(closes[1]["code"], 1000);

    // Kaazing: close frames with an empty payload have no code; a zero-length binary message.
    let c = only_connection("zeek/http-websocket.pcap");
    assert!(
        c["close"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["code"].is_null())
    );
    assert!(
        c["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["type"] == "binary" && m["len"] == 0)
    );
}

#[test]
fn zeek_fragments_and_coalesced_frames() {
    // Five fragments in one segment make one message: an HTTP response (Zeek parses its headers).
    let c = only_connection("zeek/fragmented-http-reply.pcap");
    let s2c = messages(&c, "s2c");
    let reply = s2c
        .iter()
        .find(|m| m["frames"] == 5)
        .expect("the fragmented message");
    let text = payload_text(reply);
    assert!(text.starts_with("HTTP/1.1"), "{text:?}");
    assert!(text.to_ascii_lowercase().contains("server: dont ask"));

    let c = only_connection("zeek/two-binary-fragments.pcap");
    let m = messages(&c, "c2s")
        .into_iter()
        .chain(messages(&c, "s2c"))
        .find(|m| m["frames"] == 2)
        .cloned()
        .expect("2-frame message");
    assert_eq!(m["len"], 12);

    // Zeek requires the coalesced capture (ping in the 101's segment) to equal the separate one.
    let a = only_connection("zeek/reply-ping-coalesced.pcap");
    let b = only_connection("zeek/reply-ping-separate.pcap");
    let strip = |c: &Value| {
        c["frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["dir"].clone(), f["opcode"].clone(), f["len"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&a), strip(&b));
    assert!(a["pings"][0]["pong_ts"].is_number());
}

#[test]
fn zeek_unanswered_pings_and_two_connections() {
    let conns = connections(&doc(&corpus("zeek/wstunnel-ssh.pcap")));
    assert_eq!(conns.len(), 2);
    let pings: Vec<&Value> = conns
        .iter()
        .flat_map(|c| c["pings"].as_array().unwrap())
        .collect();
    assert_eq!(pings.len(), 7);
    assert!(pings.iter().all(|p| p["pong_ts"].is_null()));
}

#[test]
fn large_frames_across_segments_ipv4_and_ipv6() {
    for name in [
        "ndn-tools/ipv4-websocket-segmented.pcap",
        "ndn-tools/ipv6-websocket-segmented.pcap",
    ] {
        let conns = connections(&doc(&corpus(name)));
        let big = conns
            .iter()
            .flat_map(|c| c["messages"].as_array().unwrap())
            .find(|m| m["len"] == 5379)
            .unwrap_or_else(|| panic!("{name}: the 5379-byte message"));
        assert_eq!(big["status"], "complete");
    }
}
