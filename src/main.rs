//! The `wsinspect` command: parses arguments, opens the capture, picks a sink, runs the pipeline.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use wsinspect::analysis::{AnalysisOptions, WS_MAX_PAYLOAD};
use wsinspect::capture::CaptureReader;
use wsinspect::config::{Config, Limits, PayloadMode};
use wsinspect::output::json::JsonSink;
use wsinspect::output::ndjson::NdjsonSink;
use wsinspect::output::select::{SelectSink, Selection};
use wsinspect::output::text::TextSink;
use wsinspect::parallel;
use wsinspect::pipeline::Progress;
use wsinspect::query::Query;
use wsinspect::sink::{CaptureSummary, EventSink};
use wsinspect::tls::KeyLog;
use wsinspect::types::{ConnId, Ts};

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

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ColorWhen {
    /// When standard output is a terminal and `NO_COLOR` is not set.
    Auto,
    /// Always, even into a pipe.
    Always,
    /// Never.
    Never,
}

const EXAMPLES: &str = "\
Examples:
  Summarise every connection of a capture:
    wsinspect capture.pcap
  Find the connections whose client saw 1006, and say why:
    wsinspect capture.pcap --filter code:1006
  Export one event per line for a script or a log shipper:
    wsinspect capture.pcap --ndjson --payloads full > events.ndjson
  One JSON document, connection #3 only:
    wsinspect capture.pcap --json --pretty --conn 3
  Fail a CI job when any connection ended abnormally:
    wsinspect capture.pcap --fail-on abnormal
  Watch an interface, write events as they happen and serve Prometheus metrics
  (a build with `--features live`):
    wsinspect -i eth0 --bpf 'tcp port 443' --ndjson --metrics 127.0.0.1:9464
  Decrypt wss:// with the key log a browser or Node wrote (SSLKEYLOGFILE, --tls-keylog):
    wsinspect capture.pcapng --keylog keys.log
  Name the proxy timeouts on the path, so verdicts can cite them:
    wsinspect capture.pcap --timeout nginx=60s --timeout aws-alb=350s

Exit status: 0 when the capture was read, 1 when --fail-on found something, 2 on a usage or input
error. Filters (--filter): docs/query.md; JSON fields: docs/json-schema.md.";

