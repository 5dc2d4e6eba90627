//! Text for the panes, built from the model alone: takes a connection and one of its timeline
//! entries, gives styled lines (a timeline row, the detail pane's content) and the theme and
//! escaping they use.
//!
//! Knows nothing of the UI state, so the state (`app`, which builds the detail pane when the
//! selection changes) and the renderer (`ui`, which draws timeline rows) both use it. Every
//! string that came from the capture passes through [`clean`], so no byte of it can drive the
//! terminal.

use std::fmt::Write as _;

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use super::model::{Conn, Entry, Kind, NONE, flag};
use crate::output::text::{format_bytes, sanitize};
use crate::query::{Queryable, VerdictClass};
use crate::types::Dir;
use crate::ws::coding::{CloseClass, close_code_class, close_code_name};

/// Bytes of a payload the detail pane formats (the rest is counted, not drawn).
const DETAIL_BYTES: usize = 1 << 20;
/// Lines of payload the detail pane holds at most.
const DETAIL_LINES: usize = 5_000;

/// Makes text from the capture inert: control characters (C0, C1, ESC, DEL) and bidi or
/// zero-width format characters are shown escaped; long text is cut.
pub fn clean(s: &str, max: usize) -> String {
    sanitize(s, max)
}

/// Styles, with or without colour.
#[derive(Clone, Copy, Debug)]
pub struct Theme {
    color: bool,
}

impl Theme {
    /// The theme for these options.
    pub fn new(color: bool) -> Theme {
        Theme { color }
    }
    pub(super) fn fg(self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }
    pub(super) fn verdict(self, v: VerdictClass) -> Style {
        match v {
            VerdictClass::Clean => self.fg(Color::Green),
            VerdictClass::Abnormal => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            VerdictClass::Anomaly => self.fg(Color::Yellow).add_modifier(Modifier::BOLD),
        }
    }
    pub(super) fn dim(self) -> Style {
        Style::default().add_modifier(Modifier::DIM)
    }
    pub(super) fn bold(self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
    pub(super) fn anomaly(self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }
    pub(super) fn selected(self, focused: bool) -> Style {
        if focused {
            Style::default().add_modifier(Modifier::REVERSED)
        } else {
            Style::default().add_modifier(Modifier::UNDERLINED)
        }
    }
    pub(super) fn dir(self, d: Option<Dir>) -> Style {
        match d {
            Some(Dir::C2s) => self.fg(Color::Cyan),
            Some(Dir::S2c) => self.fg(Color::Magenta),
            None => Style::default(),
        }
    }
    /// A silence: plain when far from any matched timeout, yellow past half, red near it.
    pub(super) fn idle(self, ratio: Option<f64>) -> Style {
        match ratio {
            Some(r) if r >= 0.9 => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            Some(r) if r >= 0.5 => self.fg(Color::Yellow),
            _ => self.dim(),
        }
    }
}

pub(super) fn secs(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.3}s")
    } else if s < 1000.0 {
        format!("{s:.1}s")
    } else {
        format!("{s:.0}s")
    }
}

pub(super) fn code(c: Option<u16>) -> String {
    c.map_or_else(|| "-".to_owned(), |c| c.to_string())
}

fn preview(c: &Conn, e: &Entry, max: usize) -> String {
    if e.flags & flag::DROPPED != 0 {
        return "(payload not kept)".to_owned();
    }
    let Some(p) = c.payload(e) else {
        return c.entry_text(e).map(|t| clean(t, max)).unwrap_or_default();
    };
    let head = &p.bytes[..p.bytes.len().min(max * 4)];
    if p.text || simdutf8::basic::from_utf8(head).is_ok() {
        let s = String::from_utf8_lossy(head);
        // Line breaks and tabs read as spaces on one line; other controls are escaped.
        let one: String = s
            .chars()
            .map(|ch| {
                if matches!(ch, '\n' | '\r' | '\t') {
                    ' '
                } else {
                    ch
                }
            })
            .collect();
        clean(&one, max)
    } else {
        let n = p.bytes.len().min(max / 3);
        let mut s = String::new();
        for b in &p.bytes[..n] {
            let _ = write!(s, "{b:02x} ");
        }
        if p.bytes.len() > n {
            s.push('…');
        }
        s
    }
}

