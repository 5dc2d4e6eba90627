//! Rendering: takes `&App` and a frame, gives the screen. Nothing here changes state.
//!
//! Only the rows in view are built (the lists are virtualised by the app's offsets), every
//! string that came from the capture passes through [`clean`] so no byte of it can drive the
//! terminal, and colours come from a [`Theme`] that has none when `NO_COLOR` is set. Pane
//! positions come from [`super::layout`], timeline rows and the theme from [`super::lines`]. Styles use
//! the terminal's own palette and bold/reverse for emphasis, never a fixed background, so both
//! light and dark themes stay readable.

use std::fmt::Write as _;

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row as TRow, Table};

use super::app::{App, Prompt, Row};
use super::layout::{Focus, areas, inner_rows};
use super::lines::{Theme, clean, code, entry_line, secs};
use super::model::Conn;
use crate::diagnosis::TimeoutKind;
use crate::output::text::format_bytes;
use crate::query::{Queryable, VerdictClass};
use crate::types::{Dir, Ts};

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

/// Draws the whole screen.
pub fn draw(f: &mut Frame<'_>, app: &App) {
    let th = Theme::new(app.opts.color);
    let a = areas(f.area(), app.focus);
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

fn short_bytes(n: u64) -> String {
    format_bytes(n).replace(' ', "")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_utc_time_of_day() {
        assert_eq!(
            clock(Ts::from_parts(86_400 + 3_723, 4_000_000)),
            "01:02:03.004"
        );
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
}
