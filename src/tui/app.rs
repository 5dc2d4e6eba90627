//! The UI state: takes key, mouse, resize and data events, gives the state that
//! [`super::ui::draw`] renders.
//!
//! Every change happens here (`handle_key`, `handle_mouse`, `ingest`, `resize`, `poll_jobs`);
//! drawing only reads. The lists are virtualised: the state keeps a selection and a scroll
//! offset per list, and the renderer draws only the rows in view.

use std::cmp::Ordering;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, TryRecvError};

use ratatui::crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent, MouseEventKind,
};
use ratatui::layout::Rect;
use ratatui::text::Line;
use regex::bytes::{Regex, RegexBuilder};

use super::layout::{self, Areas, Focus};
use super::lines::{self, Theme};
use super::model::{Conn, Entry, Kind, Model};
use super::{SourceInfo, Update, export};
use crate::query::{Query, Queryable};
use crate::sink::CaptureSummary;
use crate::types::Dir;

/// Silences longer than this (seconds) get an idle separator in the timeline.
pub const IDLE_THRESHOLD_S: f64 = 1.0;

/// What the bottom line is editing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prompt {
    /// Nothing: keys are commands.
    None,
    /// The connection filter (`/` on the connection list).
    Filter(String),
    /// A payload regex (`/` on the timeline or detail pane).
    Search(String),
}

/// Columns of the connection list, in the order `s` cycles through them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    /// Connection id (discovery order).
    Id,
    /// Client address.
    Client,
    /// Server address.
    Server,
    /// Host and path.
    Target,
    /// Subprotocol.
    Subprotocol,
    /// Compression on or off.
    Compression,
    /// Start time.
    Start,
    /// Duration.
    Duration,
    /// Messages, both ways.
    Messages,
    /// Decoded bytes, both ways.
    Bytes,
    /// Close codes observed.
    Close,
    /// Termination kind.
    Kind,
    /// Verdict class.
    Verdict,
}

impl SortKey {
    const ALL: [SortKey; 13] = [
        SortKey::Id,
        SortKey::Client,
        SortKey::Server,
        SortKey::Target,
        SortKey::Subprotocol,
        SortKey::Compression,
        SortKey::Start,
        SortKey::Duration,
        SortKey::Messages,
        SortKey::Bytes,
        SortKey::Close,
        SortKey::Kind,
        SortKey::Verdict,
    ];

    /// The column's name on screen.
    pub fn name(self) -> &'static str {
        match self {
            SortKey::Id => "#",
            SortKey::Client => "client",
            SortKey::Server => "server",
            SortKey::Target => "host/path",
            SortKey::Subprotocol => "subprotocol",
            SortKey::Compression => "compression",
            SortKey::Start => "start",
            SortKey::Duration => "duration",
            SortKey::Messages => "messages",
            SortKey::Bytes => "bytes",
            SortKey::Close => "close",
            SortKey::Kind => "termination",
            SortKey::Verdict => "verdict",
        }
    }

    fn next(self) -> SortKey {
        let i = SortKey::ALL.iter().position(|k| *k == self).unwrap_or(0);
        SortKey::ALL[(i + 1) % SortKey::ALL.len()]
    }
}

/// One row of the timeline view.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Row {
    /// An entry of the connection (index into `Conn::entries`).
    Entry(usize),
    /// A silence of this many seconds before the entry at this index.
    Idle(f64, usize),
}

/// A list's selection and the first row in view.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListPos {
    /// Selected row.
    pub sel: usize,
    /// First row drawn.
    pub offset: usize,
}

impl ListPos {
    fn clamp(&mut self, len: usize, height: usize) {
        if len == 0 {
            *self = ListPos::default();
            return;
        }
        self.sel = self.sel.min(len - 1);
        let h = height.max(1);
        if self.sel < self.offset {
            self.offset = self.sel;
        } else if self.sel >= self.offset + h {
            self.offset = self.sel + 1 - h;
        }
        self.offset = self.offset.min(len.saturating_sub(h));
    }

