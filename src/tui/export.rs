//! `e` in the UI: takes the capture file and a connection id, gives a JSON document (the same
//! as `--json --payloads full`) holding only that connection.
//!
//! The UI keeps compact records, not the events, so the export reads the capture again through
//! the JSON sink: the file written is exactly what the command line would write, field for
//! field, whatever the UI had to leave out of memory.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;

use crate::analysis::AnalysisOptions;
use crate::capture::CaptureReader;
use crate::config::Config;
use crate::event::Event;
use crate::output::json::JsonSink;
use crate::pipeline;
use crate::sink::{CaptureSummary, EventSink};
use crate::types::ConnId;

/// Passes on the events of one connection only.
struct OneConn<S> {
    id: ConnId,
    inner: S,
}

impl<S: EventSink> EventSink for OneConn<S> {
    fn event(&mut self, ev: Event) -> io::Result<()> {
        if ev.conn() == self.id {
            self.inner.event(ev)
        } else {
            Ok(())
        }
    }
    fn finish(&mut self, summary: &CaptureSummary) -> io::Result<()> {
        self.inner.finish(summary)
    }
}

/// Writes connection `id` of `capture` to `out` as a wsinspect JSON document (indented).
///
/// Connection ids are given in order of discovery, so the same file and settings give the same
/// ids as the run the UI shows.
pub fn connection(
    capture: &Path,
    cfg: Config,
    analysis: AnalysisOptions,
    id: ConnId,
    out: &Path,
) -> Result<(), String> {
    let mut reader = CaptureReader::open(capture).map_err(|e| e.to_string())?;
    let file = File::create(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let frames = cfg.frames;
    let sink = OneConn {
        id,
        inner: JsonSink::new(BufWriter::new(file), frames, true),
    };
    // The JSON sink flushes its writer when the capture is finished.
    pipeline::run_with(
        &mut reader,
        &capture.display().to_string(),
        cfg,
        analysis,
        sink,
    )
    .map_err(|e| e.to_string())?;
    Ok(())
}