fn arrow(d: Option<Dir>) -> &'static str {
    match d {
        Some(Dir::C2s) => "→",
        Some(Dir::S2c) => "←",
        None => "·",
    }
}

/// A ping's or pong's size, then its round trip, or why it has none (`missing`) when `unmatched`.
fn size_and_rtt(e: &Entry, unmatched: bool, missing: &str) -> String {
    if unmatched {
        format!("{}  ({missing})", format_bytes(e.len))
    } else {
        format!("{}{}", format_bytes(e.len), rtt(e))
    }
}

fn rtt(e: &Entry) -> String {
    if e.rtt_us == NONE {
        String::new()
    } else {
        format!("  rtt {:.1} ms", f64::from(e.rtt_us) / 1000.0)
    }
}

pub(super) fn entry_line(c: &Conn, e: &Entry, th: Theme, width: usize) -> Line<'static> {
    let t = format!("{:>9}", format!("+{}", secs(e.ts.secs_since(c.start))));
    let (label, rest, style) = match e.kind {
        Kind::Handshake => {
            let h = c.handshake.as_ref();
            let req = h
                .map(|h| {
                    format!(
                        "{} {} → {} {}",
                        clean(h.method.as_deref().unwrap_or("?"), 10),
                        clean(h.path.as_deref().unwrap_or("?"), 80),
                        h.status
                            .map_or_else(|| "no answer".to_owned(), |s| s.to_string()),
                        clean(h.reason.as_deref().unwrap_or(""), 40)
                    )
                })
                .unwrap_or_default();
            ("handshake".to_owned(), req, th.bold())
        }
        Kind::Text | Kind::Binary => {
            let mut size = format_bytes(e.len);
            if e.flags & flag::COMPRESSED != 0 {
                let _ = write!(size, " ({} wire)", format_bytes(e.wire));
            }
            if e.flags & flag::NOT_COMPLETE != 0 {
                let _ = write!(
                    size,
                    " [{}]",
                    c.entry_text(e).map(|t| clean(t, 40)).unwrap_or_default()
                );
            }
            let label = if e.kind == Kind::Text {
                "text"
            } else {
                "binary"
            };
            let prev = preview(c, e, width.max(8));
            let style = if e.flags & flag::NOT_COMPLETE != 0 {
                th.anomaly()
            } else {
                Style::default()
            };
            (label.to_owned(), format!("{size:<22} {prev}"), style)
        }
        Kind::Ping => (
            format!("ping #{}", e.aux),
            size_and_rtt(e, e.rtt_us == NONE, "no pong"),
            th.dim(),
        ),
        Kind::Pong => (
            if e.aux == NONE {
                "pong".to_owned()
            } else {
                format!("pong #{}", e.aux)
            },
            size_and_rtt(e, e.aux == NONE, "unsolicited"),
            th.dim(),
        ),
        Kind::Close => {
            let mut s = if e.aux == NONE {
                "(no code)".to_owned()
            } else {
                let code = u16::try_from(e.aux).unwrap_or(0);
                format!("{code} {}", close_code_name(code).unwrap_or(""))
            };
            if let Some(r) = c.entry_text(e) {
                let _ = write!(s, " \"{}\"", clean(r, 80));
            }
            ("close".to_owned(), s, th.bold())
        }
        Kind::Fin => ("FIN".to_owned(), format!("ttl {}", e.aux), th.bold()),
        Kind::Rst => ("RST".to_owned(), format!("ttl {}", e.aux), th.anomaly()),
        Kind::Gap => (
            "gap".to_owned(),
            format!("{} missing from the capture", format_bytes(e.len)),
            th.anomaly(),
        ),
        Kind::Anomaly => (
            "! anomaly".to_owned(),
            c.entry_text(e).map(|t| clean(t, 200)).unwrap_or_default(),
            th.anomaly(),
        ),
        Kind::Frame => {
            let op = u8::try_from(e.aux).unwrap_or(0);
            let mut s = format!(
                "{} {}",
                crate::ws::coding::opcode_name(op),
                format_bytes(e.len)
            );
            if e.flags & flag::FIN != 0 {
                s.push_str(" fin");
            }
            if e.flags & flag::RSV1 != 0 {
                s.push_str(" rsv1");
            }
            ("frame".to_owned(), s, Style::default())
        }
    };
    Line::from(vec![
        Span::styled(t, th.dim()),
        Span::raw(" "),
        Span::styled(arrow(e.dir), th.dir(e.dir)),
        Span::raw(" "),
        Span::styled(format!("{label:<10}"), style),
        Span::raw(" "),
        Span::styled(rest, style),
    ])
}