/// Tells you what happened on every WebSocket connection in a packet capture.
#[derive(Debug, Parser)]
#[command(
    name = "wsinspect",
    version,
    about,
    max_term_width = 100,
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// A pcap or pcapng file (gzip-compressed is fine); `-` reads standard input.
    #[arg(help_heading = "Input", conflicts_with = "interface")]
    capture: Option<PathBuf>,

    /// Decrypt wss:// (TLS) with this key log (SSLKEYLOGFILE / NSS format); keys embedded in a
    /// pcapng (Decryption Secrets Blocks) are used without it.
    #[arg(long, value_name = "FILE", help_heading = "Input")]
    keylog: Option<PathBuf>,

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

    /// Print the text summary instead of opening the terminal UI (the default when standard
    /// output is a terminal and no other output is asked for).
    #[arg(long, help_heading = "Output")]
    no_tui: bool,

    /// Payload bytes the terminal UI keeps for its detail pane; beyond it, payloads are counted
    /// but not kept.
    #[arg(long, value_name = "BYTES", default_value_t = wsinspect::tui::model::DEFAULT_PAYLOAD_BUDGET, help_heading = "Output")]
    tui_memory: u64,

    /// Write to this file instead of standard output.
    #[arg(short, long, value_name = "FILE", help_heading = "Output")]
    output: Option<PathBuf>,

    /// Colour in the text summary.
    #[arg(
        long,
        value_enum,
        value_name = "WHEN",
        default_value = "auto",
        help_heading = "Output"
    )]
    color: ColorWhen,

    /// No progress bar and no warnings on standard error (errors are still printed).
    #[arg(short, long, help_heading = "Output")]
    quiet: bool,

    /// Only the connections matching EXPR, e.g. `code:1006`, `kind:rst_without_close`,
    /// `host:example.com path:/chat -verdict:clean`, `anomaly`, `port:443` (terms are ANDed;
    /// docs/query.md). In the terminal UI it is the starting filter.
    #[arg(
        long,
        value_name = "EXPR",
        allow_hyphen_values = true,
        help_heading = "Selection"
    )]
    filter: Option<String>,

    /// Only this connection (repeatable, or a comma-separated list of ids).
    #[arg(
        long,
        value_name = "ID",
        value_delimiter = ',',
        help_heading = "Selection"
    )]
    conn: Vec<ConnId>,

    /// Only connections active at or after TIME, and their events from then on. TIME is
    /// RFC 3339 (`2026-11-22T12:00:00Z`) or a duration after the first packet (`90s`, `5m`).
    #[arg(long, value_name = "TIME", help_heading = "Selection")]
    since: Option<String>,

    /// Only connections that started at or before TIME, and their events until then.
    #[arg(long, value_name = "TIME", help_heading = "Selection")]
    until: Option<String>,

    /// Exit with status 1 when a connection ended abnormally, or has an anomaly.
    #[arg(long, value_enum, value_name = "WHAT", help_heading = "Analysis")]
    fail_on: Option<FailOn>,

    /// A timeout on the path, e.g. `nginx=3s`, named in verdicts when a silence matches it
    /// (repeatable; a known product name borrows its setting name).
    #[arg(long, value_name = "NAME=DURATION", help_heading = "Analysis")]
    timeout: Vec<String>,

    /// Messages longer than this are flagged (ws `maxPayload`: a ws peer closes with 1009).
    #[arg(long, value_name = "BYTES", default_value_t = WS_MAX_PAYLOAD, help_heading = "Analysis")]
    max_payload: u64,

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

    /// Bytes of messages, frames, pings and anomalies the JSON document holds in memory for
    /// connections still open; beyond, they wait in a temporary file (in TMPDIR) until their
    /// connection is written. The document is the same either way.
    #[arg(long, value_name = "BYTES", default_value_t = wsinspect::output::json::DEFAULT_MEMORY_CAP, help_heading = "Limits")]
    json_memory: u64,

    /// Threads analysing a capture file; connections are shared out between them and the output
    /// is the same as with one [default: the number of cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..), help_heading = "Performance")]
    threads: Option<u16>,

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

    /// Stop after this many packets captured.
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

    /// Captured packets waiting for the analysis, in bytes at most: a burst that takes the
    /// analysis a while waits here rather than overflowing the kernel buffer; packets beyond it
    /// are dropped and counted (`dropped_queue`).
    #[arg(long, value_name = "BYTES", default_value_t = 128 << 20, value_parser = clap::value_parser!(u64).range(1..), help_heading = "Live capture")]
    queue_size: u64,

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

    /// Serve Prometheus metrics on this address while capturing, e.g. `127.0.0.1:9464`
    /// (GET /metrics; docs/dashboards.md).
    #[arg(
        long,
        value_name = "ADDR",
        requires = "interface",
        help_heading = "Live capture"
    )]
    metrics: Option<std::net::SocketAddr>,

    /// A connection silent this long is ended and forgotten, e.g. `10m`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "1h", help_heading = "Limits")]
    idle_timeout: std::time::Duration,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff); docs/wsinspect.1 is this output.
    #[command(hide = true)]
    Man,
}

/// The cargo features this binary was built with, for `--version`.
fn features() -> Vec<&'static str> {
    let mut on = Vec::new();
    if cfg!(feature = "live") {
        on.push("live");
    }
    on
}

fn command() -> clap::Command {
    let features = features();
    let features = if features.is_empty() {
        "none".to_owned()
    } else {
        features.join(", ")
    };
    let long = format!("{}\nfeatures: {features}", env!("CARGO_PKG_VERSION"));
    Cli::command().long_version(long)
}

