//! The diagnosis values: what the analysis stage (`crate::analysis`) attaches to each
//! `ConnectionEnd` (how the connection ended, who ended it, the close codes each side saw, idle
//! and heartbeat figures, matched timeouts, broken rules, the verdict) and the per-capture
//! summary of them.
//!
//! Plain data with serde and small helpers, and nothing else: the event stream and the sinks
//! name these types, so they sit below both; the rules that compute them live in `analysis`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::types::{ConnId, Dir, Ts};

/// How a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TerminationKind {
    /// Close frames both ways, then (if captured) TCP close by FIN.
    CleanClose,
    /// One side's close frame was never answered.
    CloseUnanswered,
    /// FIN with no close frame at all.
    FinWithoutClose,
    /// RST with no close frame at all.
    RstWithoutClose,
    /// Close frames both ways, then RST instead of FIN.
    RstAfterClose,
    /// The upgrade was answered with something other than 101.
    RejectedUpgrade,
    /// The upgrade request got no answer.
    HandshakeIncomplete,
    /// Nothing ended it before the capture did.
    OpenAtCaptureEnd,
    /// Neither start nor end is in the capture.
    Unknown,
    /// wss:// without plaintext: TLS close_notify both ways.
    TlsClose,
    /// wss:// without plaintext: close_notify from the side that ended it, FIN from the other.
    TlsCloseOneWay,
    /// wss:// without plaintext: a fatal TLS alert.
    TlsFatalAlert,
}

impl TerminationKind {
    /// Every kind, in declaration order (for checking user input such as `kind:` filters).
    pub const ALL: [TerminationKind; 12] = [
        TerminationKind::CleanClose,
        TerminationKind::CloseUnanswered,
        TerminationKind::FinWithoutClose,
        TerminationKind::RstWithoutClose,
        TerminationKind::RstAfterClose,
        TerminationKind::RejectedUpgrade,
        TerminationKind::HandshakeIncomplete,
        TerminationKind::OpenAtCaptureEnd,
        TerminationKind::Unknown,
        TerminationKind::TlsClose,
        TerminationKind::TlsCloseOneWay,
        TerminationKind::TlsFatalAlert,
    ];

    /// Position in [`TerminationKind::ALL`]; exhaustive, so a new kind cannot be left out of it
    /// unnoticed (the test below checks the two agree).
    #[cfg(test)]
    fn ordinal(self) -> usize {
        match self {
            TerminationKind::CleanClose => 0,
            TerminationKind::CloseUnanswered => 1,
            TerminationKind::FinWithoutClose => 2,
            TerminationKind::RstWithoutClose => 3,
            TerminationKind::RstAfterClose => 4,
            TerminationKind::RejectedUpgrade => 5,
            TerminationKind::HandshakeIncomplete => 6,
            TerminationKind::OpenAtCaptureEnd => 7,
            TerminationKind::Unknown => 8,
            TerminationKind::TlsClose => 9,
            TerminationKind::TlsCloseOneWay => 10,
            TerminationKind::TlsFatalAlert => 11,
        }
    }

    /// The snake-case name used in every output.
    pub fn as_str(self) -> &'static str {
        match self {
            TerminationKind::CleanClose => "clean_close",
            TerminationKind::CloseUnanswered => "close_unanswered",
            TerminationKind::FinWithoutClose => "fin_without_close",
            TerminationKind::RstWithoutClose => "rst_without_close",
            TerminationKind::RstAfterClose => "rst_after_close",
            TerminationKind::RejectedUpgrade => "rejected_upgrade",
            TerminationKind::HandshakeIncomplete => "handshake_incomplete",
            TerminationKind::OpenAtCaptureEnd => "open_at_capture_end",
            TerminationKind::Unknown => "unknown",
            TerminationKind::TlsClose => "tls_close",
            TerminationKind::TlsCloseOneWay => "tls_close_one_way",
            TerminationKind::TlsFatalAlert => "tls_fatal_alert",
        }
    }

    /// Whether `--fail-on abnormal` counts it: anything but a clean close (with or without an
    /// RST after it: both sides already reported their code), a connection still open, or one
    /// whose end is not in the capture (nothing to blame).
    pub fn is_abnormal(self) -> bool {
        !matches!(
            self,
            TerminationKind::CleanClose
                | TerminationKind::RstAfterClose
                | TerminationKind::OpenAtCaptureEnd
                | TerminationKind::Unknown
                | TerminationKind::TlsClose
                | TerminationKind::TlsCloseOneWay
        )
    }
}

/// An endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The side that sent the upgrade request.
    Client,
    /// The other.
    Server,
}

impl Side {
    /// The side that sends in `dir`.
    pub(crate) fn of(dir: Dir) -> Side {
        match dir {
            Dir::C2s => Side::Client,
            Dir::S2c => Side::Server,
        }
    }

    /// The name used in sentences and evidence lines.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }

    /// The other endpoint.
    pub(crate) fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

/// Whether a timeout counts silence or the whole connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeoutKind {
    /// Fires after this much silence.
    Idle,
    /// Fires this long after the connection started, busy or not.
    Lifetime,
}