    fn step(&mut self, delta: isize, len: usize, height: usize) {
        if len == 0 {
            return;
        }
        self.sel = self.sel.saturating_add_signed(delta).min(len - 1);
        self.clamp(len, height);
    }
}

/// Reading progress.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    /// Bytes of the source read.
    pub bytes: u64,
    /// Its size, when known.
    pub total: Option<u64>,
    /// The producer finished.
    pub done: bool,
    /// The capture summary, once finished.
    pub summary: Option<Box<CaptureSummary>>,
    /// Why the producer stopped early.
    pub error: Option<String>,
}

/// Settings the app starts with.
#[derive(Clone, Debug)]
pub struct Options {
    /// Colours on (off when `NO_COLOR` is set).
    pub color: bool,
    /// Whether the terminal can take OSC 52 clipboard writes.
    pub clipboard: bool,
    /// Where `e` writes.
    pub export_dir: PathBuf,
    /// Payload bytes kept for the detail pane.
    pub payload_budget: u64,
    /// The connection filter to start with (`--filter`), in the query language.
    pub filter: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            color: true,
            clipboard: false,
            export_dir: PathBuf::from("."),
            payload_budget: super::model::DEFAULT_PAYLOAD_BUDGET,
            filter: String::new(),
        }
    }
}

/// The whole UI state; see the module doc.
pub struct App {
    /// The data.
    pub model: Model,
    /// Where it comes from.
    pub source: SourceInfo,
    /// Reading progress.
    pub progress: Progress,
    /// Settings.
    pub opts: Options,
    /// Terminal size.
    pub size: (u16, u16),
    /// Focused pane.
    pub focus: Focus,
    /// Bottom-line editor.
    pub prompt: Prompt,
    /// Connection filter in force.
    pub query: Query,
    /// Its text, as typed.
    pub query_text: String,
    /// Why the last filter typed did not parse.
    pub query_error: Option<String>,
    /// Sort column.
    pub sort: SortKey,
    /// Sort descending.
    pub reverse: bool,
    /// Positions (in `model.conns`) of the connections shown, filtered and sorted.
    pub view: Vec<usize>,
    /// Connection list position.
    pub conn_pos: ListPos,
    /// The connection the timeline shows (position in `model.conns`).
    pub current: Option<usize>,
    /// Its timeline rows.
    pub rows: Vec<Row>,
    entries_seen: usize,
    /// Timeline position.
    pub tl_pos: ListPos,
    /// Frames instead of messages.
    pub show_frames: bool,
    /// Hide ping, pong and close.
    pub hide_control: bool,
    /// Show only one direction.
    pub dir_filter: Option<Dir>,
    /// Detail pane lines for the current selection.
    pub detail: Vec<Line<'static>>,
    /// Detail pane scroll.
    pub detail_scroll: usize,
    /// Payload search.
    pub search: Option<Regex>,
    /// Keep the newest connection and entry selected as data arrives.
    pub follow: bool,
    /// Help overlay shown.
    pub help: bool,
    /// A one-off message for the bottom line.
    pub status: Option<String>,
    /// Bytes for the terminal clipboard (OSC 52), taken by the terminal loop.
    pub clipboard_out: Option<Vec<u8>>,
    /// The user asked to quit.
    pub quit: bool,
    prompt_saved: String,
    jobs: Vec<Receiver<Result<PathBuf, String>>>,
    view_dirty: bool,
}

impl App {
    /// An empty app for a source.
    pub fn new(source: SourceInfo, opts: Options) -> App {
        let follow = source.live;
        let filter = opts.filter.clone();
        let mut app = App {
            model: Model::new(opts.payload_budget),
            progress: Progress {
                total: source.total_bytes,
                ..Progress::default()
            },
            source,
            opts,
            size: (80, 24),
            focus: Focus::Conns,
            prompt: Prompt::None,
            query: Query::default(),
            query_text: String::new(),
            query_error: None,
            sort: SortKey::Id,
            reverse: false,
            view: Vec::new(),
            conn_pos: ListPos::default(),
            current: None,
            rows: Vec::new(),
            entries_seen: 0,
            tl_pos: ListPos::default(),
            show_frames: false,
            hide_control: false,
            dir_filter: None,
            detail: Vec::new(),
            detail_scroll: 0,
            search: None,
            follow,
            help: false,
            status: None,
            clipboard_out: None,
            quit: false,
            prompt_saved: String::new(),
            jobs: Vec::new(),
            view_dirty: false,
        };
        if !filter.is_empty() {
            app.apply_filter(&filter);
        }
        app
    }

