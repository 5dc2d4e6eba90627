//! Where each pane sits: takes the terminal size and the focused pane, gives each pane's
//! rectangle and how many rows it shows.
//!
//! The state (`app`: mouse hit-testing, page sizes, the detail pane's width) and the renderer
//! (`ui`) both need it, so it sits below both and knows neither.

use ratatui::layout::Rect;

/// Which pane has the keyboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Focus {
    /// The connection list.
    Conns,
    /// The selected connection's timeline.
    Timeline,
    /// The detail pane.
    Detail,
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
pub fn areas(area: Rect, focus: Focus) -> Areas {
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
        match focus {
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