fn main() -> ExitCode {
    let cli = match Cli::from_arg_matches(&command().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let fail_on = cli.fail_on;
    match run(cli) {
        Ok(Some(summary)) => {
            let d = summary.diagnosis.unwrap_or_default();
            let fail = match fail_on {
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
        Ok(None) => ExitCode::SUCCESS,
        Err(err) => {
            // A reader that went away (`wsinspect f.pcap --ndjson | head`) is not a failure.
            if err.chain().any(|e| {
                e.downcast_ref::<io::Error>()
                    .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("wsinspect: {}", one_line(&err));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes on one line, each said once: library errors already name their
/// cause, which the chain would otherwise repeat.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Runs what the command line asks; `None` for the subcommands that read no capture.
fn run(cli: Cli) -> Result<Option<CaptureSummary>> {
    match &cli.command {
        Some(Command::Completions { shell }) => {
            clap_complete::generate(*shell, &mut command(), "wsinspect", &mut io::stdout());
            return Ok(None);
        }
        Some(Command::Man) => {
            // The plain version: the manual is the same whatever features a build has.
            clap_mangen::Man::new(Cli::command()).render(&mut io::stdout().lock())?;
            return Ok(None);
        }
        None => {}
    }
    let Some(capture) = cli.capture.clone() else {
        if cli.live.interface.is_none() && !cli.live.list_interfaces {
            bail!(
                "no capture given: `wsinspect FILE`, or `wsinspect -i IFACE` to capture live (see --help)"
            );
        }
        return live(&cli).map(Some);
    };
    read_file(&cli, &capture).map(Some)
}

fn config(cli: &Cli) -> Result<Config> {
    let limits = Limits {
        max_message_bytes: cli.max_message_bytes,
        max_frame_bytes: cli.max_frame_bytes,
        max_flows: cli.max_flows.max(1),
        max_ooo_bytes_per_dir: cli.max_ooo_bytes,
        idle_timeout_ns: i64::try_from(cli.live.idle_timeout.as_nanos()).unwrap_or(i64::MAX),
        max_http_header_bytes: cli.max_http_header_bytes,
        max_held_payload_bytes: cli.max_held_payload_bytes,
        ..Limits::default()
    };
    Ok(Config {
        limits,
        payloads: match cli.payloads {
            Payloads::None => PayloadMode::None,
            Payloads::Preview => PayloadMode::Preview,
            Payloads::Full => PayloadMode::Full,
        },
        frames: cli.frames,
        keylog: match &cli.keylog {
            Some(path) => read_keylog(path)?,
            None => KeyLog::default(),
        },
    })
}

/// `--since`/`--until`: an RFC 3339 time, or a duration after the capture's first packet.
fn parse_time(arg: &str, what: &str, capture: Option<&Path>) -> Result<Ts> {
    if let Ok(t) = humantime::parse_rfc3339_weak(arg) {
        let d = t
            .duration_since(UNIX_EPOCH)
            .map_err(|_| anyhow!("{what} {arg}: before 1970"))?;
        return Ok(Ts(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)));
    }
    let offset: Duration = humantime::parse_duration(arg).map_err(|_| {
        anyhow!("{what} {arg}: not an RFC 3339 time (2026-11-22T12:00:00Z) nor a duration (90s)")
    })?;
    let Some(capture) = capture.filter(|c| *c != Path::new("-")) else {
        bail!(
            "{what} {arg}: a duration counts from the first packet of a file, which standard input or a live capture cannot give in advance; give an RFC 3339 time"
        );
    };
    // One packet is read: no decompressing ahead.
    let mut reader = CaptureReader::open_with(capture, false)?;
    let first = match reader.next_packet()? {
        Some(p) => p.ts,
        None => return Ok(Ts(0)),
    };
    Ok(Ts(first.0.saturating_add(
        i64::try_from(offset.as_nanos()).unwrap_or(i64::MAX),
    )))
}

fn selection(cli: &Cli, capture: Option<&Path>) -> Result<Selection> {
    Ok(Selection {
        conns: cli.conn.clone(),
        since: cli
            .since
            .as_deref()
            .map(|a| parse_time(a, "--since", capture))
            .transpose()?,
        until: cli
            .until
            .as_deref()
            .map(|a| parse_time(a, "--until", capture))
            .transpose()?,
        predicate: match &cli.filter {
            Some(text) => {
                let q = Query::parse(text).map_err(|e| anyhow!("--filter {text:?}: {e}"))?;
                Some(Box::new(q))
            }
            None => None,
        },
    })
}

fn read_file(cli: &Cli, capture: &Path) -> Result<CaptureSummary> {
    let analysis = AnalysisOptions::new(&cli.timeout, cli.max_payload)?;
    let cfg = config(cli)?;
    let sel = selection(cli, Some(capture))?;
    let tui = !cli.no_tui
        && !cli.json
        && !cli.ndjson
        && cli.output.is_none()
        && capture != Path::new("-")
        && io::stdout().is_terminal()
        && io::stdin().is_terminal();
    if tui {
        let mut opts = wsinspect::tui::options_from_env(cli.tui_memory);
        opts.filter = cli.filter.clone().unwrap_or_default();
        let summary = wsinspect::tui::run_file(capture, cfg, analysis, opts)?;
        return Ok(summary.unwrap_or_default());
    }
    let threads = cli
        .threads
        .map_or_else(parallel::default_threads, usize::from);
    let mut reader = CaptureReader::open_with(capture, parallel::decompress_ahead(threads))?;
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
    let to_terminal = cli.output.is_none() && io::stdout().is_terminal();
    let color = match cli.color {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => to_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    let progress = progress_bar(cli, capture);
    let run = Run {
        reader: &mut reader,
        name: &name,
        cfg,
        analysis,
        progress: progress.as_ref(),
        threads,
    };
    let summary = if cli.json {
        run.drive(SelectSink::new(
            JsonSink::with_memory(out, cli.frames, cli.pretty, cli.json_memory),
            sel,
        ))
    } else if cli.ndjson {
        run.drive(SelectSink::new(NdjsonSink::new(out, to_terminal), sel))
    } else {
        // The summary prints no payloads: do not build a preview of every message.
        let run = Run {
            cfg: Config {
                payloads: PayloadMode::None,
                ..run.cfg
            },
            ..run
        };
        run.drive(SelectSink::new(TextSink::with_color(out, color), sel))
    }?;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    if summary.truncated && !cli.quiet {
        eprintln!("wsinspect: warning: {name} is truncated; analysed everything before the cut");
    }
    Ok(summary)
}

/// The key log's secrets; a file without one usable line is an error, not silently no keys.
fn read_keylog(path: &Path) -> Result<KeyLog> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut keylog = KeyLog::default();
    if keylog.add(&text) == 0 {
        bail!("{} holds no TLS key log lines", path.display());
    }
    Ok(keylog)
}

/// A bar on standard error while a file is read, when a person is watching it.
fn progress_bar(cli: &Cli, capture: &Path) -> Option<ProgressBar> {
    if cli.quiet || !io::stderr().is_terminal() {
        return None;
    }
    // Gzip files report decompressed bytes read, which the file size does not bound.
    let len = std::fs::metadata(capture).ok().map(|m| m.len())?;
    let gz = capture.extension().is_some_and(|e| e == "gz");
    let bar = if gz {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::new(len)
    };
    bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(8));
    let template = if gz {
        "{spinner} {bytes} read ({bytes_per_sec}), {msg}"
    } else {
        "{wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta}), {msg}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    Some(bar)
}

struct Run<'a> {
    reader: &'a mut CaptureReader,
    name: &'a str,
    cfg: Config,
    analysis: AnalysisOptions,
    progress: Option<&'a ProgressBar>,
    threads: usize,
}

impl Run<'_> {
    fn drive<S: EventSink>(self, sink: S) -> Result<CaptureSummary> {
        let bar = self.progress;
        let (_, summary) = parallel::run_observed(
            self.reader,
            self.name,
            self.cfg,
            self.analysis,
            sink,
            self.threads,
            &mut |p: Progress| {
                if let Some(bar) = bar {
                    bar.set_position(p.bytes);
                    bar.set_message(format!(
                        "{} packets, {} connections",
                        p.packets, p.connections
                    ));
                }
            },
        )?;
        Ok(summary)
    }
}

/// Lists interfaces or captures live; without the `live` feature, says how to build with it.
#[cfg(not(feature = "live"))]
fn live(_: &Cli) -> Result<CaptureSummary> {
    bail!(
        "live capture is not in this build: install libpcap (Debian: apt-get install libpcap-dev), then build with `cargo build --release --features live`"
    )
}

/// Lists interfaces, or captures on one until `--duration`, `--count`, Ctrl-C or SIGTERM (or
/// `q` in the terminal UI).
#[cfg(feature = "live")]
fn live(cli: &Cli) -> Result<CaptureSummary> {
    use std::sync::atomic::Ordering;
    use wsinspect::capture::live::{self, LiveCapture, LiveOptions, LiveRun};
    use wsinspect::output::metrics::{self, Metrics};

    let args = &cli.live;
    if args.list_interfaces {
        let mut out = io::stdout().lock();
        for iface in live::interfaces()? {
            writeln!(out, "{iface}")?;
        }
        return Ok(CaptureSummary::default());
    }
    let Some(interface) = args.interface.clone() else {
        bail!("no capture file and no interface (-i) given");
    };
    let analysis = AnalysisOptions::new(&cli.timeout, cli.max_payload)?;
    let cfg = config(cli)?;
    let sel = selection(cli, None)?;
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
    let metrics = match args.metrics {
        Some(addr) => {
            let m = Metrics::new();
            let (bound, _server) = metrics::serve(addr, m.clone())?;
            if !cli.quiet {
                eprintln!("wsinspect: metrics at http://{bound}/metrics");
            }
            Some(m)
        }
        None => None,
    };
    let run = LiveRun {
        duration: args.duration,
        count: args.count,
        stats_interval: Some(args.stats_interval),
        stop,
        queue_size: usize::try_from(args.queue_size).unwrap_or(usize::MAX),
    };
    let tui = !cli.no_tui
        && !cli.json
        && !cli.ndjson
        && cli.output.is_none()
        && io::stdout().is_terminal()
        && io::stdin().is_terminal();
    if tui {
        let (tx, rx) = std::sync::mpsc::sync_channel(64);
        let source = wsinspect::tui::SourceInfo {
            name: format!("live: {}", cap.interface()),
            live: true,
            cfg: cfg.clone(),
            analysis: analysis.clone(),
            ..wsinspect::tui::SourceInfo::default()
        };
        let stop = run.stop.clone();
        let mut cfg = cfg;
        cfg.payloads = PayloadMode::Full;
        let capture = std::thread::Builder::new()
            .name("wsinspect-live".into())
            .spawn(move || {
                let sink = SelectSink::new(wsinspect::tui::ChannelSink::new(tx.clone()), sel);
                let done = live_into(&mut cap, &run, cfg, analysis, sink, metrics);
                let update = match &done {
                    Ok(s) => wsinspect::tui::Update::Finished(Box::new(s.clone())),
                    Err(e) => wsinspect::tui::Update::Failed(e.to_string()),
                };
                let _ = tx.send(update);
                done
            })?;
        let mut opts = wsinspect::tui::options_from_env(cli.tui_memory);
        opts.filter = cli.filter.clone().unwrap_or_default();
        let shown = wsinspect::tui::run(rx, source, opts);
        // The UI is gone (q, Ctrl-C or an error): stop capturing and wait for the summary.
        stop.store(true, Ordering::Relaxed);
        let summary = capture
            .join()
            .map_err(|_| anyhow!("the capture thread panicked"))?;
        shown?;
        return summary;
    }
    let out: Box<dyn Write> = match &cli.output {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => Box::new(io::stdout().lock()),
    };
    if !cli.quiet {
        eprintln!(
            "wsinspect: capturing on {} (link type {}){}; Ctrl-C stops",
            cap.interface(),
            cap.linktype(),
            args.bpf
                .as_deref()
                .map(|f| format!(", filter {f:?}"))
                .unwrap_or_default()
        );
    }
    let to_terminal = cli.output.is_none() && io::stdout().is_terminal();
    let color = match cli.color {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => to_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    let summary = if cli.json {
        let out = BufWriter::with_capacity(1 << 16, out);
        let sink = SelectSink::new(
            JsonSink::with_memory(out, cli.frames, cli.pretty, cli.json_memory),
            sel,
        );
        live_into(&mut cap, &run, cfg, analysis, sink, metrics)?
    } else if cli.ndjson {
        // Flushed whenever every waiting packet has been read (and every 50 ms under load), so
        // `tail -f` and log shippers see each event at once without a write per event.
        let out = BufWriter::with_capacity(1 << 16, out);
        let sink = SelectSink::new(NdjsonSink::new(out, false), sel);
        live_into(&mut cap, &run, cfg, analysis, sink, metrics)?
    } else {
        // A person watching: each connection's block as soon as it ends.
        let sink = SelectSink::new(TextSink::with_color(io::LineWriter::new(out), color), sel);
        // The summary prints no payloads: do not build a preview of every message.
        let cfg = Config {
            payloads: PayloadMode::None,
            ..cfg
        };
        live_into(&mut cap, &run, cfg, analysis, sink, metrics)?
    };
    if let (Some(s), false) = (&summary.live, cli.quiet) {
        eprintln!(
            "wsinspect: {} packets analysed ({} bytes) in {:.1} s; {} received by filter, {} dropped by kernel, {} dropped by interface, {} dropped by the analysis queue",
            s.packets,
            s.bytes,
            s.elapsed,
            s.received,
            s.dropped_kernel,
            s.dropped_interface,
            s.dropped_queue
        );
    }
    Ok(summary)
}

/// Runs a live capture into `sink`, counting into `metrics` on the way when asked.
#[cfg(feature = "live")]
fn live_into<S: EventSink>(
    cap: &mut wsinspect::capture::live::LiveCapture,
    run: &wsinspect::capture::live::LiveRun,
    cfg: Config,
    analysis: AnalysisOptions,
    sink: S,
    metrics: Option<wsinspect::output::metrics::Metrics>,
) -> Result<CaptureSummary> {
    use wsinspect::capture::live;
    use wsinspect::output::metrics::MetricsSink;
    Ok(match metrics {
        Some(m) => live::run(cap, run, cfg, analysis, MetricsSink::new(sink, m))?.1,
        None => live::run(cap, run, cfg, analysis, sink)?.1,
    })
}