/// What a close code means.
pub fn close_meaning(code: u16) -> String {
    let what = match code {
        1000 => "normal closure: the purpose of the connection was fulfilled",
        1001 => "going away: a server shutting down or a browser leaving the page",
        1002 => "protocol error: the peer broke the WebSocket protocol",
        1003 => "unsupported data: a data type the endpoint cannot accept",
        1004 => "reserved, without a meaning",
        1005 => "no status: a close frame came without a code (never sent on the wire)",
        1006 => {
            "abnormal closure: the connection dropped without a close frame (never sent on the wire)"
        }
        1007 => "invalid payload data, e.g. text that is not UTF-8",
        1008 => "policy violation",
        1009 => "message too big for the endpoint",
        1010 => "the client needed an extension the server did not negotiate",
        1011 => "internal error: the server hit an unexpected condition",
        1012 => "service restart",
        1013 => "try again later: temporary overload",
        1014 => "bad gateway: a gateway got an invalid answer upstream",
        1015 => "TLS handshake failure (never sent on the wire)",
        _ => match close_code_class(code) {
            CloseClass::Registered => "registered for a library or framework (3000-3999)",
            CloseClass::Private => "private use by the application (4000-4999)",
            CloseClass::Invalid => "outside every range: invalid",
            CloseClass::NotOnWire | CloseClass::Standard => {
                "reserved: must not be sent on the wire"
            }
        },
    };
    match close_code_name(code) {
        Some(name) => format!("{code} {name}: {what}"),
        None => format!("{code}: {what}"),
    }
}

fn wrap(s: &str, width: usize, indent: &str) -> Vec<String> {
    let width = width.max(20);
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut len = 0;
    let mut fresh = true;
    for word in s.split(' ').filter(|w| !w.is_empty()) {
        let wl = word.chars().count();
        if !fresh && len + 1 + wl > width {
            out.push(std::mem::take(&mut cur));
            cur.push_str(indent);
            len = indent.chars().count();
            fresh = true;
        }
        if !fresh {
            cur.push(' ');
            len += 1;
        }
        cur.push_str(word);
        len += wl;
        fresh = false;
    }
    if !fresh {
        out.push(cur);
    }
    out
}

fn hex_dump(bytes: &[u8], out: &mut Vec<Line<'static>>) {
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let mut s = format!("{:06x}  ", i * 16);
        for j in 0..16 {
            match chunk.get(j) {
                Some(b) => {
                    let _ = write!(s, "{b:02x} ");
                }
                None => s.push_str("   "),
            }
        }
        s.push(' ');
        s.extend(chunk.iter().map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '.'
            }
        }));
        out.push(Line::raw(s));
        if out.len() >= DETAIL_LINES {
            break;
        }
    }
}

