//! Prometheus metrics: counts the event stream into OpenMetrics counters, gauges and histograms,
//! and serves them over HTTP (`--metrics ADDR`) for a Prometheus server to scrape.
//!
//! [`MetricsSink`] sits in front of another sink and passes every event on, so a live run can
//! feed a dashboard and write NDJSON at once. Labels take values from small fixed sets only
//! (direction, message type, termination kind, close code, anomaly kind), never from captured
//! text, so a capture cannot blow up the number of series.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::error::Error;
use crate::event::Event;
use crate::sink::{CaptureSummary, EventSink, LiveStats};
use crate::types::{ConnId, Ts};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MsgLabels {
    dir: &'static str,
    r#type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    side: &'static str,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    by: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirLabels {
    dir: &'static str,
}

/// Every metric, shared between the sink that updates them and the server that reads them.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    open: Gauge,
    ended: Family<KindLabels, Counter>,
    abnormal: Counter,
    observed_codes: Family<CodeLabels, Counter>,
    messages: Family<MsgLabels, Counter>,
    message_bytes: Family<MsgLabels, Counter>,
    pings: Family<DirLabels, Counter>,
    anomalies: Family<KindLabels, Counter>,
    ping_rtt: Histogram,
    duration: Histogram,
    packets: Counter,
    dropped: Family<DropLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// A close code as a label: a number, or `none` when the side's code is unknown.
fn code_label(code: Option<u16>) -> String {
    code.map_or_else(|| "none".to_owned(), |c| c.to_string())
}

impl Metrics {
    /// Registers every metric under the `wsinspect_` prefix.
    pub fn new() -> Metrics {
        let mut r = Registry::with_prefix("wsinspect");
        let open = Gauge::default();
        r.register(
            "connections_open",
            "WebSocket connections being tracked now",
            open.clone(),
        );
        let ended = Family::<KindLabels, Counter>::default();
        r.register(
            "connections_ended",
            "WebSocket connections ended, by termination kind (docs/diagnosis.md)",
            ended.clone(),
        );
        let abnormal = Counter::default();
        r.register(
            "connections_abnormal",
            "Ended connections that did not close cleanly (what --fail-on abnormal counts)",
            abnormal.clone(),
        );
        let observed_codes = Family::<CodeLabels, Counter>::default();
        r.register(
            "close_observed",
            "Ended connections by the close code each side's application observed (1006: no close frame)",
            observed_codes.clone(),
        );
        let messages = Family::<MsgLabels, Counter>::default();
        r.register(
            "messages",
            "Data messages, by direction (c2s, s2c) and type (text, binary)",
            messages.clone(),
        );
        let message_bytes = Family::<MsgLabels, Counter>::default();
        r.register(
            "message_bytes",
            "Decoded message bytes, by direction and type",
            message_bytes.clone(),
        );
        let pings = Family::<DirLabels, Counter>::default();
        r.register("pings", "Ping frames, by direction", pings.clone());
        let anomalies = Family::<KindLabels, Counter>::default();
        r.register(
            "anomalies",
            "Anomalies recorded, by kind (docs/json-schema.md)",
            anomalies.clone(),
        );
        let ping_rtt = Histogram::new(exponential_buckets(0.000_25, 2.0, 16));
        r.register(
            "ping_rtt_seconds",
            "Time from a ping to its pong, as seen at the capture point",
            ping_rtt.clone(),
        );
        let duration = Histogram::new(exponential_buckets(0.01, 4.0, 12));
        r.register(
            "connection_duration_seconds",
            "Lifetime of ended WebSocket connections",
            duration.clone(),
        );
        let packets = Counter::default();
        r.register("capture_packets", "Packets read", packets.clone());
        let dropped = Family::<DropLabels, Counter>::default();
        r.register(
            "capture_dropped_packets",
            "Packets lost by the capture, by where (kernel buffer, interface, wsinspect's queue)",
            dropped.clone(),
        );
        Metrics {
            registry: Arc::new(r),
            open,
            ended,
            abnormal,
            observed_codes,
            messages,
            message_bytes,
            pings,
            anomalies,
            ping_rtt,
            duration,
            packets,
            dropped,
        }
    }

    /// Counts one event.
    pub fn observe(&self, ev: &Event) {
        match ev {
            Event::ConnectionOpen(_) => {
                self.open.inc();
            }
            Event::Message(m) => {
                let labels = MsgLabels {
                    dir: m.dir.as_str(),
                    r#type: m.kind,
                };
                self.messages.get_or_create(&labels).inc();
                self.message_bytes.get_or_create(&labels).inc_by(m.len);
            }
            Event::Ping(p) => {
                self.pings
                    .get_or_create(&DirLabels {
                        dir: p.dir.as_str(),
                    })
                    .inc();
            }
            Event::Pong(p) => {
                if let Some(ms) = p.rtt_ms {
                    self.ping_rtt.observe(ms / 1e3);
                }
            }
            Event::Anomaly(a) => {
                self.anomalies
                    .get_or_create(&KindLabels { kind: a.kind })
                    .inc();
            }
            Event::ConnectionEnd(end) => {
                self.open.dec();
                self.duration
                    .observe(end.end_ts.secs_since(end.start_ts).max(0.0));
                if let Some(d) = &end.diagnosis {
                    self.ended
                        .get_or_create(&KindLabels {
                            kind: d.kind.as_str(),
                        })
                        .inc();
                    if d.abnormal {
                        self.abnormal.inc();
                    }
                    for (side, code) in [
                        ("client", d.client_observed_code),
                        ("server", d.server_observed_code),
                    ] {
                        self.observed_codes
                            .get_or_create(&CodeLabels {
                                side,
                                code: code_label(code),
                            })
                            .inc();
                    }
                }
            }
            Event::Handshake(_)
            | Event::Frame(_)
            | Event::Close(_)
            | Event::Tcp(_)
            | Event::Gap(_) => {}
        }
    }

