//! Selection: passes on only the events of the connections a user asked for (`--filter`,
//! `--conn`, `--since`/`--until`) to the sink that writes them.
//!
//! It sits after the analysis stage, so a predicate can use the diagnosis. A connection whose
//! fate is known early (its id, its addresses, its handshake) streams through at once; one that
//! can only be judged at its end (a close code, a termination kind) has its events held until
//! then. What is held is capped: past the cap the connection's oldest frame and message events
//! are let go, and if it is selected after all, an anomaly says how many were not kept.

use std::collections::HashMap;
use std::io;

use crate::event::{AnomalyEvent, ConnectionEnd, Event, Handshake};
use crate::query::{Facts, Pred, Query};
use crate::sink::{CaptureSummary, EventSink, LiveStats};
use crate::types::{ConnId, Ts};

/// What is known of a connection before it ends: enough for an early decision.
#[derive(Clone, Copy, Debug)]
pub struct EarlyView<'a> {
    /// Connection id.
    pub conn: ConnId,
    /// Client `ip:port`.
    pub client: &'a str,
    /// Server `ip:port`.
    pub server: &'a str,
    /// When the connection started.
    pub start_ts: Ts,
    /// The handshake, once seen.
    pub handshake: Option<&'a Handshake>,
}

/// A rule over connections.
pub trait Predicate {
    /// `Some(answer)` when the answer cannot change whatever happens later on the connection;
    /// `None` when it needs the connection's end.
    fn early(&self, view: &EarlyView<'_>) -> Option<bool>;
    /// The answer for an ended connection (diagnosis attached).
    fn at_end(&self, end: &ConnectionEnd) -> bool;
}

/// The query language (`--filter`, the TUI's `/`): addresses are judged at once, handshake
/// fields once the handshake is in, and the rest (codes, kinds, verdicts, free text) at the end.
impl Predicate for Query {
    fn early(&self, view: &EarlyView<'_>) -> Option<bool> {
        let h = view.handshake;
        let facts = Facts {
            client: view.client,
            server: view.server,
            host: h.and_then(|h| h.host.as_deref()),
            path: h.and_then(|h| h.path.as_deref()),
            subprotocol: h.and_then(|h| h.subprotocol.as_deref()),
            ..Facts::default()
        };
        let mut all_known = true;
        for term in &self.terms {
            let known = match term.pred {
                Pred::Port(_) | Pred::Client(_) | Pred::Server(_) => true,
                Pred::Host(_) | Pred::Path(_) | Pred::Subprotocol(_) => h.is_some(),
                Pred::Code(_)
                | Pred::Kind(_)
                | Pred::Verdict(_)
                | Pred::Anomaly
                | Pred::Open
                | Pred::Text(_) => false,
            };
            if !known {
                all_known = false;
                continue;
            }
            let one = Query {
                terms: vec![term.clone()],
            };
            if !one.matches_facts(&facts) {
                return Some(false);
            }
        }
        all_known.then_some(true)
    }

    fn at_end(&self, end: &ConnectionEnd) -> bool {
        self.matches(end)
    }
}

/// The whole selection: every given rule must hold.
#[derive(Default)]
pub struct Selection {
    /// Only these connections (empty: all).
    pub conns: Vec<ConnId>,
    /// Only connections active at or after this time, and only their events from then on.
    pub since: Option<Ts>,
    /// Only connections that started at or before this time, and only their events until then.
    pub until: Option<Ts>,
    /// A query over connection facts.
    pub predicate: Option<Box<dyn Predicate + Send>>,
}

impl Selection {
    /// Whether anything is selected away at all.
    pub fn is_everything(&self) -> bool {
        self.conns.is_empty()
            && self.since.is_none()
            && self.until.is_none()
            && self.predicate.is_none()
    }

    /// `now` is the time of the latest event seen on the connection.
    fn early(&self, view: &EarlyView<'_>, now: Ts) -> Option<bool> {
        if !self.conns.is_empty() && !self.conns.contains(&view.conn) {
            return Some(false);
        }
        if self.until.is_some_and(|t| view.start_ts > t) {
            return Some(false);
        }
        let predicate = match &self.predicate {
            Some(p) => p.early(view)?,
            None => true,
        };
        // Whether it is active after `since` is known once it is seen then; a no is final anyway.
        if predicate && self.since.is_some_and(|t| now < t) {
            return None;
        }
        Some(predicate)
    }