fn payload_lines(c: &Conn, e: &Entry, out: &mut Vec<Line<'static>>, th: Theme, width: usize) {
    if e.flags & flag::DROPPED != 0 {
        let why = "payload not kept: the UI's payload memory (--tui-memory) was spent.";
        for l in wrap(why, width, "") {
            out.push(Line::styled(l, th.anomaly()));
        }
        for l in wrap(
            "Get every payload with: wsinspect FILE --json --payloads full",
            width,
            "  ",
        ) {
            out.push(Line::raw(l));
        }
        return;
    }
    let Some(p) = c.payload(e) else {
        out.push(Line::styled(
            "(no payload: the message was not decoded)",
            th.dim(),
        ));
        return;
    };
    let shown = &p.bytes[..p.bytes.len().min(DETAIL_BYTES)];
    let start = out.len();
    if shown.len() == p.bytes.len()
        && let Ok(v) = serde_json::from_slice::<serde_json::Value>(shown)
        && (v.is_object() || v.is_array())
        && let Ok(pretty) = serde_json::to_string_pretty(&v)
    {
        out.push(Line::styled("JSON:", th.bold()));
        for l in pretty.lines().take(DETAIL_LINES) {
            out.push(Line::raw(clean(l, 4000)));
        }
    } else if let Ok(s) = std::str::from_utf8(shown) {
        out.push(Line::styled("text:", th.bold()));
        for l in s.split('\n').take(DETAIL_LINES) {
            out.push(Line::raw(clean(l.strip_suffix('\r').unwrap_or(l), 4000)));
        }
    } else {
        out.push(Line::styled("binary (hex):", th.bold()));
        hex_dump(shown, out);
    }
    if out.len() - start >= DETAIL_LINES || shown.len() < p.bytes.len() {
        out.push(Line::styled(
            format!("… cut: {} bytes in all", p.bytes.len()),
            th.dim(),
        ));
    }
}