    /// Brings the capture counters up to the totals a capture handle reports (they only grow).
    pub fn capture_totals(&self, packets: u64, kernel_dropped: u64, interface_dropped: u64) {
        fn raise(c: &Counter, to: u64) {
            let now = c.get();
            if to > now {
                c.inc_by(to - now);
            }
        }
        raise(&self.packets, packets);
        raise(
            &self.dropped.get_or_create(&DropLabels { by: "kernel" }),
            kernel_dropped,
        );
        raise(
            &self.dropped.get_or_create(&DropLabels { by: "interface" }),
            interface_dropped,
        );
    }

    /// Brings the count of packets a live capture dropped from its queue to the analysis up to
    /// `dropped` (it only grows).
    pub fn queue_dropped(&self, dropped: u64) {
        let c = self.dropped.get_or_create(&DropLabels { by: "queue" });
        let now = c.get();
        if dropped > now {
            c.inc_by(dropped - now);
        }
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Counts events into [`Metrics`] and passes them on to `inner`.
pub struct MetricsSink<S: EventSink> {
    inner: S,
    metrics: Metrics,
    /// Connections open now, so a connection that ends without having been counted open (it
    /// cannot, but a gauge must never drift) is not subtracted.
    open: HashMap<ConnId, Ts>,
}

impl<S: EventSink> MetricsSink<S> {
    /// Counts into `metrics` in front of `inner`.
    pub fn new(inner: S, metrics: Metrics) -> MetricsSink<S> {
        MetricsSink {
            inner,
            metrics,
            open: HashMap::new(),
        }
    }

    /// The wrapped sink.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: EventSink> EventSink for MetricsSink<S> {
    fn event(&mut self, ev: Event) -> io::Result<()> {
        let counted = match &ev {
            Event::ConnectionOpen(o) => {
                self.open.insert(o.conn, o.ts);
                true
            }
            Event::ConnectionEnd(e) => self.open.remove(&e.conn).is_some(),
            _ => true,
        };
        if counted {
            self.metrics.observe(&ev);
        }
        self.inner.event(ev)
    }

    fn stats(&mut self, stats: &LiveStats) -> io::Result<()> {
        self.metrics
            .capture_totals(stats.packets, stats.dropped_kernel, stats.dropped_interface);
        self.metrics.queue_dropped(stats.dropped_queue);
        self.inner.stats(stats)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    fn holds_payloads(&self) -> bool {
        self.inner.holds_payloads()
    }

    fn finish(&mut self, summary: &CaptureSummary) -> io::Result<()> {
        self.metrics.capture_totals(summary.packets, 0, 0);
        self.inner.finish(summary)
    }
}

/// Serves `GET /metrics` on `addr` from a thread of its own until the process ends.
pub fn serve(addr: SocketAddr, metrics: Metrics) -> Result<(SocketAddr, JoinHandle<()>), Error> {
    let server = tiny_http::Server::http(addr).map_err(|e| {
        Error::Io(io::Error::other(format!(
            "cannot serve metrics on {addr}: {e}"
        )))
    })?;
    let bound = server.server_addr().to_ip().unwrap_or(addr);
    let content_type = tiny_http::Header::from_bytes(
        &b"Content-Type"[..],
        &b"application/openmetrics-text; version=1.0.0; charset=utf-8"[..],
    )
    .map_err(|()| Error::Io(io::Error::other("bad header")))?;
    let handle = std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for req in server.incoming_requests() {
                let path = req.url().split('?').next().unwrap_or_default();
                let resp = if path == "/metrics" {
                    tiny_http::Response::from_string(metrics.render())
                        .with_header(content_type.clone())
                } else {
                    tiny_http::Response::from_string("wsinspect serves /metrics\n")
                        .with_status_code(404)
                };
                // A scraper that hangs up early is its own business.
                let _ = req.respond(resp);
            }
        })
        .map_err(Error::Io)?;
    Ok((bound, handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_totals_only_grow() {
        let m = Metrics::new();
        m.capture_totals(10, 2, 0);
        m.capture_totals(7, 1, 0);
        m.capture_totals(12, 3, 1);
        m.queue_dropped(6);
        m.queue_dropped(4);
        let text = m.render();
        assert!(
            text.contains("wsinspect_capture_packets_total 12"),
            "{text}"
        );
        assert!(
            text.contains("wsinspect_capture_dropped_packets_total{by=\"kernel\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("wsinspect_capture_dropped_packets_total{by=\"interface\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("wsinspect_capture_dropped_packets_total{by=\"queue\"} 6"),
            "{text}"
        );
    }

    #[test]
    fn code_labels() {
        assert_eq!(code_label(Some(1006)), "1006");
        assert_eq!(code_label(None), "none");
    }
}
