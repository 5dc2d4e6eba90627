//! What the capture shows of how a ws:// (or decrypted wss://) connection ended: takes its
//! `ConnectionEnd` and what the analysis kept of it, and gives the facts every rule reads (the
//! handshake, close frames, FINs and RSTs in order), then the first conclusions drawn from them:
//! the termination kind and who ended it, what each side's `close` event reports, and the
//! silences before the end. `docs/diagnosis.md` states each rule.

use super::conn::ConnState;
use crate::diagnosis::{DirIdle, Idle, Side, TerminationKind};
use crate::event::{CloseEvent, ConnectionEnd, Handshake, TcpMark};
use crate::types::{Dir, Ts};

/// The end of one connection, as the rules read it.
pub(super) struct Ending<'a> {
    pub(super) end: &'a ConnectionEnd,
    pub(super) st: &'a ConnState,
    /// The final upgrade attempt.
    pub(super) hs: Option<&'a Handshake>,
    /// Its answer's status.
    pub(super) status: Option<u16>,
    pub(super) c2s_close: Option<&'a CloseEvent>,
    pub(super) s2c_close: Option<&'a CloseEvent>,
    pub(super) first_close: Option<&'a CloseEvent>,
    /// FINs and RSTs in time order, `true` for an RST.
    pub(super) tcp_marks: Vec<(&'a TcpMark, bool)>,
    pub(super) first_tcp: Option<(&'a TcpMark, bool)>,
    pub(super) first_rst: Option<&'a TcpMark>,
    /// TCP was closed (a FIN or RST seen, or both FINs before the capture ended).
    pub(super) tcp_ended: bool,
    /// The client sent a browser's User-Agent.
    pub(super) browser: bool,
}

impl<'a> Ending<'a> {
    /// Gathers the facts of `end`.
    pub(super) fn new(end: &'a ConnectionEnd, st: &'a ConnState) -> Ending<'a> {
        let hs = end.handshake.as_ref();
        let tcp_marks = tcp_marks(end);
        let first_tcp = tcp_marks.first().copied();
        Ending {
            end,
            st,
            hs,
            status: hs.and_then(|h| h.status),
            c2s_close: end.close.iter().find(|c| c.dir == Dir::C2s),
            s2c_close: end.close.iter().find(|c| c.dir == Dir::S2c),
            first_close: end.close.iter().min_by_key(|c| c.ts),
            tcp_marks,
            first_tcp,
            first_rst: end.tcp.rst.iter().min_by_key(|m| m.ts),
            tcp_ended: first_tcp.is_some() || end.ended_by == "closed",
            browser: hs
                .and_then(|h| h.user_agent.as_deref())
                .is_some_and(|ua| ua.contains("Mozilla/")),
        }
    }

    /// `ts` as evidence lines give it: seconds from the connection's start.
    pub(super) fn rel(&self, ts: Ts) -> String {
        format!("+{:.3} s", ts.secs_since(self.end.start_ts))
    }
}

/// The FINs and RSTs of `end` in time order, `true` for an RST.
pub(super) fn tcp_marks(end: &ConnectionEnd) -> Vec<(&TcpMark, bool)> {
    let mut marks: Vec<(&TcpMark, bool)> = end
        .tcp
        .fin
        .iter()
        .map(|m| (m, false))
        .chain(end.tcp.rst.iter().map(|m| (m, true)))
        .collect();
    marks.sort_by_key(|(m, _)| m.ts);
    marks
}

/// How the connection ended, and who ended it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Termination {
    pub(super) kind: TerminationKind,
    /// Who sent the first close frame, FIN or RST (the server for a refused upgrade).
    pub(super) by: Option<Side>,
    /// When.
    pub(super) by_ts: Option<Ts>,
}

