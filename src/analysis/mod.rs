//! The analysis stage: takes the event stream (in capture order), gives each `ConnectionEnd` a
//! [`Diagnosis`](crate::diagnosis::Diagnosis) — how the connection ended, who ended it, what close code each side's `close`
//! event reported, idle and heartbeat figures, and one sentence saying why — and gives the
//! capture a [`DiagnosisSummary`]. The values are plain types in [`crate::diagnosis`]; this
//! module computes them.
//!
//! It sits between the session and the sink ([`AnalysisSink`] wraps any sink). `analyzer` keeps,
//! per open connection, only what the rules need (`conn`: message sizes and times, pings, close
//! frames, FIN/RST), and a bounded history of recently ended connections so that the two legs of
//! a proxied connection can be linked whichever ends first (`link`). When one ends, `diagnose`
//! runs the rules: `facts` (kind, who, codes, silences), `evidence`, `timeouts`, `link`,
//! `verdict`; or `tls` for wss:// without plaintext. `docs/diagnosis.md` states each rule.

mod analyzer;
mod conn;
mod diagnose;
mod evidence;
mod facts;
mod heartbeat;
mod link;
mod mark;
mod phrases;
pub mod rfc;
pub mod timeouts;
mod tls;
mod verdict;

use std::io;

use crate::diagnosis::DiagnosisSummary;
use crate::error::Error;
use crate::event::{AnomalyEvent, Event};
use crate::sink::{CaptureSummary, EventSink, LiveStats};
pub use analyzer::Analyzer;
use timeouts::Timeout;

/// `ws`'s default `maxPayload` (100 MiB): a longer message makes it close with 1009.
pub const WS_MAX_PAYLOAD: u64 = 100 * 1024 * 1024;

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
                let added = self
                    .analyzer
                    .last_ended_anomalies("message_over_max_payload");
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
    use crate::diagnosis::{Diagnosis, Side, TerminationKind};
    use crate::event::{
        ConnectionEnd, ConnectionOpen, DirStats, Handshake, HandshakeEvent, MessageEvent, TcpEvent,
        TcpMark, TcpSummary, TtlRange,
    };
    use crate::types::{Dir, Ts};

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
            Event::Message(MessageEvent::text(1, msg_ts, Dir::S2c, 10)),
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
