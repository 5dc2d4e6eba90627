//! The verdict of a ws:// (or decrypted wss://) diagnosis: takes the facts of the end and what
//! the rules found (kind, who, codes, silences, middlebox, proxy legs, matched timeouts), and
//! gives the one sentence a person can act on: what happened, the likely cause, and for an end
//! by a timer, which timer and what to change. One function per termination kind.

use std::fmt::Write as _;

use super::facts::{Codes, Ending, Termination};
use super::link::ProxyFindings;
use super::phrases::{close_desc, secs};
use super::timeouts::{MIN_TIMER_SILENCE_S, matches_sentence};
use crate::diagnosis::{Side, TerminationKind as K, TimeoutMatch};

/// A ping unanswered for less than this before its sender ended the connection is not a missed
/// heartbeat: heartbeat timers run in seconds, and a pong can still be in flight.
const MIN_HEARTBEAT_WAIT_S: f64 = 0.5;

/// What the rules found, which the sentence is written from.
pub(super) struct Findings<'a> {
    pub(super) termination: Termination,
    pub(super) codes: Codes,
    /// From the last frame either way to the end.
    pub(super) final_silence: Option<f64>,
    /// A FIN or RST whose TTL is not its sender's, as a clause.
    pub(super) middlebox: Option<&'a str>,
    /// The kind is one a timer on the path may cause.
    pub(super) timer_kind: bool,
    pub(super) matches: &'a [TimeoutMatch],
    pub(super) proxy: &'a ProxyFindings,
}

/// The sentence, then what a proxy leg adds, then the timeout advice.
pub(super) fn verdict(e: &Ending<'_>, f: &Findings<'_>) -> String {
    let mut verdict = match f.termination.kind {
        K::RejectedUpgrade => rejected_upgrade(e),
        K::HandshakeIncomplete => handshake_incomplete(e),
        K::CleanClose | K::RstAfterClose => clean_close(e, f),
        K::CloseUnanswered => close_unanswered(e, f),
        K::FinWithoutClose | K::RstWithoutClose => abrupt_end(e, f),
        K::OpenAtCaptureEnd => format!(
            "Still open when the capture ended{}.",
            f.final_silence.map_or(String::new(), |s| format!(
                " ({} since the last frame)",
                secs(s)
            ))
        ),
        // Only TLS-level diagnoses (tls.rs) give these kinds.
        K::Unknown | K::TlsClose | K::TlsCloseOneWay | K::TlsFatalAlert => {
            "The capture holds neither the start nor the end of this connection.".to_owned()
        }
    };
    if let Some(s) = f.proxy.story.as_ref().filter(|_| !f.proxy.closed_both) {
        let _ = write!(verdict, " Behind a proxy: {s}.");
    }
    timeout_advice(f, &mut verdict);
    verdict
}

/// `the browser saw 1006`, `the proxy's close event is not in the capture`, ...
fn saw(side: Side, e: &Ending<'_>, f: &Findings<'_>) -> String {
    let code = match side {
        Side::Client => f.codes.client,
        Side::Server => f.codes.server,
    };
    let who = match (side, e.browser, f.proxy.is_front) {
        (Side::Client, true, _) => "the browser",
        (Side::Client, _, Some(false)) => "the proxy",
        (Side::Server, _, Some(true)) => "the proxy",
        (Side::Client, _, _) => "the client",
        (Side::Server, _, _) => "the server",
    };
    match code {
        Some(c) => format!("{who} saw {c}"),
        None => format!("{who}'s close event is not in the capture"),
    }
}

/// The upgrade was answered with something other than 101: what that status usually means.
fn rejected_upgrade(e: &Ending<'_>) -> String {
    let s = e.status.unwrap_or_default();
    let reason = e.hs.and_then(|h| h.reason.clone()).unwrap_or_default();
    let server_hdr = e.hs.and_then(|h| {
        h.response_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("server"))
            .map(|(_, v)| v.chars().take(40).collect::<String>())
    });
    let why = match s {
        401 | 407 => "authentication is required or failed",
        403 => "the server refused the client (origin, authorization or path)",
        404 => "nothing is served at that path",
        426 => "the server wants another protocol version",
        500..=599 if matches!(s, 502..=504) => {
            "a proxy could not reach its backend (backend down, refused or too slow)"
        }
        500..=599 => "the server failed while handling the upgrade",
        300..=399 => "the server redirected; WebSocket clients do not follow redirects",
        200 => {
            "the server ignored the upgrade (no WebSocket handler on that path, or a proxy stripped the Upgrade header)"
        }
        _ => "the server did not accept the upgrade",
    };
    format!(
        "Upgrade refused with {s} {reason}{}: {why}; no WebSocket connection was made (a browser fires error, then close 1006).",
        server_hdr.map_or(String::new(), |v| format!(" from {v:?}"))
    )
}

/// The upgrade request got no answer: who then closed TCP, and how long after the request.
fn handshake_incomplete(e: &Ending<'_>) -> String {
    match e.first_tcp {
        Some((m, rst)) => format!(
            "The upgrade request got no answer; the {} then {} the connection {} after the request: the server (or a proxy) dropped it or is not a WebSocket endpoint.",
            Side::of(m.dir).name(),
            if rst { "reset" } else { "closed" },
            secs(
                m.ts.secs_since(e.hs.and_then(|h| h.request_ts).unwrap_or(e.end.start_ts))
                    .max(0.0)
            ),
        ),
        None => "The upgrade request got no answer before the capture ended.".to_owned(),
    }
}

