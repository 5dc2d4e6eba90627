//! The text summary: one block per connection, written when it ends, then a capture line.
//!
//! Everything taken from the capture (paths, headers, close reasons) goes through [`sanitize`]
//! first, so captured bytes can never drive the terminal.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::{Duration, UNIX_EPOCH};

use anstyle::{AnsiColor, Color, Style};

use crate::event::{CloseEvent, ConnectionEnd, DirStats, Event};
use crate::sink::{CaptureSummary, EventSink};
use crate::types::{ConnId, Dir, Ts};

#[derive(Default)]
struct Pending {
    anomalies: BTreeMap<&'static str, u64>,
    rtts: Vec<f64>,
    unmatched_pongs: u64,
}

/// Writes the human-readable summary.
pub struct TextSink<W: Write> {
    out: W,
    open: HashMap<ConnId, Pending>,
    color: bool,
}

impl<W: Write> TextSink<W> {
    /// A sink writing plain text to `out`.
    pub fn new(out: W) -> TextSink<W> {
        TextSink {
            out,
            open: HashMap::new(),
            color: false,
        }
    }

    /// Same, with ANSI colour on each connection's first line and its outcome (for a terminal).
    pub fn with_color(out: W, color: bool) -> TextSink<W> {
        TextSink {
            color,
            ..TextSink::new(out)
        }
    }

    /// `text` in `style` when colour is on. Only our own words are styled: captured text has
    /// been through [`sanitize`] already, so no escape of the capture's can be wrapped in ours.
    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_owned()
        }
    }
}

const BOLD: Style = Style::new().bold();
/// Colours that read on dark and light backgrounds alike (no white, no black, no background).
const GOOD: Style = Style::new().fg_color(Some(Color::Ansi(AnsiColor::Green)));
const BAD: Style = Style::new()
    .bold()
    .fg_color(Some(Color::Ansi(AnsiColor::Red)));
const WARN: Style = Style::new().fg_color(Some(Color::Ansi(AnsiColor::Yellow)));