    fn at_end(&self, end: &ConnectionEnd) -> bool {
        (self.conns.is_empty() || self.conns.contains(&end.conn))
            && self.since.is_none_or(|t| end.end_ts >= t)
            && self.until.is_none_or(|t| end.start_ts <= t)
            && self.predicate.as_ref().is_none_or(|p| p.at_end(end))
    }

    fn in_window(&self, ts: Ts) -> bool {
        self.since.is_none_or(|t| ts >= t) && self.until.is_none_or(|t| ts <= t)
    }
}

/// Default for [`SelectSink::with_cap`]: bytes of events held for undecided connections.
pub const DEFAULT_HOLD_CAP: usize = 256 << 20;

enum State {
    /// Judged early: pass (true) or drop (false) the rest.
    Decided(bool),
    /// Waiting for the end; events held (with their rough size), and how many were let go.
    Held {
        client: String,
        server: String,
        start_ts: Ts,
        handshake: Option<Box<Handshake>>,
        events: Vec<(Event, usize)>,
        dropped: u64,
    },
}

/// Wraps a sink and gives it only the selected connections' events.
pub struct SelectSink<S: EventSink> {
    inner: S,
    sel: Selection,
    conns: HashMap<ConnId, State>,
    held_bytes: usize,
    cap: usize,
    shown: u64,
}

impl<S: EventSink> SelectSink<S> {
    /// Selects with `sel` in front of `inner`, holding at most [`DEFAULT_HOLD_CAP`] bytes.
    pub fn new(inner: S, sel: Selection) -> SelectSink<S> {
        SelectSink::with_cap(inner, sel, DEFAULT_HOLD_CAP)
    }

    /// Same with a cap on what is held for undecided connections.
    pub fn with_cap(inner: S, sel: Selection, cap: usize) -> SelectSink<S> {
        SelectSink {
            inner,
            sel,
            conns: HashMap::new(),
            held_bytes: 0,
            cap,
            shown: 0,
        }
    }

    /// The wrapped sink.
    pub fn into_inner(self) -> S {
        self.inner
    }

    fn pass(&mut self, ev: Event) -> io::Result<()> {
        let keep = match &ev {
            Event::ConnectionEnd(_) | Event::ConnectionOpen(_) | Event::Handshake(_) => true,
            other => self.sel.in_window(event_ts(other)),
        };
        if keep { self.inner.event(ev) } else { Ok(()) }
    }

    fn hold(&mut self, conn: ConnId, ev: Event) {
        let size = rough_size(&ev);
        if let Some(State::Held { events, .. }) = self.conns.get_mut(&conn) {
            events.push((ev, size));
            self.held_bytes += size;
        }
        if self.held_bytes > self.cap {
            self.shed();
        }
    }

    /// Lets go of frame and message events, oldest first, from the connection holding most.
    fn shed(&mut self) {
        let Some((
            _,
            State::Held {
                events, dropped, ..
            },
        )) = self
            .conns
            .iter_mut()
            .filter(|(_, s)| matches!(s, State::Held { .. }))
            .max_by_key(|(_, s)| match s {
                State::Held { events, .. } => events.len(),
                State::Decided(_) => 0,
            })
        else {
            return;
        };
        let mut freed = 0;
        let target = self.held_bytes.saturating_sub(self.cap / 2);
        events.retain(|(ev, size)| {
            let bulky = matches!(ev, Event::Message(_) | Event::Frame(_));
            if bulky && freed < target {
                freed += size;
                *dropped += 1;
                false
            } else {
                true
            }
        });
        self.held_bytes -= freed;
    }

