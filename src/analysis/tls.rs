//! Diagnosis at the TLS level: takes a wss:// connection whose plaintext was not read (no keys,
//! wrong keys, unsupported cipher suite) and gives how it ended from what TLS shows without
//! keys: close_notify alerts each way (or an encrypted alert record as a side's last record),
//! fatal alerts, FIN and RST, who ended it, and the silence in application-data records before
//! the end, matched against known proxy timeouts. Also gives the TLS evidence lines added to a
//! decrypted connection's diagnosis. `docs/diagnosis.md` states the rules.

use std::fmt::Write as _;

use super::AnalysisOptions;
use super::facts::ttl_mismatch;
use super::phrases::secs;
use super::timeouts::{cite_timeouts, timeout_matches};
use crate::diagnosis::{
    Diagnosis, DirIdle, Heartbeat, Idle, Side, TerminationKind as K, TimeoutMatch,
};
use crate::event::ConnectionEnd;
use crate::tls::{TlsAlert, TlsInfo};
use crate::types::{Dir, Ts};

/// How one side ended its part, as TLS shows it.
#[derive(Clone, Copy)]
enum End {
    Alert,
    Fin,
    Rst,
}

fn alert_desc(a: &TlsAlert) -> String {
    match (a.name, a.encrypted) {
        (Some(n), _) => n.to_owned(),
        (None, _) => {
            "an encrypted alert (close_notify: no other alert ends a stream quietly)".to_owned()
        }
    }
}

/// One line on the connection's TLS: version, suite, names, and why nothing was decrypted.
fn summary_line(t: &TlsInfo) -> String {
    let mut s = format!(
        "{} {}",
        t.version.unwrap_or("TLS (version not seen)"),
        t.cipher_suite.as_deref().unwrap_or("")
    );
    if let Some(n) = &t.sni {
        let n: String = n.chars().take(80).collect();
        let _ = write!(s, ", SNI {n:?}");
    }
    match (&t.alpn, t.alpn_offered.is_empty()) {
        (Some(p), _) => {
            let _ = write!(s, ", ALPN {p}");
        }
        (None, false) => {
            let _ = write!(s, ", ALPN offered {}", t.alpn_offered.join(","));
        }
        (None, true) => s.push_str(", no ALPN"),
    }
    let why = match t.decryption {
        "decrypted" => "decrypted",
        "no_keys" => "not decrypted: no key log given (--keylog)",
        "keys_missing" => "not decrypted: the key log lacks this session",
        "failed" => "not decrypted: the keys do not match (authentication failure)",
        "unsupported_cipher" => "not decrypted: cipher suite not supported",
        _ => "not decrypted: the TLS handshake is not in the capture",
    };
    let _ = write!(s, "; {why}");
    s
}

/// Evidence lines about TLS for any wss:// connection.
pub(super) fn evidence(end: &ConnectionEnd, t: &TlsInfo) -> Vec<String> {
    let rel = |ts: Ts| format!("+{:.3} s", ts.secs_since(end.start_ts));
    let mut ev = vec![summary_line(t)];
    for a in &t.alerts {
        ev.push(format!(
            "TLS {} from the {} at {}",
            alert_desc(a),
            Side::of(a.dir).name(),
            rel(a.ts)
        ));
    }
    if t.key_updates > 0 {
        ev.push(format!("{} TLS 1.3 key update(s)", t.key_updates));
    }
    if t.renegotiations > 0 {
        ev.push(format!("{} TLS renegotiation(s)", t.renegotiations));
    }
    ev
}

