//! The terminal UI: takes a stream of [`Update`]s (event batches and progress) from any
//! producer and gives an interactive view of every connection: a connection list, the selected
//! connection's timeline and a detail pane.
//!
//! [`run_file`] reads a capture on a background thread (the pipeline with a [`ChannelSink`])
//! while the UI thread draws, so the first connections show before the file is read. Another
//! producer (a live capture) calls [`run`] with its own channel. State lives in [`app::App`] and
//! changes only in its event handlers; [`ui::draw`] renders from `&App`, which is what the
//! tests drive with key events and a `TestBackend`.

pub mod app;
pub mod export;
pub mod layout;
pub mod lines;
pub mod model;
pub mod ui;

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use ratatui::crossterm::event::{
    self, DisableMouseCapture, EnableMouseCapture, Event as TermEvent,
};
use ratatui::crossterm::execute;
use thiserror::Error;

use crate::analysis::AnalysisOptions;
use crate::capture::CaptureReader;
use crate::config::{Config, PayloadMode};
use crate::event::Event;
use crate::pipeline;
use crate::sink::{CaptureSummary, EventSink};
pub use app::{App, Options};

/// Events per batch sent to the UI.
const BATCH: usize = 4096;
/// A batch is sent at least this often while events arrive, so the screen fills as it reads.
const BATCH_AGE: Duration = Duration::from_millis(40);
/// Batches in flight: the reader waits when the UI falls this far behind.
const CHANNEL_DEPTH: usize = 64;
/// Time the UI spends taking batches before it draws again.
const INGEST_SLICE: Duration = Duration::from_millis(30);

/// What a producer tells the UI.
#[derive(Debug)]
pub enum Update {
    /// Events, in capture order.
    Events(Vec<Event>),
    /// Bytes of the source consumed so far.
    Progress(u64),
    /// The source is exhausted; its summary.
    Finished(Box<CaptureSummary>),
    /// The producer stopped on an error.
    Failed(String),
}

/// What the UI is looking at.
#[derive(Clone, Debug, Default)]
pub struct SourceInfo {
    /// The name shown (a path, an interface).
    pub name: String,
    /// The capture file, when there is one (export reads it again).
    pub file: Option<PathBuf>,
    /// Size of the source in bytes, when known (for the progress indicator).
    pub total_bytes: Option<u64>,
    /// Bytes consumed, updated by the producer.
    pub progress: Option<Arc<AtomicU64>>,
    /// A live source: follow mode starts on.
    pub live: bool,
    /// Pipeline settings (export reruns with them).
    pub cfg: Config,
    /// Analysis settings.
    pub analysis: AnalysisOptions,
}

