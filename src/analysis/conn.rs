//! What the analysis keeps of one connection while it is open: takes the facts of its events
//! (addresses, start and handshake times, message sizes and times, pings, close frames, FIN and
//! RST) as `analyzer` notes them, and gives the rules the figures they read when it ends.
//!
//! Only what the rules need is kept, so memory per connection stays small and bounded.

use std::collections::BTreeMap;

use super::heartbeat::HeartbeatState;
use crate::types::{ConnId, Dir, Ts};

/// How one side ended its part.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum What {
    Close(Option<u16>),
    Fin,
    Rst,
}

/// One side ending its part: a close frame, a FIN or an RST.
#[derive(Clone, Copy, Debug)]
pub(super) struct Mark {
    pub(super) ts: Ts,
    pub(super) dir: Dir,
    pub(super) what: What,
}

impl Mark {
    /// `sent close 1000`, `sent FIN`, ...
    pub(super) fn verb(&self) -> String {
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
pub(super) struct ConnState {
    pub(super) id: ConnId,
    pub(super) client: String,
    pub(super) server: String,
    pub(super) open_ts: Option<Ts>,
    pub(super) hs_ts: Option<Ts>,
    /// Last message, ping or pong, per direction.
    pub(super) last: [Option<Ts>; 2],
    /// Longest silence, per direction.
    pub(super) longest: [Option<f64>; 2],
    /// The first messages (time, direction, size), for linking proxy legs.
    pub(super) msgs: Vec<(Ts, Dir, u64)>,
    pub(super) heartbeat: HeartbeatState,
    pub(super) marks: Vec<Mark>,
    pub(super) anomalies: BTreeMap<&'static str, u64>,
}

impl ConnState {
    /// A message, ping or pong went `dir` at `ts`.
    pub(super) fn activity(&mut self, ts: Ts, dir: Dir) {
        let d = dir.index();
        if let Some(prev) = self.last[d].or(self.hs_ts) {
            let gap = ts.secs_since(prev);
            if self.longest[d].is_none_or(|l| gap > l) {
                self.longest[d] = Some(gap);
            }
        }
        self.last[d] = Some(ts);
    }

    /// The first close frame, FIN or RST, either way.
    pub(super) fn first_end(&self) -> Option<Mark> {
        self.marks.iter().min_by_key(|m| m.ts).copied()
    }

    /// The last message, ping or pong, either way.
    pub(super) fn last_activity(&self) -> Option<Ts> {
        self.last[0].max(self.last[1])
    }

    /// When the connection began: its SYN (or first packet). Not the 101, which on the client
    /// leg of a proxy comes after the backend leg's.
    pub(super) fn start(&self) -> Ts {
        self.open_ts.or(self.hs_ts).unwrap_or_default()
    }
}
