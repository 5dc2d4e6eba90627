//! Rendering: takes `&App` and a frame, gives the screen. Nothing here changes state.
//!
//! Only the rows in view are built (the lists are virtualised by the app's offsets), every
//! string that came from the capture passes through [`clean`] so no byte of it can drive the
//! terminal, and colours come from a [`Theme`] that has none when `NO_COLOR` is set. Styles use
//! the terminal's own palette and bold/reverse for emphasis, never a fixed background, so both
//! light and dark themes stay readable.

use std::fmt::Write as _;

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row as TRow, Table};

use super::app::{App, Focus, Prompt, Row};
use super::model::{Conn, Entry, Kind, NONE, flag};
use crate::diagnosis::TimeoutKind;
use crate::output::text::{format_bytes, sanitize};
use crate::query::{Queryable, VerdictClass};
use crate::types::{Dir, Ts};
use crate::ws::coding::{CloseClass, close_code_class, close_code_name};

/// Every key, as the help overlay and the README list them.
pub const KEYS: &[(&str, &str)] = &[
    ("↑ ↓  j k", "move in the focused pane"),
    ("PgUp PgDn  Ctrl-u Ctrl-d", "page up / down (half page)"),
    ("g G  Home End", "first / last row"),
    ("Tab  Shift-Tab", "next / previous pane"),
    ("Enter  → l", "open: connection → timeline → detail"),
    ("Esc  ← h", "back to the previous pane"),
    (
        "/",
        "connections: filter (query language); timeline: payload regex",
    ),
    ("n N", "next / previous payload matching the regex"),
    ("s S", "sort by the next column / reverse the order"),
    ("t", "timeline: messages or frames (needs --frames)"),
    (
        "c",
        "timeline: hide / show control frames (ping, pong, close)",
    ),
    (
        "> < =",
        "timeline: client→server only, server→client only, both",
    ),
    ("f", "follow: keep the newest connection and entry selected"),
    ("e", "export the selected connection as JSON to a file"),
    ("y", "copy the selected payload (OSC 52 terminal clipboard)"),
    ("mouse wheel", "scroll the pane under the pointer"),
    ("?", "this help (any key closes it)"),
    ("q  Ctrl-C", "quit"),
];

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
    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }
    fn verdict(self, v: VerdictClass) -> Style {
        match v {
            VerdictClass::Clean => self.fg(Color::Green),
            VerdictClass::Abnormal => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            VerdictClass::Anomaly => self.fg(Color::Yellow).add_modifier(Modifier::BOLD),
        }
    }
    fn dim(self) -> Style {
        Style::default().add_modifier(Modifier::DIM)
    }
    fn bold(self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
    fn anomaly(self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }
    fn selected(self, focused: bool) -> Style {
        if focused {
            Style::default().add_modifier(Modifier::REVERSED)
        } else {
            Style::default().add_modifier(Modifier::UNDERLINED)
        }
    }
    fn dir(self, d: Option<Dir>) -> Style {
        match d {
            Some(Dir::C2s) => self.fg(Color::Cyan),
            Some(Dir::S2c) => self.fg(Color::Magenta),
            None => Style::default(),
        }
    }
    /// A silence: plain when far from any matched timeout, yellow past half, red near it.
    fn idle(self, ratio: Option<f64>) -> Style {
        match ratio {
            Some(r) if r >= 0.9 => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            Some(r) if r >= 0.5 => self.fg(Color::Yellow),
            _ => self.dim(),
        }
    }
}

/// Where each pane is.
#[derive(Clone, Copy, Debug, Default)]
pub struct Areas {
    /// Title and progress line.
    pub header: Rect,
    /// Connection list.
    pub conns: Rect,
    /// Timeline.
    pub timeline: Rect,
    /// Detail.
    pub detail: Rect,
    /// Prompt, status or key hints.
    pub footer: Rect,
}