/// Why the UI stopped with an error.
#[derive(Debug, Error)]
pub enum TuiError {
    /// The terminal could not be set up or written.
    #[error("terminal: {0}")]
    Terminal(#[from] io::Error),
    /// The capture could not be opened.
    #[error(transparent)]
    Capture(#[from] crate::Error),
}

/// An [`EventSink`] that sends events to the UI in batches over a channel.
pub struct ChannelSink {
    tx: SyncSender<Update>,
    batch: Vec<Event>,
    sent: Instant,
}

impl ChannelSink {
    /// A sink sending on `tx`.
    pub fn new(tx: SyncSender<Update>) -> ChannelSink {
        ChannelSink {
            tx,
            batch: Vec::with_capacity(BATCH),
            sent: Instant::now(),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        self.sent = Instant::now();
        self.tx
            .send(Update::Events(batch))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the UI has quit"))
    }
}

impl EventSink for ChannelSink {
    fn event(&mut self, ev: Event) -> io::Result<()> {
        // A new connection goes out at once (when the last batch is not too recent) so the
        // first rows appear while a big file is still being read.
        let urgent = matches!(ev, Event::ConnectionOpen(_) | Event::ConnectionEnd(_));
        self.batch.push(ev);
        if self.batch.len() >= BATCH
            || (urgent || self.sent.elapsed() >= BATCH_AGE) && self.sent.elapsed() >= BATCH_AGE / 4
        {
            self.send()?;
        }
        Ok(())
    }

    fn finish(&mut self, _: &CaptureSummary) -> io::Result<()> {
        self.send()
    }

    /// A live capture has read every packet waiting: what it said is shown now, not at the
    /// next event.
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// Counts the bytes read from the file, for the progress indicator.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Starts reading `path` on a background thread; gives the channel the UI reads and the
/// source description.
pub fn spawn_file(
    path: &Path,
    mut cfg: Config,
    analysis: AnalysisOptions,
) -> Result<(Receiver<Update>, SourceInfo), TuiError> {
    // The detail pane shows whole payloads; the model decides how many it keeps.
    cfg.payloads = PayloadMode::Full;
    let file = File::open(path).map_err(|source| crate::Error::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let total = file.metadata().ok().map(|m| m.len());
    let count = Arc::new(AtomicU64::new(0));
    let mut reader = CaptureReader::from_reader(Box::new(Counting {
        inner: file,
        count: Arc::clone(&count),
    }))?;
    let (tx, rx) = mpsc::sync_channel(CHANNEL_DEPTH);
    let name = path.display().to_string();
    let source = SourceInfo {
        name: name.clone(),
        file: Some(path.to_path_buf()),
        total_bytes: total,
        progress: Some(count),
        live: false,
        cfg: cfg.clone(),
        analysis: analysis.clone(),
    };
    std::thread::Builder::new()
        .name("wsinspect-reader".into())
        .spawn(move || {
            let sink = ChannelSink::new(tx.clone());
            let done = match pipeline::run_with(&mut reader, &name, cfg, analysis, sink) {
                Ok((_, summary)) => Update::Finished(Box::new(summary)),
                Err(e) => Update::Failed(e.to_string()),
            };
            let _ = tx.send(done);
        })?;
    Ok((rx, source))
}

/// Opens the UI on a capture file; returns the capture summary when the file was read to the
/// end before the user quit.
pub fn run_file(
    path: &Path,
    cfg: Config,
    analysis: AnalysisOptions,
    opts: Options,
) -> Result<Option<CaptureSummary>, TuiError> {
    let (rx, source) = spawn_file(path, cfg, analysis)?;
    run(rx, source, opts)
}

/// Whether the terminal is likely to take OSC 52 clipboard writes.
pub fn osc52_supported() -> bool {
    match std::env::var("TERM") {
        Ok(t) => !(t.is_empty() || t == "dumb" || t == "linux"),
        Err(_) => false,
    }
}

/// Options from the environment: `NO_COLOR` (any value) turns colours off.
pub fn options_from_env(payload_budget: u64) -> Options {
    Options {
        color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        clipboard: osc52_supported(),
        export_dir: PathBuf::from("."),
        payload_budget,
        filter: String::new(),
    }
}

/// Restores the terminal when the UI ends, however it ends.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = execute!(io::stdout(), DisableMouseCapture);
        ratatui::restore();
    }
}

/// Runs the UI on any producer's channel until the user quits; returns the capture summary if
/// the producer finished.
pub fn run(
    rx: Receiver<Update>,
    source: SourceInfo,
    opts: Options,
) -> Result<Option<CaptureSummary>, TuiError> {
    let progress = source.progress.clone();
    let mut app = App::new(source, opts);
    let mut terminal = ratatui::try_init()?;
    let _restore = Restore;
    // ratatui's hook restores the screen on panic; mouse reporting must be turned off too.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = execute!(io::stdout(), DisableMouseCapture);
        hook(info);
    }));
    execute!(io::stdout(), EnableMouseCapture)?;
    let size = terminal.size()?;
    app.resize(size.width, size.height);
    let mut producer_gone = false;
    let mut finished = false;
    loop {
        let mut updates = Vec::new();
        let until = Instant::now() + INGEST_SLICE;
        while !producer_gone && Instant::now() < until {
            match rx.try_recv() {
                Ok(u) => {
                    finished |= matches!(u, Update::Finished(_) | Update::Failed(_));
                    updates.push(u);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    producer_gone = true;
                    if !finished {
                        updates.push(Update::Failed("the reader stopped".into()));
                    }
                }
            }
        }
        if let Some(p) = &progress {
            updates.push(Update::Progress(p.load(Ordering::Relaxed)));
        }
        app.ingest(updates);
        app.poll_jobs(false);
        if let Some(bytes) = app.clipboard_out.take() {
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            let mut out = io::stdout();
            write!(out, "\x1b]52;c;{b64}\x07")?;
            out.flush()?;
        }
        terminal.draw(|f| ui::draw(f, &app))?;
        if app.quit {
            break;
        }
        let wait = if producer_gone || app.progress.done {
            Duration::from_millis(250)
        } else {
            Duration::from_millis(40)
        };
        if event::poll(wait)? {
            loop {
                match event::read()? {
                    TermEvent::Key(k) => app.handle_key(k),
                    TermEvent::Mouse(m) => app.handle_mouse(m),
                    TermEvent::Resize(w, h) => app.resize(w, h),
                    _ => {}
                }
                if app.quit || !event::poll(Duration::ZERO)? {
                    break;
                }
            }
        }
        if app.quit {
            break;
        }
    }
    Ok(app.progress.summary.take().map(|b| *b))
}
