//! Every capture in samples/ against the truth file its peers wrote: what each side sent and
//! received (type, length, SHA-256 of the decoded payload), pings, the handshake each side saw,
//! and the close code each side's own close event reported.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::util::{connections, doc, payload_bytes, sample, truth_doc, truth_files};

/// (type, len, sha256) of a truth list.
fn truth_messages(list: &Value) -> Vec<(String, u64, String)> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["type"].as_str().unwrap().to_owned(),
                m["len"].as_u64().unwrap(),
                m["sha256"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// (type, len, sha256) of our messages in one direction.
fn our_messages(conn: &Value, dir: &str) -> Vec<(String, u64, String)> {
    conn["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["dir"] == dir)
        .map(|m| {
            assert_eq!(m["status"], "complete", "message {m}");
            let bytes = payload_bytes(m);
            assert_eq!(bytes.len() as u64, m["len"].as_u64().unwrap());
            (
                m["type"].as_str().unwrap().to_owned(),
                m["len"].as_u64().unwrap(),
                hex::encode(Sha256::digest(&bytes)),
            )
        })
        .collect()
}

/// The close frame a side sent, as the other side's close event reports it.
fn close_code_sent(conn: &Value, dir: &str) -> Option<(Option<u64>, String)> {
    conn["close"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["dir"] == dir)
        .map(|c| (c["code"].as_u64(), c["reason"].as_str().unwrap().to_owned()))
}

#[test]
fn samples_match_what_the_peers_saw() {
    let truths = truth_files();
    assert!(truths.len() >= 10, "only {} truth files", truths.len());
    for (scenario, truth) in truths {
        // wss:// samples are decrypted with their peers' key log.
        let conns = connections(&truth_doc(&truth));
        let tconns = truth["connections"].as_array().unwrap();
        assert!(!tconns.is_empty(), "{scenario}: truth lists no connection");
        for t in tconns {
            let port = t["client_port"].as_u64().unwrap();
            let c = conns
                .iter()
                .find(|c| c["client"].as_str().unwrap().ends_with(&format!(":{port}")))
                .unwrap_or_else(|| panic!("{scenario}: no connection from client port {port}"));
            let ctx = format!("{scenario} (client port {port})");
            let (client, server) = (&t["client"], &t["server"]);
            let hs = &c["handshake"];
            // The handshake as an endpoint with a log saw it (a proxy leg may lack the client).
            let seen = if client.is_null() { server } else { client };
            assert_eq!(hs["path"], t["path"], "{ctx}: path");
            assert_eq!(hs["status"], seen["handshake"]["status"], "{ctx}: status");
            if hs["status"] == 101 {
                assert_eq!(
                    hs["subprotocol"], seen["handshake"]["subprotocol"],
                    "{ctx}: subprotocol"
                );
                assert_eq!(
                    hs["extensions"], seen["handshake"]["extensions"],
                    "{ctx}: extensions"
                );
                assert_eq!(hs["accept_valid"], true, "{ctx}: accept");
                assert_eq!(hs["valid"], true, "{ctx}: a library handshake is valid");
            } else {
                assert_eq!(hs["accepted"], false, "{ctx}");
                assert!(
                    c["messages"].as_array().unwrap().is_empty(),
                    "{ctx}: messages after a rejection"
                );
            }
            // What the client sent is what the server received, and both are what we decoded.
            // On a proxy leg one side is the proxy, which keeps no log (its side is null).
            let c2s = our_messages(c, "c2s");
            let s2c = our_messages(c, "s2c");
            // A side that died or dropped the connection (no clean close) may not have read all
            // that reached the wire: what it received is then a prefix of it.
            let received_ok = |ours: &[(String, u64, String)], side: &Value, what: &str| {
                let got = truth_messages(&side["received"]);
                if side["close"]["was_clean"] == true {
                    assert_eq!(ours, &got[..], "{ctx}: {what}");
                } else {
                    assert!(
                        ours.starts_with(&got),
                        "{ctx}: {what}: {got:?} is not a prefix of {ours:?}"
                    );
                }
            };
            if !client.is_null() {
                assert_eq!(
                    c2s,
                    truth_messages(&client["sent"]),
                    "{ctx}: c2s vs client sent"
                );
                received_ok(&s2c, client, "s2c vs client received");
            }
            if !server.is_null() {
                received_ok(&c2s, server, "c2s vs server received");
                assert_eq!(
                    s2c,
                    truth_messages(&server["sent"]),
                    "{ctx}: s2c vs server sent"
                );
            }
            // Fragmentation and compression where the sender controlled them.
            for (dir, side) in [("c2s", client), ("s2c", server)]
                .into_iter()
                .filter(|(_, s)| !s.is_null())
            {
                let ours: Vec<&Value> = c["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|m| m["dir"] == dir)
                    .collect();
                for (m, sent) in ours
                    .iter()
                    .zip(side["sent"].as_array().into_iter().flatten())
                {
                    if let Some(f) = sent["fragments"].as_u64() {
                        assert_eq!(
                            m["frames"].as_u64(),
                            Some(f),
                            "{ctx}: {dir} fragments of {sent}"
                        );
                    }
                    if let Some(z) = sent["compressed"].as_bool() {
                        assert_eq!(
                            m["compressed"].as_bool(),
                            Some(z),
                            "{ctx}: {dir} compression of {sent}"
                        );
                    }
                }
            }
            // Pings each side sent, and how many pongs came back.
            for (dir, side) in [("c2s", client), ("s2c", server)]
                .into_iter()
                .filter(|(_, s)| !s.is_null())
            {
                let pings: Vec<&Value> = c["pings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|p| p["dir"] == dir)
                    .collect();
                let want: Vec<u64> = side["pings_sent"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| p["len"].as_u64().unwrap())
                    .collect();
                assert_eq!(
                    pings
                        .iter()
                        .map(|p| p["len"].as_u64().unwrap())
                        .collect::<Vec<_>>(),
                    want,
                    "{ctx}: {dir} pings"
                );
                // A pong that arrives after the pinging side closed its socket (FIN or RST) is on
                // the wire but was never received by that side's library.
                let gone = c["tcp"]["fin"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .chain(c["tcp"]["rst"].as_array().unwrap())
                    .filter(|m| m["dir"] == dir)
                    .filter_map(|m| m["ts"].as_f64())
                    .fold(f64::INFINITY, f64::min);
                let answered = pings
                    .iter()
                    .filter(|p| p["pong_ts"].as_f64().is_some_and(|t| t < gone))
                    .count() as u64;
                assert_eq!(
                    Some(answered),
                    side["pongs_received"].as_u64(),
                    "{ctx}: {dir} pongs"
                );
            }
            // A clean close event reports the code in the peer's close frame.
            for (side, peer_dir) in [(client, "s2c"), (server, "c2s")]
                .into_iter()
                .filter(|(s, _)| !s.is_null())
            {
                let close = &side["close"];
                if close["was_clean"] == true {
                    let (code, reason) = close_code_sent(c, peer_dir)
                        .unwrap_or_else(|| panic!("{ctx}: no {peer_dir} close frame"));
                    assert_eq!(code, close["code"].as_u64(), "{ctx}: {peer_dir} close code");
                    assert_eq!(
                        reason,
                        close["reason"].as_str().unwrap_or_default(),
                        "{ctx}: {peer_dir} close reason"
                    );
                }
            }
            assert!(
                c["anomalies"].as_array().unwrap().is_empty(),
                "{ctx}: anomalies {}",
                c["anomalies"]
            );
        }
    }
}

#[test]
fn link_types_of_the_samples() {
    let sll2 = doc(&sample("sll2-any.pcap"));
    assert_eq!(sll2["capture"]["link_types"], serde_json::json!([276]));
    let v6 = connections(&doc(&sample("ipv6.pcap")));
    assert!(v6[0]["client"].as_str().unwrap().starts_with("[::1]:"));
}
