//! Proxy legs: takes an ending connection and the connections open or recently ended, and gives
//! the other leg through the same proxy when there is one (the proxy's address on both, the same
//! messages crossing both just after each other), then what the two legs together tell: which
//! leg the connection is, and who ended first, the backend, the client or the proxy itself.

use std::fmt::Write as _;
use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use foldhash::{HashMap, HashSet};

use super::conn::ConnState;
use super::phrases::secs;
use crate::types::{ConnId, Dir, Ts};

/// Messages per connection kept for linking proxy legs.
pub(super) const LINK_MESSAGES: usize = 32;
/// Two copies of a message on two legs of one proxy are this close in time, at most.
const LINK_WINDOW_NS: i64 = 2_000_000_000;

/// Two legs of one proxied connection.
pub(super) struct Link {
    front: ConnState,
    back: ConnState,
    self_is_front: bool,
}

/// What the legs tell about the connection being diagnosed.
#[derive(Debug, Default)]
pub(super) struct ProxyFindings {
    /// The other leg.
    pub(super) other_leg: Option<ConnId>,
    /// Whether this is the client↔proxy leg (`None` when no leg is linked).
    pub(super) is_front: Option<bool>,
    /// Who ended first, as a clause for the verdict.
    pub(super) story: Option<String>,
    /// The proxy ended both legs itself.
    pub(super) closed_both: bool,
}

/// The open connections by their client's and their server's address (a hash of it), so that an
/// ending connection looks only at those that can be its other leg: a leg's proxy address is
/// the other leg's client or server address. Scanning every open connection instead made a
/// capture with 30,000 connections open at once spend 80% of its time here. The addresses come
/// from the capture, so the hash is seeded at random, as the flow table's is: a capture built to
/// put every address in one bucket would bring the scan of all open connections back. Which
/// candidates come first does not matter ([`find`] ranks them).
#[derive(Default)]
pub(super) struct LegIndex {
    by_client: HashMap<u64, HashSet<ConnId>>,
    by_server: HashMap<u64, HashSet<ConnId>>,
    hasher: RandomState,
}

impl LegIndex {
    fn key(&self, ip: &str) -> u64 {
        self.hasher.hash_one(ip)
    }

    /// Files `st` under its addresses as they are now.
    pub(super) fn insert(&mut self, st: &ConnState) {
        let (client, server) = (self.key(st.client_ip()), self.key(st.server_ip()));
        self.by_client.entry(client).or_default().insert(st.id);
        self.by_server.entry(server).or_default().insert(st.id);
    }

    /// Takes `st` out, under the addresses it was filed with (call before changing them).
    pub(super) fn remove(&mut self, st: &ConnState) {
        let by = |m: &mut HashMap<u64, HashSet<ConnId>>, key: u64| {
            if let Some(set) = m.get_mut(&key) {
                set.remove(&st.id);
                if set.is_empty() {
                    m.remove(&key);
                }
            }
        };
        let (client, server) = (self.key(st.client_ip()), self.key(st.server_ip()));
        by(&mut self.by_client, client);
        by(&mut self.by_server, server);
    }

    /// The open connections that can be a leg with `st`: those whose client address is `st`'s
    /// server address (`st` in front of them), and those whose server address is `st`'s client
    /// address (`st` behind them). A superset: [`find`] tests each.
    pub(super) fn candidates(&self, st: &ConnState) -> impl Iterator<Item = ConnId> + '_ {
        let back = self.by_client.get(&self.key(st.server_ip()));
        let front = self.by_server.get(&self.key(st.client_ip()));
        back.into_iter().chain(front).flatten().copied()
    }
}