/// Silence in one direction.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DirIdle {
    /// Longest gap between two frames (or the handshake and the first frame), seconds.
    pub longest_silence_s: Option<f64>,
    /// From the last frame to the end (first close frame, FIN or RST; else the last packet).
    pub final_silence_s: Option<f64>,
}

/// Idle figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Idle {
    /// Client to server.
    pub c2s: DirIdle,
    /// Server to client.
    pub s2c: DirIdle,
    /// From the last frame either way to the end: what an idle timer on the path counts.
    pub final_silence_s: Option<f64>,
    /// Whole connection, seconds: what a lifetime cutoff counts.
    pub duration_s: f64,
}

/// Ping/pong figures, for the side(s) that pinged.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Heartbeat {
    /// Pings seen (both directions).
    pub pings: u64,
    /// Who sent the pings (`null` with none, or both sides).
    pub pinger: Option<Side>,
    /// Median seconds between two pings from the same side.
    pub interval_median_s: Option<f64>,
    /// Largest seconds between two pings from the same side.
    pub interval_max_s: Option<f64>,
    /// Pong round-trip, milliseconds, median.
    pub rtt_p50_ms: Option<f64>,
    /// 99th percentile.
    pub rtt_p99_ms: Option<f64>,
    /// Largest.
    pub rtt_max_ms: Option<f64>,
    /// Pings with no pong before the connection ended.
    pub unanswered: u64,
    /// Pongs that arrived after the pinger had already closed (close frame, FIN or RST).
    pub late_pongs: u64,
}

/// A timeout the silence (or lifetime) matches.
#[derive(Clone, Debug, Serialize)]
pub struct TimeoutMatch {
    /// Product.
    pub name: String,
    /// Setting.
    pub setting: String,
    /// Its value, seconds.
    pub seconds: f64,
    /// `idle` or `lifetime`.
    pub kind: TimeoutKind,
    /// Where the value comes from.
    pub source: String,
}

/// A protocol rule broken on the connection (the table is `analysis::rfc`).
#[derive(Clone, Debug, Serialize)]
pub struct Violation {
    /// Anomaly kind.
    pub kind: &'static str,
    /// How many times.
    pub count: u64,
    /// RFC section.
    pub rfc: &'static str,
    /// Close code a strict peer sends.
    pub close_code: Option<u16>,
    /// `ws` library error code.
    pub ws_error: Option<&'static str>,
}

/// Why and how a connection ended.
#[derive(Clone, Debug, Serialize)]
pub struct Diagnosis {
    /// Termination kind.
    pub kind: TerminationKind,
    /// Who sent the first close frame, FIN or RST (the server for a refused upgrade).
    pub by: Option<Side>,
    /// When.
    pub by_ts: Option<Ts>,
    /// The FIN/RST that ended it carries a TTL unlike the sender's other packets: something on
    /// the path made it.
    pub by_middlebox: bool,
    /// What the client's `close` event reports (1005: close frame without code; 1006: none).
    pub client_observed_code: Option<u16>,
    /// What the server's `close` event reports.
    pub server_observed_code: Option<u16>,
    /// Whether a close frame was both sent and received (the same for both sides).
    pub was_clean: Option<bool>,
    /// Anything but a clean close or a connection still open (see `--fail-on`).
    pub abnormal: bool,
    /// One sentence a person can act on.
    pub verdict: String,
    /// The facts behind it.
    pub evidence: Vec<String>,
    /// Silences.
    pub idle: Idle,
    /// Pings and pongs.
    pub heartbeat: Heartbeat,
    /// The other leg through the same proxy, when the capture holds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linked_leg: Option<ConnId>,
    /// Known timeouts the final silence (or the lifetime) matches.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timeout_matches: Vec<TimeoutMatch>,
    /// Protocol rules broken, with the close code a strict peer would send.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<Violation>,
}

/// Connections of a capture by outcome.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DiagnosisSummary {
    /// By termination kind.
    pub by_kind: BTreeMap<&'static str, u64>,
    /// By the code the client's close event reports (`none` when unknown).
    pub by_client_code: BTreeMap<String, u64>,
    /// By the code the server's close event reports.
    pub by_server_code: BTreeMap<String, u64>,
    /// Abnormal connections.
    pub abnormal: u64,
    /// Connections with at least one anomaly.
    pub with_anomalies: u64,
}

impl DiagnosisSummary {
    /// Counts one ended connection with its diagnosis and its number of anomalies.
    pub(crate) fn add(&mut self, d: &Diagnosis, anomalies: u64) {
        *self.by_kind.entry(d.kind.as_str()).or_default() += 1;
        let code = |c: Option<u16>| c.map_or_else(|| "none".to_owned(), |c| c.to_string());
        *self
            .by_client_code
            .entry(code(d.client_observed_code))
            .or_default() += 1;
        *self
            .by_server_code
            .entry(code(d.server_observed_code))
            .or_default() += 1;
        self.abnormal += u64::from(d.abnormal);
        self.with_anomalies += u64::from(anomalies > 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_listed_once() {
        for (i, k) in TerminationKind::ALL.iter().enumerate() {
            assert_eq!(k.ordinal(), i, "{}", k.as_str());
        }
    }
}