    fn decide_early(&mut self, conn: ConnId, now: Ts) -> io::Result<()> {
        let Some(State::Held {
            client,
            server,
            start_ts,
            handshake,
            ..
        }) = self.conns.get(&conn)
        else {
            return Ok(());
        };
        let view = EarlyView {
            conn,
            client,
            server,
            start_ts: *start_ts,
            handshake: handshake.as_deref(),
        };
        let Some(answer) = self.sel.early(&view, now) else {
            return Ok(());
        };
        let Some(State::Held { events, .. }) = self.conns.insert(conn, State::Decided(answer))
        else {
            return Ok(());
        };
        for (ev, size) in events {
            self.held_bytes -= size;
            if answer {
                self.pass(ev)?;
            }
        }
        Ok(())
    }
}

fn event_ts(ev: &Event) -> Ts {
    match ev {
        Event::ConnectionOpen(e) => e.ts,
        Event::Handshake(e) => e.ts,
        Event::Frame(e) => e.ts,
        Event::Message(e) => e.ts,
        Event::Ping(e) => e.ts,
        Event::Pong(e) => e.ts,
        Event::Close(e) => e.ts,
        Event::Tcp(e) => e.ts,
        Event::Gap(e) => e.ts,
        Event::Anomaly(e) => e.ts,
        Event::ConnectionEnd(e) => e.ts,
    }
}

/// What an event costs while held: its struct plus the payload text it carries.
fn rough_size(ev: &Event) -> usize {
    let extra = match ev {
        Event::Message(m) => {
            m.payload.as_ref().map_or(0, String::len) + m.preview.as_ref().map_or(0, String::len)
        }
        Event::Handshake(h) => {
            let hs = &h.handshake;
            hs.request_headers
                .iter()
                .chain(&hs.response_headers)
                .map(|(n, v)| n.len() + v.len())
                .sum()
        }
        Event::Anomaly(a) => a.detail.len(),
        _ => 0,
    };
    std::mem::size_of::<Event>() + extra
}

impl<S: EventSink> EventSink for SelectSink<S> {
    fn event(&mut self, ev: Event) -> io::Result<()> {
        if self.sel.is_everything() {
            return self.inner.event(ev);
        }
        let conn = ev.conn();
        if let Event::ConnectionOpen(open) = &ev {
            self.conns.insert(
                conn,
                State::Held {
                    client: open.client.clone(),
                    server: open.server.clone(),
                    start_ts: open.ts,
                    handshake: None,
                    events: Vec::new(),
                    dropped: 0,
                },
            );
        }
        match (self.conns.get(&conn), ev) {
            (Some(State::Decided(false)), Event::ConnectionEnd(_)) => {
                self.conns.remove(&conn);
                Ok(())
            }
            (Some(State::Decided(false)), _) => Ok(()),
            (Some(State::Decided(true)), ev) => {
                if let Event::ConnectionEnd(end) = &ev {
                    // An early yes still has to hold over the whole life (the time window).
                    let ok = self.sel.at_end(end);
                    self.conns.remove(&conn);
                    if !ok {
                        return Ok(());
                    }
                    self.shown += 1;
                }
                self.pass(ev)
            }
            (Some(State::Held { .. }), Event::ConnectionEnd(end)) => {
                let Some(State::Held {
                    events, dropped, ..
                }) = self.conns.remove(&conn)
                else {
                    return Ok(());
                };
                let selected = self.sel.at_end(&end);
                for (ev, size) in events {
                    self.held_bytes -= size;
                    if selected {
                        self.pass(ev)?;
                    }
                }
                if !selected {
                    return Ok(());
                }
                if dropped > 0 {
                    self.inner.event(Event::Anomaly(AnomalyEvent {
                        conn,
                        ts: end.ts,
                        dir: None,
                        kind: "selection_hold_cap",
                        detail: format!(
                            "{dropped} frame/message events were not kept while waiting to know \
                             whether this connection matches the filter; select it with --conn {conn}"
                        ),
                    }))?;
                }
                self.shown += 1;
                self.pass(Event::ConnectionEnd(end))
            }
            (Some(State::Held { .. }), ev) => {
                let now = event_ts(&ev);
                let mut attempt = false;
                if let (Event::Handshake(h), Some(State::Held { handshake, .. })) =
                    (&ev, self.conns.get_mut(&conn))
                {
                    *handshake = Some(Box::new(h.handshake.clone()));
                    attempt = true;
                }
                let first = matches!(
                    self.conns.get(&conn),
                    Some(State::Held { events, .. }) if events.len() == 1
                );
                let window_opens = self.sel.since.is_some_and(|t| now >= t);
                self.hold(conn, ev);
                // Decide once the handshake is in, at the first event after the open (a
                // mid-stream pickup has no handshake), or when the time window is reached.
                if attempt || first || window_opens {
                    self.decide_early(conn, now)?;
                }
                Ok(())
            }
            // Events of a connection opened before a restart of the selection cannot happen;
            // pass anything unknown rather than lose it.
            (None, ev) => self.inner.event(ev),
        }
    }

