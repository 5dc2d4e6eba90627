//! wss:// captures (samples/wss-*, recorded from real peers with their key logs): decrypted
//! with `--keylog` or the pcapng's own Decryption Secrets Block, every message matches what the
//! peers logged (that full check runs for every truth file in samples.rs); without keys each
//! connection is still listed with its TLS facts and the termination its peers lived through;
//! wrong keys give an authentication-failure anomaly and no plaintext; secrets never reach any
//! output.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::util::{
    anomaly_kinds, connections, doc, doc_with, payload_bytes, sample, temp_path, truth_doc,
    truth_files, wsinspect,
};
use wsinspect::config::{Config, PayloadMode};

/// The wss:// truth files.
fn wss_truths() -> Vec<(String, Value)> {
    let t: Vec<_> = truth_files()
        .into_iter()
        .filter(|(_, t)| t["tls"].is_object())
        .collect();
    assert!(t.len() >= 7, "only {} wss samples", t.len());
    t
}

fn the_connection(doc: &Value, scenario: &str) -> Value {
    let conns = connections(doc);
    assert_eq!(conns.len(), 1, "{scenario}: {} connections", conns.len());
    conns[0].clone()
}

/// TLS version as the peers name it (`TLSv1.3`) in our form (`TLS 1.3`).
fn version_name(peer: &str) -> String {
    peer.replace("TLSv", "TLS ")
}

/// Python names suites the OpenSSL way; Node gives the IANA name.
fn iana_suite(peer: &str) -> String {
    match peer {
        "ECDHE-ECDSA-CHACHA20-POLY1305" => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256".into(),
        "ECDHE-ECDSA-AES256-GCM-SHA384" => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".into(),
        "ECDHE-ECDSA-AES128-GCM-SHA256" => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into(),
        other => other.to_owned(),
    }
}

#[test]
fn decrypted_samples_report_the_tls_the_peers_negotiated() {
    let mut suites = std::collections::BTreeSet::new();
    for (scenario, truth) in wss_truths() {
        let c = the_connection(&truth_doc(&truth), &scenario);
        let peer = &truth["connections"][0]["client"]["tls"];
        let tls = &c["tls"];
        assert_eq!(tls["decryption"], "decrypted", "{scenario}: {tls}");
        assert_eq!(
            tls["version"].as_str(),
            Some(version_name(peer["version"].as_str().unwrap_or_default()).as_str()),
            "{scenario}"
        );
        let suite = iana_suite(peer["cipher"].as_str().unwrap_or_default());
        assert_eq!(
            tls["cipher_suite"].as_str(),
            Some(suite.as_str()),
            "{scenario}"
        );
        suites.insert(suite);
        assert_eq!(tls["sni"], "localhost", "{scenario}");
        assert_eq!(tls["handshake_complete"], true, "{scenario}");
        assert!(
            anomaly_kinds(&c).is_empty(),
            "{scenario}: {:?}",
            anomaly_kinds(&c)
        );
        // The peers' messages are there (samples.rs compares every hash).
        assert!(!c["messages"].as_array().unwrap().is_empty(), "{scenario}");
    }
    // The recordings cover every suite family the issue asks for.
    for s in [
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    ] {
        assert!(suites.contains(s), "no sample with {s}: {suites:?}");
    }
}

/// (scenario, kind without keys, who ended it).
const WITHOUT_KEYS: &[(&str, &str, &str)] = &[
    ("wss-node-tls13-aes128", "tls_close", "server"),
    ("wss-node-tls13-aes256-deflate", "tls_close", "client"),
    (
        "wss-node-tls13-chacha-sigkill",
        "rst_without_close",
        "server",
    ),
    ("wss-node-tls12-aes128-deflate", "tls_close", "client"),
    ("wss-python-tls12-chacha", "tls_close", "server"),
    ("wss-python-tls12-aes256", "tls_close", "server"),
    (
        "wss-python-client-node-terminate",
        "fin_without_close",
        "server",
    ),
    ("wss-openssl-tls13-keyupdate", "tls_close", "client"),
];