/// The detail pane's lines for the selected connection and timeline entry, `width` columns wide
/// (built when the selection changes, not on every frame).
pub fn detail_lines(
    conn: Option<&Conn>,
    entry: Option<&Entry>,
    width: usize,
    th: Theme,
) -> Vec<Line<'static>> {
    let mut out: Vec<Line<'static>> = Vec::new();
    let Some(c) = conn else {
        out.push(Line::styled("no connection selected", th.dim()));
        return out;
    };
    let side = |d: Option<Dir>| match d {
        Some(Dir::C2s) => "client → server",
        Some(Dir::S2c) => "server → client",
        None => "connection",
    };
    if let Some(e) = entry {
        let at = format!("+{}", secs(e.ts.secs_since(c.start)));
        match e.kind {
            Kind::Text | Kind::Binary => {
                let mut head = format!(
                    "{} message, {} {}, {} decoded",
                    if e.kind == Kind::Text {
                        "text"
                    } else {
                        "binary"
                    },
                    side(e.dir),
                    at,
                    format_bytes(e.len)
                );
                if e.flags & flag::COMPRESSED != 0 {
                    let _ = write!(head, ", {} on the wire (compressed)", format_bytes(e.wire));
                }
                let _ = write!(
                    head,
                    ", {} frame{}",
                    e.aux,
                    if e.aux == 1 { "" } else { "s" }
                );
                for l in wrap(&head, width, "  ") {
                    out.push(Line::styled(l, th.bold()));
                }
                if let Some(t) = c.entry_text(e) {
                    out.push(Line::styled(
                        format!("status: {}", clean(t, 200)),
                        th.anomaly(),
                    ));
                }
                payload_lines(c, e, &mut out, th, width);
            }
            Kind::Close => {
                out.push(Line::styled(
                    format!("close frame, {} {at}", side(e.dir)),
                    th.bold(),
                ));
                if e.aux == NONE {
                    out.push(Line::raw("no code (the peer reports 1005)"));
                } else {
                    let code = u16::try_from(e.aux).unwrap_or(0);
                    for l in wrap(&close_meaning(code), width, "  ") {
                        out.push(Line::raw(l));
                    }
                }
                if let Some(r) = c.entry_text(e) {
                    out.push(Line::raw(format!("reason: \"{}\"", clean(r, 200))));
                }
            }
            Kind::Ping | Kind::Pong => {
                let what = if e.kind == Kind::Ping { "ping" } else { "pong" };
                out.push(Line::styled(
                    format!(
                        "{what}, {} {at}, {}{}",
                        side(e.dir),
                        format_bytes(e.len),
                        rtt(e)
                    ),
                    th.bold(),
                ));
            }
            Kind::Anomaly => {
                out.push(Line::styled(format!("anomaly {at}"), th.anomaly()));
                for l in wrap(
                    &c.entry_text(e).map(|t| clean(t, 2000)).unwrap_or_default(),
                    width,
                    "  ",
                ) {
                    out.push(Line::raw(l));
                }
            }
            _ => {
                out.push(entry_line(c, e, th, width));
            }
        }
        out.push(Line::default());
    }
    // The diagnosis.
    match c
        .end
        .as_ref()
        .and_then(|e| e.diagnosis.as_ref().map(|d| (e, d)))
    {
        Some((end, d)) => {
            let class = end.facts().class();
            out.push(Line::styled(
                format!("Diagnosis: {} ({})", d.kind.as_str(), class.as_str()),
                th.verdict(class),
            ));
            let saw = format!(
                "client saw {}, server saw {}; tracking ended: {}",
                code(d.client_observed_code),
                code(d.server_observed_code),
                end.ended_by
            );
            for l in wrap(&saw, width, "  ") {
                out.push(Line::raw(l));
            }
            for l in wrap(&clean(&d.verdict, 2000), width, "") {
                out.push(Line::raw(l));
            }
            for ev in &d.evidence {
                for l in wrap(&format!("- {}", clean(ev, 600)), width, "  ") {
                    out.push(Line::styled(l, th.dim()));
                }
            }
            for cl in &end.close {
                if let Some(code) = cl.code {
                    let who = if cl.dir == Dir::C2s {
                        "client"
                    } else {
                        "server"
                    };
                    for l in wrap(&format!("{who} sent {}", close_meaning(code)), width, "  ") {
                        out.push(Line::raw(l));
                    }
                }
            }
        }
        None => out.push(Line::styled(
            "Diagnosis: the connection is still open (no diagnosis yet)",
            th.dim(),
        )),
    }
    out.push(Line::default());
    // The handshake.
    match &c.handshake {
        Some(h) => {
            out.push(Line::styled(
                format!(
                    "Handshake: {} {}",
                    clean(h.method.as_deref().unwrap_or("?"), 10),
                    clean(h.path.as_deref().unwrap_or("?"), 200)
                ),
                th.bold(),
            ));
            for (k, v) in &h.request_headers {
                out.push(Line::raw(format!("  {}: {}", clean(k, 60), clean(v, 400))));
            }
            match h.status {
                Some(s) => out.push(Line::styled(
                    format!(
                        "Response: {s} {}",
                        clean(h.reason.as_deref().unwrap_or(""), 80)
                    ),
                    th.bold(),
                )),
                None => out.push(Line::styled("Response: none captured", th.anomaly())),
            }
            for (k, v) in &h.response_headers {
                out.push(Line::raw(format!("  {}: {}", clean(k, 60), clean(v, 400))));
            }
            if h.accept_valid == Some(false) {
                out.push(Line::styled(
                    "Sec-WebSocket-Accept does not match the key",
                    th.anomaly(),
                ));
            }
        }
        None => out.push(Line::styled("Handshake: not in the capture", th.dim())),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_removes_escape_sequences() {
        let s = clean("a\x1b]52;c;aGk=\x07b\x1b[2J\u{9b}c\u{202e}d", 100);
        assert!(!s.contains('\x1b') && !s.contains('\x07') && !s.contains('\u{9b}'));
        assert!(!s.contains('\u{202e}'));
        assert!(s.starts_with('a') && s.ends_with('d'));
    }

    #[test]
    fn close_meanings_cover_ranges() {
        assert!(close_meaning(1006).contains("abnormal_closure"));
        assert!(close_meaning(4001).contains("private"));
        assert!(close_meaning(3000).contains("registered"));
        assert!(close_meaning(2000).contains("reserved"));
        assert!(close_meaning(6000).contains("invalid"));
    }

    #[test]
    fn wrap_breaks_at_words() {
        let w = wrap("one two three four five six seven", 20, "  ");
        assert!(w.iter().all(|l| l.chars().count() <= 20), "{w:?}");
        assert_eq!(w.len(), 2);
        assert!(w[1].starts_with("  "));
    }
}