/// The termination kind: a refused or unanswered upgrade first, then close frames (answered or
/// not, with or without an RST after them), then a bare FIN or RST.
pub(super) fn termination(e: &Ending<'_>) -> Termination {
    use TerminationKind as K;
    let (kind, by_dir, by_ts) = if e.status.is_some_and(|s| s != 101) {
        (
            K::RejectedUpgrade,
            Some(Dir::S2c),
            e.hs.and_then(|h| h.response_ts),
        )
    } else if e
        .hs
        .is_some_and(|h| h.request_ts.is_some() && h.status.is_none())
    {
        (
            K::HandshakeIncomplete,
            e.first_tcp.map(|(m, _)| m.dir),
            e.first_tcp.map(|(m, _)| m.ts),
        )
    } else if let Some(fc) = e.first_close {
        let both = e.c2s_close.is_some() && e.s2c_close.is_some();
        let k = match (both, e.first_rst.is_some()) {
            (true, true) => K::RstAfterClose,
            (true, false) => K::CleanClose,
            (false, _) => {
                if e.tcp_ended {
                    K::CloseUnanswered
                } else {
                    K::OpenAtCaptureEnd
                }
            }
        };
        (k, Some(fc.dir), Some(fc.ts))
    } else if let Some((m, rst)) = e.first_tcp {
        (
            if rst {
                K::RstWithoutClose
            } else {
                K::FinWithoutClose
            },
            Some(m.dir),
            Some(m.ts),
        )
    } else if e.end.handshake_seen {
        (K::OpenAtCaptureEnd, None, None)
    } else {
        (K::Unknown, None, None)
    };
    Termination {
        kind,
        by: by_dir.map(Side::of),
        by_ts,
    }
}

/// What each side's `close` event reports.
#[derive(Clone, Copy, Debug)]
pub(super) struct Codes {
    /// A WebSocket connection was made (a 101, or frames picked up mid-stream).
    pub(super) websocket: bool,
    /// What the client's `close` event reports (1005: close frame without code; 1006: none).
    pub(super) client: Option<u16>,
    /// What the server's `close` event reports.
    pub(super) server: Option<u16>,
    /// Whether a close frame was both sent and received.
    pub(super) was_clean: Option<bool>,
}

/// Each side reports the code of the close frame it received: 1005 when it had no code, 1006
/// when none came before TCP closed, nothing while the connection is still open.
pub(super) fn observed_codes(e: &Ending<'_>) -> Codes {
    let websocket = matches!(e.status, Some(101)) || (e.hs.is_none() && !e.end.handshake_seen);
    let ended = e.tcp_ended || !e.end.close.is_empty();
    let observed = |peer_close: Option<&CloseEvent>| -> Option<u16> {
        if !websocket {
            return None;
        }
        match peer_close {
            Some(c) => Some(c.code.unwrap_or(1005)),
            None if e.tcp_ended => Some(1006),
            None => None,
        }
    };
    Codes {
        websocket,
        client: observed(e.s2c_close),
        server: observed(e.c2s_close),
        was_clean: (websocket && ended).then_some(e.c2s_close.is_some() && e.s2c_close.is_some()),
    }
}

/// Silences up to `end_point` (the end of a WebSocket connection, else its last packet), from
/// the last message, ping or pong (or the handshake when there was none).
pub(super) fn idle(e: &Ending<'_>, end_point: Ts) -> Idle {
    let st = e.st;
    let dir_idle = |d: Dir| DirIdle {
        longest_silence_s: st.longest[d.index()],
        final_silence_s: st.last[d.index()]
            .or(st.hs_ts)
            .map(|t| end_point.secs_since(t).max(0.0)),
    };
    let last_any = st.last_activity().or(st.hs_ts);
    Idle {
        c2s: dir_idle(Dir::C2s),
        s2c: dir_idle(Dir::S2c),
        final_silence_s: last_any.map(|t| end_point.secs_since(t).max(0.0)),
        duration_s: e.end.end_ts.secs_since(e.end.start_ts),
    }
}

/// The lifetime a cutoff counts: from the connection's own start (its SYN, or the first packet).
pub(super) fn lifetime(e: &Ending<'_>) -> f64 {
    e.end.end_ts.secs_since(e.st.start().max(e.end.start_ts))
}

/// The TTL of `mark` against the sender's ordinary packets: `Some(range)` on a mismatch.
pub(super) fn ttl_mismatch(end: &ConnectionEnd, mark: &TcpMark) -> Option<(u8, u8)> {
    let r = match mark.dir {
        Dir::C2s => end.tcp.ttl_c2s,
        Dir::S2c => end.tcp.ttl_s2c,
    };
    let (min, max) = (r.min?, r.max?);
    (mark.ttl < min || mark.ttl > max).then_some((min, max))
}