/// The layout for a terminal size. A small terminal shows only the focused pane.
pub fn areas(area: Rect, app: &App) -> Areas {
    let mut a = Areas::default();
    if area.height == 0 || area.width == 0 {
        return a;
    }
    a.header = Rect::new(area.x, area.y, area.width, 1);
    if area.height < 3 {
        return a;
    }
    a.footer = Rect::new(area.x, area.bottom() - 1, area.width, 1);
    let body = Rect::new(area.x, area.y + 1, area.width, area.height - 2);
    if body.height < 14 || body.width < 40 {
        match app.focus {
            Focus::Conns => a.conns = body,
            Focus::Timeline => a.timeline = body,
            Focus::Detail => a.detail = body,
        }
        return a;
    }
    let top = (body.height * 2 / 5).max(6);
    a.conns = Rect::new(body.x, body.y, body.width, top);
    let rest = Rect::new(body.x, body.y + top, body.width, body.height - top);
    if rest.width >= 110 {
        let left = rest.width * 11 / 20;
        a.timeline = Rect::new(rest.x, rest.y, left, rest.height);
        a.detail = Rect::new(rest.x + left, rest.y, rest.width - left, rest.height);
    } else {
        let up = rest.height / 2;
        a.timeline = Rect::new(rest.x, rest.y, rest.width, up);
        a.detail = Rect::new(rest.x, rest.y + up, rest.width, rest.height - up);
    }
    a
}

/// Rows of content a pane of this size shows (inside its border, below a table header).
pub fn inner_rows(r: Rect, pane: Focus) -> usize {
    let chrome = match pane {
        Focus::Conns => 3,
        Focus::Timeline | Focus::Detail => 2,
    };
    usize::from(r.height.saturating_sub(chrome))
}

/// Draws the whole screen.
pub fn draw(f: &mut Frame<'_>, app: &App) {
    let th = Theme::new(app.opts.color);
    let a = areas(f.area(), app);
    header(f, app, a.header, th);
    if a.conns.area() > 0 {
        conns(f, app, a.conns, th);
    }
    if a.timeline.area() > 0 {
        timeline(f, app, a.timeline, th);
    }
    if a.detail.area() > 0 {
        detail(f, app, a.detail, th);
    }
    footer(f, app, a.footer, th);
    if app.help {
        help(f, f.area(), th);
    }
}

fn pane_block(title: String, focused: bool, th: Theme) -> Block<'static> {
    let style = if focused { th.bold() } else { th.dim() };
    Block::default()
        .borders(Borders::ALL)
        .border_style(style)
        .title(Span::styled(title, th.bold()))
}

fn header(f: &mut Frame<'_>, app: &App, r: Rect, th: Theme) {
    if r.area() == 0 {
        return;
    }
    let p = &app.progress;
    let state = if let Some(e) = &p.error {
        format!("error: {}", clean(e, 120))
    } else if let Some(s) = &p.summary {
        format!(
            "read {} ({} packets){}",
            format_bytes(s.bytes),
            s.packets,
            if s.truncated { ", TRUNCATED" } else { "" }
        )
    } else if app.source.live {
        format!("live, {}", format_bytes(p.bytes))
    } else {
        match p.total {
            Some(t) if t > 0 => format!(
                "reading {:>3}% ({} of {})",
                (p.bytes.min(t) * 100 / t),
                format_bytes(p.bytes),
                format_bytes(t)
            ),
            _ => format!("reading ({})", format_bytes(p.bytes)),
        }
    };
    let mut spans = vec![
        Span::styled(" wsinspect ", th.bold().add_modifier(Modifier::REVERSED)),
        Span::raw(" "),
        Span::styled(clean(&app.source.name, 60), th.bold()),
        Span::raw("  "),
        Span::raw(state),
        Span::raw(format!(
            "  connections {}/{}",
            app.view.len(),
            app.model.conns.len()
        )),
    ];
    if app.follow {
        spans.push(Span::styled("  FOLLOW", th.bold()));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), r);
}

fn footer(f: &mut Frame<'_>, app: &App, r: Rect, th: Theme) {
    if r.area() == 0 {
        return;
    }
    let line = match &app.prompt {
        Prompt::Filter(s) => {
            let mut v = vec![
                Span::styled("filter: ", th.bold()),
                Span::raw(clean(s, 200)),
                Span::styled("▏", th.bold()),
            ];
            if let Some(e) = &app.query_error {
                v.push(Span::styled(format!("  {}", clean(e, 200)), th.anomaly()));
            }
            Line::from(v)
        }
        Prompt::Search(s) => Line::from(vec![
            Span::styled("search payloads (regex): ", th.bold()),
            Span::raw(clean(s, 200)),
            Span::styled("▏", th.bold()),
        ]),
        Prompt::None => match &app.status {
            Some(s) => Line::from(Span::styled(clean(s, 300), th.bold())),
            None => {
                let mut v = vec![Span::styled(
                    "?:help q:quit /:filter s/S:sort Tab:pane Enter:open e:export y:copy",
                    th.dim(),
                )];
                if !app.query.is_empty() {
                    v.push(Span::raw(format!(
                        "  filter: {}",
                        clean(&app.query_text, 80)
                    )));
                }
                v.push(Span::raw(format!(
                    "  sort: {} {}",
                    app.sort.name(),
                    if app.reverse { "↓" } else { "↑" }
                )));
                Line::from(v)
            }
        },
    };
    f.render_widget(Paragraph::new(line), r);
}