/// The diagnosis of a wss:// connection whose plaintext was not read.
pub(super) fn diagnose(end: &ConnectionEnd, t: &TlsInfo, opts: &AnalysisOptions) -> Diagnosis {
    let rel = |ts: Ts| format!("+{:.3} s", ts.secs_since(end.start_ts));
    let mut ev = evidence(end, t);
    for (d, info) in [(Dir::C2s, &t.c2s), (Dir::S2c, &t.s2c)] {
        ev.push(format!(
            "{}: {} TLS records, {} bytes; {} application-data records ({} bytes)",
            d.as_str(),
            info.records,
            info.bytes,
            info.app_records,
            info.app_bytes
        ));
    }
    let mut marks: Vec<(Ts, Dir, End)> = t
        .alerts
        .iter()
        .map(|a| (a.ts, a.dir, End::Alert))
        .chain(end.tcp.fin.iter().map(|m| (m.ts, m.dir, End::Fin)))
        .chain(end.tcp.rst.iter().map(|m| (m.ts, m.dir, End::Rst)))
        .collect();
    marks.sort_by_key(|m| m.0);
    let mut middlebox: Option<String> = None;
    for m in end
        .tcp
        .fin
        .iter()
        .map(|m| (m, "FIN"))
        .chain(end.tcp.rst.iter().map(|m| (m, "RST")))
    {
        let sender = Side::of(m.0.dir).name();
        let mut s = format!(
            "{} from the {sender} at {} (ttl {}",
            m.1,
            rel(m.0.ts),
            m.0.ttl
        );
        if let Some((lo, hi)) = ttl_mismatch(end, m.0) {
            let _ = write!(s, "; the {sender}'s other packets have ttl {lo}-{hi}");
            middlebox.get_or_insert_with(|| {
                format!(
                    "{} toward the {} has ttl {} but the {sender}'s packets have ttl {lo}-{hi}",
                    m.1,
                    Side::of(m.0.dir).other().name(),
                    m.0.ttl
                )
            });
        }
        s.push(')');
        ev.push(s);
    }

    let fatal = t.alerts.iter().find(|a| a.level == Some(2));
    let close_from = |d: Dir| t.alerts.iter().find(|a| a.dir == d && a.is_close());
    let (cc, sc) = (close_from(Dir::C2s), close_from(Dir::S2c));
    let first = marks.first().copied();
    let tcp_first = marks
        .iter()
        .find(|m| matches!(m.2, End::Fin | End::Rst))
        .copied();
    let (kind, by_dir, by_ts) = if let Some(a) = fatal {
        (K::TlsFatalAlert, Some(a.dir), Some(a.ts))
    } else if !t.handshake_complete && tcp_first.is_some() {
        let f = tcp_first.map(|m| (m.1, m.0));
        (K::HandshakeIncomplete, f.map(|x| x.0), f.map(|x| x.1))
    } else if cc.is_some() && sc.is_some() {
        let f = first.map(|m| (m.1, m.0));
        (K::TlsClose, f.map(|x| x.0), f.map(|x| x.1))
    } else if let Some(a) = cc.or(sc).filter(|a| first.is_some_and(|m| m.0 >= a.ts)) {
        (K::TlsCloseOneWay, Some(a.dir), Some(a.ts))
    } else if let Some((ts, d, e)) = tcp_first {
        let k = if matches!(e, End::Rst) {
            K::RstWithoutClose
        } else {
            K::FinWithoutClose
        };
        (k, Some(d), Some(ts))
    } else {
        (K::OpenAtCaptureEnd, None, None)
    };
    let by = by_dir.map(Side::of);

    // Silence: application-data records stand for WebSocket frames.
    let end_point = by_ts.unwrap_or(end.end_ts);
    let dir_idle = |info: &crate::tls::TlsDirInfo| DirIdle {
        longest_silence_s: info.longest_silence_s,
        final_silence_s: info.last_app_ts.map(|t| end_point.secs_since(t).max(0.0)),
    };
    let last_app = t.c2s.last_app_ts.max(t.s2c.last_app_ts);
    let final_silence = last_app.map(|ts| end_point.secs_since(ts).max(0.0));
    let duration = end.end_ts.secs_since(end.start_ts);
    let idle = Idle {
        c2s: dir_idle(&t.c2s),
        s2c: dir_idle(&t.s2c),
        final_silence_s: final_silence,
        duration_s: duration,
    };
    for (d, info) in [(Dir::C2s, &t.c2s), (Dir::S2c, &t.s2c)] {
        if let (Some(ts), Some(f)) = (info.last_app_ts, dir_idle(info).final_silence_s) {
            ev.push(format!(
                "last {} application-data record at {}, {} before the end",
                d.as_str(),
                rel(ts),
                secs(f)
            ));
        }
    }

    // Timeouts, for an end with no close_notify first (a timer does not close TLS).
    let mut matches: Vec<TimeoutMatch> = Vec::new();
    if matches!(kind, K::FinWithoutClose | K::RstWithoutClose) {
        matches = timeout_matches(&opts.timeouts, final_silence, duration);
    }
    cite_timeouts(&matches, &mut ev);

    // What each WebSocket peer's close event reports can be inferred only for an abrupt end: a
    // peer that closes its WebSocket properly also closes TLS (close_notify), so a FIN or RST
    // without one means the other side got no close frame either (1006).
    let abrupt = matches!(kind, K::FinWithoutClose | K::RstWithoutClose);
    let observed = |side: Side| (abrupt && by != Some(side)).then_some(1006);
    let (client_code, server_code) = (observed(Side::Client), observed(Side::Server));
    let keys_hint = "give --keylog to read the WebSocket close frames";
    let silence = final_silence
        .map(|s| format!(" {} after the last application data", secs(s)))
        .unwrap_or_default();
    let mut verdict = match kind {
        K::TlsFatalAlert => {
            let a = fatal.map(alert_desc).unwrap_or_default();
            let b = by.unwrap_or(Side::Server);
            if t.handshake_complete {
                format!(
                    "The {} aborted TLS with fatal alert {a}: the connection failed at the TLS layer (the WebSocket peers saw 1006).",
                    b.name()
                )
            } else {
                format!(
                    "The TLS handshake failed: the {} sent fatal alert {a} (certificate not trusted, no shared version or cipher suite, or a name mismatch); no WebSocket connection was made (a browser fires error, then close 1006).",
                    b.name()
                )
            }
        }
        K::HandshakeIncomplete => format!(
            "The TLS handshake did not complete: the {} ended the connection with {} before it was done (certificate rejected quietly, or not a TLS endpoint); no WebSocket connection was made.",
            by.unwrap_or(Side::Server).name(),
            if matches!(tcp_first.map(|m| m.2), Some(End::Rst)) {
                "RST"
            } else {
                "FIN"
            }
        ),
        K::TlsClose => {
            let b = by.unwrap_or(Side::Client);
            format!(
                "TLS closed cleanly: the {} sent close_notify and the {} answered with its own; peers that close TLS this way finished their WebSocket closing handshake first ({keys_hint}).",
                b.name(),
                b.other().name()
            )
        }
        K::TlsCloseOneWay => {
            let b = by.unwrap_or(Side::Client);
            format!(
                "TLS closed by the {}: it sent close_notify, then the {} closed TCP without its own (common, harmless); the {} ended its session on purpose ({keys_hint}).",
                b.name(),
                b.other().name(),
                b.name()
            )
        }
        K::FinWithoutClose | K::RstWithoutClose => {
            let b = by.unwrap_or(Side::Server);
            let what = if kind == K::RstWithoutClose {
                "RST"
            } else {
                "FIN"
            };
            if let Some(mb) = &middlebox {
                format!(
                    "Closed by a middlebox: {what} toward the {}{silence}, without TLS close_notify (the {} saw 1006); {mb}.",
                    b.other().name(),
                    b.other().name()
                )
            } else if kind == K::RstWithoutClose {
                format!(
                    "The {} reset the connection (RST) without TLS close_notify{silence}: the {} process was killed or crashed, or aborted the socket with unread data; the {} saw 1006 (abnormal closure).",
                    b.name(),
                    b.name(),
                    b.other().name()
                )
            } else {
                format!(
                    "The {} closed TCP (FIN) without TLS close_notify{silence}: the {} application dropped the socket without closing TLS (e.g. ws terminate(), socket destroy, process exit), so no WebSocket close frame either; the {} saw 1006 (abnormal closure).",
                    b.name(),
                    b.name(),
                    b.other().name()
                )
            }
        }
        _ => format!(
            "Still open when the capture ended{}.",
            final_silence.map_or(String::new(), |s| format!(
                " ({} since the last application data)",
                secs(s)
            ))
        ),
    };
    if !matches.is_empty() {
        let names: Vec<String> = matches
            .iter()
            .map(|m| format!("{} {} ({})", m.name, m.setting, secs(m.seconds)))
            .collect();
        let _ = write!(
            verdict,
            " Matches {}: send pings more often than that or raise the timeout.",
            names.join(" or ")
        );
    }
    Diagnosis {
        kind,
        by,
        by_ts,
        by_middlebox: middlebox.is_some(),
        client_observed_code: client_code,
        server_observed_code: server_code,
        was_clean: None,
        abnormal: kind.is_abnormal(),
        verdict,
        evidence: ev,
        idle,
        heartbeat: Heartbeat::default(),
        linked_leg: None,
        timeout_matches: matches,
        violations: Vec::new(),
    }
}