#[test]
fn key_updates_keep_decrypting_both_ways() {
    let truth: Value = serde_json::from_slice(
        &std::fs::read(sample("wss-openssl-tls13-keyupdate.truth.json")).unwrap(),
    )
    .unwrap();
    let c = the_connection(&truth_doc(&truth), "keyupdate");
    // The server's update with update_requested, the client's answer, the client's own.
    assert_eq!(c["tls"]["key_updates"], 3);
    let texts: Vec<String> = c["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| String::from_utf8_lossy(&payload_bytes(m)).into_owned())
        .collect();
    assert_eq!(
        texts,
        [
            "before update",
            "server before",
            "after update",
            "server after",
            "after second update",
            "server last"
        ]
    );
    assert_eq!(c["diagnosis"]["kind"], "clean_close");
}

#[test]
fn without_keys_each_connection_gets_the_tls_level_diagnosis() {
    let truths = wss_truths();
    assert_eq!(
        truths.len(),
        WITHOUT_KEYS.len(),
        "a wss sample without expectations"
    );
    for (scenario, kind, by) in WITHOUT_KEYS {
        let (_, truth) = truths
            .iter()
            .find(|(s, _)| s == scenario)
            .unwrap_or_else(|| panic!("no sample {scenario}"));
        let c = the_connection(&doc(&sample(truth["capture"].as_str().unwrap())), scenario);
        let tc = &truth["connections"][0];
        assert!(
            c["client"]
                .as_str()
                .unwrap()
                .ends_with(&format!(":{}", tc["client_port"])),
            "{scenario}: oriented by the ClientHello"
        );
        let tls = &c["tls"];
        assert_eq!(tls["decryption"], "no_keys", "{scenario}");
        assert!(c["messages"].as_array().unwrap().is_empty(), "{scenario}");
        assert_eq!(tls["sni"], "localhost");
        assert_eq!(
            tls["version"].as_str(),
            Some(version_name(tc["client"]["tls"]["version"].as_str().unwrap()).as_str())
        );
        // Bytes each way: the 70000-byte message is in there.
        assert!(tls["c2s"]["app_bytes"].as_u64().unwrap() > 0, "{scenario}");
        assert!(tls["s2c"]["app_bytes"].as_u64().unwrap() > 0, "{scenario}");
        let d = &c["diagnosis"];
        assert_eq!(d["kind"], *kind, "{scenario}: {}", d["verdict"]);
        assert_eq!(d["by"], *by, "{scenario}: {}", d["verdict"]);
        // A clean WebSocket close is under a clean TLS close; a 1006 under an abrupt end.
        let clean = tc["client"]["close"]["was_clean"] == true;
        assert_eq!(kind.starts_with("tls_close"), clean, "{scenario}");
        for (side, field) in [
            ("client", "client_observed_code"),
            ("server", "server_observed_code"),
        ] {
            let code = &tc[side]["close"]["code"];
            if code == 1006 && side != *by {
                // The side that did not end it saw 1006, as its close event said.
                assert_eq!(&d[field], code, "{scenario} {side}: {d}");
            }
            if clean {
                assert!(
                    d[field].is_null(),
                    "{scenario}: a code claimed without keys"
                );
            }
        }
        let close_notify = |dir: &str| tls[dir]["close_notify"] == true;
        assert_eq!(
            close_notify("c2s") && close_notify("s2c"),
            *kind == "tls_close"
        );
    }
}

#[test]
fn the_dsb_pcapng_decrypts_without_a_keylog() {
    let truth: Value =
        serde_json::from_slice(&std::fs::read(sample("wss-node-tls13-aes128.truth.json")).unwrap())
            .unwrap();
    let dsb = truth["tls"]["capture_with_secrets"].as_str().unwrap();
    let c = the_connection(&doc(&sample(dsb)), dsb);
    assert_eq!(c["tls"]["decryption"], "decrypted");
    let hashes = |dir: &str| -> Vec<String> {
        c["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["dir"] == dir)
            .map(|m| hex::encode(Sha256::digest(payload_bytes(m))))
            .collect()
    };
    let sent = |side: &str| -> Vec<String> {
        truth["connections"][0][side]["sent"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["sha256"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(hashes("c2s"), sent("client"));
    assert_eq!(hashes("s2c"), sent("server"));
    assert_eq!(c["diagnosis"]["kind"], "clean_close");
}

/// The key log with every secret's bits flipped: right sessions, wrong keys.
fn wrong_keys(name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(sample(name)).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let mut f: Vec<String> = line.split(' ').map(str::to_owned).collect();
        if let Some(secret) = f.get_mut(2) {
            let flipped: Vec<u8> = hex::decode(&*secret).unwrap().iter().map(|b| !b).collect();
            *secret = hex::encode(flipped);
        }
        out.push_str(&f.join(" "));
        out.push('\n');
    }
    out.into_bytes()
}

#[test]
fn wrong_keys_are_an_authentication_failure_and_give_no_plaintext() {
    for (capture, keys) in [
        ("wss-node-tls13-aes128.pcap", "wss-node-tls13-aes128.keys"),
        (
            "wss-python-tls12-chacha.pcap",
            "wss-python-tls12-chacha.keys",
        ),
    ] {
        let mut cfg = Config {
            payloads: PayloadMode::Full,
            ..Config::default()
        };
        cfg.keylog.add(&wrong_keys(keys));
        let c = the_connection(&doc_with(&sample(capture), cfg), capture);
        assert_eq!(c["tls"]["decryption"], "failed", "{capture}");
        assert!(
            anomaly_kinds(&c).contains(&"tls_decrypt_failed".to_owned()),
            "{capture}: {:?}",
            anomaly_kinds(&c)
        );
        assert!(c["messages"].as_array().unwrap().is_empty(), "{capture}");
        assert!(
            c["handshake"].is_null(),
            "{capture}: garbage parsed as HTTP"
        );
        // The TLS-level diagnosis still holds.
        assert_eq!(c["diagnosis"]["kind"], "tls_close", "{capture}");
    }
}

#[test]
fn keys_of_other_sessions_are_reported_missing() {
    let mut cfg = Config::default();
    cfg.keylog
        .add(&std::fs::read(sample("wss-python-tls12-chacha.keys")).unwrap());
    let c = the_connection(
        &doc_with(&sample("wss-node-tls13-aes128.pcap"), cfg),
        "mismatched keys",
    );
    assert_eq!(c["tls"]["decryption"], "keys_missing");
    assert_eq!(anomaly_kinds(&c), vec!["tls_keys_missing".to_owned()]);
    assert_eq!(c["diagnosis"]["kind"], "tls_close");
}

#[test]
fn secrets_never_reach_any_output() {
    let keys = sample("wss-node-tls13-aes128.keys");
    let secrets: Vec<String> = std::fs::read_to_string(&keys)
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(2).map(str::to_ascii_lowercase))
        .collect();
    assert!(secrets.len() >= 4);
    let capture = sample("wss-node-tls13-aes128.pcap");
    let (capture, keys) = (capture.to_str().unwrap(), keys.to_str().unwrap());
    let dsb = sample("wss-node-tls13-aes128.dsb.pcapng");
    let runs: Vec<Vec<&str>> = vec![
        vec![
            capture,
            "--keylog",
            keys,
            "--json",
            "--pretty",
            "--frames",
            "--payloads",
            "full",
        ],
        vec![
            capture,
            "--keylog",
            keys,
            "--ndjson",
            "--frames",
            "--payloads",
            "full",
        ],
        vec![capture, "--keylog", keys],
        vec![dsb.to_str().unwrap(), "--ndjson", "--payloads", "full"],
    ];
    for args in runs {
        let out = wsinspect(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let all = [out.stdout, out.stderr].concat();
        let text = String::from_utf8_lossy(&all).to_ascii_lowercase();
        // The run decrypted (so the secrets were in hand): the upgrade's path is plaintext...
        assert!(text.contains("/secure?room=1"), "{args:?}");
        // ...and none of them, in hex, appears anywhere.
        for s in &secrets {
            assert!(
                !text.contains(s.as_str()),
                "{args:?}: a secret in the output"
            );
        }
    }
}

#[test]
fn a_keylog_without_key_lines_is_an_error() {
    let path = temp_path("empty.keys");
    std::fs::write(&path, b"# nothing here\n").unwrap();
    let capture = sample("wss-node-tls13-aes128.pcap");
    let out = wsinspect(&[
        capture.to_str().unwrap(),
        "--keylog",
        path.to_str().unwrap(),
    ]);
    std::fs::remove_file(&path).ok();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no TLS key log lines"));
}