    /// The connection under the list cursor.
    pub fn selected_conn(&self) -> Option<&Conn> {
        self.view
            .get(self.conn_pos.sel)
            .and_then(|&i| self.model.conns.get(i))
    }

    /// The connection the timeline shows.
    pub fn current_conn(&self) -> Option<&Conn> {
        self.current.and_then(|i| self.model.conns.get(i))
    }

    /// The timeline entry under the cursor.
    pub fn selected_entry(&self) -> Option<&Entry> {
        let c = self.current_conn()?;
        match self.rows.get(self.tl_pos.sel)? {
            Row::Entry(i) | Row::Idle(_, i) => c.entries.get(*i),
        }
    }

    fn layout(&self) -> Areas {
        layout::areas(Rect::new(0, 0, self.size.0, self.size.1), self.focus)
    }

    fn list_height(&self, focus: Focus) -> usize {
        let a = self.layout();
        let r = match focus {
            Focus::Conns => a.conns,
            Focus::Timeline => a.timeline,
            Focus::Detail => a.detail,
        };
        layout::inner_rows(r, focus)
    }

    /// The terminal changed size.
    pub fn resize(&mut self, w: u16, h: u16) {
        self.size = (w, h);
        self.clamp_all();
    }

    fn clamp_all(&mut self) {
        let (hc, ht) = (
            self.list_height(Focus::Conns),
            self.list_height(Focus::Timeline),
        );
        self.conn_pos.clamp(self.view.len(), hc);
        self.tl_pos.clamp(self.rows.len(), ht);
    }

    /// A batch from the producer.
    pub fn ingest(&mut self, updates: impl IntoIterator<Item = Update>) {
        let mut touched_current = false;
        for u in updates {
            match u {
                Update::Events(evs) => {
                    for ev in evs {
                        let pos = self.model.ingest(ev);
                        touched_current |= Some(pos) == self.current;
                        self.view_dirty = true;
                    }
                }
                Update::Progress(bytes) => self.progress.bytes = bytes,
                Update::Finished(summary) => {
                    self.progress.bytes = self.progress.bytes.max(summary.bytes);
                    self.progress.done = true;
                    self.progress.summary = Some(summary);
                }
                Update::Failed(why) => {
                    self.progress.done = true;
                    self.progress.error = Some(why);
                }
            }
        }
        if self.view_dirty {
            let selected_id = self.selected_conn().map(|c| c.id);
            self.rebuild_view(selected_id);
        }
        if self.current.is_none() && !self.view.is_empty() {
            self.open_selected();
        } else if touched_current {
            let was_at_end = self.tl_pos.sel + 1 >= self.rows.len();
            self.extend_rows();
            if self.follow && was_at_end {
                self.tl_pos.sel = self.rows.len().saturating_sub(1);
            }
            self.clamp_all();
            self.refresh_detail();
        }
    }

    fn rebuild_view(&mut self, keep: Option<u64>) {
        self.view_dirty = false;
        let conns = &self.model.conns;
        let q = &self.query;
        let mut view: Vec<usize> = (0..conns.len()).filter(|&i| q.matches(&conns[i])).collect();
        let key = self.sort;
        if key != SortKey::Id {
            view.sort_by(|&a, &b| compare(key, &conns[a], &conns[b]).then(a.cmp(&b)));
        }
        if self.reverse {
            view.reverse();
        }
        self.view = view;
        if self.follow {
            self.conn_pos.sel = self.view.len().saturating_sub(1);
        } else if let Some(id) = keep
            && let Some(p) = self.view.iter().position(|&i| self.model.conns[i].id == id)
        {
            self.conn_pos.sel = p;
        }
        self.clamp_all();
        if self.follow {
            self.open_selected();
        }
    }

