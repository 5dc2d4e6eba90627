//! The evidence lines of a ws:// (or decrypted wss://) diagnosis: takes the facts of its end
//! and gives one line per fact behind the verdict (the handshake's answer, each close frame,
//! each FIN and RST with its TTL, the last activity each way, pings, broken protocol rules),
//! plus the middlebox a foreign TTL points to and the rules broken.

use std::fmt::Write as _;

use super::facts::{Ending, ttl_mismatch};
use super::phrases::{close_desc, secs};
use super::rfc;
use crate::diagnosis::{Heartbeat, Idle, Side, Violation};
use crate::event::{ConnectionEnd, TcpMark};
use crate::types::Dir;

/// The upgrade's answer, or that there was none (or no handshake at all).
pub(super) fn handshake(e: &Ending<'_>, ev: &mut Vec<String>) {
    if let Some(h) = e.hs {
        match (h.status, h.response_ts) {
            (Some(s), Some(t)) => ev.push(format!("upgrade answered {s} at {}", e.rel(t))),
            (None, _) if h.request_ts.is_some() => {
                ev.push("upgrade request with no answer in the capture".to_owned())
            }
            _ => {}
        }
    } else if !e.end.handshake_seen {
        ev.push("handshake not in the capture (picked up mid-stream)".to_owned());
    }
}

/// Each close frame: who, when, its code and reason.
pub(super) fn close_frames(e: &Ending<'_>, ev: &mut Vec<String>) {
    for c in &e.end.close {
        let mut s = format!(
            "close frame from {} at {}: {}",
            Side::of(c.dir).name(),
            e.rel(c.ts),
            close_desc(c.code)
        );
        if !c.reason.is_empty() {
            let reason: String = c.reason.chars().take(80).collect();
            let _ = write!(s, " {reason:?}");
        }
        ev.push(s);
    }
}

/// Each FIN and RST with its TTL; gives the first whose TTL is unlike its sender's other
/// packets, as a clause: something on the path sent it.
pub(super) fn tcp_closes(e: &Ending<'_>, ev: &mut Vec<String>) -> Option<String> {
    tcp_close_lines(e.end, &e.tcp_marks, ev)
}

/// [`tcp_closes`] for any ending: `marks` are its FINs and RSTs in time order (`true` for an
/// RST). The TLS-level diagnosis words them the same way.
pub(super) fn tcp_close_lines(
    end: &ConnectionEnd,
    marks: &[(&TcpMark, bool)],
    ev: &mut Vec<String>,
) -> Option<String> {
    let mut middlebox: Option<String> = None;
    for (m, rst) in marks {
        let what = if *rst { "RST" } else { "FIN" };
        let sender = Side::of(m.dir).name();
        let mut s = format!(
            "{what} from the {sender} at +{:.3} s (ttl {}",
            m.ts.secs_since(end.start_ts),
            m.ttl
        );
        if let Some((lo, hi)) = ttl_mismatch(end, m) {
            let range = if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            };
            let _ = write!(s, "; the {sender}'s other packets have ttl {range}");
            if middlebox.is_none() {
                middlebox = Some(format!(
                    "{what} toward the {} has ttl {} but the {sender}'s packets have ttl {range}",
                    Side::of(m.dir).other().name(),
                    m.ttl
                ));
            }
        }
        s.push(')');
        ev.push(s);
    }
    middlebox
}

/// The last message or ping each way, and how long before the end.
pub(super) fn last_activity(e: &Ending<'_>, idle: &Idle, ev: &mut Vec<String>) {
    for (d, i) in [(Dir::C2s, &idle.c2s), (Dir::S2c, &idle.s2c)] {
        if let (Some(t), Some(f)) = (e.st.last[d.index()], i.final_silence_s) {
            ev.push(format!(
                "last {} message or ping at {}, {} before the end",
                d.as_str(),
                e.rel(t),
                secs(f)
            ));
        }
    }
}

/// Pings, when there were any.
pub(super) fn pings(hb: &Heartbeat, ev: &mut Vec<String>) {
    if hb.pings > 0 {
        ev.push(format!(
            "{} ping(s), {} unanswered, {} late pong(s)",
            hb.pings, hb.unanswered, hb.late_pongs
        ));
    }
}

/// The protocol rules the connection's anomalies break, each with a line.
pub(super) fn violations(e: &Ending<'_>, ev: &mut Vec<String>) -> Vec<Violation> {
    let violations: Vec<Violation> =
        e.st.anomalies
            .iter()
            .filter_map(|(k, n)| {
                rfc::rule(k).map(|r| Violation {
                    kind: r.kind,
                    count: *n,
                    rfc: r.rfc,
                    close_code: r.close_code,
                    ws_error: r.ws_error,
                })
            })
            .collect();
    for v in &violations {
        let mut s = format!("{} x{} breaks {}", v.kind, v.count, v.rfc);
        if let Some(c) = v.close_code {
            let _ = write!(s, ": a strict peer closes with {c}");
        }
        if let Some(w) = v.ws_error {
            let _ = write!(s, " (ws: {w})");
        }
        ev.push(s);
    }
    violations
}