/// Close frames both ways (with or without an RST after them).
fn clean_close(e: &Ending<'_>, f: &Findings<'_>) -> String {
    let fc = e.first_close.map(|c| c.code);
    let b = f.termination.by.unwrap_or(Side::Client);
    let mut s = format!(
        "Clean close: the {} closed with {} and the {} answered ({}, {})",
        b.name(),
        close_desc(fc.flatten()),
        b.other().name(),
        saw(Side::Client, e, f),
        saw(Side::Server, e, f)
    );
    if f.termination.kind == K::RstAfterClose {
        let r = e.first_rst.map_or("", |m| Side::of(m.dir).name());
        let _ = write!(
            s,
            "; the {r} then reset TCP instead of FIN (unread data or SO_LINGER 0), harmless to the WebSocket"
        );
    }
    s.push('.');
    s
}

/// One side's close frame was never answered.
fn close_unanswered(e: &Ending<'_>, f: &Findings<'_>) -> String {
    let b = f.termination.by.unwrap_or(Side::Client);
    let after = e.first_tcp.map_or(String::new(), |(m, rst)| {
        format!(
            "; then {} from the {}",
            if rst { "RST" } else { "FIN" },
            Side::of(m.dir).name()
        )
    });
    format!(
        "The {} sent close {} but the {} never answered it{after} ({}, {}): the {} stopped reading or went away during the closing handshake.",
        b.name(),
        close_desc(e.first_close.and_then(|c| c.code)),
        b.other().name(),
        saw(Side::Client, e, f),
        saw(Side::Server, e, f),
        b.other().name()
    )
}

/// FIN or RST with no close frame at all: a middlebox (foreign TTL), the proxy ending both legs,
/// a heartbeat that went unanswered, or the peer's process going away.
fn abrupt_end(e: &Ending<'_>, f: &Findings<'_>) -> String {
    let kind = f.termination.kind;
    let b = f.termination.by.unwrap_or(Side::Server);
    let what = if kind == K::RstWithoutClose {
        "RST"
    } else {
        "FIN"
    };
    // The ping the ender sent last before ending, and whether it was answered in time.
    let missed_ping = f
        .termination
        .by_ts
        .and_then(|t| e.st.heartbeat.missed_before(b, t, MIN_HEARTBEAT_WAIT_S));
    let silence_phrase = f
        .final_silence
        .map(|s| format!(" {} after the last frame", secs(s)))
        .unwrap_or_default();
    if let Some(mb) = f.middlebox {
        format!(
            "Closed by a middlebox: {what} toward the {}{silence_phrase}, no close frame ({}); {mb}.",
            b.other().name(),
            saw(b.other(), e, f)
        )
    } else if f.proxy.closed_both {
        format!(
            "Closed by the proxy: it ended both legs with {what}{}, no close frame ({}): a proxy idle timeout.",
            f.final_silence
                .map_or(String::new(), |s| format!(" after {} of silence", secs(s))),
            saw(b.other(), e, f)
        )
    } else if let Some(p) = missed_ping {
        let late = p.pong.map_or(String::new(), |(ts, _)| {
            format!(
                "; its pong came {} after the ping, after the connection was closed",
                secs(ts.secs_since(p.ts))
            )
        });
        format!(
            "Heartbeat timeout: the {} ended the connection with {what} {} after its ping went unanswered, no close frame ({}){late}; the {} was not reading (blocked event loop, paused socket, or a dead network path).",
            b.name(),
            secs(f.termination.by_ts.map_or(0.0, |t| t.secs_since(p.ts))),
            saw(b.other(), e, f),
            b.other().name()
        )
    } else if kind == K::RstWithoutClose {
        format!(
            "The {} reset the connection (RST) without a close frame ({}): the {} process was killed or crashed, or aborted the socket with unread data.",
            b.name(),
            saw(b.other(), e, f),
            b.name()
        )
    } else {
        format!(
            "The {} closed the TCP connection (FIN) without a close frame ({}): the {} application dropped the socket without the closing handshake (e.g. ws terminate(), socket destroy, process exit).",
            b.name(),
            saw(b.other(), e, f),
            b.name()
        )
    }
}

/// For an end by a timer: the timeouts it matches and what to change (pings help against an
/// idle timer, not a lifetime cutoff); without a match, what to look for.
fn timeout_advice(f: &Findings<'_>, verdict: &mut String) {
    if let Some(sentence) = matches_sentence(f.matches, f.final_silence) {
        let _ = write!(verdict, " {sentence}");
    } else if (f.proxy.closed_both || (f.middlebox.is_some() && f.timer_kind))
        && let Some(s) = f.final_silence.filter(|s| *s >= MIN_TIMER_SILENCE_S)
    {
        let _ = write!(
            verdict,
            " No well-known default is near {}: look for a proxy timeout set to that (nginx proxy_read_timeout, HAProxy timeout tunnel), or give it with --timeout NAME={:.0}s; pinging more often than that keeps the connection alive.",
            secs(s),
            s
        );
    }
}
