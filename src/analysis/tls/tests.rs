//! Tests of the TLS-level rules the wss samples do not reach by themselves: takes the real
//! endings of those samples with one fact changed, and checks the kind, who, codes and sentence.

use super::{AnalysisOptions, ConnectionEnd, Diagnosis, Side, TlsAlert, diagnose};
use crate::capture::CaptureReader;
use crate::config::Config;
use crate::diagnosis::TerminationKind as K;
use crate::event::Event;
use crate::types::Dir;

/// The one connection of a wss sample, read without keys.
fn ending(file: &str) -> ConnectionEnd {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(file);
    let mut reader = CaptureReader::open(&path).expect("sample");
    let (events, _) =
        crate::pipeline::run(&mut reader, file, Config::default(), Vec::new()).expect("run");
    events
        .into_iter()
        .find_map(|ev| match ev {
            Event::ConnectionEnd(e) => Some(*e),
            _ => None,
        })
        .expect("a connection")
}

fn diagnosed(end: &ConnectionEnd, opts: &AnalysisOptions) -> Diagnosis {
    let t = end.tls.as_ref().expect("a TLS connection");
    assert_eq!(t.decryption, "no_keys");
    diagnose(end, t, opts)
}

fn alerts(end: &mut ConnectionEnd) -> &mut Vec<TlsAlert> {
    &mut end.tls.as_mut().expect("a TLS connection").alerts
}

#[test]
fn tls_level_close_notify_counts_one_way_only_from_the_side_that_ended_it() {
    // The client sent close_notify, then FIN; the server's close_notify came after that FIN.
    let end = ending("wss-node-tls13-aes256-deflate.pcap");
    let opts = AnalysisOptions::default();
    assert_eq!(diagnosed(&end, &opts).kind, K::TlsClose);

    let mut client_only = end.clone();
    alerts(&mut client_only).retain(|a| a.dir == Dir::C2s);
    let d = diagnosed(&client_only, &opts);
    assert_eq!((d.kind, d.by), (K::TlsCloseOneWay, Some(Side::Client)));
    assert!(!d.abnormal);
    assert_eq!(
        (d.client_observed_code, d.server_observed_code),
        (None, None)
    );
    assert!(
        d.verdict.starts_with("TLS closed by the client"),
        "{}",
        d.verdict
    );

    let mut server_only = end;
    alerts(&mut server_only).retain(|a| a.dir == Dir::S2c);
    let d = diagnosed(&server_only, &opts);
    assert_eq!((d.kind, d.by), (K::FinWithoutClose, Some(Side::Client)));
    assert_eq!(
        (d.client_observed_code, d.server_observed_code),
        (None, Some(1006))
    );
}

#[test]
fn tls_level_a_fatal_alert_comes_before_close_notify() {
    let mut end = ending("wss-node-tls13-aes256-deflate.pcap");
    for a in alerts(&mut end).iter_mut().filter(|a| a.dir == Dir::S2c) {
        (a.level, a.description, a.name, a.encrypted) =
            (Some(2), Some(42), Some("bad_certificate"), false);
    }
    let opts = AnalysisOptions::default();
    let d = diagnosed(&end, &opts);
    assert_eq!((d.kind, d.by), (K::TlsFatalAlert, Some(Side::Server)));
    assert!(d.abnormal);
    assert!(
        d.verdict
            .starts_with("The server aborted TLS with fatal alert bad_certificate"),
        "{}",
        d.verdict
    );
    assert!(
        d.evidence
            .iter()
            .any(|l| l.starts_with("TLS bad_certificate from the server"))
    );

    end.tls.as_mut().expect("TLS").handshake_complete = false;
    let d = diagnosed(&end, &opts);
    assert_eq!(d.kind, K::TlsFatalAlert);
    assert!(
        d.verdict
            .starts_with("The TLS handshake failed: the server sent fatal alert bad_certificate"),
        "{}",
        d.verdict
    );
}

#[test]
fn tls_level_tcp_ending_an_unfinished_handshake_is_handshake_incomplete() {
    let mut end = ending("wss-node-tls13-chacha-sigkill.pcap");
    end.tls.as_mut().expect("TLS").handshake_complete = false;
    let d = diagnosed(&end, &AnalysisOptions::default());
    assert_eq!((d.kind, d.by), (K::HandshakeIncomplete, Some(Side::Server)));
    assert!(
        d.verdict
            .contains("the server ended the connection with RST before it was done"),
        "{}",
        d.verdict
    );
    // Not an abrupt end of a WebSocket: nobody saw 1006, and no timer is looked for.
    assert_eq!(
        (d.client_observed_code, d.server_observed_code),
        (None, None)
    );
}

#[test]
fn tls_level_a_reset_with_a_foreign_ttl_is_a_middlebox() {
    let mut end = ending("wss-node-tls13-chacha-sigkill.pcap");
    let opts = AnalysisOptions::default();
    assert!(!diagnosed(&end, &opts).by_middlebox);
    for m in &mut end.tcp.rst {
        m.ttl = 50;
    }
    let d = diagnosed(&end, &opts);
    assert_eq!((d.kind, d.by), (K::RstWithoutClose, Some(Side::Server)));
    assert!(d.by_middlebox);
    assert!(
        d.verdict
            .starts_with("Closed by a middlebox: RST toward the client"),
        "{}",
        d.verdict
    );
    assert!(
        d.verdict
            .contains("has ttl 50 but the server's packets have ttl 64"),
        "{}",
        d.verdict
    );
    // One TTL is not a range, and the evidence is worded as for a ws:// connection.
    assert!(!d.verdict.contains("64-64"), "{}", d.verdict);
    assert!(
        d.evidence
            .iter()
            .any(|l| l.ends_with("(ttl 50; the server's other packets have ttl 64)")),
        "{:?}",
        d.evidence
    );
    assert_eq!(d.client_observed_code, Some(1006));
}

#[test]
fn tls_level_an_abrupt_end_is_matched_against_timeouts() {
    // The server closed TCP 1.5 s after the last application data, 1.6 s after the start.
    let end = ending("wss-python-client-node-terminate.pcap");
    let user = ["nginx=1500ms".to_owned(), "gcp-https-lb=1.6s".to_owned()];
    let opts = AnalysisOptions::new(&user, crate::analysis::WS_MAX_PAYLOAD).expect("options");
    let d = diagnosed(&end, &opts);
    assert_eq!(d.kind, K::FinWithoutClose);
    let names: Vec<&str> = d.timeout_matches.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["nginx", "gcp-https-lb"]);
    assert!(
        d.verdict
            .contains(" Matches nginx proxy_read_timeout (1.5 s) or gcp-https-lb"),
        "{}",
        d.verdict
    );
    assert!(
        d.evidence
            .iter()
            .any(|l| l.starts_with("matches nginx proxy_read_timeout = 1.5 s (idle timer"))
    );
    // An idle timer among the matches: pings help.
    assert!(
        d.verdict.contains("Send pings more often than every"),
        "{}",
        d.verdict
    );
    // A lifetime cutoff alone: pings do not help, and the sentence says so.
    let user = ["gcp-https-lb=1.6s".to_owned()];
    let opts = AnalysisOptions::new(&user, crate::analysis::WS_MAX_PAYLOAD).expect("options");
    let d = diagnosed(&end, &opts);
    assert!(
        d.verdict
            .contains("Pings do not help against a lifetime cutoff"),
        "{}",
        d.verdict
    );
    // Without those rows nothing that short is named.
    assert!(
        diagnosed(&end, &AnalysisOptions::default())
            .timeout_matches
            .is_empty()
    );
}
