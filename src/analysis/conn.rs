//! What the analysis keeps of one connection while it is open: takes the facts of its events
//! (addresses, start and handshake times, message sizes and times, pings, close frames, FIN and
//! RST) as `analyzer` notes them, and gives the rules the figures they read when it ends.
//!
//! Only what the rules need is kept, so memory per connection stays small and bounded.

use std::collections::BTreeMap;

use super::heartbeat::HeartbeatState;
use super::mark::Mark;
use crate::types::{ConnId, Dir, Ts};

/// What is kept per connection.
#[derive(Clone, Debug, Default)]
pub(super) struct ConnState {
    pub(super) id: ConnId,
    pub(super) client: String,
    pub(super) server: String,
    /// Where the address part of `client` and `server` lies (see [`ConnState::set_endpoints`]).
    pub(super) ips: [(usize, usize); 2],
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
    /// Sets both endpoints (`ip:port` or `[v6]:port`) and finds their address parts once: proxy
    /// legs compare them for every pair of an ending and an open connection.
    pub(super) fn set_endpoints(&mut self, client: &str, server: &str) {
        self.client.clear();
        self.client.push_str(client);
        self.server.clear();
        self.server.push_str(server);
        self.ips = [ip_range(client), ip_range(server)];
    }

    /// The client's address, without the port.
    pub(super) fn client_ip(&self) -> &str {
        self.client.get(self.ips[0].0..self.ips[0].1).unwrap_or("")
    }

    /// The server's address, without the port.
    pub(super) fn server_ip(&self) -> &str {
        self.server.get(self.ips[1].0..self.ips[1].1).unwrap_or("")
    }

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

/// Where the address part of `ip:port` / `[v6]:port` lies.
fn ip_range(endpoint: &str) -> (usize, usize) {
    let end = endpoint.rfind(':').unwrap_or(endpoint.len());
    let start = usize::from(endpoint.starts_with('['));
    let end = if endpoint.get(..end).is_some_and(|a| a.ends_with(']')) {
        end - 1
    } else {
        end
    };
    (start.min(end), end)
}

#[cfg(test)]
mod tests {
    use super::ConnState;

    #[test]
    fn endpoint_addresses() {
        let mut st = ConnState::default();
        st.set_endpoints("10.0.0.1:51000", "[2001:db8::1]:443");
        assert_eq!(
            (st.client_ip(), st.server_ip()),
            ("10.0.0.1", "2001:db8::1")
        );
        st.set_endpoints("host", "[::1]:80");
        assert_eq!((st.client_ip(), st.server_ip()), ("host", "::1"));
    }
}
