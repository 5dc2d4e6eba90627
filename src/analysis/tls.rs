//! Diagnosis at the TLS level: takes a wss:// connection whose plaintext was not read (no keys,
//! wrong keys, unsupported cipher suite) and gives how it ended from what TLS shows without
//! keys: close_notify alerts each way (or an encrypted alert record as a side's last record),
//! fatal alerts, FIN and RST, who ended it, and the silence in application-data records before
//! the end, matched against known proxy timeouts. Also gives the TLS evidence lines added to a
//! decrypted connection's diagnosis.
//!
//! The steps are those of the ws diagnosis (`diagnose`), each in its own module: the facts and
//! first conclusions (`facts`: alerts, FINs and RSTs in order, termination kind and who,
//! silences, observed codes), the evidence lines (`evidence`), the timeouts an abrupt end
//! matches, and the sentence (`verdict`). `docs/diagnosis.md` states the rules.

mod evidence;
mod facts;
#[cfg(test)]
mod tests;
mod verdict;

use super::AnalysisOptions;
use super::facts::Termination;
use super::timeouts::{cite_timeouts, timeout_matches};
use crate::diagnosis::{Diagnosis, Heartbeat, Idle, Side, TimeoutMatch};
use crate::event::ConnectionEnd;
use crate::tls::{TlsAlert, TlsInfo};
use crate::types::Ts;
use facts::TlsEnding;

/// An alert as evidence lines and verdicts name it.
fn alert_desc(a: &TlsAlert) -> String {
    match a.name {
        Some(n) => n.to_owned(),
        None => {
            "an encrypted alert (close_notify: no other alert ends a stream quietly)".to_owned()
        }
    }
}

/// Evidence lines about TLS for any wss:// connection: version, suite and names, why it was or
/// was not decrypted, each alert, key updates and renegotiations.
pub(super) fn evidence(end: &ConnectionEnd, t: &TlsInfo) -> Vec<String> {
    let rel = |ts: Ts| format!("+{:.3} s", ts.secs_since(end.start_ts));
    let mut ev = vec![evidence::summary_line(t)];
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
    let e = TlsEnding::new(end, t);
    let term = facts::termination(&e);
    let idle = facts::idle(&e, term.by_ts.unwrap_or(end.end_ts));
    let (client_code, server_code) = facts::observed_codes(&term);

    let mut ev = evidence(end, t);
    evidence::records(t, &mut ev);
    let middlebox = evidence::tcp_closes(&e, &mut ev);
    evidence::last_app_data(&e, &idle, &mut ev);

    let matches = timeouts(&term, &idle, opts);
    cite_timeouts(&matches, &mut ev);

    let verdict = verdict::verdict(
        &e,
        &verdict::Findings {
            termination: term,
            final_silence: idle.final_silence_s,
            middlebox: middlebox.as_deref(),
            matches: &matches,
        },
    );

    Diagnosis {
        kind: term.kind,
        by: term.by,
        by_ts: term.by_ts,
        by_middlebox: middlebox.is_some(),
        client_observed_code: client_code,
        server_observed_code: server_code,
        was_clean: None,
        abnormal: term.kind.is_abnormal(),
        verdict,
        evidence: ev,
        idle,
        heartbeat: Heartbeat::default(),
        linked_leg: None,
        timeout_matches: matches,
        violations: Vec::new(),
    }
}

/// The timeouts an abrupt end matches: the final silence in application data against idle
/// timers, the whole connection against lifetime cutoffs. An end with close_notify first
/// matches none: a timer does not close TLS.
fn timeouts(term: &Termination, idle: &Idle, opts: &AnalysisOptions) -> Vec<TimeoutMatch> {
    if facts::abrupt(term.kind) {
        timeout_matches(&opts.timeouts, idle.final_silence_s, idle.duration_s)
    } else {
        Vec::new()
    }
}