/// `12:19:50.710` (UTC).
fn clock(ts: Ts) -> String {
    let ms = ts.0.div_euclid(1_000_000);
    let day_ms = ms.rem_euclid(86_400_000);
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        day_ms / 3_600_000,
        day_ms / 60_000 % 60,
        day_ms / 1000 % 60,
        day_ms % 1000
    )
}

fn secs(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.3}s")
    } else if s < 1000.0 {
        format!("{s:.1}s")
    } else {
        format!("{s:.0}s")
    }
}

fn short_bytes(n: u64) -> String {
    format_bytes(n).replace(' ', "")
}

fn code(c: Option<u16>) -> String {
    c.map_or_else(|| "-".to_owned(), |c| c.to_string())
}

/// Which columns fit: the widest layouts keep every column; narrower ones drop the least
/// telling first.
fn columns(width: u16) -> Vec<(&'static str, u16)> {
    let all: [(&str, u16, u8); 12] = [
        ("#", 4, 0),
        ("client", 21, 1),
        ("server", 21, 4),
        ("host/path", 16, 0),
        ("proto", 8, 6),
        ("z", 1, 7),
        ("start", 12, 5),
        ("dur", 7, 3),
        ("msgs ↑/↓", 9, 2),
        ("bytes ↑/↓", 15, 3),
        ("close c/s", 9, 1),
        ("termination", 19, 0),
    ];
    for level in (0..=7u8).rev() {
        let cols: Vec<(&str, u16)> = all
            .iter()
            .filter(|c| c.2 <= level)
            .map(|c| (c.0, c.1))
            .collect();
        let need: u16 = cols.iter().map(|c| c.1 + 1).sum();
        if need <= width || level == 0 {
            return cols;
        }
    }
    Vec::new()
}

fn conn_cell(c: &Conn, col: &str) -> String {
    match col {
        "#" => c.id.to_string(),
        "client" => clean(&c.client, 48),
        "server" => clean(&c.server, 48),
        "host/path" => {
            let mut s = c.host().map(|h| clean(h, 60)).unwrap_or_default();
            s.push_str(&c.path().map(|p| clean(p, 120)).unwrap_or_default());
            if s.is_empty() {
                match c.end.as_ref().and_then(|e| e.tls.as_ref()) {
                    // wss:// without plaintext: the server name is what there is to show.
                    Some(tls) => {
                        s.push_str("wss ");
                        s.push_str(&tls.sni.as_deref().map(|n| clean(n, 60)).unwrap_or_default());
                        if tls.decryption != "decrypted" {
                            s.push_str(" (");
                            s.push_str(tls.decryption);
                            s.push(')');
                        }
                    }
                    None => s.push_str("(no handshake)"),
                }
            }
            s
        }
        "proto" => c.subprotocol().map(|p| clean(p, 30)).unwrap_or_default(),
        "z" => if c.compressed() { "z" } else { "" }.to_owned(),
        "start" => clock(c.start),
        "dur" => secs(c.end_ts().secs_since(c.start)),
        "msgs ↑/↓" => format!("{}/{}", c.messages[0], c.messages[1]),
        "bytes ↑/↓" => format!("{}/{}", short_bytes(c.bytes[0]), short_bytes(c.bytes[1])),
        "close c/s" => {
            let (cl, sv) = c.observed();
            if c.end.is_some() {
                format!("{}/{}", code(cl), code(sv))
            } else {
                String::new()
            }
        }
        "termination" => match c.kind() {
            Some(k) => k.to_owned(),
            None => "(open)".to_owned(),
        },
        _ => String::new(),
    }
}

