//! Per-connection tracking: takes every event in capture order and keeps, per open connection,
//! what the rules need (`conn::ConnState`); when a connection ends, gives its diagnosis, then
//! keeps it in a bounded history of recently ended connections so that the two legs of a
//! proxied connection are linked whichever ends first.

use std::collections::VecDeque;

use foldhash::HashMap;

use super::AnalysisOptions;
use super::conn::ConnState;
use super::diagnose::diagnose;
use super::link::{self, LINK_MESSAGES, LegIndex};
use super::mark::{Mark, What};
use crate::diagnosis::Diagnosis;
use crate::event::{ConnectionEnd, Event};
use crate::types::ConnId;

/// Ended connections kept for linking proxy legs.
const HISTORY: usize = 256;

/// Turns events into diagnoses; see the module doc.
pub struct Analyzer {
    opts: AnalysisOptions,
    /// Connection ids come from the pipeline's counter, not from the input, so the fast hash
    /// needs no protection against chosen keys (it is looked up for every event).
    open: HashMap<ConnId, ConnState>,
    /// The connections of `open` by address, for proxy legs.
    legs: LegIndex,
    ended: VecDeque<ConnState>,
}

impl Analyzer {
    /// An analyzer with these options.
    pub fn new(opts: AnalysisOptions) -> Analyzer {
        Analyzer {
            opts,
            open: HashMap::default(),
            legs: LegIndex::default(),
            ended: VecDeque::new(),
        }
    }

    /// Notes one event (every event, in capture order, before its `ConnectionEnd`).
    pub fn observe(&mut self, ev: &Event) {
        let id = ev.conn();
        let st = self.open.entry(id).or_insert_with(|| {
            let st = ConnState {
                id,
                ..ConnState::default()
            };
            self.legs.insert(&st);
            st
        });
        match ev {
            Event::ConnectionOpen(o) => {
                self.legs.remove(st);
                st.set_endpoints(&o.client, &o.server);
                self.legs.insert(st);
                st.open_ts = Some(o.ts);
            }
            Event::Handshake(h) => st.hs_ts = Some(h.ts),
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
        self.legs.remove(&st);
        st.id = end.conn;
        if st.client.is_empty() {
            st.set_endpoints(&end.client, &end.server);
        }
        // The other leg of a proxied connection: open or recently ended.
        let open = &self.open;
        let candidates = self.legs.candidates(&st).filter_map(|id| open.get(&id));
        let link = link::find(&st, candidates.chain(self.ended.iter()));
        let d = diagnose(end, &st, link, &self.opts);
        self.ended.push_back(st);
        if self.ended.len() > HISTORY {
            self.ended.pop_front();
        }
        d
    }

    /// Anomalies of `kind` counted on the connection that ended last.
    pub(super) fn last_ended_anomalies(&self, kind: &str) -> u64 {
        self.ended
            .back()
            .and_then(|s| s.anomalies.get(kind))
            .copied()
            .unwrap_or(0)
    }
}