    fn stats(&mut self, stats: &LiveStats) -> io::Result<()> {
        self.inner.stats(stats)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    fn holds_payloads(&self) -> bool {
        self.inner.holds_payloads()
    }

    fn finish(&mut self, summary: &CaptureSummary) -> io::Result<()> {
        let mut summary = summary.clone();
        if !self.sel.is_everything() {
            summary.selected = Some(self.shown);
        }
        self.inner.finish(&summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::CaptureReader;
    use crate::config::{Config, PayloadMode};
    use crate::pipeline;

    /// Judges only at the end, by a close code either side observed.
    struct ObservedCode(u16);

    impl Predicate for ObservedCode {
        fn early(&self, _: &EarlyView<'_>) -> Option<bool> {
            None
        }
        fn at_end(&self, end: &ConnectionEnd) -> bool {
            end.diagnosis.as_ref().is_some_and(|d| {
                d.client_observed_code == Some(self.0) || d.server_observed_code == Some(self.0)
            })
        }
    }

    fn run(file: &str, sel: Selection, cap: usize) -> Vec<Event> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("samples")
            .join(file);
        let mut reader = CaptureReader::open(&path).expect("sample");
        let cfg = Config {
            payloads: PayloadMode::Full,
            ..Config::default()
        };
        let sink = SelectSink::with_cap(Vec::new(), sel, cap);
        let (sink, _) = pipeline::run(&mut reader, file, cfg, sink).expect("run");
        sink.into_inner()
    }

    fn conns(events: &[Event]) -> Vec<ConnId> {
        let mut ids: Vec<ConnId> = events.iter().map(Event::conn).collect();
        ids.dedup();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    #[test]
    fn decided_at_the_end_passes_everything_in_order() {
        let everything = run(
            "app-close-codes.pcap",
            Selection::default(),
            DEFAULT_HOLD_CAP,
        );
        let code = everything
            .iter()
            .find_map(|e| match e {
                Event::ConnectionEnd(end) if end.conn == 2 => {
                    end.diagnosis.as_ref().and_then(|d| d.client_observed_code)
                }
                _ => None,
            })
            .expect("#2 has a code");
        let sel = Selection {
            predicate: Some(Box::new(ObservedCode(code))),
            ..Selection::default()
        };
        let got = run("app-close-codes.pcap", sel, DEFAULT_HOLD_CAP);
        assert!(conns(&got).contains(&2));
        // What is passed is exactly the unfiltered stream of the selected connections.
        let want: Vec<String> = everything
            .iter()
            .filter(|e| conns(&got).contains(&e.conn()))
            .map(|e| format!("{e:?}"))
            .collect();
        let got: Vec<String> = got.iter().map(|e| format!("{e:?}")).collect();
        assert_eq!(got.len(), want.len());
        // Held events come out at the end of their connection, so compare per connection.
        for id in conns(&everything) {
            let tag = format!("conn: {id},");
            let g: Vec<&String> = got.iter().filter(|e| e.contains(&tag)).collect();
            let w: Vec<&String> = want.iter().filter(|e| e.contains(&tag)).collect();
            assert_eq!(g, w, "#{id}");
        }
    }

    #[test]
    fn over_the_hold_cap_bulk_is_let_go_and_said() {
        let sel = Selection {
            predicate: Some(Box::new(ObservedCode(1000))),
            ..Selection::default()
        };
        // node-basic carries a 70000-byte message: a 10 kB cap cannot hold it.
        let got = run("node-basic.pcap", sel, 10_000);
        let note = got.iter().find_map(|e| match e {
            Event::Anomaly(a) if a.kind == "selection_hold_cap" => Some(a.detail.clone()),
            _ => None,
        });
        let note = note.expect("an anomaly says events were let go");
        assert!(note.contains("--conn 1"), "{note}");
        assert!(got.iter().any(|e| matches!(e, Event::ConnectionEnd(_))));
        assert!(
            got.iter().any(|e| matches!(e, Event::Close(_))),
            "small events are kept"
        );
    }

    #[test]
    fn a_no_is_final_and_costs_nothing() {
        let sel = Selection {
            conns: vec![99],
            ..Selection::default()
        };
        let sink = SelectSink::with_cap(Vec::new(), sel, DEFAULT_HOLD_CAP);
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/node-basic.pcap");
        let mut reader = CaptureReader::open(&path).expect("sample");
        let mut p = pipeline::Pipeline::new(Config::default(), sink);
        while let Some(pkt) = reader.next_packet().expect("read") {
            p.packet(&pkt).expect("packet");
        }
        let (sink, summary) = p.finish(CaptureSummary::default()).expect("finish");
        assert_eq!(sink.held_bytes, 0);
        assert!(
            sink.conns.is_empty(),
            "nothing is remembered of a connection said no to"
        );
        assert!(sink.inner.is_empty());
        assert_eq!(summary.connections, 1);
    }
}
