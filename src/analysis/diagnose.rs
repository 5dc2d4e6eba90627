//! The diagnosis of one ended connection: takes its `ConnectionEnd`, what the analysis kept of
//! it and the linked proxy leg if any, and gives its [`Diagnosis`]. A wss:// connection without
//! plaintext goes to the TLS-level rules (`tls`); any other runs these steps in order, each rule
//! family in its own module: the facts and first conclusions (`facts`: termination kind and who,
//! observed codes, silences), the evidence lines (`evidence`), the timeouts a timer-like end
//! matches (`timeouts`), what a linked proxy leg tells (`link`), and the sentence (`verdict`).

use super::AnalysisOptions;
use super::conn::ConnState;
use super::link::{self, Link};
use super::timeouts::{cite_timeouts, timeout_matches};
use super::verdict::{self, Findings};
use super::{evidence, facts, tls};
use crate::diagnosis::{Diagnosis, TerminationKind as K};
use crate::event::ConnectionEnd;

/// See the module doc.
pub(super) fn diagnose(
    end: &ConnectionEnd,
    st: &ConnState,
    link: Option<Link>,
    opts: &AnalysisOptions,
) -> Diagnosis {
    // wss:// without plaintext: only TLS can tell how it ended.
    if let Some(t) = end
        .tls
        .as_ref()
        .filter(|t| !end.handshake_seen && t.decryption != "decrypted")
    {
        return tls::diagnose(end, t, opts);
    }
    let e = facts::Ending::new(end, st);
    let term = facts::termination(&e);
    let codes = facts::observed_codes(&e);
    let end_point = term.by_ts.filter(|_| codes.websocket).unwrap_or(end.end_ts);
    let idle = facts::idle(&e, end_point);
    let hb = st.heartbeat.figures(&st.marks);

    let mut ev: Vec<String> = Vec::new();
    evidence::handshake(&e, &mut ev);
    evidence::close_frames(&e, &mut ev);
    let middlebox = evidence::tcp_closes(&e, &mut ev);
    evidence::last_activity(&e, &idle, &mut ev);
    evidence::pings(&hb, &mut ev);
    let violations = evidence::violations(&e, &mut ev);

    // Timeouts: an idle timer counts the final silence, a lifetime cutoff the whole connection.
    let timer_kind = matches!(term.kind, K::FinWithoutClose | K::RstWithoutClose)
        || (term.kind == K::CloseUnanswered && middlebox.is_some());
    let matches = if timer_kind {
        timeout_matches(&opts.timeouts, idle.final_silence_s, facts::lifetime(&e))
    } else {
        Vec::new()
    };
    cite_timeouts(&matches, &mut ev);

    let proxy = link::findings(link.as_ref(), &mut ev);

    let verdict = verdict::verdict(
        &e,
        &Findings {
            termination: term,
            codes,
            final_silence: idle.final_silence_s,
            middlebox: middlebox.as_deref(),
            timer_kind,
            matches: &matches,
            proxy: &proxy,
        },
    );

    Diagnosis {
        kind: term.kind,
        by: term.by,
        by_ts: term.by_ts,
        by_middlebox: middlebox.is_some(),
        client_observed_code: codes.client,
        server_observed_code: codes.server,
        was_clean: codes.was_clean,
        abnormal: term.kind.is_abnormal(),
        verdict,
        evidence: match &end.tls {
            Some(t) => ev.into_iter().chain(tls::evidence(end, t)).collect(),
            None => ev,
        },
        idle,
        heartbeat: hb,
        linked_leg: proxy.other_leg,
        timeout_matches: matches,
        violations,
    }
}
