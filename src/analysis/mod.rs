//! The analysis stage: takes the event stream (in capture order), gives each `ConnectionEnd` a
//! [`Diagnosis`] — how the connection ended, who ended it, what close code each side's `close`
//! event reported, idle and heartbeat figures, and one sentence saying why — and gives the
//! capture a [`DiagnosisSummary`].
//!
//! It sits between the session and the sink ([`AnalysisSink`] wraps any sink). It keeps, per
//! open connection, only what the rules need (message sizes and times, pings, close frames,
//! FIN/RST), and a bounded history of recently ended connections so that the two legs of a
//! proxied connection can be linked whichever ends first. `docs/diagnosis.md` states each rule.

mod heartbeat;
pub mod rfc;
pub mod timeouts;
mod tls;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::io;

use crate::diagnosis::{
    Diagnosis, DiagnosisSummary, DirIdle, Idle, Side, TerminationKind, TimeoutKind, TimeoutMatch,
    Violation,
};
use crate::error::Error;
use crate::event::{AnomalyEvent, ConnectionEnd, Event, TcpMark};
use crate::sink::{CaptureSummary, EventSink, LiveStats};
use crate::types::{ConnId, Dir, Ts};
use heartbeat::HeartbeatState;
use timeouts::Timeout;

/// `ws`'s default `maxPayload` (100 MiB): a longer message makes it close with 1009.
pub const WS_MAX_PAYLOAD: u64 = 100 * 1024 * 1024;
/// Ended connections kept for linking proxy legs.
const HISTORY: usize = 256;
/// Messages per connection kept for linking proxy legs.
const LINK_MESSAGES: usize = 32;
/// Two copies of a message on two legs of one proxy are this close in time, at most.
const LINK_WINDOW_NS: i64 = 2_000_000_000;
/// A ping unanswered for less than this before its sender ended the connection is not a missed
/// heartbeat: heartbeat timers run in seconds, and a pong can still be in flight.
const MIN_HEARTBEAT_WAIT_S: f64 = 0.5;
/// Below this, silence before the end is reaction time, not a timer.
const MIN_TIMER_SILENCE_S: f64 = 1.0;

/// What the analysis is told.
#[derive(Clone, Debug)]
pub struct AnalysisOptions {
    /// Known proxy / load-balancer timeouts, built-in and user rows.
    pub timeouts: Vec<Timeout>,
    /// A message longer than this is flagged `message_over_max_payload` (ws closes with 1009).
    pub max_payload: u64,
}

impl AnalysisOptions {
    /// The built-in timeout table plus `user` rows (`NAME=DURATION`).
    pub fn new(user: &[String], max_payload: u64) -> Result<AnalysisOptions, Error> {
        let mut timeouts = timeouts::builtin()?;
        let mut extra = Vec::new();
        for spec in user {
            extra.push(timeouts::parse_user(spec, &timeouts)?);
        }
        timeouts.extend(extra);
        Ok(AnalysisOptions {
            timeouts,
            max_payload,
        })
    }
}

impl Default for AnalysisOptions {
    fn default() -> Self {
        AnalysisOptions {
            // The table is embedded and tested; an empty table only loses the names.
            timeouts: timeouts::builtin().unwrap_or_default(),
            max_payload: WS_MAX_PAYLOAD,
        }
    }
}

/// Known timeouts an ending by a timer may match: the final silence against idle timers, the
/// whole lifetime against lifetime cutoffs (each only past the shortest timer worth naming).
fn timeout_matches(
    opts: &AnalysisOptions,
    final_silence: Option<f64>,
    duration: f64,
) -> Vec<TimeoutMatch> {
    let to_match = |t: &Timeout| TimeoutMatch {
        name: t.name.clone(),
        setting: t.setting.clone(),
        seconds: t.seconds.unwrap_or_default(),
        kind: t.kind,
        source: t.source.clone(),
    };
    let mut matches = Vec::new();
    if let Some(s) = final_silence.filter(|s| *s >= MIN_TIMER_SILENCE_S) {
        matches.extend(
            timeouts::matching(&opts.timeouts, TimeoutKind::Idle, s)
                .into_iter()
                .map(to_match),
        );
    }
    if duration >= MIN_TIMER_SILENCE_S {
        matches.extend(
            timeouts::matching(&opts.timeouts, TimeoutKind::Lifetime, duration)
                .into_iter()
                .map(to_match),
        );
    }
    matches
}

