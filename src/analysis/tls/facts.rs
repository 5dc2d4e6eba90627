//! What TLS shows of how a wss:// connection without plaintext ended: takes its `ConnectionEnd`
//! and `TlsInfo`, and gives the facts the TLS-level rules read (alerts, FINs and RSTs in time
//! order, the fatal alert, close_notify each way), then the first conclusions drawn from them:
//! the termination kind and who ended it, the silences in application-data records, and what
//! each WebSocket peer's `close` event reports.

use crate::analysis::facts::Termination;
use crate::diagnosis::{DirIdle, Idle, Side, TerminationKind as K};
use crate::event::ConnectionEnd;
use crate::tls::{TlsAlert, TlsDirInfo, TlsInfo};
use crate::types::{Dir, Ts};

/// How one side ended its part, as TLS shows it.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum End {
    Alert,
    Fin,
    Rst,
}

/// One side ending its part: when, which way, how.
#[derive(Clone, Copy)]
pub(super) struct EndMark {
    pub(super) ts: Ts,
    pub(super) dir: Dir,
    pub(super) how: End,
}

/// The end of one wss:// connection, as the TLS-level rules read it.
pub(super) struct TlsEnding<'a> {
    pub(super) end: &'a ConnectionEnd,
    pub(super) t: &'a TlsInfo,
    /// The first alert, FIN or RST (at equal times: an alert, then a FIN, then an RST).
    pub(super) first: Option<EndMark>,
    /// The first FIN or RST (a FIN at equal times).
    pub(super) tcp_first: Option<EndMark>,
    /// The first fatal alert.
    pub(super) fatal: Option<&'a TlsAlert>,
    /// The first close_notify (or encrypted alert) from the client.
    pub(super) client_close: Option<&'a TlsAlert>,
    /// From the server.
    pub(super) server_close: Option<&'a TlsAlert>,
}

impl<'a> TlsEnding<'a> {
    /// Gathers the facts of `end`, whose TLS is `t`.
    pub(super) fn new(end: &'a ConnectionEnd, t: &'a TlsInfo) -> TlsEnding<'a> {
        let mut marks: Vec<EndMark> = t
            .alerts
            .iter()
            .map(|a| (a.ts, a.dir, End::Alert))
            .chain(end.tcp.fin.iter().map(|m| (m.ts, m.dir, End::Fin)))
            .chain(end.tcp.rst.iter().map(|m| (m.ts, m.dir, End::Rst)))
            .map(|(ts, dir, how)| EndMark { ts, dir, how })
            .collect();
        // Stable: at equal times the order above stands.
        marks.sort_by_key(|m| m.ts);
        let close_from = |d: Dir| t.alerts.iter().find(|a| a.dir == d && a.is_close());
        TlsEnding {
            end,
            t,
            first: marks.first().copied(),
            tcp_first: marks.iter().find(|m| m.how != End::Alert).copied(),
            fatal: t.alerts.iter().find(|a| a.level == Some(2)),
            client_close: close_from(Dir::C2s),
            server_close: close_from(Dir::S2c),
        }
    }

    /// `ts` as evidence lines give it: seconds from the connection's start.
    pub(super) fn rel(&self, ts: Ts) -> String {
        format!("+{:.3} s", ts.secs_since(self.end.start_ts))
    }
}

/// The termination kind: a fatal alert first, then a handshake TCP ended before it was done,
/// then close_notify both ways, then close_notify from the side that ended it, then a bare FIN
/// or RST.
pub(super) fn termination(e: &TlsEnding<'_>) -> Termination {
    let at = |m: Option<EndMark>| (m.map(|m| m.dir), m.map(|m| m.ts));
    let (kind, (by_dir, by_ts)) = if let Some(a) = e.fatal {
        (K::TlsFatalAlert, (Some(a.dir), Some(a.ts)))
    } else if !e.t.handshake_complete && e.tcp_first.is_some() {
        (K::HandshakeIncomplete, at(e.tcp_first))
    } else if e.client_close.is_some() && e.server_close.is_some() {
        (K::TlsClose, at(e.first))
    } else if let Some(a) = e
        .client_close
        .or(e.server_close)
        .filter(|a| e.first.is_some_and(|m| m.ts >= a.ts))
    {
        (K::TlsCloseOneWay, (Some(a.dir), Some(a.ts)))
    } else if let Some(m) = e.tcp_first {
        let k = if m.how == End::Rst {
            K::RstWithoutClose
        } else {
            K::FinWithoutClose
        };
        (k, at(Some(m)))
    } else {
        (K::OpenAtCaptureEnd, (None, None))
    };
    Termination {
        kind,
        by: by_dir.map(Side::of),
        by_ts,
    }
}

/// TCP ended with no close_notify first: what a crash, a killed process or a timer on the path
/// leaves.
pub(super) fn abrupt(kind: K) -> bool {
    matches!(kind, K::FinWithoutClose | K::RstWithoutClose)
}

/// Silences in application-data records (they stand for WebSocket frames) up to `end_point`
/// (when it was ended, else the last packet).
pub(super) fn idle(e: &TlsEnding<'_>, end_point: Ts) -> Idle {
    let dir_idle = |info: &TlsDirInfo| DirIdle {
        longest_silence_s: info.longest_silence_s,
        final_silence_s: info.last_app_ts.map(|t| end_point.secs_since(t).max(0.0)),
    };
    let last_app = e.t.c2s.last_app_ts.max(e.t.s2c.last_app_ts);
    Idle {
        c2s: dir_idle(&e.t.c2s),
        s2c: dir_idle(&e.t.s2c),
        final_silence_s: last_app.map(|ts| end_point.secs_since(ts).max(0.0)),
        duration_s: e.end.end_ts.secs_since(e.end.start_ts),
    }
}

/// What each WebSocket peer's `close` event reports, (client, server). It can be inferred only
/// for an abrupt end: a peer that closes its WebSocket properly also closes TLS (close_notify),
/// so a FIN or RST without one means the other side got no close frame either (1006).
pub(super) fn observed_codes(term: &Termination) -> (Option<u16>, Option<u16>) {
    let observed = |side: Side| (abrupt(term.kind) && term.by != Some(side)).then_some(1006);
    (observed(Side::Client), observed(Side::Server))
}
