//! The `wsinspect` command: parses arguments, opens the capture, picks a sink, runs the pipeline.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};

use wsinspect::analysis::{AnalysisOptions, WS_MAX_PAYLOAD};
use wsinspect::capture::CaptureReader;
use wsinspect::config::{Config, Limits, PayloadMode};
use wsinspect::output::json::JsonSink;
use wsinspect::output::ndjson::NdjsonSink;
use wsinspect::output::text::TextSink;
use wsinspect::pipeline::{self, CaptureSummary, EventSink};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum FailOn {
    /// Any connection that did not end with a clean close (still open at the end is fine).
    Abnormal,
    /// Any connection with an anomaly (a protocol rule broken or a limit hit).
    Anomaly,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Payloads {
    /// No payload bytes.
    None,
    /// The first bytes of each message (text, or hex for binary).
    Preview,
    /// Every decoded message whole: text as a string, anything else as base64.
    Full,
}

/// Tells you what happened on every WebSocket connection in a packet capture.
#[derive(Debug, Parser)]
#[command(name = "wsinspect", version, about, max_term_width = 100)]
struct Cli {
    /// A pcap or pcapng file (gzip-compressed is fine); `-` reads standard input.
    capture: PathBuf,

    /// Write one JSON document (connections, then the capture summary).
    #[arg(long, conflicts_with = "ndjson", help_heading = "Output")]
    json: bool,

    /// Write one JSON event per line, in capture order, as they happen.
    #[arg(long, help_heading = "Output")]
    ndjson: bool,

    /// Indent the JSON document.
    #[arg(long, requires = "json", help_heading = "Output")]
    pretty: bool,

    /// How message payloads appear in JSON output.
    #[arg(long, value_enum, default_value = "preview", help_heading = "Output")]
    payloads: Payloads,

    /// List every frame of each connection too.
    #[arg(long, help_heading = "Output")]
    frames: bool,

    /// Write to this file instead of standard output.
    #[arg(short, long, value_name = "FILE", help_heading = "Output")]
    output: Option<PathBuf>,

    /// Largest decoded message kept whole, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_message_bytes, help_heading = "Limits")]
    max_message_bytes: u64,

    /// Largest frame payload kept, in bytes; longer frames are counted and skipped.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_frame_bytes, help_heading = "Limits")]
    max_frame_bytes: u64,

    /// TCP flows tracked at once.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_flows, help_heading = "Limits")]
    max_flows: usize,

    /// Out-of-order bytes buffered per direction before declaring a gap.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_ooo_bytes_per_dir, help_heading = "Limits")]
    max_ooo_bytes: usize,

    /// Largest HTTP request or response head, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_http_header_bytes, help_heading = "Limits")]
    max_http_header_bytes: usize,

    /// Payload and preview bytes the JSON document holds for connections still open; later
    /// messages are listed without payload.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_held_payload_bytes, help_heading = "Limits")]
    max_held_payload_bytes: u64,

    /// Exit with status 1 when a connection ended abnormally, or has an anomaly.
    #[arg(long, value_enum, value_name = "WHAT", help_heading = "Diagnosis")]
    fail_on: Option<FailOn>,

    /// A timeout on the path, e.g. `nginx=3s`, named in verdicts when a silence matches it
    /// (repeatable; a known product name borrows its setting name).
    #[arg(long, value_name = "NAME=DURATION", help_heading = "Diagnosis")]
    timeout: Vec<String>,

    /// Messages longer than this are flagged (ws `maxPayload`: a ws peer closes with 1009).
    #[arg(long, value_name = "BYTES", default_value_t = WS_MAX_PAYLOAD, help_heading = "Diagnosis")]
    max_payload: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(summary) => {
            let d = summary.diagnosis.unwrap_or_default();
            let fail = match cli.fail_on {
                Some(FailOn::Abnormal) => d.abnormal > 0,
                Some(FailOn::Anomaly) => d.with_anomalies > 0,
                None => false,
            };
            if fail {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(err) => {
            // A reader that went away (`wsinspect f.pcap --ndjson | head`) is not a failure.
            if err.chain().any(|e| {
                e.downcast_ref::<io::Error>()
                    .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("wsinspect: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> Result<CaptureSummary> {
    let analysis = AnalysisOptions::new(&cli.timeout, cli.max_payload)?;
    let limits = Limits {
        max_message_bytes: cli.max_message_bytes,
        max_frame_bytes: cli.max_frame_bytes,
        max_flows: cli.max_flows.max(1),
        max_ooo_bytes_per_dir: cli.max_ooo_bytes,
        max_http_header_bytes: cli.max_http_header_bytes,
        max_held_payload_bytes: cli.max_held_payload_bytes,
        ..Limits::default()
    };
    let cfg = Config {
        limits,
        payloads: match cli.payloads {
            Payloads::None => PayloadMode::None,
            Payloads::Preview => PayloadMode::Preview,
            Payloads::Full => PayloadMode::Full,
        },
        frames: cli.frames,
    };
    let mut reader = CaptureReader::open(&cli.capture)?;
    let name = cli.capture.display().to_string();
    let out: Box<dyn Write> = match &cli.output {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => Box::new(io::stdout().lock()),
    };
    let out = BufWriter::with_capacity(1 << 16, out);
    // A terminal watching NDJSON wants each line at once; a file or pipe wants throughput.
    let interactive = cli.output.is_none() && io::stdout().is_terminal();
    if cli.json {
        drive(
            &mut reader,
            &name,
            cfg.clone(),
            analysis,
            JsonSink::new(out, cli.frames, cli.pretty),
        )
    } else if cli.ndjson {
        drive(
            &mut reader,
            &name,
            cfg,
            analysis,
            NdjsonSink::new(out, interactive),
        )
    } else {
        drive(&mut reader, &name, cfg, analysis, TextSink::new(out))
    }
}

fn drive<S: EventSink>(
    reader: &mut CaptureReader,
    name: &str,
    cfg: Config,
    analysis: AnalysisOptions,
    sink: S,
) -> Result<CaptureSummary> {
    let (_, summary) = pipeline::run_with(reader, name, cfg, analysis, sink)?;
    if summary.truncated {
        eprintln!("wsinspect: warning: {name} is truncated; analysed everything before the cut");
    }
    Ok(summary)
}
