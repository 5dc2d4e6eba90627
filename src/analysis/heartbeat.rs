//! Heartbeat bookkeeping: takes one connection's pings and pongs as they happen and gives its
//! ping/pong figures when it ends, in memory that does not grow with the connection's age.
//!
//! Only the most recent pings are kept whole (the verdict looks at the last ones before the
//! end); older ones are settled as they leave that window and only their counts and a bounded
//! set of recent interval and round-trip samples remain.

use std::collections::VecDeque;

use super::mark::Mark;
use crate::diagnosis::{Heartbeat, Side};
use crate::types::{Dir, Ts};

/// Pings kept whole, most recent last.
const RECENT_PINGS: usize = 64;
/// Interval and round-trip samples kept for the statistics (the most recent ones).
const SAMPLES: usize = 1024;

/// The value at fraction `p` of `sorted` (nearest rank).
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(idx.min(sorted.len() - 1)).copied()
}

/// One ping and, once it came, its pong (time, round trip in ms).
#[derive(Clone, Copy, Debug)]
pub(super) struct Ping {
    pub(super) id: u32,
    pub(super) ts: Ts,
    pub(super) dir: Dir,
    pub(super) pong: Option<(Ts, f64)>,
}

/// The most recent `SAMPLES` values.
#[derive(Clone, Debug, Default)]
struct Samples(VecDeque<f64>);

impl Samples {
    fn push(&mut self, v: f64) {
        if self.0.len() == SAMPLES {
            self.0.pop_front();
        }
        self.0.push_back(v);
    }

    fn sorted_with(&self, more: impl Iterator<Item = f64>) -> Vec<f64> {
        let mut v: Vec<f64> = self.0.iter().copied().chain(more).collect();
        v.sort_by(f64::total_cmp);
        v
    }
}

/// What is kept about a connection's heartbeat while it lives.
#[derive(Clone, Debug, Default)]
pub(super) struct HeartbeatState {
    recent: VecDeque<Ping>,
    pings: u64,
    last_ping: [Option<Ts>; 2],
    intervals: Samples,
    /// Round trips of pings that left the window answered in time.
    rtts: Samples,
    /// Pings that left the window unanswered (late pongs included), and late pongs among them.
    settled_unanswered: u64,
    settled_late: u64,
}

/// Whether `pong_ts` came after the pinger had itself ended its part (close frame, FIN or RST):
/// the pinger no longer listened, so the pong does not count as an answer.
fn late(ping: &Ping, pong_ts: Ts, marks: &[Mark]) -> bool {
    marks.iter().any(|m| m.dir == ping.dir && m.ts < pong_ts)
}

impl HeartbeatState {
    /// A ping; `marks` are the close frames, FINs and RSTs seen so far.
    pub(super) fn ping(&mut self, id: u32, ts: Ts, dir: Dir, marks: &[Mark]) {
        self.pings += 1;
        if let Some(prev) = self.last_ping[dir.index()].replace(ts) {
            self.intervals.push(ts.secs_since(prev));
        }
        if self.recent.len() == RECENT_PINGS
            && let Some(old) = self.recent.pop_front()
        {
            // Its pong, if any, came before now; a close by the pinger after now is later still,
            // so the marks seen so far decide whether it was in time.
            match old.pong {
                Some((t, rtt)) if !late(&old, t, marks) => self.rtts.push(rtt),
                Some(_) => {
                    self.settled_unanswered += 1;
                    self.settled_late += 1;
                }
                None => self.settled_unanswered += 1,
            }
        }
        self.recent.push_back(Ping {
            id,
            ts,
            dir,
            pong: None,
        });
    }

    /// A pong that answers ping `ping_id` (when it answers one).
    pub(super) fn pong(&mut self, ping_id: Option<u32>, ts: Ts, rtt_ms: Option<f64>) {
        if let (Some(id), Some(rtt)) = (ping_id, rtt_ms)
            && let Some(p) = self.recent.iter_mut().rev().find(|p| p.id == id)
        {
            p.pong = Some((ts, rtt));
        }
    }