/// One evidence line per timeout matched, with its source.
fn cite_timeouts(matches: &[TimeoutMatch], ev: &mut Vec<String>) {
    for m in matches {
        ev.push(format!(
            "matches {} {} = {} ({}; source: {})",
            m.name,
            m.setting,
            secs(m.seconds),
            match m.kind {
                TimeoutKind::Idle => "idle timer",
                TimeoutKind::Lifetime => "lifetime cutoff",
            },
            m.source
        ));
    }
}

/// How one side ended its part.
#[derive(Clone, Copy, Debug, PartialEq)]
enum What {
    Close(Option<u16>),
    Fin,
    Rst,
}

#[derive(Clone, Copy, Debug)]
struct Mark {
    ts: Ts,
    dir: Dir,
    what: What,
}

impl Mark {
    fn verb(&self) -> String {
        match self.what {
            What::Close(Some(c)) => format!("sent close {c}"),
            What::Close(None) => "sent close (no code)".to_owned(),
            What::Fin => "sent FIN".to_owned(),
            What::Rst => "sent RST".to_owned(),
        }
    }
}

/// What is kept per connection.
#[derive(Clone, Debug, Default)]
struct ConnState {
    id: ConnId,
    client: String,
    server: String,
    open_ts: Option<Ts>,
    hs_ts: Option<Ts>,
    path: Option<String>,
    last: [Option<Ts>; 2],
    longest: [Option<f64>; 2],
    msgs: Vec<(Ts, Dir, u64)>,
    heartbeat: HeartbeatState,
    marks: Vec<Mark>,
    anomalies: BTreeMap<&'static str, u64>,
}

impl ConnState {
    fn activity(&mut self, ts: Ts, dir: Dir) {
        let d = dir.index();
        if let Some(prev) = self.last[d].or(self.hs_ts) {
            let gap = ts.secs_since(prev);
            if self.longest[d].is_none_or(|l| gap > l) {
                self.longest[d] = Some(gap);
            }
        }
        self.last[d] = Some(ts);
    }

    fn first_end(&self) -> Option<Mark> {
        self.marks.iter().min_by_key(|m| m.ts).copied()
    }

    fn last_activity(&self) -> Option<Ts> {
        self.last[0].max(self.last[1])
    }
}

/// Turns events into diagnoses; see the module doc.
pub struct Analyzer {
    opts: AnalysisOptions,
    open: HashMap<ConnId, ConnState>,
    ended: VecDeque<ConnState>,
}

impl Analyzer {
    /// An analyzer with these options.
    pub fn new(opts: AnalysisOptions) -> Analyzer {
        Analyzer {
            opts,
            open: HashMap::new(),
            ended: VecDeque::new(),
        }
    }

    /// Notes one event (every event, in capture order, before its `ConnectionEnd`).
    pub fn observe(&mut self, ev: &Event) {
        let id = ev.conn();
        let st = self.open.entry(id).or_insert_with(|| ConnState {
            id,
            ..ConnState::default()
        });
        match ev {
            Event::ConnectionOpen(o) => {
                st.client.clone_from(&o.client);
                st.server.clone_from(&o.server);
                st.open_ts = Some(o.ts);
            }
            Event::Handshake(h) => {
                st.hs_ts = Some(h.ts);
                st.path.clone_from(&h.handshake.path);
            }
            Event::Message(m) => {
                st.activity(m.ts, m.dir);
                if st.msgs.len() < LINK_MESSAGES {
                    st.msgs.push((m.ts, m.dir, m.len));
                }
            }
            Event::Ping(p) => {
                st.activity(p.ts, p.dir);
                st.heartbeat.ping(p.ping_id, p.ts, p.dir, &st.marks);
            }
            Event::Pong(p) => {
                st.activity(p.ts, p.dir);
                st.heartbeat.pong(p.ping_id, p.ts, p.rtt_ms);
            }
            Event::Close(c) => {
                // Not activity: silence is measured up to the close, not through it.
                st.marks.push(Mark {
                    ts: c.ts,
                    dir: c.dir,
                    what: What::Close(c.code),
                });
            }
            Event::Tcp(t) => st.marks.push(Mark {
                ts: t.ts,
                dir: t.dir,
                what: if t.kind == "rst" {
                    What::Rst
                } else {
                    What::Fin
                },
            }),
            Event::Anomaly(a) => *st.anomalies.entry(a.kind).or_default() += 1,
            Event::Frame(_) | Event::Gap(_) | Event::ConnectionEnd(_) => {}
        }
    }