    /// Shows the connection under the list cursor in the timeline.
    fn open_selected(&mut self) {
        let pos = self.view.get(self.conn_pos.sel).copied();
        if pos == self.current && pos.is_some() {
            return;
        }
        self.current = pos;
        self.rebuild_rows();
        self.tl_pos = ListPos::default();
        if self.follow {
            self.tl_pos.sel = self.rows.len().saturating_sub(1);
        }
        self.clamp_all();
        self.detail_scroll = 0;
        self.refresh_detail();
    }

    fn rebuild_rows(&mut self) {
        self.rows.clear();
        self.entries_seen = 0;
        self.extend_rows();
    }

    fn shown(&self, e: &Entry) -> bool {
        let kind_ok = match e.kind {
            // Opcodes 8 and up are control frames.
            Kind::Frame => self.show_frames && !(self.hide_control && e.aux >= 8),
            Kind::Text | Kind::Binary => !self.show_frames,
            Kind::Ping | Kind::Pong | Kind::Close => !self.show_frames && !self.hide_control,
            Kind::Handshake | Kind::Fin | Kind::Rst | Kind::Gap | Kind::Anomaly => true,
        };
        kind_ok
            && match (self.dir_filter, e.dir) {
                (Some(want), Some(d)) => want == d,
                _ => true,
            }
    }

    /// Adds rows for entries that arrived since the last call; silences become separators.
    fn extend_rows(&mut self) {
        let Some(c) = self.current.and_then(|i| self.model.conns.get(i)) else {
            return;
        };
        let mut last_ts = self.rows.iter().rev().find_map(|r| match r {
            Row::Entry(i) => c.entries.get(*i).map(|e| e.ts),
            Row::Idle(..) => None,
        });
        let mut rows = std::mem::take(&mut self.rows);
        for (i, e) in c.entries.iter().enumerate().skip(self.entries_seen) {
            if !self.shown(e) {
                continue;
            }
            if let Some(prev) = last_ts {
                let gap = e.ts.secs_since(prev);
                if gap >= IDLE_THRESHOLD_S {
                    rows.push(Row::Idle(gap, i));
                }
            }
            last_ts = Some(e.ts);
            rows.push(Row::Entry(i));
        }
        self.entries_seen = c.entries.len();
        self.rows = rows;
    }

    fn refresh_detail(&mut self) {
        let width = usize::from(self.layout().detail.width)
            .saturating_sub(2)
            .max(20);
        self.detail = lines::detail_lines(
            self.current_conn(),
            self.selected_entry(),
            width,
            Theme::new(self.opts.color),
        );
        let h = self.list_height(Focus::Detail);
        self.detail_scroll = self
            .detail_scroll
            .min(self.detail.len().saturating_sub(h.max(1)));
    }

    fn retimeline(&mut self) {
        let keep = self.selected_entry().map(|e| e.ts);
        self.rebuild_rows();
        if let (Some(ts), Some(c)) = (keep, self.current_conn()) {
            let p = self.rows.iter().position(|r| match r {
                Row::Entry(i) => c.entries.get(*i).is_some_and(|e| e.ts >= ts),
                Row::Idle(..) => false,
            });
            self.tl_pos.sel = p.unwrap_or(self.rows.len().saturating_sub(1));
        }
        self.clamp_all();
        self.refresh_detail();
    }

    /// A mouse event: the wheel scrolls the pane under the pointer.
    pub fn handle_mouse(&mut self, m: MouseEvent) {
        let delta: isize = match m.kind {
            MouseEventKind::ScrollDown => 3,
            MouseEventKind::ScrollUp => -3,
            _ => return,
        };
        let a = self.layout();
        let hit = |r: Rect| {
            m.column >= r.x && m.column < r.x + r.width && m.row >= r.y && m.row < r.y + r.height
        };
        let pane = if hit(a.conns) {
            Focus::Conns
        } else if hit(a.timeline) {
            Focus::Timeline
        } else if hit(a.detail) {
            Focus::Detail
        } else {
            self.focus
        };
        self.move_in(pane, delta);
    }

