//! The verdict of a TLS-level diagnosis: takes the TLS facts of the end and what the rules found
//! (kind, who, the final silence, a middlebox, matched timeouts), and gives the one sentence a
//! person can act on: what happened at the TLS layer, what it says of the WebSocket inside, and
//! for an end a timer may have caused, which timer. One function per termination kind.

use std::fmt::Write as _;

use super::alert_desc;
use super::facts::{End, TlsEnding};
use crate::analysis::facts::Termination;
use crate::analysis::phrases::secs;
use crate::analysis::timeouts::matches_sentence;
use crate::diagnosis::{Side, TerminationKind as K, TimeoutMatch};

/// Where to look for what the encrypted close frames said.
const KEYS_HINT: &str = "give --keylog to read the WebSocket close frames";

/// What the rules found, which the sentence is written from.
pub(super) struct Findings<'a> {
    pub(super) termination: Termination,
    /// From the last application-data record either way to the end.
    pub(super) final_silence: Option<f64>,
    /// A FIN or RST whose TTL is not its sender's, as a clause.
    pub(super) middlebox: Option<&'a str>,
    pub(super) matches: &'a [TimeoutMatch],
}

/// The sentence, then the timeouts it matches.
pub(super) fn verdict(e: &TlsEnding<'_>, f: &Findings<'_>) -> String {
    let by = f.termination.by;
    let mut verdict = match f.termination.kind {
        K::TlsFatalAlert => fatal_alert(e, by.unwrap_or(Side::Server)),
        K::HandshakeIncomplete => handshake_incomplete(e, by.unwrap_or(Side::Server)),
        K::TlsClose => tls_close(by.unwrap_or(Side::Client)),
        K::TlsCloseOneWay => tls_close_one_way(by.unwrap_or(Side::Client)),
        K::FinWithoutClose | K::RstWithoutClose => abrupt_end(f, by.unwrap_or(Side::Server)),
        // Only the ws rules give the other kinds.
        K::OpenAtCaptureEnd
        | K::CleanClose
        | K::CloseUnanswered
        | K::RstAfterClose
        | K::RejectedUpgrade
        | K::Unknown => format!(
            "Still open when the capture ended{}.",
            f.final_silence.map_or(String::new(), |s| format!(
                " ({} since the last application data)",
                secs(s)
            ))
        ),
    };
    timeout_advice(f, &mut verdict);
    verdict
}

/// A fatal alert from `by`: during the handshake, no WebSocket was made; after it, the
/// connection failed at the TLS layer.
fn fatal_alert(e: &TlsEnding<'_>, by: Side) -> String {
    let a = e.fatal.map(alert_desc).unwrap_or_default();
    if e.t.handshake_complete {
        format!(
            "The {} aborted TLS with fatal alert {a}: the connection failed at the TLS layer (the WebSocket peers saw 1006).",
            by.name()
        )
    } else {
        format!(
            "The TLS handshake failed: the {} sent fatal alert {a} (certificate not trusted, no shared version or cipher suite, or a name mismatch); no WebSocket connection was made (a browser fires error, then close 1006).",
            by.name()
        )
    }
}

/// `by` ended TCP before the handshake was done.
fn handshake_incomplete(e: &TlsEnding<'_>, by: Side) -> String {
    format!(
        "The TLS handshake did not complete: the {} ended the connection with {} before it was done (certificate rejected quietly, or not a TLS endpoint); no WebSocket connection was made.",
        by.name(),
        if e.tcp_first.is_some_and(|m| m.how == End::Rst) {
            "RST"
        } else {
            "FIN"
        }
    )
}

/// close_notify both ways, `by` first.
fn tls_close(by: Side) -> String {
    format!(
        "TLS closed cleanly: the {} sent close_notify and the {} answered with its own; peers that close TLS this way finished their WebSocket closing handshake first ({KEYS_HINT}).",
        by.name(),
        by.other().name()
    )
}

/// close_notify from `by` only, then TCP from the other side.
fn tls_close_one_way(by: Side) -> String {
    format!(
        "TLS closed by the {}: it sent close_notify, then the {} closed TCP without its own (common, harmless); the {} ended its session on purpose ({KEYS_HINT}).",
        by.name(),
        by.other().name(),
        by.name()
    )
}

/// FIN or RST from `by` with no close_notify first: a middlebox (foreign TTL), or the
/// application going away without closing TLS.
fn abrupt_end(f: &Findings<'_>, by: Side) -> String {
    let what = if f.termination.kind == K::RstWithoutClose {
        "RST"
    } else {
        "FIN"
    };
    let silence = f
        .final_silence
        .map(|s| format!(" {} after the last application data", secs(s)))
        .unwrap_or_default();
    let (ender, other) = (by.name(), by.other().name());
    if let Some(mb) = f.middlebox {
        format!(
            "Closed by a middlebox: {what} toward the {other}{silence}, without TLS close_notify (the {other} saw 1006); {mb}."
        )
    } else if f.termination.kind == K::RstWithoutClose {
        format!(
            "The {ender} reset the connection (RST) without TLS close_notify{silence}: the {ender} process was killed or crashed, or aborted the socket with unread data; the {other} saw 1006 (abnormal closure)."
        )
    } else {
        format!(
            "The {ender} closed TCP (FIN) without TLS close_notify{silence}: the {ender} application dropped the socket without closing TLS (e.g. ws terminate(), socket destroy, process exit), so no WebSocket close frame either; the {other} saw 1006 (abnormal closure)."
        )
    }
}

/// The timeouts an abrupt end matches, and what to change (the same sentence as for ws).
fn timeout_advice(f: &Findings<'_>, verdict: &mut String) {
    if let Some(sentence) = matches_sentence(f.matches, f.final_silence) {
        let _ = write!(verdict, " {sentence}");
    }
}