    /// The figures at the end of the connection, given all its marks.
    pub(super) fn figures(&self, marks: &[Mark]) -> Heartbeat {
        let mut hb = Heartbeat {
            pings: self.pings,
            unanswered: self.settled_unanswered,
            late_pongs: self.settled_late,
            ..Heartbeat::default()
        };
        hb.pinger = match self.last_ping {
            [Some(_), None] => Some(Side::of(Dir::C2s)),
            [None, Some(_)] => Some(Side::of(Dir::S2c)),
            _ => None,
        };
        let intervals = self.intervals.sorted_with(std::iter::empty());
        hb.interval_median_s = percentile(&intervals, 0.5);
        hb.interval_max_s = intervals.last().copied();
        let mut in_time = Vec::new();
        for p in &self.recent {
            match p.pong {
                Some((t, rtt)) if !late(p, t, marks) => in_time.push(rtt),
                Some(_) => {
                    hb.unanswered += 1;
                    hb.late_pongs += 1;
                }
                None => hb.unanswered += 1,
            }
        }
        let rtts = self.rtts.sorted_with(in_time.into_iter());
        hb.rtt_p50_ms = percentile(&rtts, 0.5);
        hb.rtt_p99_ms = percentile(&rtts, 0.99);
        hb.rtt_max_ms = rtts.last().copied();
        hb
    }

    /// The last ping from `side` sent at least `min_wait_s` before `end` that had no pong by
    /// then: the ping a heartbeat timeout gave up on.
    pub(super) fn missed_before(&self, side: Side, end: Ts, min_wait_s: f64) -> Option<&Ping> {
        self.recent
            .iter()
            .rfind(|p| Side::of(p.dir) == side && end.secs_since(p.ts) >= min_wait_s)
            .filter(|p| p.pong.is_none_or(|(t, _)| t > end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: i64) -> Ts {
        Ts::from_parts(secs, 0)
    }

    #[test]
    fn a_long_lived_connection_keeps_a_bounded_window_and_exact_counts() {
        let mut h = HeartbeatState::default();
        // A day of pings every 30 s from the server, all answered in 2 ms but the last one.
        let n = 2880u32;
        for i in 0..n {
            let t = s(i64::from(i) * 30);
            h.ping(i + 1, t, Dir::S2c, &[]);
            if i + 1 < n {
                h.pong(Some(i + 1), Ts(t.0 + 2_000_000), Some(2.0));
            }
        }
        assert!(h.recent.len() <= RECENT_PINGS);
        assert!(h.rtts.0.len() <= SAMPLES && h.intervals.0.len() <= SAMPLES);
        let hb = h.figures(&[]);
        assert_eq!(hb.pings, u64::from(n));
        assert_eq!(hb.unanswered, 1);
        assert_eq!(hb.late_pongs, 0);
        assert_eq!(hb.rtt_p50_ms, Some(2.0));
        assert_eq!(hb.interval_median_s, Some(30.0));
        assert!(matches!(hb.pinger, Some(Side::Server)));
        let missed = h
            .missed_before(Side::Server, s(i64::from(n) * 30), 0.5)
            .expect("the last ping");
        assert_eq!(missed.id, n);
    }

    #[test]
    fn a_pong_after_the_pingers_close_is_late_even_once_settled() {
        let mut h = HeartbeatState::default();
        h.ping(1, s(0), Dir::S2c, &[]);
        let fin = Mark {
            ts: s(1),
            dir: Dir::S2c,
            what: crate::analysis::mark::What::Fin,
        };
        h.pong(Some(1), s(3), Some(3000.0));
        let hb = h.figures(&[fin]);
        assert_eq!((hb.unanswered, hb.late_pongs), (1, 1));
        // Pushed out of the window after the FIN was seen: settled the same way.
        for i in 2..=(RECENT_PINGS as u32 + 1) {
            h.ping(i, s(4), Dir::C2s, &[fin]);
        }
        assert_eq!(h.settled_late, 1);
    }
}