    fn move_in(&mut self, pane: Focus, delta: isize) {
        match pane {
            Focus::Conns => {
                let h = self.list_height(Focus::Conns);
                self.conn_pos.step(delta, self.view.len(), h);
                self.follow = false;
                self.open_selected();
            }
            Focus::Timeline => {
                let h = self.list_height(Focus::Timeline);
                self.tl_pos.step(delta, self.rows.len(), h);
                self.detail_scroll = 0;
                self.refresh_detail();
            }
            Focus::Detail => {
                let h = self.list_height(Focus::Detail);
                let max = self.detail.len().saturating_sub(h.max(1));
                self.detail_scroll = self.detail_scroll.saturating_add_signed(delta).min(max);
            }
        }
    }

    /// A key press.
    pub fn handle_key(&mut self, k: KeyEvent) {
        if k.kind == KeyEventKind::Release {
            return;
        }
        // In raw mode Ctrl-C is a key, not a signal: it quits from anywhere.
        if k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c') {
            self.quit = true;
            return;
        }
        if self.prompt != Prompt::None {
            self.prompt_key(k);
            return;
        }
        if self.help {
            if matches!(k.code, KeyCode::Char('q')) {
                self.quit = true;
            }
            // Any key closes the overlay.
            self.help = false;
            return;
        }
        self.status = None;
        let page = self.list_height(self.focus).max(1) as isize;
        match k.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Char('?') => self.help = true,
            KeyCode::Down | KeyCode::Char('j') => self.move_in(self.focus, 1),
            KeyCode::Up | KeyCode::Char('k') => self.move_in(self.focus, -1),
            KeyCode::PageDown => self.move_in(self.focus, page),
            KeyCode::PageUp => self.move_in(self.focus, -page),
            KeyCode::Char('d') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                self.move_in(self.focus, page / 2)
            }
            KeyCode::Char('u') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                self.move_in(self.focus, -page / 2)
            }
            KeyCode::Home | KeyCode::Char('g') => self.move_in(self.focus, isize::MIN / 2),
            KeyCode::End | KeyCode::Char('G') => self.move_in(self.focus, isize::MAX / 2),
            KeyCode::Tab => {
                self.focus = match self.focus {
                    Focus::Conns => Focus::Timeline,
                    Focus::Timeline => Focus::Detail,
                    Focus::Detail => Focus::Conns,
                };
                self.clamp_all();
            }
            KeyCode::BackTab => {
                self.focus = match self.focus {
                    Focus::Conns => Focus::Detail,
                    Focus::Timeline => Focus::Conns,
                    Focus::Detail => Focus::Timeline,
                };
                self.clamp_all();
            }
            KeyCode::Enter | KeyCode::Right | KeyCode::Char('l') => match self.focus {
                Focus::Conns => {
                    self.open_selected();
                    self.focus = Focus::Timeline;
                    self.clamp_all();
                }
                Focus::Timeline => self.focus = Focus::Detail,
                Focus::Detail => {}
            },
            KeyCode::Esc | KeyCode::Left | KeyCode::Char('h') => {
                self.focus = match self.focus {
                    Focus::Detail => Focus::Timeline,
                    _ => Focus::Conns,
                };
                self.clamp_all();
            }
            KeyCode::Char('/') => {
                self.prompt_saved = self.query_text.clone();
                self.prompt = match self.focus {
                    Focus::Conns => Prompt::Filter(self.query_text.clone()),
                    _ => Prompt::Search(String::new()),
                }
            }
            KeyCode::Char('n') => self.find(true),
            KeyCode::Char('N') => self.find(false),
            KeyCode::Char('s') => {
                self.sort = self.sort.next();
                self.resort();
            }
            KeyCode::Char('S') => {
                self.reverse = !self.reverse;
                self.resort();
            }
            KeyCode::Char('f') => {
                self.follow = !self.follow;
                self.status = Some(format!("follow {}", if self.follow { "on" } else { "off" }));
                if self.follow {
                    self.rebuild_view(None);
                    self.tl_pos.sel = self.rows.len().saturating_sub(1);
                    self.clamp_all();
                    self.refresh_detail();
                }
            }
            KeyCode::Char('t') => {
                if self.show_frames || self.current_conn().is_some_and(|c| c.has_frames) {
                    self.show_frames = !self.show_frames;
                    self.retimeline();
                } else {
                    self.status =
                        Some("no frame events: start with --frames to list frames".to_owned());
                }
            }
            KeyCode::Char('c') => {
                self.hide_control = !self.hide_control;
                self.retimeline();
            }
            KeyCode::Char('>') | KeyCode::Char('<') | KeyCode::Char('=') => {
                self.dir_filter = match k.code {
                    KeyCode::Char('>') => Some(Dir::C2s),
                    KeyCode::Char('<') => Some(Dir::S2c),
                    _ => None,
                };
                self.retimeline();
            }
            KeyCode::Char('e') => self.export(),
            KeyCode::Char('y') => self.copy(),
            _ => {}
        }
    }

    fn resort(&mut self) {
        let keep = self.selected_conn().map(|c| c.id);
        self.rebuild_view(keep);
        self.status = Some(format!(
            "sorted by {} {}",
            self.sort.name(),
            if self.reverse {
                "descending"
            } else {
                "ascending"
            }
        ));
    }

    fn prompt_key(&mut self, k: KeyEvent) {
        let (buf, filter) = match &mut self.prompt {
            Prompt::Filter(s) => (s, true),
            Prompt::Search(s) => (s, false),
            Prompt::None => return,
        };
        match k.code {
            KeyCode::Esc => {
                // Esc abandons the edit: the filter in force before the prompt comes back.
                self.prompt = Prompt::None;
                if filter {
                    let saved = std::mem::take(&mut self.prompt_saved);
                    self.apply_filter(&saved);
                }
            }
            KeyCode::Backspace => {
                buf.pop();
                if filter {
                    let text = buf.clone();
                    self.apply_filter(&text);
                }
            }
            KeyCode::Enter => {
                let text = std::mem::take(buf);
                self.prompt = Prompt::None;
                if filter {
                    self.apply_filter(&text);
                } else {
                    self.start_search(&text);
                }
            }
            KeyCode::Char(c) => {
                buf.push(c);
                if filter {
                    let text = buf.clone();
                    self.apply_filter(&text);
                }
            }
            _ => {}
        }
    }

    /// Applies a filter as it is typed; a query that does not parse keeps the last good one.
    fn apply_filter(&mut self, text: &str) {
        match Query::parse(text) {
            Ok(q) => {
                self.query = q;
                self.query_text = text.to_owned();
                self.query_error = None;
                let keep = self.selected_conn().map(|c| c.id);
                self.rebuild_view(keep);
                if self.current.is_some_and(|c| !self.view.contains(&c)) || self.current.is_none() {
                    self.current = None;
                    self.open_selected();
                }
            }
            Err(e) => self.query_error = Some(e.to_string()),
        }
    }

    fn start_search(&mut self, text: &str) {
        if text.is_empty() {
            self.search = None;
            return;
        }
        match RegexBuilder::new(text).size_limit(1 << 20).build() {
            Ok(re) => {
                self.search = Some(re);
                self.find(true);
            }
            Err(e) => self.status = Some(format!("bad regex: {e}")),
        }
    }

    /// Moves the timeline cursor to the next (or previous) entry whose payload matches.
    fn find(&mut self, forward: bool) {
        let Some(re) = &self.search else {
            self.status = Some("no search: press / on the timeline to enter a regex".into());
            return;
        };
        let Some(c) = self.current_conn() else { return };
        let n = self.rows.len();
        if n == 0 {
            return;
        }
        let hit = (1..=n).find_map(|step| {
            let i = if forward {
                (self.tl_pos.sel + step) % n
            } else {
                (self.tl_pos.sel + n - step % n) % n
            };
            let Row::Entry(e) = self.rows[i] else {
                return None;
            };
            let p = c.entries.get(e).and_then(|e| c.payload(e))?;
            re.is_match(&p.bytes).then_some(i)
        });
        match hit {
            Some(i) => {
                self.tl_pos.sel = i;
                self.focus = Focus::Timeline;
                self.clamp_all();
                self.detail_scroll = 0;
                self.refresh_detail();
            }
            None => self.status = Some("no payload matches".into()),
        }
    }

    fn selected_payload(&self) -> Option<&[u8]> {
        let c = self.current_conn()?;
        let e = self.selected_entry()?;
        c.payload(e).map(|p| &*p.bytes)
    }

    fn copy(&mut self) {
        let Some(bytes) = self.selected_payload().map(<[u8]>::to_vec) else {
            self.status = Some("no payload selected".into());
            return;
        };
        if !self.opts.clipboard {
            self.status = Some("no clipboard: this terminal does not take OSC 52".into());
            return;
        }
        self.status = Some(format!("copied {} bytes (OSC 52)", bytes.len()));
        self.clipboard_out = Some(bytes);
    }

    fn export(&mut self) {
        let Some(c) = self.selected_conn() else {
            self.status = Some("no connection selected".into());
            return;
        };
        let Some(file) = self.source.file.clone() else {
            self.status = Some("export needs a capture file".into());
            return;
        };
        let id = c.id;
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "capture".into());
        let out = self
            .opts
            .export_dir
            .join(format!("wsinspect-{stem}-conn{id}.json"));
        let (tx, rx) = mpsc::channel();
        let cfg = self.source.cfg.clone();
        let analysis = self.source.analysis.clone();
        std::thread::spawn(move || {
            let r = export::connection(&file, cfg, analysis, id, &out).map(|()| out);
            let _ = tx.send(r);
        });
        self.jobs.push(rx);
        self.status = Some(format!("exporting connection #{id}…"));
    }

    /// Collects finished background jobs (exports); `wait` blocks until all are done.
    pub fn poll_jobs(&mut self, wait: bool) {
        let mut msgs = Vec::new();
        self.jobs.retain(|rx| {
            let r = if wait {
                rx.recv().map_err(|_| TryRecvError::Disconnected)
            } else {
                rx.try_recv()
            };
            match r {
                Ok(Ok(path)) => {
                    msgs.push(format!("wrote {}", path.display()));
                    false
                }
                Ok(Err(e)) => {
                    msgs.push(format!("export failed: {e}"));
                    false
                }
                Err(TryRecvError::Empty) => true,
                Err(TryRecvError::Disconnected) => false,
            }
        });
        if let Some(m) = msgs.pop() {
            self.status = Some(crate::output::text::sanitize(&m, 300));
        }
    }
}

fn compare(key: SortKey, a: &Conn, b: &Conn) -> Ordering {
    let total = |x: [u64; 2]| x[0] + x[1];
    match key {
        SortKey::Id => a.id.cmp(&b.id),
        SortKey::Client => a.client.cmp(&b.client),
        SortKey::Server => a.server.cmp(&b.server),
        SortKey::Target => (a.host(), a.path()).cmp(&(b.host(), b.path())),
        SortKey::Subprotocol => a.subprotocol().cmp(&b.subprotocol()),
        SortKey::Compression => a.compressed().cmp(&b.compressed()),
        SortKey::Start => a.start.cmp(&b.start),
        SortKey::Duration => (a.end_ts().0 - a.start.0).cmp(&(b.end_ts().0 - b.start.0)),
        SortKey::Messages => total(a.messages).cmp(&total(b.messages)),
        SortKey::Bytes => total(a.bytes).cmp(&total(b.bytes)),
        SortKey::Close => a.observed().cmp(&b.observed()),
        SortKey::Kind => a.kind().cmp(&b.kind()),
        SortKey::Verdict => {
            let rank = |c: &Conn| c.facts().class() as u8;
            rank(a).cmp(&rank(b))
        }
    }
}
