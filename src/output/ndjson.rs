//! NDJSON: one event per line, in capture order, written as it happens.
//!
//! Each line is an object with an `event` (`connection_open`, `handshake`, `frame`, `message`,
//! `ping`, `pong`, `close`, `tcp`, `gap`, `anomaly`, `connection_end`) and the fields of that
//! event; the last line is a `capture_end` event with the capture summary and `summary` (connections by outcome). `docs/json-schema.md`
//! lists every field. A live capture adds `stats` lines (libpcap's counters) now and then and
//! once before `capture_end`.

use std::io::{self, Write};

use serde::Serialize;

use crate::diagnosis::DiagnosisSummary;
use crate::event::Event;
use crate::output::SCHEMA_VERSION;
use crate::output::escape::C1Escaping;
use crate::sink::{CaptureSummary, EventSink, LiveStats};

/// Capacity the line buffer keeps between lines (a line with a full payload may be far longer).
const LINE_RETAIN: usize = 64 << 10;

/// Writes events as JSON lines.
pub struct NdjsonSink<W: Write> {
    /// C1 controls escaped: see [`C1Escaping`].
    out: C1Escaping<W>,
    flush_each: bool,
    /// The line being written: serialized here whole, then escaped and written in one piece,
    /// instead of the escaping writer seeing each of serde_json's many small token writes.
    line: Vec<u8>,
}

impl<W: Write> NdjsonSink<W> {
    /// A sink writing to `out`; with `flush_each`, every line is flushed at once (for live
    /// capture, so that `tail -f` and log shippers see events as they happen).
    pub fn new(out: W, flush_each: bool) -> NdjsonSink<W> {
        NdjsonSink {
            out: C1Escaping::new(out),
            flush_each,
            line: Vec::with_capacity(1024),
        }
    }

    fn line<T: Serialize>(&mut self, value: &T) -> io::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, value)?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        if self.line.capacity() > LINE_RETAIN {
            self.line = Vec::with_capacity(1024);
        }
        if self.flush_each {
            self.out.flush()?;
        }
        Ok(())
    }
}

#[derive(Serialize)]
struct CaptureEnd<'a> {
    event: &'static str,
    schema_version: &'static str,
    capture: &'a CaptureSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'a DiagnosisSummary>,
}

#[derive(Serialize)]
struct Stats<'a> {
    event: &'static str,
    #[serde(flatten)]
    stats: &'a LiveStats,
}

impl<W: Write> EventSink for NdjsonSink<W> {
    /// Each event is written as it comes; nothing is held.
    fn holds_payloads(&self) -> bool {
        false
    }

    fn event(&mut self, ev: Event) -> io::Result<()> {
        self.line(&ev)
    }

    fn finish(&mut self, summary: &CaptureSummary) -> io::Result<()> {
        self.line(&CaptureEnd {
            event: "capture_end",
            schema_version: SCHEMA_VERSION,
            capture: summary,
            summary: summary.diagnosis.as_ref(),
        })?;
        self.out.flush()
    }

    fn stats(&mut self, stats: &LiveStats) -> io::Result<()> {
        self.line(&Stats {
            event: "stats",
            stats,
        })?;
        self.out.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