fn conns(f: &mut Frame<'_>, app: &App, r: Rect, th: Theme) {
    let focused = app.focus == Focus::Conns;
    let title = format!(
        " Connections {}/{}{} ",
        app.view.len(),
        app.model.conns.len(),
        if app.query.is_empty() {
            String::new()
        } else {
            format!("  filter: {}", clean(&app.query_text, 60))
        }
    );
    let block = pane_block(title, focused, th);
    let inner = block.inner(r);
    f.render_widget(block, r);
    if inner.area() == 0 {
        return;
    }
    let cols = columns(inner.width);
    let height = inner_rows(r, Focus::Conns);
    let pos = app.conn_pos;
    let rows: Vec<TRow<'_>> = app
        .view
        .iter()
        .enumerate()
        .skip(pos.offset)
        .take(height)
        .filter_map(|(i, &ci)| {
            let c = app.model.conns.get(ci)?;
            let class = c.facts().class();
            let mut style = if c.end.is_some() || class != VerdictClass::Clean {
                th.verdict(class)
            } else {
                Style::default()
            };
            if i == pos.sel {
                style = style.patch(th.selected(focused));
            }
            Some(TRow::new(cols.iter().map(|(name, _)| conn_cell(c, name))).style(style))
        })
        .collect();
    let widths: Vec<Constraint> = cols
        .iter()
        .map(|(name, w)| {
            if *name == "host/path" {
                Constraint::Min(*w)
            } else {
                Constraint::Length(*w)
            }
        })
        .collect();
    let head = TRow::new(cols.iter().map(|(name, _)| {
        let mark = if *name == app.sort.name()
            || (*name == "termination" && app.sort.name() == "termination")
        {
            if app.reverse { "↓" } else { "↑" }
        } else {
            ""
        };
        format!("{name}{mark}")
    }))
    .style(th.bold());
    let table = Table::new(rows, widths).header(head).column_spacing(1);
    f.render_widget(table, inner);
    if app.view.is_empty() {
        let msg = if app.model.conns.is_empty() {
            if app.progress.done {
                "no WebSocket connection in this capture"
            } else {
                "no WebSocket connection yet…"
            }
        } else {
            "no connection matches the filter"
        };
        if inner.height > 1 {
            let line = Rect::new(inner.x, inner.y + 1, inner.width, 1);
            f.render_widget(Paragraph::new(Span::styled(msg, th.dim())), line);
        }
    }
}

/// The idle timeout (seconds) a connection's silences are measured against: the smallest idle
/// timeout its diagnosis matched.
fn idle_timeout(c: &Conn) -> Option<f64> {
    let d = c.end.as_ref()?.diagnosis.as_ref()?;
    d.timeout_matches
        .iter()
        .filter(|m| m.kind == TimeoutKind::Idle && m.seconds > 0.0)
        .map(|m| m.seconds)
        .min_by(f64::total_cmp)
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

fn rtt(e: &Entry) -> String {
    if e.rtt_us == NONE {
        String::new()
    } else {
        format!("  rtt {:.1} ms", f64::from(e.rtt_us) / 1000.0)
    }
}

fn entry_line(c: &Conn, e: &Entry, th: Theme, width: usize) -> Line<'static> {
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
            format!(
                "{}{}",
                format_bytes(e.len),
                if e.rtt_us == NONE {
                    "  (no pong)".to_owned()
                } else {
                    rtt(e)
                }
            ),
            th.dim(),
        ),
        Kind::Pong => (
            if e.aux == NONE {
                "pong".to_owned()
            } else {
                format!("pong #{}", e.aux)
            },
            format!(
                "{}{}",
                format_bytes(e.len),
                if e.aux == NONE {
                    "  (unsolicited)".to_owned()
                } else {
                    rtt(e)
                }
            ),
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

fn idle_line(gap: f64, timeout: Option<f64>, th: Theme, width: usize) -> Line<'static> {
    let ratio = timeout.map(|t| gap / t);
    let mut label = format!(" {} idle ", secs(gap).replace('s', " s"));
    if let Some(t) = timeout {
        let _ = write!(label, "({:.0}% of a {} timeout) ", gap / t * 100.0, secs(t));
    }
    let side = width.saturating_sub(label.chars().count()) / 2;
    let bar = "─".repeat(side.clamp(2, 30));
    Line::from(Span::styled(format!("{bar}{label}{bar}"), th.idle(ratio)))
}