/// The other leg of `st` among `others` (open or recently ended): the closest in start time.
pub(super) fn find<'a>(
    st: &ConnState,
    others: impl Iterator<Item = &'a ConnState>,
) -> Option<Link> {
    // Ties go to the lower id: `others` comes partly from a hash map, whose order is arbitrary.
    let mut best: Option<((i64, ConnId), Link)> = None;
    for o in others.filter(|o| o.id != st.id) {
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
        let dist = link.front.start().0.abs_diff(link.back.start().0) as i64;
        let rank = (dist, o.id);
        if best.as_ref().is_none_or(|(b, _)| rank < *b) {
            best = Some((rank, link));
        }
    }
    best.map(|(_, l)| l)
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
    let (fs, bs) = (front.start(), back.start());
    if bs < fs || bs.0.saturating_sub(fs.0) > LINK_WINDOW_NS {
        return false;
    }
    if front.server.is_empty() || front.server_ip() != back.client_ip() {
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

/// What a linked leg tells, with its evidence lines; nothing without one.
pub(super) fn findings(link: Option<&Link>, ev: &mut Vec<String>) -> ProxyFindings {
    let Some(l) = link else {
        return ProxyFindings::default();
    };
    let other = if l.self_is_front {
        l.back.id
    } else {
        l.front.id
    };
    let role = if l.self_is_front {
        "client↔proxy leg"
    } else {
        "proxy↔backend leg"
    };
    ev.push(format!(
        "{role} of a proxied connection; the other leg is #{other} (same messages on both)"
    ));
    let (story, closed_both) = story(l);
    if let Some(s) = &story {
        ev.push(format!("proxy: {s}"));
    }
    ProxyFindings {
        other_leg: Some(other),
        is_front: Some(l.self_is_front),
        story,
        closed_both,
    }
}

/// Who ended first, from the first close frame, FIN or RST on each leg; and whether the proxy
/// ended both legs itself (toward the client and toward the backend).
fn story(l: &Link) -> (Option<String>, bool) {
    let (f, b) = (l.front.first_end(), l.back.first_end());
    let dt = |a: Ts, b: Ts| secs(b.secs_since(a).max(0.0));
    match (f, b) {
        (Some(f), Some(b)) if f.dir == Dir::S2c && b.dir == Dir::C2s => {
            let last = [l.front.last_activity(), l.back.last_activity()]
                .into_iter()
                .flatten()
                .max();
            let silence = last.map(|t| f.ts.min(b.ts).secs_since(t));
            let s = format!(
                "the proxy ended both legs itself ({} to the client, {} to the backend{})",
                f.verb().replace("sent ", ""),
                b.verb().replace("sent ", ""),
                silence.map_or(String::new(), |s| format!(
                    ", {} after the last message",
                    secs(s)
                ))
            );
            (Some(s), true)
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
            let s = s
                .replace("closed with FIN", "sent FIN")
                .replace("closed with RST", "sent RST");
            (Some(s), false)
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
            (Some(s), false)
        }
        (Some(f), _) if f.dir == Dir::S2c => (
            Some(format!("the proxy {} to the client first", f.verb())),
            false,
        ),
        _ => (None, false),
    }
}

#[cfg(test)]
mod tests {
    use super::{ConnState, LegIndex};
    use crate::types::ConnId;

    fn conn(id: ConnId, client: &str, server: &str) -> ConnState {
        let mut st = ConnState {
            id,
            ..ConnState::default()
        };
        st.set_endpoints(client, server);
        st
    }

    fn sorted(it: impl Iterator<Item = ConnId>) -> Vec<ConnId> {
        let mut v: Vec<_> = it.collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn leg_index_offers_the_connections_sharing_the_proxy_address() {
        let mut idx = LegIndex::default();
        // 1: browser -> proxy; 2: proxy -> backend; 3: another browser -> backend directly.
        let front = conn(1, "192.0.2.7:50000", "10.0.0.5:443");
        let back = conn(2, "10.0.0.5:41000", "10.0.0.9:8080");
        let other = conn(3, "192.0.2.8:50001", "10.0.0.9:8080");
        for st in [&front, &back, &other] {
            idx.insert(st);
        }
        assert_eq!(sorted(idx.candidates(&front)), vec![2]);
        assert_eq!(sorted(idx.candidates(&back)), vec![1]);
        assert_eq!(sorted(idx.candidates(&other)), Vec::<ConnId>::new());

        // A connection filed before its endpoints were known moves when they are set.
        let mut late = conn(4, "", "");
        idx.insert(&late);
        idx.remove(&late);
        late.set_endpoints("10.0.0.5:41001", "10.0.0.9:8080");
        idx.insert(&late);
        assert_eq!(sorted(idx.candidates(&front)), vec![2, 4]);

        idx.remove(&back);
        idx.remove(&late);
        assert_eq!(sorted(idx.candidates(&front)), Vec::<ConnId>::new());
        assert!(idx.by_client.len() == 2 && idx.by_server.len() == 2);
    }
}