/// Escapes control characters (including ESC and the C1 range) so text from a capture is inert
/// on a terminal; long strings are cut to `max` characters.
pub fn sanitize(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    for (i, c) in s.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        if c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// `2026-11-22T12:00:01.234567Z`.
pub fn format_ts(ts: Ts) -> String {
    let micros = u64::try_from(ts.0 / 1_000).unwrap_or(0);
    humantime::format_rfc3339_micros(UNIX_EPOCH + Duration::from_micros(micros)).to_string()
}

/// `1.2 kB`, `3.4 MB`.
pub fn format_bytes(n: u64) -> String {
    match n {
        0..1_000 => format!("{n} B"),
        1_000..1_000_000 => format!("{:.1} kB", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        _ => format!("{:.2} GB", n as f64 / 1e9),
    }
}

fn side(dir: Dir) -> &'static str {
    match dir {
        Dir::C2s => "client",
        Dir::S2c => "server",
    }
}

fn dir_line(name: &str, s: &DirStats) -> String {
    let mut line = format!(
        "    {name}  {} message{} ({} text, {} binary), {} decoded",
        s.messages,
        if s.messages == 1 { "" } else { "s" },
        s.text,
        s.binary,
        format_bytes(s.bytes)
    );
    if s.wire_bytes != s.bytes {
        let _ = write!(line, ", {} on the wire", format_bytes(s.wire_bytes));
    }
    let _ = write!(
        line,
        "; {} frames, {} pings, {} pongs",
        s.frames, s.pings, s.pongs
    );
    line
}

fn close_text(c: &CloseEvent) -> String {
    let mut t = format!("{} sent ", side(c.dir));
    match c.code {
        Some(code) => {
            let _ = write!(t, "{code}");
            if let Some(name) = c.name {
                let _ = write!(t, " {name}");
            }
        }
        None => t.push_str("no code"),
    }
    if !c.reason.is_empty() {
        let _ = write!(t, " \"{}\"", sanitize(&c.reason, 80));
    }
    t
}

impl<W: Write> TextSink<W> {
    fn connection(&mut self, e: &ConnectionEnd) -> io::Result<()> {
        let p = self.open.remove(&e.conn).unwrap_or_default();
        let mut head = format!("#{}  {} -> {}", e.conn, e.client, e.server);
        if let Some(h) = &e.handshake {
            if let (Some(m), Some(path)) = (&h.method, &h.path) {
                let _ = write!(head, "  {} {}", sanitize(m, 16), sanitize(path, 120));
            }
            if let Some(status) = h.status {
                let _ = write!(
                    head,
                    "  {status} {}",
                    sanitize(h.reason.as_deref().unwrap_or(""), 40)
                );
            }
        } else if let Some(t) = &e.tls {
            let _ = write!(head, "  wss, not decrypted ({})", t.decryption);
        } else {
            head.push_str("  (handshake not in capture)");
        }
        let head = self.paint(BOLD, &head);
        writeln!(self.out, "{head}")?;
        writeln!(
            self.out,
            "    {} .. {} ({:.3} s), tracking ended: {}",
            format_ts(e.start_ts),
            format_ts(e.end_ts),
            e.end_ts.secs_since(e.start_ts),
            e.ended_by
        )?;
        if let Some(h) = &e.handshake {
            let mut l = String::from("   ");
            if let Some(host) = &h.host {
                let _ = write!(l, " host {}", sanitize(host, 80));
            }
            if let Some(sp) = &h.subprotocol {
                let _ = write!(l, "  subprotocol {}", sanitize(sp, 60));
            }
            match &h.permessage_deflate {
                Some(d) => {
                    let _ = write!(
                        l,
                        "  permessage-deflate (client {}, server {})",
                        if d.client_no_context_takeover {
                            "no takeover"
                        } else {
                            "takeover"
                        },
                        if d.server_no_context_takeover {
                            "no takeover"
                        } else {
                            "takeover"
                        }
                    );
                }
                None => l.push_str("  no compression"),
            }
            if h.accept_valid == Some(false) {
                l.push_str("  WRONG Sec-WebSocket-Accept");
            }
            writeln!(self.out, "{l}")?;
        }
        writeln!(self.out, "{}", dir_line("c2s", &e.c2s))?;
        writeln!(self.out, "{}", dir_line("s2c", &e.s2c))?;
        let pings = e.c2s.pings + e.s2c.pings;
        if pings > 0 {
            let mut rtts = p.rtts.clone();
            rtts.sort_by(f64::total_cmp);
            let mut l = format!("    pings: {pings}, answered {}", rtts.len());
            if let (Some(min), Some(max)) = (rtts.first(), rtts.last()) {
                let median = rtts[rtts.len() / 2];
                let _ = write!(
                    l,
                    ", rtt min {min:.3} / median {median:.3} / max {max:.3} ms"
                );
            }
            if p.unmatched_pongs > 0 {
                let _ = write!(l, ", {} unsolicited pongs", p.unmatched_pongs);
            }
            writeln!(self.out, "{l}")?;
        }
        if e.close.is_empty() {
            writeln!(self.out, "    close: no close frame")?;
        } else {
            let parts: Vec<String> = e.close.iter().map(close_text).collect();
            writeln!(self.out, "    close: {}", parts.join(", then "))?;
        }
        let mut tcp = Vec::new();
        for f in &e.tcp.fin {
            tcp.push(format!("FIN from {} (ttl {})", side(f.dir), f.ttl));
        }
        for r in &e.tcp.rst {
            tcp.push(format!("RST from {} (ttl {})", side(r.dir), r.ttl));
        }
        let gap_bytes: u64 = e.tcp.gaps.iter().map(|g| g.len).sum();
        if !e.tcp.gaps.is_empty() {
            tcp.push(format!(
                "{} gaps ({} missing)",
                e.tcp.gaps.len(),
                format_bytes(gap_bytes)
            ));
        }
        if e.tcp.retransmissions > 0 {
            tcp.push(format!("{} retransmissions", e.tcp.retransmissions));
        }
        if tcp.is_empty() {
            tcp.push("no FIN or RST captured".into());
        }
        writeln!(self.out, "    tcp: {}", tcp.join(", "))?;
        if let Some(t) = &e.tls {
            let mut line = format!(
                "    tls: {} {}",
                t.version.unwrap_or("?"),
                t.cipher_suite.as_deref().unwrap_or("?")
            );
            if let Some(n) = &t.sni {
                let _ = write!(line, ", SNI {}", sanitize(n, 80));
            }
            if let Some(p) = &t.alpn {
                let _ = write!(line, ", ALPN {}", sanitize(p, 20));
            }
            let _ = write!(
                line,
                ", {} / {} application bytes c2s / s2c, close_notify from {}",
                format_bytes(t.c2s.app_bytes),
                format_bytes(t.s2c.app_bytes),
                match (t.c2s.close_notify, t.s2c.close_notify) {
                    (true, true) => "both",
                    (true, false) => "the client",
                    (false, true) => "the server",
                    (false, false) => "neither",
                }
            );
            writeln!(self.out, "{line}")?;
        }
        if !p.anomalies.is_empty() {
            let parts: Vec<String> = p
                .anomalies
                .iter()
                .map(|(k, n)| {
                    if *n == 1 {
                        k.to_string()
                    } else {
                        format!("{k} x{n}")
                    }
                })
                .collect();
            writeln!(self.out, "    anomalies: {}", parts.join(", "))?;
        }
        if let Some(d) = &e.diagnosis {
            let code = |c: Option<u16>| c.map_or_else(|| "-".to_owned(), |c| c.to_string());
            let style = if d.abnormal {
                BAD
            } else if e.anomaly_count > 0 {
                WARN
            } else {
                GOOD
            };
            let mut l = format!(
                "    diagnosis: {} (client saw {}, server saw {})",
                self.paint(style, d.kind.as_str()),
                code(d.client_observed_code),
                code(d.server_observed_code)
            );
            if let Some(leg) = d.linked_leg {
                let _ = write!(l, ", linked leg #{leg}");
            }
            writeln!(self.out, "{l}")?;
            writeln!(self.out, "    verdict: {}", sanitize(&d.verdict, 1000))?;
            for ev in &d.evidence {
                writeln!(self.out, "      - {}", sanitize(ev, 300))?;
            }
        }
        writeln!(self.out)
    }
}

impl<W: Write> EventSink for TextSink<W> {
    /// Each event is written as it comes; nothing is held.
    fn holds_payloads(&self) -> bool {
        false
    }

    fn event(&mut self, ev: Event) -> io::Result<()> {
        match ev {
            Event::ConnectionEnd(end) => return self.connection(&end),
            Event::Anomaly(a) => {
                *self
                    .open
                    .entry(a.conn)
                    .or_default()
                    .anomalies
                    .entry(a.kind)
                    .or_default() += 1
            }
            Event::Pong(p) => {
                let pending = self.open.entry(p.conn).or_default();
                match p.rtt_ms {
                    Some(rtt) => pending.rtts.push(rtt),
                    None => pending.unmatched_pongs += 1,
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(&mut self, s: &CaptureSummary) -> io::Result<()> {
        let span = match (s.first_ts, s.last_ts) {
            (Some(a), Some(b)) => format!(", {:.3} s", b.secs_since(a)),
            _ => String::new(),
        };
        writeln!(
            self.out,
            "{}: {}{}, {} packets, {}{}; {} WebSocket connection{}{}",
            sanitize(&s.file, 200),
            s.format,
            if s.gzip { " (gzip)" } else { "" },
            s.packets,
            format_bytes(s.bytes),
            span,
            s.connections,
            if s.connections == 1 { "" } else { "s" },
            if s.truncated {
                "; the capture is TRUNCATED (analysed up to the cut)"
            } else {
                ""
            }
        )?;
        if let Some(d) = &s.diagnosis {
            let join = |m: &BTreeMap<String, u64>| {
                m.iter()
                    .map(|(k, n)| format!("{k} x{n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let kinds: Vec<String> = d.by_kind.iter().map(|(k, n)| format!("{k} x{n}")).collect();
            if !kinds.is_empty() {
                writeln!(
                    self.out,
                    "outcomes: {}; client saw {}; server saw {}; {} abnormal, {} with anomalies",
                    kinds.join(", "),
                    join(&d.by_client_code),
                    join(&d.by_server_code),
                    d.abnormal,
                    d.with_anomalies
                )?;
            }
        }
        self.out.flush()
    }
}
