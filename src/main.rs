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
    #[arg(required_unless_present_any = ["interface", "list_interfaces"], conflicts_with = "interface")]
    capture: Option<PathBuf>,

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

    #[command(flatten)]
    live: LiveArgs,
}

/// Live capture (`-i`); parsed in every build, so that a build without the `live` feature can
/// say how to get it.
#[derive(Debug, clap::Args)]
struct LiveArgs {
    /// Capture on this interface instead of reading a file (`any`: every interface).
    #[arg(short, long, value_name = "IFACE", help_heading = "Live capture")]
    interface: Option<String>,

    /// Only packets matching this BPF filter (tcpdump syntax), e.g. 'tcp port 8080'.
    #[arg(
        short = 'f',
        long = "bpf",
        value_name = "FILTER",
        requires = "interface",
        help_heading = "Live capture"
    )]
    bpf: Option<String>,

    /// Also write the captured packets to this pcap file.
    #[arg(
        short = 'w',
        long = "write",
        value_name = "FILE",
        requires = "interface",
        help_heading = "Live capture"
    )]
    write: Option<PathBuf>,

    /// Stop after this long, e.g. `60s` or `2h`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, requires = "interface", help_heading = "Live capture")]
    duration: Option<std::time::Duration>,

    /// Stop after this many packets.
    #[arg(
        long,
        value_name = "N",
        requires = "interface",
        help_heading = "Live capture"
    )]
    count: Option<u64>,

    /// List the interfaces that can be captured on, and exit.
    #[arg(long, help_heading = "Live capture")]
    list_interfaces: bool,

    /// Kernel capture buffer, in bytes: it holds about BYTES/snaplen packets while wsinspect is
    /// busy (the defaults give 128).
    #[arg(long, value_name = "BYTES", default_value_t = 32 << 20, help_heading = "Live capture")]
    buffer_size: i32,

    /// Bytes kept of each packet (the default keeps the 64 KiB segments of offloading NICs and
    /// loopback whole).
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = 262_144,
        help_heading = "Live capture"
    )]
    snaplen: i32,

    /// Once the interface is open, drop root privileges to this user (as tcpdump -Z).
    #[arg(
        long,
        value_name = "NAME",
        requires = "interface",
        help_heading = "Live capture"
    )]
    user: Option<String>,

    /// How often an NDJSON `stats` line reports libpcap's counters (`0s`: only at the end).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "10s", help_heading = "Live capture")]
    stats_interval: std::time::Duration,

    /// A connection silent this long is ended and forgotten, e.g. `10m`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "1h", help_heading = "Limits")]
    idle_timeout: std::time::Duration,
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
        idle_timeout_ns: i64::try_from(cli.live.idle_timeout.as_nanos()).unwrap_or(i64::MAX),
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
    let Some(capture) = &cli.capture else {
        return live(cli, cfg, analysis);
    };
    let mut reader = CaptureReader::open(capture)?;
    let name = capture.display().to_string();
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

/// Lists interfaces or captures live; without the `live` feature, says how to build with it.
#[cfg(not(feature = "live"))]
fn live(_: &Cli, _: Config, _: AnalysisOptions) -> Result<CaptureSummary> {
    anyhow::bail!(
        "live capture is not in this build: install libpcap (Debian: apt-get install libpcap-dev), then build with `cargo build --release --features live`"
    )
}

/// Lists interfaces, or captures on one until `--duration`, `--count`, Ctrl-C or SIGTERM.
#[cfg(feature = "live")]
fn live(cli: &Cli, cfg: Config, analysis: AnalysisOptions) -> Result<CaptureSummary> {
    use wsinspect::capture::live::{self, LiveCapture, LiveOptions, LiveRun};

    let args = &cli.live;
    if args.list_interfaces {
        let mut out = io::stdout().lock();
        for iface in live::interfaces()? {
            writeln!(out, "{iface}")?;
        }
        return Ok(CaptureSummary::default());
    }
    let Some(interface) = args.interface.clone() else {
        anyhow::bail!("no capture file and no interface (-i) given");
    };
    let stop = live::stop_on_signals().context("cannot handle signals")?;
    let mut cap = LiveCapture::open(&LiveOptions {
        interface,
        bpf: args.bpf.clone(),
        snaplen: args.snaplen,
        buffer_size: args.buffer_size,
        ..LiveOptions::default()
    })?;
    // Files are created after root is gone, as tcpdump -Z does.
    if let Some(user) = &args.user {
        live::drop_privileges(user)?;
    }
    if let Some(path) = &args.write {
        cap.write_to(path)?;
    }
    let out: Box<dyn Write> = match &cli.output {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => Box::new(io::stdout().lock()),
    };
    let run = LiveRun {
        duration: args.duration,
        count: args.count,
        stats_interval: Some(args.stats_interval),
        stop,
    };
    eprintln!(
        "wsinspect: capturing on {} (link type {}){}; Ctrl-C stops",
        cap.interface(),
        cap.linktype(),
        args.bpf
            .as_deref()
            .map(|f| format!(", filter {f:?}"))
            .unwrap_or_default()
    );
    let summary = if cli.json {
        let out = BufWriter::with_capacity(1 << 16, out);
        let sink = JsonSink::new(out, cli.frames, cli.pretty);
        live::run(&mut cap, &run, cfg, analysis, sink)?.1
    } else if cli.ndjson {
        // Flushed whenever every waiting packet has been read (and every 50 ms under load), so
        // `tail -f` and log shippers see each event at once without a write per event.
        let out = BufWriter::with_capacity(1 << 16, out);
        live::run(&mut cap, &run, cfg, analysis, NdjsonSink::new(out, false))?.1
    } else {
        // A person watching: each connection's block as soon as it ends.
        let out = io::LineWriter::new(out);
        live::run(&mut cap, &run, cfg, analysis, TextSink::new(out))?.1
    };
    if let Some(s) = &summary.live {
        eprintln!(
            "wsinspect: {} packets analysed ({} bytes) in {:.1} s; {} received by filter, {} dropped by kernel, {} dropped by interface",
            s.packets, s.bytes, s.elapsed, s.received, s.dropped_kernel, s.dropped_interface
        );
    }
    Ok(summary)
}