    /// The diagnosis of a connection that just ended (its events all observed).
    pub fn diagnose(&mut self, end: &ConnectionEnd) -> Diagnosis {
        let mut st = self.open.remove(&end.conn).unwrap_or_default();
        st.id = end.conn;
        if st.client.is_empty() {
            st.client.clone_from(&end.client);
            st.server.clone_from(&end.server);
        }
        let link = self.find_link(&st);
        let d = diagnose(end, &st, link, &self.opts);
        self.ended.push_back(st);
        if self.ended.len() > HISTORY {
            self.ended.pop_front();
        }
        d
    }

    /// The other leg of a proxied connection: open or recently ended.
    fn find_link(&self, st: &ConnState) -> Option<Link> {
        let others = self
            .open
            .values()
            .chain(self.ended.iter())
            .filter(|o| o.id != st.id);
        let mut best: Option<(i64, Link)> = None;
        for o in others {
            let link = if legs_match(st, o) {
                Link {
                    front: st.clone(),
                    back: o.clone(),
                    self_is_front: true,
                }
            } else if legs_match(o, st) {
                Link {
                    front: o.clone(),
                    back: st.clone(),
                    self_is_front: false,
                }
            } else {
                continue;
            };
            let dist = start(&link.front).0.abs_diff(start(&link.back).0) as i64;
            if best.as_ref().is_none_or(|(b, _)| dist < *b) {
                best = Some((dist, link));
            }
        }
        best.map(|(_, l)| l)
    }
}

struct Link {
    front: ConnState,
    back: ConnState,
    self_is_front: bool,
}

/// When the connection began: its SYN (or first packet). Not the 101, which on the client leg of
/// a proxy comes after the backend leg's.
fn start(s: &ConnState) -> Ts {
    s.open_ts.or(s.hs_ts).unwrap_or_default()
}

/// The address part of `ip:port` / `[v6]:port`.
fn ip(endpoint: &str) -> &str {
    endpoint
        .rsplit_once(':')
        .map_or(endpoint, |(a, _)| a)
        .trim_start_matches('[')
        .trim_end_matches(']')
}

/// Whether `back` is the proxy→backend leg of `front` (client→proxy): the proxy's address is
/// `front`'s server and `back`'s client, `back` starts just after `front`, and the same messages
/// (direction and size) cross both within a short time, each reaching the proxy before it
/// leaves it (client→server copies on `front` first, server→client copies on `back` first).
fn legs_match(front: &ConnState, back: &ConnState) -> bool {
    // Cheap integer tests first: this runs for every pair of an ending connection and every
    // open or recently ended one, and most pairs fail on timing or message count.
    if front.msgs.is_empty() || front.msgs.len() != back.msgs.len() {
        return false;
    }
    let (fs, bs) = (start(front), start(back));
    if bs < fs || bs.0.saturating_sub(fs.0) > LINK_WINDOW_NS {
        return false;
    }
    if front.server.is_empty() || ip(&front.server) != ip(&back.client) {
        return false;
    }
    if front.server == back.server || front.client == back.client {
        return false;
    }
    front
        .msgs
        .iter()
        .zip(&back.msgs)
        .all(|((ft, fd, fl), (bt, bd, bl))| {
            let causal = match fd {
                Dir::C2s => bt >= ft,
                Dir::S2c => ft >= bt,
            };
            fd == bd && fl == bl && causal && ft.0.abs_diff(bt.0) <= LINK_WINDOW_NS as u64
        })
}

fn secs(s: f64) -> String {
    if s < 0.001 {
        format!("{:.2} ms", s * 1e3)
    } else if s < 0.01 {
        format!("{:.1} ms", s * 1e3)
    } else if s < 1.0 {
        format!("{:.0} ms", s * 1e3)
    } else {
        format!("{s:.1} s")
    }
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(idx.min(sorted.len() - 1)).copied()
}

fn close_desc(code: Option<u16>) -> String {
    match code {
        Some(c) => format!("{c}"),
        None => "no code (1005)".to_owned(),
    }
}

/// The TTL of `mark` against the sender's ordinary packets: `Some(range)` on a mismatch.
fn ttl_mismatch(end: &ConnectionEnd, mark: &TcpMark) -> Option<(u8, u8)> {
    let r = match mark.dir {
        Dir::C2s => end.tcp.ttl_c2s,
        Dir::S2c => end.tcp.ttl_s2c,
    };
    let (min, max) = (r.min?, r.max?);
    (mark.ttl < min || mark.ttl > max).then_some((min, max))
}

