//! Plain value types shared by every stage: timestamps, directions and connection numbers.

use serde::{Serialize, Serializer};

/// Connection number within one run, from 1, in order of discovery.
pub type ConnId = u64;

/// A capture timestamp: nanoseconds since the Unix epoch.
///
/// Kept as an integer so that arithmetic between packets is exact; it is written out as seconds
/// with microsecond precision (see `docs/json-schema.md`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ts(pub i64);

impl Ts {
    /// Builds a timestamp from whole seconds and nanoseconds.
    pub fn from_parts(secs: i64, nanos: u32) -> Ts {
        Ts(secs
            .saturating_mul(1_000_000_000)
            .saturating_add(i64::from(nanos)))
    }

    /// Seconds since the epoch, rounded to the microsecond.
    pub fn as_secs_f64(self) -> f64 {
        let micros = self
            .0
            .div_euclid(1_000)
            .saturating_add(i64::from(self.0.rem_euclid(1_000) >= 500));
        micros as f64 / 1e6
    }

    /// Milliseconds from `earlier` to `self` (negative when the capture's clock went backwards).
    pub fn millis_since(self, earlier: Ts) -> f64 {
        self.0.saturating_sub(earlier.0) as f64 / 1e6
    }

    /// Seconds from `earlier` to `self`.
    pub fn secs_since(self, earlier: Ts) -> f64 {
        self.0.saturating_sub(earlier.0) as f64 / 1e9
    }
}

impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_secs_f64())
    }
}

/// Which way bytes travel on a connection.
///
/// The client is the side that sent the HTTP upgrade request (or, without a handshake, the side
/// that sends masked frames; or, without either, the side that sent the SYN).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Dir {
    /// Client to server.
    #[serde(rename = "c2s")]
    C2s,
    /// Server to client.
    #[serde(rename = "s2c")]
    S2c,
}

impl Dir {
    /// The other direction.
    pub fn flip(self) -> Dir {
        match self {
            Dir::C2s => Dir::S2c,
            Dir::S2c => Dir::C2s,
        }
    }

    /// 0 for client to server, 1 for server to client: an index into per-direction arrays.
    pub fn index(self) -> usize {
        match self {
            Dir::C2s => 0,
            Dir::S2c => 1,
        }
    }

    /// The short name used in every output: `c2s` or `s2c`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dir::C2s => "c2s",
            Dir::S2c => "s2c",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ts_rounds_to_micros() {
        let t = Ts::from_parts(1_700_000_000, 123_456_789);
        assert_eq!(t.as_secs_f64(), 1_700_000_000.123457);
        assert_eq!(
            Ts::from_parts(1, 0).millis_since(Ts::from_parts(0, 500_000_000)),
            500.0
        );
    }
}