fn timeline(f: &mut Frame<'_>, app: &App, r: Rect, th: Theme) {
    let focused = app.focus == Focus::Timeline;
    let mut title = match app.current_conn() {
        Some(c) => format!(" Timeline #{}  {} rows", c.id, app.rows.len()),
        None => " Timeline ".to_owned(),
    };
    if app.show_frames {
        title.push_str("  frames");
    }
    if app.hide_control {
        title.push_str("  no control");
    }
    match app.dir_filter {
        Some(Dir::C2s) => title.push_str("  → only"),
        Some(Dir::S2c) => title.push_str("  ← only"),
        None => {}
    }
    title.push_str("  (→ client→server ← server→client) ");
    let block = pane_block(title, focused, th);
    let inner = block.inner(r);
    f.render_widget(block, r);
    let Some(c) = app.current_conn() else { return };
    let timeout = idle_timeout(c);
    let width = usize::from(inner.width);
    let pos = app.tl_pos;
    let lines: Vec<Line<'static>> = app
        .rows
        .iter()
        .enumerate()
        .skip(pos.offset)
        .take(usize::from(inner.height))
        .map(|(i, row)| {
            let line = match row {
                Row::Idle(gap, _) => idle_line(*gap, timeout, th, width),
                Row::Entry(ei) => match c.entries.get(*ei) {
                    Some(e) => entry_line(c, e, th, width.saturating_sub(48)),
                    None => Line::default(),
                },
            };
            if i == pos.sel {
                line.patch_style(th.selected(focused))
            } else {
                line
            }
        })
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}

fn detail(f: &mut Frame<'_>, app: &App, r: Rect, th: Theme) {
    let focused = app.focus == Focus::Detail;
    let title = format!(
        " Detail{} ",
        if app.detail.len() > usize::from(r.height.saturating_sub(2)) {
            format!("  {}/{} lines", app.detail_scroll + 1, app.detail.len())
        } else {
            String::new()
        }
    );
    let block = pane_block(title, focused, th);
    let inner = block.inner(r);
    f.render_widget(block, r);
    let lines: Vec<Line<'static>> = app
        .detail
        .iter()
        .skip(app.detail_scroll)
        .take(usize::from(inner.height))
        .cloned()
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}

fn help(f: &mut Frame<'_>, area: Rect, th: Theme) {
    let w = area.width.min(96);
    let h = area.height.min(KEYS.len() as u16 + 4);
    if w < 4 || h < 3 {
        return;
    }
    let r = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    f.render_widget(Clear, r);
    let mut lines: Vec<Line<'static>> = KEYS
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!("{k:<26}"), th.bold()),
                Span::raw(*what),
            ])
        })
        .collect();
    lines.push(Line::from(Span::styled(
        "filter: code:1006 kind:rst_without_close host: path: port: anomaly open -term text",
        th.dim(),
    )));
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(" Keys ", th.bold()));
    f.render_widget(Paragraph::new(lines).block(block), r);
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

/// The detail pane's lines for the app's current selection (built when the selection changes,
/// not on every frame).
pub fn detail_lines(app: &App) -> Vec<Line<'static>> {
    let th = Theme::new(app.opts.color);
    let mut out: Vec<Line<'static>> = Vec::new();
    let Some(c) = app.current_conn() else {
        out.push(Line::styled("no connection selected", th.dim()));
        return out;
    };
    let width = usize::from(
        areas(Rect::new(0, 0, app.size.0, app.size.1), app)
            .detail
            .width,
    )
    .saturating_sub(2)
    .max(20);
    let side = |d: Option<Dir>| match d {
        Some(Dir::C2s) => "client → server",
        Some(Dir::S2c) => "server → client",
        None => "connection",
    };
    if let Some(e) = app.selected_entry() {
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
    fn clock_is_utc_time_of_day() {
        assert_eq!(
            clock(Ts::from_parts(86_400 + 3_723, 4_000_000)),
            "01:02:03.004"
        );
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
    fn columns_fit_or_keep_the_essentials() {
        let wide = columns(200);
        assert_eq!(wide.len(), 12);
        let narrow = columns(60);
        assert!(narrow.iter().any(|c| c.0 == "termination"));
        assert!(narrow.len() < 12);
        assert!(!columns(1).is_empty());
    }

    #[test]
    fn wrap_breaks_at_words() {
        let w = wrap("one two three four five six seven", 20, "  ");
        assert!(w.iter().all(|l| l.chars().count() <= 20), "{w:?}");
        assert_eq!(w.len(), 2);
        assert!(w[1].starts_with("  "));
    }
}