fn diagnose(
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
    let rel = |ts: Ts| format!("+{:.3} s", ts.secs_since(end.start_ts));
    let mut ev: Vec<String> = Vec::new();
    let hs = end.handshake.as_ref();
    let status = hs.and_then(|h| h.status);
    let c2s_close = end.close.iter().find(|c| c.dir == Dir::C2s);
    let s2c_close = end.close.iter().find(|c| c.dir == Dir::S2c);
    let first_close = end.close.iter().min_by_key(|c| c.ts);
    let mut tcp_marks: Vec<(&TcpMark, bool)> = end
        .tcp
        .fin
        .iter()
        .map(|m| (m, false))
        .chain(end.tcp.rst.iter().map(|m| (m, true)))
        .collect();
    tcp_marks.sort_by_key(|(m, _)| m.ts);
    let first_tcp = tcp_marks.first().copied();
    let first_rst = end.tcp.rst.iter().min_by_key(|m| m.ts);
    let tcp_ended = first_tcp.is_some() || end.ended_by == "closed";
    let browser = hs
        .and_then(|h| h.user_agent.as_deref())
        .is_some_and(|ua| ua.contains("Mozilla/"));

    // Termination kind and who.
    use TerminationKind as K;
    let (kind, by_dir, by_ts) = if status.is_some_and(|s| s != 101) {
        (
            K::RejectedUpgrade,
            Some(Dir::S2c),
            hs.and_then(|h| h.response_ts),
        )
    } else if hs.is_some_and(|h| h.request_ts.is_some() && h.status.is_none()) {
        (
            K::HandshakeIncomplete,
            first_tcp.map(|(m, _)| m.dir),
            first_tcp.map(|(m, _)| m.ts),
        )
    } else if let Some(fc) = first_close {
        let both = c2s_close.is_some() && s2c_close.is_some();
        let k = match (both, first_rst.is_some()) {
            (true, true) => K::RstAfterClose,
            (true, false) => K::CleanClose,
            (false, _) => {
                if tcp_ended {
                    K::CloseUnanswered
                } else {
                    K::OpenAtCaptureEnd
                }
            }
        };
        (k, Some(fc.dir), Some(fc.ts))
    } else if let Some((m, rst)) = first_tcp {
        (
            if rst {
                K::RstWithoutClose
            } else {
                K::FinWithoutClose
            },
            Some(m.dir),
            Some(m.ts),
        )
    } else if end.handshake_seen {
        (K::OpenAtCaptureEnd, None, None)
    } else {
        (K::Unknown, None, None)
    };
    let by = by_dir.map(Side::of);

    // Observed codes: what each side's close event reports.
    let websocket = matches!(status, Some(101)) || (hs.is_none() && !end.handshake_seen);
    let ended = tcp_ended || !end.close.is_empty();
    let observed = |peer_close: Option<&crate::event::CloseEvent>| -> Option<u16> {
        if !websocket {
            return None;
        }
        match peer_close {
            Some(c) => Some(c.code.unwrap_or(1005)),
            None if tcp_ended => Some(1006),
            None => None,
        }
    };
    let client_code = observed(s2c_close);
    let server_code = observed(c2s_close);
    let was_clean = (websocket && ended).then_some(c2s_close.is_some() && s2c_close.is_some());

    // Idle.
    let end_point = by_ts.filter(|_| websocket).unwrap_or(end.end_ts);
    let dir_idle = |d: Dir| DirIdle {
        longest_silence_s: st.longest[d.index()],
        final_silence_s: st.last[d.index()]
            .or(st.hs_ts)
            .map(|t| end_point.secs_since(t).max(0.0)),
    };
    let last_any = st.last_activity().or(st.hs_ts);
    let final_silence = last_any.map(|t| end_point.secs_since(t).max(0.0));
    let duration = end.end_ts.secs_since(start(st).max(end.start_ts));
    let idle = Idle {
        c2s: dir_idle(Dir::C2s),
        s2c: dir_idle(Dir::S2c),
        final_silence_s: final_silence,
        duration_s: end.end_ts.secs_since(end.start_ts),
    };

    let hb = st.heartbeat.figures(&st.marks);

    // Evidence common to every kind.
    if let Some(h) = hs {
        match (h.status, h.response_ts) {
            (Some(s), Some(t)) => ev.push(format!("upgrade answered {s} at {}", rel(t))),
            (None, _) if h.request_ts.is_some() => {
                ev.push("upgrade request with no answer in the capture".to_owned())
            }
            _ => {}
        }
    } else if !end.handshake_seen {
        ev.push("handshake not in the capture (picked up mid-stream)".to_owned());
    }
    for c in &end.close {
        let mut s = format!(
            "close frame from {} at {}: {}",
            Side::of(c.dir).name(),
            rel(c.ts),
            close_desc(c.code)
        );
        if !c.reason.is_empty() {
            let reason: String = c.reason.chars().take(80).collect();
            let _ = write!(s, " {reason:?}");
        }
        ev.push(s);
    }
    let mut middlebox: Option<String> = None;
    for (m, rst) in &tcp_marks {
        let what = if *rst { "RST" } else { "FIN" };
        let sender = Side::of(m.dir).name();
        let mut s = format!("{what} from the {sender} at {} (ttl {}", rel(m.ts), m.ttl);
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
    for d in [Dir::C2s, Dir::S2c] {
        let i = dir_idle(d);
        if let (Some(t), Some(f)) = (st.last[d.index()], i.final_silence_s) {
            ev.push(format!(
                "last {} message or ping at {}, {} before the end",
                d.as_str(),
                rel(t),
                secs(f)
            ));
        }
    }
    if hb.pings > 0 {
        ev.push(format!(
            "{} ping(s), {} unanswered, {} late pong(s)",
            hb.pings, hb.unanswered, hb.late_pongs
        ));
    }
    let violations: Vec<Violation> = st
        .anomalies
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

    // Timeouts: an idle timer counts the final silence, a lifetime cutoff the whole connection.
    let mut matches: Vec<TimeoutMatch> = Vec::new();
    let timer_kind = matches!(kind, K::FinWithoutClose | K::RstWithoutClose)
        || (kind == K::CloseUnanswered && middlebox.is_some());
    if timer_kind {
        matches = timeout_matches(opts, final_silence, duration);
    }
    cite_timeouts(&matches, &mut ev);
    let matches_text = || -> String {
        let names: Vec<String> = matches
            .iter()
            .map(|m| {
                let default = if m.source == "user" { "" } else { " default" };
                format!("{} {} ({}{default})", m.name, m.setting, secs(m.seconds))
            })
            .collect();
        names.join(" or ")
    };

    // Proxy legs.
    let mut proxy_story: Option<String> = None;
    let mut proxy_closed_both = false;
    let linked_leg = link.as_ref().map(|l| {
        if l.self_is_front {
            l.back.id
        } else {
            l.front.id
        }
    });
    if let Some(l) = &link {
        let (f, b) = (l.front.first_end(), l.back.first_end());
        let role = if l.self_is_front {
            "client↔proxy leg"
        } else {
            "proxy↔backend leg"
        };
        let other = linked_leg.unwrap_or_default();
        ev.push(format!(
            "{role} of a proxied connection; the other leg is #{other} (same messages on both)"
        ));
        let dt = |a: Ts, b: Ts| secs(b.secs_since(a).max(0.0));
        proxy_story = match (f, b) {
            (Some(f), Some(b)) if f.dir == Dir::S2c && b.dir == Dir::C2s => {
                proxy_closed_both = true;
                let last = [l.front.last_activity(), l.back.last_activity()]
                    .into_iter()
                    .flatten()
                    .max();
                let silence = last.map(|t| f.ts.min(b.ts).secs_since(t));
                Some(format!(
                    "the proxy ended both legs itself ({} to the client, {} to the backend{})",
                    f.verb().replace("sent ", ""),
                    b.verb().replace("sent ", ""),
                    silence.map_or(String::new(), |s| format!(
                        ", {} after the last message",
                        secs(s)
                    ))
                ))
            }
            (f, Some(b)) if b.dir == Dir::S2c && f.is_none_or(|f| f.ts >= b.ts) => {
                let mut s = format!(
                    "the backend {} first",
                    b.verb().replace("sent ", "closed with ")
                );
                s = s.replace("closed with close ", "closed ");
                if let Some(f) = f {
                    let _ = write!(
                        s,
                        "; the proxy {} to the client {} later",
                        f.verb(),
                        dt(b.ts, f.ts)
                    );
                }
                Some(
                    s.replace("closed with FIN", "sent FIN")
                        .replace("closed with RST", "sent RST"),
                )
            }
            (Some(f), b) if f.dir == Dir::C2s && b.is_none_or(|b| b.ts >= f.ts) => {
                let mut s = format!("the client {} first", f.verb());
                if let Some(b) = b {
                    let _ = write!(
                        s,
                        "; the proxy {} to the backend {} later",
                        b.verb(),
                        dt(f.ts, b.ts)
                    );
                }
                Some(s)
            }
            (Some(f), _) if f.dir == Dir::S2c => {
                Some(format!("the proxy {} to the client first", f.verb()))
            }
            _ => None,
        };
        if let Some(s) = &proxy_story {
            ev.push(format!("proxy: {s}"));
        }
    }

    // The verdict.
    let saw = |side: Side| -> String {
        let code = match side {
            Side::Client => client_code,
            Side::Server => server_code,
        };
        let who = match (side, browser, &link) {
            (Side::Client, true, _) => "the browser",
            (Side::Client, _, Some(l)) if !l.self_is_front => "the proxy",
            (Side::Server, _, Some(l)) if l.self_is_front => "the proxy",
            (Side::Client, _, _) => "the client",
            (Side::Server, _, _) => "the server",
        };
        match code {
            Some(c) => format!("{who} saw {c}"),
            None => format!("{who}'s close event is not in the capture"),
        }
    };
    let silence_phrase = final_silence
        .map(|s| format!(" {} after the last frame", secs(s)))
        .unwrap_or_default();
    let mut verdict = match kind {
        K::RejectedUpgrade => {
            let s = status.unwrap_or_default();
            let reason = hs.and_then(|h| h.reason.clone()).unwrap_or_default();
            let server_hdr = hs.and_then(|h| {
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
        K::HandshakeIncomplete => match first_tcp {
            Some((m, rst)) => format!(
                "The upgrade request got no answer; the {} then {} the connection {} after the request: the server (or a proxy) dropped it or is not a WebSocket endpoint.",
                Side::of(m.dir).name(),
                if rst { "reset" } else { "closed" },
                secs(
                    m.ts.secs_since(hs.and_then(|h| h.request_ts).unwrap_or(end.start_ts))
                        .max(0.0)
                ),
            ),
            None => "The upgrade request got no answer before the capture ended.".to_owned(),
        },
        K::CleanClose | K::RstAfterClose => {
            let fc = first_close.map(|c| c.code);
            let b = by.unwrap_or(Side::Client);
            let mut s = format!(
                "Clean close: the {} closed with {} and the {} answered ({}, {})",
                b.name(),
                close_desc(fc.flatten()),
                b.other().name(),
                saw(Side::Client),
                saw(Side::Server)
            );
            if kind == K::RstAfterClose {
                let r = first_rst.map_or("", |m| Side::of(m.dir).name());
                let _ = write!(
                    s,
                    "; the {r} then reset TCP instead of FIN (unread data or SO_LINGER 0), harmless to the WebSocket"
                );
            }
            s.push('.');
            s
        }
        K::CloseUnanswered => {
            let b = by.unwrap_or(Side::Client);
            let after = first_tcp.map_or(String::new(), |(m, rst)| {
                format!(
                    "; then {} from the {}",
                    if rst { "RST" } else { "FIN" },
                    Side::of(m.dir).name()
                )
            });
            format!(
                "The {} sent close {} but the {} never answered it{after} ({}, {}): the {} stopped reading or went away during the closing handshake.",
                b.name(),
                close_desc(first_close.and_then(|c| c.code)),
                b.other().name(),
                saw(Side::Client),
                saw(Side::Server),
                b.other().name()
            )
        }
        K::FinWithoutClose | K::RstWithoutClose => {
            let b = by.unwrap_or(Side::Server);
            let what = if kind == K::RstWithoutClose {
                "RST"
            } else {
                "FIN"
            };
            // The ping the ender sent last before ending, and whether it was answered in time.
            let missed_ping =
                by_ts.and_then(|t| st.heartbeat.missed_before(b, t, MIN_HEARTBEAT_WAIT_S));
            if let Some(mb) = &middlebox {
                format!(
                    "Closed by a middlebox: {what} toward the {}{silence_phrase}, no close frame ({}); {mb}.",
                    b.other().name(),
                    saw(b.other())
                )
            } else if proxy_closed_both {
                format!(
                    "Closed by the proxy: it ended both legs with {what}{}, no close frame ({}): a proxy idle timeout.",
                    final_silence
                        .map_or(String::new(), |s| format!(" after {} of silence", secs(s))),
                    saw(b.other())
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
                    secs(by_ts.map_or(0.0, |t| t.secs_since(p.ts))),
                    saw(b.other()),
                    b.other().name()
                )
            } else if kind == K::RstWithoutClose {
                format!(
                    "The {} reset the connection (RST) without a close frame ({}): the {} process was killed or crashed, or aborted the socket with unread data.",
                    b.name(),
                    saw(b.other()),
                    b.name()
                )
            } else {
                format!(
                    "The {} closed the TCP connection (FIN) without a close frame ({}): the {} application dropped the socket without the closing handshake (e.g. ws terminate(), socket destroy, process exit).",
                    b.name(),
                    saw(b.other()),
                    b.name()
                )
            }
        }
        K::OpenAtCaptureEnd => format!(
            "Still open when the capture ended{}.",
            final_silence.map_or(String::new(), |s| format!(
                " ({} since the last frame)",
                secs(s)
            ))
        ),
        // Only TLS-level diagnoses (tls.rs) give these kinds.
        K::Unknown | K::TlsClose | K::TlsCloseOneWay | K::TlsFatalAlert => {
            "The capture holds neither the start nor the end of this connection.".to_owned()
        }
    };
    if let Some(s) = proxy_story.as_ref().filter(|_| !proxy_closed_both) {
        let _ = write!(verdict, " Behind a proxy: {s}.");
    }
    if !matches.is_empty() {
        let period = final_silence.unwrap_or_default();
        // Pings reset an idle timer but not a lifetime cutoff.
        let advice = if matches.iter().any(|m| m.kind == TimeoutKind::Idle) {
            format!(
                "Send pings more often than every {} or raise the timeout.",
                secs(period)
            )
        } else {
            "Pings do not help against a lifetime cutoff: raise it, or reconnect before it."
                .to_owned()
        };
        let _ = write!(verdict, " Matches {}. {advice}", matches_text());
    } else if (proxy_closed_both || (middlebox.is_some() && timer_kind))
        && let Some(s) = final_silence.filter(|s| *s >= MIN_TIMER_SILENCE_S)
    {
        let _ = write!(
            verdict,
            " No well-known default is near {}: look for a proxy timeout set to that (nginx proxy_read_timeout, HAProxy timeout tunnel), or give it with --timeout NAME={:.0}s; pinging more often than that keeps the connection alive.",
            secs(s),
            s
        );
    }

    Diagnosis {
        kind,
        by,
        by_ts,
        by_middlebox: middlebox.is_some(),
        client_observed_code: client_code,
        server_observed_code: server_code,
        was_clean,
        abnormal: kind.is_abnormal(),
        verdict,
        evidence: match &end.tls {
            Some(t) => ev.into_iter().chain(tls::evidence(end, t)).collect(),
            None => ev,
        },
        idle,
        heartbeat: hb,
        linked_leg,
        timeout_matches: matches,
        violations,
    }
}

/// Runs the analysis in front of another sink: every event goes through, each `ConnectionEnd`
/// gains its diagnosis, and the capture summary gains [`DiagnosisSummary`].
pub struct AnalysisSink<S: EventSink> {
    inner: S,
    analyzer: Analyzer,
    max_payload: u64,
    summary: DiagnosisSummary,
}

impl<S: EventSink> AnalysisSink<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, opts: AnalysisOptions) -> AnalysisSink<S> {
        AnalysisSink {
            inner,
            max_payload: opts.max_payload,
            analyzer: Analyzer::new(opts),
            summary: DiagnosisSummary::default(),
        }
    }

    /// The wrapped sink and the capture's diagnosis summary.
    pub fn into_parts(self) -> (S, DiagnosisSummary) {
        (self.inner, self.summary)
    }
}

impl<S: EventSink> EventSink for AnalysisSink<S> {
    fn holds_payloads(&self) -> bool {
        self.inner.holds_payloads()
    }

    fn event(&mut self, ev: Event) -> io::Result<()> {
        self.analyzer.observe(&ev);
        match ev {
            Event::ConnectionEnd(mut end) => {
                let d = self.analyzer.diagnose(&end);
                // Anomalies this stage added are part of the connection's count.
                let added: u64 = self
                    .analyzer
                    .ended
                    .back()
                    .and_then(|s| s.anomalies.get("message_over_max_payload"))
                    .copied()
                    .unwrap_or(0);
                end.anomaly_count += added;
                self.summary.add(&d, end.anomaly_count);
                end.diagnosis = Some(d);
                self.inner.event(Event::ConnectionEnd(end))
            }
            Event::Message(m) if m.len > self.max_payload => {
                let anomaly = AnomalyEvent {
                    conn: m.conn,
                    ts: m.ts,
                    dir: Some(m.dir),
                    kind: "message_over_max_payload",
                    detail: format!(
                        "{} bytes, over the {}-byte maxPayload: a ws peer closes with 1009 (message too big)",
                        m.len, self.max_payload
                    ),
                };
                self.inner.event(Event::Message(m))?;
                let ev = Event::Anomaly(anomaly);
                self.analyzer.observe(&ev);
                self.inner.event(ev)
            }
            ev => self.inner.event(ev),
        }
    }

    fn finish(&mut self, summary: &CaptureSummary) -> io::Result<()> {
        let mut s = summary.clone();
        s.diagnosis = Some(self.summary.clone());
        self.inner.finish(&s)
    }

    fn stats(&mut self, stats: &LiveStats) -> io::Result<()> {
        self.inner.stats(stats)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{
        ConnectionOpen, DirStats, Handshake, HandshakeEvent, MessageEvent, TcpEvent, TcpSummary,
        TtlRange,
    };

    const S: i64 = 1_000_000_000;

    fn events(rst_ttl: u8, silence_s: i64) -> (Vec<Event>, ConnectionEnd) {
        let hs = Handshake {
            status: Some(101),
            accepted: true,
            request_ts: Some(Ts(0)),
            response_ts: Some(Ts(S / 100)),
            ..Handshake::default()
        };
        let msg_ts = Ts(S);
        let rst = TcpMark {
            ts: Ts(S + silence_s * S),
            dir: Dir::S2c,
            ttl: rst_ttl,
            ip_id: None,
        };
        let evs = vec![
            Event::ConnectionOpen(ConnectionOpen {
                tls: None,
                conn: 1,
                ts: Ts(0),
                client: "10.0.0.1:5000".into(),
                server: "10.0.0.2:443".into(),
                handshake_seen: true,
                syn_seen: true,
            }),
            Event::Handshake(Box::new(HandshakeEvent {
                conn: 1,
                ts: Ts(S / 100),
                handshake: hs.clone(),
            })),
            Event::Message(MessageEvent {
                conn: 1,
                ts: msg_ts,
                dir: Dir::S2c,
                kind: "text",
                len: 10,
                wire_len: 10,
                frames: 1,
                compressed: false,
                status: "complete",
                undecodable_reason: None,
                utf8_valid: Some(true),
                history_reset: false,
                preview: None,
                payload: None,
                payload_encoding: None,
            }),
            Event::Tcp(TcpEvent {
                conn: 1,
                ts: rst.ts,
                dir: Dir::S2c,
                kind: "rst",
                ttl: rst_ttl,
                ip_id: None,
            }),
        ];
        let end = ConnectionEnd {
            tls: None,
            conn: 1,
            ts: rst.ts,
            client: "10.0.0.1:5000".into(),
            server: "10.0.0.2:443".into(),
            start_ts: Ts(0),
            end_ts: rst.ts,
            ended_by: "closed",
            handshake_seen: true,
            handshake: Some(hs),
            upgrade_attempts: 1,
            c2s: DirStats::default(),
            s2c: DirStats::default(),
            close: Vec::new(),
            tcp: TcpSummary {
                rst: vec![rst],
                ttl_s2c: TtlRange {
                    min: Some(52),
                    max: Some(52),
                },
                ttl_c2s: TtlRange {
                    min: Some(64),
                    max: Some(64),
                },
                ..TcpSummary::default()
            },
            anomaly_count: 0,
            diagnosis: None,
        };
        (evs, end)
    }

    fn run(rst_ttl: u8, silence_s: i64) -> Diagnosis {
        let mut a = Analyzer::new(AnalysisOptions::default());
        let (evs, end) = events(rst_ttl, silence_s);
        for e in &evs {
            a.observe(e);
        }
        a.diagnose(&end)
    }

    #[test]
    fn analysis_rst_with_foreign_ttl_is_a_middlebox_and_names_the_timeout() {
        let d = run(64, 60);
        assert_eq!(d.kind, TerminationKind::RstWithoutClose);
        assert_eq!(d.by, Some(Side::Server));
        assert!(d.by_middlebox);
        assert_eq!(d.client_observed_code, Some(1006));
        assert!(
            d.verdict
                .starts_with("Closed by a middlebox: RST toward the client")
        );
        assert!(
            d.verdict
                .contains("nginx proxy_read_timeout (60.0 s default)")
        );
        assert!(d.verdict.contains("aws-alb"));
        assert!(
            d.verdict
                .contains("Send pings more often than every 60.0 s")
        );
    }

    #[test]
    fn analysis_rst_with_the_servers_ttl_is_the_server() {
        let d = run(52, 5);
        assert!(!d.by_middlebox);
        assert!(d.verdict.starts_with("The server reset the connection"));
        assert!(d.timeout_matches.is_empty());
    }

    #[test]
    fn analysis_lifetime_cutoff_is_matched_on_duration() {
        let d = run(52, 29);
        // 30 s from the start (29 s of silence after a message at 1 s): GCP's lifetime cutoff.
        assert_eq!(
            d.timeout_matches
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>(),
            ["gcp-https-lb"]
        );
        assert!(d.verdict.contains("lifetime cutoff"), "{}", d.verdict);
    }
}
