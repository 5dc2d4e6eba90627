//! The terminal UI: driven with key events on real captures and rendered into ratatui's
//! `TestBackend` (plain-text insta snapshots of the main screens), the escape-sequence safety
//! check, tiny terminals, a 100k-message connection, and the real binary in tmux.

use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};
use ratatui::style::Color;
use serde_json::Value;
use wsinspect::capture::CaptureReader;
use wsinspect::config::{Config, PayloadMode};
use wsinspect::event::{ConnectionOpen, Event, MessageEvent, PayloadEncoding};
use wsinspect::pipeline;
use wsinspect::query::{Query, Queryable};
use wsinspect::sink::CaptureSummary;
use wsinspect::tui::app::Row;
use wsinspect::tui::layout::Focus;
use wsinspect::tui::ui::{KEYS, draw};
use wsinspect::tui::{App, Options, SourceInfo, Update};
use wsinspect::types::{Dir, Ts};

use crate::util::{Tmux, sample, shell_exit_status, shell_quote, temp_path};

fn events(name: &str, frames: bool) -> (Vec<Event>, CaptureSummary) {
    let path = sample(name);
    let mut reader = CaptureReader::open(&path).expect("open sample");
    let cfg = Config {
        payloads: PayloadMode::Full,
        frames,
        ..Config::default()
    };
    pipeline::run(&mut reader, &format!("samples/{name}"), cfg, Vec::new()).expect("pipeline")
}

fn options() -> Options {
    Options {
        color: false,
        clipboard: false,
        export_dir: std::env::temp_dir(),
        ..Options::default()
    }
}

fn source(name: &str, frames: bool) -> SourceInfo {
    let path = sample(name);
    SourceInfo {
        name: format!("samples/{name}"),
        total_bytes: std::fs::metadata(&path).ok().map(|m| m.len()),
        file: Some(path),
        cfg: Config {
            payloads: PayloadMode::Full,
            frames,
            ..Config::default()
        },
        ..SourceInfo::default()
    }
}

/// An app that has read the whole sample, on a 120x40 terminal.
fn app_with(name: &str, frames: bool, opts: Options) -> App {
    let (evs, summary) = events(name, frames);
    let mut app = App::new(source(name, frames), opts);
    app.resize(120, 40);
    app.ingest([
        Update::Events(evs),
        Update::Progress(summary.bytes),
        Update::Finished(Box::new(summary)),
    ]);
    app
}

fn app(name: &str) -> App {
    app_with(name, false, options())
}

fn key(app: &mut App, code: KeyCode) {
    app.handle_key(KeyEvent::new(code, KeyModifiers::NONE));
}

fn keys(app: &mut App, s: &str) {
    for c in s.chars() {
        key(app, KeyCode::Char(c));
    }
}

fn terminal(app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    t.draw(|f| draw(f, app)).expect("draw");
    t
}

/// The screen as plain text (cell symbols; colours dropped), trailing spaces trimmed.
fn screen(app: &App) -> String {
    let t = terminal(app, app.size.0, app.size.1);
    text_of(&t)
}

fn text_of(t: &Terminal<TestBackend>) -> String {
    let buf = t.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        for x in 0..buf.area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[test]
fn connection_list() {
    let app = app("app-close-codes.pcap");
    assert_eq!(app.view.len(), 3);
    let s = screen(&app);
    // One row per connection, with the close code each side saw and the termination kind.
    for code in ["1001/1001", "1008/1008", "4401/4401"] {
        assert!(s.contains(code), "{code} missing:\n{s}");
    }
    assert!(s.contains("Connections 3/3"));
    insta::assert_snapshot!("connection_list", s);
}

#[test]
fn timeline_with_an_idle_gap() {
    let mut app = app("nginx-idle-timeout.pcap");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.focus, Focus::Timeline);
    // nginx waited 3 s (its proxy_read_timeout) before ending the silent connection.
    let idle = app
        .rows
        .iter()
        .find_map(|r| match r {
            Row::Idle(s, _) => Some(*s),
            Row::Entry(_) => None,
        })
        .expect("an idle separator");
    assert!((2.9..3.1).contains(&idle), "{idle}");
    let s = screen(&app);
    assert!(s.contains("2.990 s idle") || s.contains(" s idle "), "{s}");
    assert!(s.contains("FIN"), "{s}");
    insta::assert_snapshot!("timeline_idle_gap", s);
}

#[test]
fn detail_of_a_compressed_json_message() {
    let mut app = app("node-deflate-takeover.pcap");
    key(&mut app, KeyCode::Enter);
    // Row 0 is the handshake; the third message went out as 57 bytes for 192.
    keys(&mut app, "jjj");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.focus, Focus::Detail);
    let s = screen(&app);
    assert!(s.contains("57 B on the wire (compressed)"), "{s}");
    assert!(s.contains("JSON:"), "{s}");
    assert!(s.contains("\"seq\": 3"), "{s}");
    insta::assert_snapshot!("detail_compressed_json", s);
}

#[test]
fn help_overlay_lists_every_key() {
    let mut app = app("node-basic.pcap");
    app.resize(120, 40);
    key(&mut app, KeyCode::Char('?'));
    assert!(app.help);
    let s = screen(&app);
    for (k, what) in KEYS {
        assert!(s.contains(k), "{k} missing from help:\n{s}");
        assert!(s.contains(&what[..what.len().min(30)]), "{what}");
    }
    insta::assert_snapshot!("help_overlay", s);
    // Any key closes it and does nothing else.
    key(&mut app, KeyCode::Char('j'));
    assert!(!app.help && !app.quit);
}

#[test]
fn filtered_view() {
    let mut app = app("app-close-codes.pcap");
    key(&mut app, KeyCode::Char('/'));
    keys(&mut app, "code:1008");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.view.len(), 1);
    let shown = &app.model.conns[app.view[0]];
    assert_eq!(shown.observed(), (Some(1008), Some(1008)));
    // The timeline follows the one connection left.
    assert_eq!(app.current_conn().map(|c| c.id), Some(shown.id));
    let s = screen(&app);
    assert!(s.contains("Connections 1/3"), "{s}");
    insta::assert_snapshot!("filtered_view", s);
    // A query that does not parse says why; Esc brings back the filter in force before.
    key(&mut app, KeyCode::Char('/'));
    keys(&mut app, " colour:red");
    assert!(
        app.query_error
            .as_deref()
            .is_some_and(|e| e.contains("colour"))
    );
    assert!(screen(&app).contains("unknown field"));
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.view.len(), 1);
    assert_eq!(app.query_text, "code:1008");
    // Clearing the filter shows everything again.
    key(&mut app, KeyCode::Char('/'));
    for _ in 0..30 {
        key(&mut app, KeyCode::Backspace);
    }
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.view.len(), 3);
}

#[test]
fn sort_cycles_columns_and_reverses() {
    let mut app = app("app-close-codes.pcap");
    let ids = |app: &App| -> Vec<u64> { app.view.iter().map(|&i| app.model.conns[i].id).collect() };
    assert_eq!(ids(&app), vec![1, 2, 3]);
    key(&mut app, KeyCode::Char('S'));
    assert_eq!(ids(&app), vec![3, 2, 1]);
    key(&mut app, KeyCode::Char('S'));
    // Cycle to the close column: client codes 1001 < 1008 < 4401.
    while app.sort.name() != "close" {
        key(&mut app, KeyCode::Char('s'));
    }
    let codes: Vec<Option<u16>> = app
        .view
        .iter()
        .map(|&i| app.model.conns[i].observed().0)
        .collect();
    let mut sorted = codes.clone();
    sorted.sort();
    assert_eq!(codes, sorted);
    assert!(screen(&app).contains("sorted by close ascending"));
    // The selection stays on the same connection across a re-sort.
    let before = app.selected_conn().map(|c| c.id);
    key(&mut app, KeyCode::Char('S'));
    assert_eq!(app.selected_conn().map(|c| c.id), before);
}

#[test]
fn timeline_toggles_frames_control_and_direction() {
    let mut app = app_with("node-deflate-takeover.pcap", true, options());
    key(&mut app, KeyCode::Enter);
    let count = |app: &App, f: &dyn Fn(&wsinspect::tui::model::Entry) -> bool| {
        let c = app.current_conn().expect("current");
        app.rows
            .iter()
            .filter(|r| matches!(r, Row::Entry(i) if f(&c.entries[*i])))
            .count()
    };
    use wsinspect::tui::model::Kind;
    let msgs = count(&app, &|e| matches!(e.kind, Kind::Text | Kind::Binary));
    assert_eq!(msgs, 15, "9 client + 6 server messages");
    assert_eq!(count(&app, &|e| e.kind == Kind::Frame), 0);
    key(&mut app, KeyCode::Char('t'));
    // 13 + 8 frames (the text summary's count), no messages.
    assert_eq!(count(&app, &|e| e.kind == Kind::Frame), 21);
    assert_eq!(
        count(&app, &|e| matches!(e.kind, Kind::Text | Kind::Binary)),
        0
    );
    key(&mut app, KeyCode::Char('t'));
    key(&mut app, KeyCode::Char('c'));
    assert_eq!(count(&app, &|e| e.kind.is_control()), 0);
    key(&mut app, KeyCode::Char('c'));
    assert_eq!(count(&app, &|e| e.kind == Kind::Ping), 1);
    key(&mut app, KeyCode::Char('<'));
    assert_eq!(count(&app, &|e| e.dir == Some(Dir::C2s)), 0);
    assert_eq!(
        count(&app, &|e| matches!(e.kind, Kind::Text | Kind::Binary)),
        6
    );
    key(&mut app, KeyCode::Char('='));
    assert_eq!(
        count(&app, &|e| matches!(e.kind, Kind::Text | Kind::Binary)),
        15
    );
    // Without frame events the toggle says how to get them.
    let mut plain = app_with("node-deflate-takeover.pcap", false, options());
    key(&mut plain, KeyCode::Char('t'));
    assert!(!plain.show_frames);
    assert!(
        plain
            .status
            .as_deref()
            .is_some_and(|s| s.contains("--frames"))
    );
}

#[test]
fn ping_and_pong_are_paired_with_their_rtt() {
    let mut app = app("node-deflate-takeover.pcap");
    key(&mut app, KeyCode::Enter);
    let s = screen(&app);
    let ping = s.lines().find(|l| l.contains("ping #1")).expect("ping row");
    let pong = s.lines().find(|l| l.contains("pong #1")).expect("pong row");
    assert!(
        ping.contains("rtt 11.2 ms") && pong.contains("rtt 11.2 ms"),
        "{s}"
    );
}

#[test]
fn regex_search_in_payloads() {
    let mut app = app("node-deflate-takeover.pcap");
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char('/'));
    keys(&mut app, "\"seq\":\\s*4\\b");
    key(&mut app, KeyCode::Enter);
    let c = app.current_conn().expect("current");
    let e = app.selected_entry().expect("a match");
    let p = c.payload(e).expect("payload kept");
    assert!(String::from_utf8_lossy(&p.bytes).contains("\"seq\":4"));
    let first = app.tl_pos.sel;
    key(&mut app, KeyCode::Char('n'));
    key(&mut app, KeyCode::Char('N'));
    assert_eq!(app.tl_pos.sel, first);
    key(&mut app, KeyCode::Char('/'));
    keys(&mut app, "no such text anywhere");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.status.as_deref(), Some("no payload matches"));
}

#[test]
fn captured_escape_sequences_never_reach_the_screen() {
    let (mut evs, summary) = events("node-basic.pcap", false);
    let evil = "\x1b]52;c;aGFja2Vk\x07\x1b[2J\u{9b}31m\u{202e}gnp.exe";
    for ev in &mut evs {
        match ev {
            Event::Message(m) => {
                m.payload = Some(format!("{evil}\n{evil}"));
                m.payload_encoding = Some(PayloadEncoding::Text);
                m.kind = "text";
            }
            Event::Handshake(h) => {
                h.handshake.path = Some(format!("/{evil}"));
                h.handshake.host = Some(evil.to_owned());
                h.handshake
                    .request_headers
                    .push((evil.to_owned(), evil.to_owned()));
            }
            Event::Close(c) => c.reason = evil.to_owned(),
            Event::ConnectionEnd(e) => {
                if let Some(d) = e.diagnosis.as_mut() {
                    d.verdict = evil.to_owned();
                    d.evidence.push(evil.to_owned());
                }
            }
            _ => {}
        }
    }
    let mut app = App::new(source("node-basic.pcap", false), options());
    app.resize(160, 50);
    app.ingest([Update::Events(evs), Update::Finished(Box::new(summary))]);
    key(&mut app, KeyCode::Enter);
    let check = |app: &App| {
        let s = screen(app);
        for bad in ['\x1b', '\x07', '\u{9b}', '\u{202e}'] {
            assert!(!s.contains(bad), "{bad:?} reached the screen:\n{s}");
        }
        s
    };
    // Every row of the timeline, each with its detail pane.
    let rows = app.rows.len();
    for _ in 0..rows {
        check(&app);
        key(&mut app, KeyCode::Char('j'));
    }
    let s = check(&app);
    assert!(
        s.contains("\\u{1b}"),
        "escapes are shown, not dropped:\n{s}"
    );
    key(&mut app, KeyCode::Char('?'));
    check(&app);
}

#[test]
fn tiny_terminals_do_not_panic() {
    let mut app = app("node-deflate-takeover.pcap");
    for (w, h) in [(20, 5), (1, 1), (0, 0), (5, 40), (200, 3)] {
        app.resize(w, h);
        for k in [
            KeyCode::Enter,
            KeyCode::Char('j'),
            KeyCode::PageDown,
            KeyCode::Char('G'),
            KeyCode::Tab,
            KeyCode::Char('?'),
        ] {
            key(&mut app, k);
            terminal(&app, w, h);
        }
        app.handle_mouse(MouseEvent {
            kind: MouseEventKind::ScrollDown,
            column: 0,
            row: 0,
            modifiers: KeyModifiers::NONE,
        });
        terminal(&app, w, h);
    }
    app.resize(20, 5);
    let t = terminal(&app, 20, 5);
    assert_eq!(text_of(&t).lines().count(), 5);
}

#[test]
fn mouse_wheel_scrolls_the_pane_under_the_pointer() {
    let mut app = app("node-deflate-takeover.pcap");
    let tl = wsinspect::tui::layout::areas(ratatui::layout::Rect::new(0, 0, 120, 40), app.focus)
        .timeline;
    app.handle_mouse(MouseEvent {
        kind: MouseEventKind::ScrollDown,
        column: tl.x + 2,
        row: tl.y + 2,
        modifiers: KeyModifiers::NONE,
    });
    assert_eq!(app.tl_pos.sel, 3);
    assert_eq!(app.focus, Focus::Conns, "the wheel does not move the focus");
}

#[test]
fn colours_follow_the_verdict_and_no_color_removes_them() {
    let coloured = app_with(
        "server-sigkill.pcap",
        false,
        Options {
            color: true,
            ..options()
        },
    );
    let t = terminal(&coloured, 120, 40);
    let has_red = t
        .backend()
        .buffer()
        .content()
        .iter()
        .any(|c| c.fg == Color::Red);
    assert!(has_red, "an abnormal connection is red");
    let plain = app("server-sigkill.pcap");
    let t = terminal(&plain, 120, 40);
    let buf = t.backend().buffer();
    assert!(
        buf.content()
            .iter()
            .all(|c| c.fg == Color::Reset && c.bg == Color::Reset),
        "NO_COLOR: no colour at all"
    );
}

#[test]
fn rows_appear_before_the_capture_is_read() {
    let (evs, summary) = events("app-close-codes.pcap", false);
    let mut app = App::new(source("app-close-codes.pcap", false), options());
    app.resize(120, 40);
    let first_end = evs
        .iter()
        .position(|e| matches!(e, Event::ConnectionEnd(_)))
        .expect("an end");
    let (head, tail) = evs.split_at(first_end);
    app.ingest([Update::Events(head.to_vec()), Update::Progress(1000)]);
    let s = screen(&app);
    assert!(s.contains("reading"), "{s}");
    assert!(
        s.contains("(open)"),
        "a connection shows before it ends:\n{s}"
    );
    app.ingest([
        Update::Events(tail.to_vec()),
        Update::Finished(Box::new(summary)),
    ]);
    let s = screen(&app);
    assert!(!s.contains("(open)") && s.contains("read "), "{s}");
}

#[test]
fn a_connection_with_100k_messages_stays_navigable() {
    let n = 100_000u64;
    let mut evs = Vec::with_capacity(n as usize + 1);
    evs.push(Event::ConnectionOpen(ConnectionOpen {
        conn: 1,
        ts: Ts::from_parts(1_700_000_000, 0),
        client: "10.0.0.1:40000".into(),
        server: "10.0.0.2:443".into(),
        handshake_seen: false,
        syn_seen: true,
        tls: None,
    }));
    for i in 0..n {
        let text = format!("{{\"seq\":{i}}}");
        let ts = Ts::from_parts(1_700_000_000, 0)
            .max(Ts(1_700_000_000_000_000_000 + i as i64 * 1_000_000));
        let dir = if i % 2 == 0 { Dir::C2s } else { Dir::S2c };
        let len = text.len() as u64;
        evs.push(Event::Message(MessageEvent {
            payload: Some(text),
            payload_encoding: Some(PayloadEncoding::Text),
            ..MessageEvent::text(1, ts, dir, len)
        }));
    }
    let mut app = App::new(SourceInfo::default(), options());
    app.resize(120, 40);
    app.ingest([Update::Events(evs)]);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.rows.len(), n as usize);
    key(&mut app, KeyCode::Char('G'));
    key(&mut app, KeyCode::PageUp);
    let s = screen(&app);
    let c = app.current_conn().expect("current");
    let e = app.selected_entry().expect("selected");
    let seq = String::from_utf8_lossy(&c.payload(e).expect("kept").bytes).into_owned();
    assert!(s.contains(&seq), "the selected message is drawn:\n{s}");
    // Only the rows in view are drawn.
    assert!(!s.contains("{\"seq\":0}"));
}

#[test]
fn payload_budget_is_kept_and_the_detail_says_how_to_get_the_rest() {
    let mut app = app_with(
        "node-basic.pcap",
        false,
        Options {
            payload_budget: 2_000,
            ..options()
        },
    );
    assert!(app.model.dropped_payloads > 0);
    assert!(app.model.budget_left <= 2_000);
    key(&mut app, KeyCode::Enter);
    // Walk to the 70,000-byte message, which cannot fit.
    let c = app.current_conn().expect("current");
    let big = app
        .rows
        .iter()
        .position(|r| matches!(r, Row::Entry(i) if c.entries[*i].len == 70_000))
        .expect("the big message");
    for _ in 0..big {
        key(&mut app, KeyCode::Char('j'));
    }
    let s = screen(&app);
    assert!(s.contains("payload not kept"), "{s}");
    assert!(s.contains("--json") && s.contains("--payloads full"), "{s}");
}

#[test]
fn export_writes_the_connection_json() {
    let dir = temp_path("export");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut app = app_with(
        "app-close-codes.pcap",
        false,
        Options {
            export_dir: dir.clone(),
            ..options()
        },
    );
    key(&mut app, KeyCode::Char('j'));
    let id = app.selected_conn().expect("selected").id;
    let msgs = app.selected_conn().expect("selected").messages;
    key(&mut app, KeyCode::Char('e'));
    app.poll_jobs(true);
    let status = app.status.clone().unwrap_or_default();
    let path = dir.join(format!("wsinspect-app-close-codes-conn{id}.json"));
    assert!(
        status.contains("wrote") && status.contains("conn2.json"),
        "{status}"
    );
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).expect("written")).expect("JSON");
    let conns = doc["connections"].as_array().expect("connections");
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0]["id"], id);
    let n = conns[0]["messages"].as_array().map_or(0, Vec::len) as u64;
    assert_eq!(n, msgs[0] + msgs[1]);
    // Whole payloads, as --payloads full writes them.
    assert!(conns[0]["messages"][0]["payload"].is_string());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn copy_says_when_there_is_no_clipboard() {
    let mut app = app("node-basic.pcap");
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Char('y'));
    assert!(
        app.status
            .as_deref()
            .is_some_and(|s| s.contains("no clipboard"))
    );
    assert!(app.clipboard_out.is_none());
    let mut app = app_with(
        "node-basic.pcap",
        false,
        Options {
            clipboard: true,
            ..options()
        },
    );
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Char('y'));
    let c = app.current_conn().expect("current");
    let e = app.selected_entry().expect("entry");
    let want = c.payload(e).expect("payload").bytes.to_vec();
    assert_eq!(app.clipboard_out.as_deref(), Some(&want[..]));
}

#[test]
fn quit_keys() {
    for k in [
        KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE),
        KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
    ] {
        let mut app = app("node-basic.pcap");
        app.handle_key(k);
        assert!(app.quit);
    }
}

#[test]
fn the_query_language_on_real_connection_ends() {
    let (evs, _) = events("app-close-codes.pcap", false);
    let ends: Vec<_> = evs
        .iter()
        .filter_map(|e| match e {
            Event::ConnectionEnd(e) => Some(e.as_ref()),
            _ => None,
        })
        .collect();
    let count = |q: &str| {
        let q = Query::parse(q).expect("parses");
        ends.iter().filter(|e| q.matches(**e)).count()
    };
    // The truth file: the client closes 1001; the server closes 1008, then 4401.
    assert_eq!(count("code:1001"), 1);
    assert_eq!(count("code:4401"), 1);
    assert_eq!(count("-code:4401"), 2);
    assert_eq!(count("kind:clean_close"), 3);
    assert_eq!(count("verdict:clean"), 3);
    assert_eq!(count("anomaly"), 0);
    assert_eq!(count("127.0.0.1"), 3);
    assert_eq!(count("open"), 0);
    // The UI row answers the same as the summary it was built from.
    let app = app("app-close-codes.pcap");
    for q in [
        "code:1008",
        "-code:1001",
        "kind:clean_close",
        "verdict:abnormal",
    ] {
        let parsed = Query::parse(q).expect("parses");
        let ui = app
            .model
            .conns
            .iter()
            .filter(|c| parsed.matches(*c))
            .count();
        assert_eq!(ui, count(q), "{q}");
    }
    assert!(app.model.conns[0].facts().kind.is_some());
}

#[test]
fn tmux_real_terminal() {
    let cap = sample("nginx-idle-timeout.pcap");
    let marker = temp_path("tmux-exited");
    let _ = std::fs::remove_file(&marker);
    // The shell writes a marker when wsinspect has exited, so the test sees the process end.
    let cmd = format!(
        "TERM=xterm-256color {} {}; echo $? > {}; sleep 30",
        shell_quote(env!("CARGO_BIN_EXE_wsinspect")),
        shell_quote(&cap.display().to_string()),
        shell_quote(&marker.display().to_string())
    );
    let term = Tmux::start("tui", 120, 40, &cmd);
    let patience = Duration::from_secs(20);
    let s = term.wait_for("the connection rows", patience, &|s| {
        s.contains("Connections 2/2") && s.contains("fin_without_close") && s.contains("read ")
    });
    assert!(s.contains("127.0.0.1:37982"), "{s}");
    term.keys(&["Enter"]);
    let s = term.wait_for("the timeline", patience, &|s| {
        s.contains("s idle") && s.contains("FIN")
    });
    assert!(s.contains("handshake"), "{s}");
    term.keys(&["?"]);
    term.wait_for("the help overlay", patience, &|s| {
        s.contains("Keys") && s.contains("export the selected")
    });
    term.keys(&["Escape"]);
    term.wait_for("help closed", patience, &|s| {
        !s.contains("export the selected")
    });
    term.keys(&["q"]);
    let code = shell_exit_status(&marker, patience);
    assert_eq!(code, "0", "exit status after q");
    // The alternate screen is gone: the shell's screen is back, without the UI's frame.
    let s = term.wait_for("the restored terminal", patience, &|s| {
        !s.contains("Connections 2/2")
    });
    assert!(!s.contains("┌ Timeline"), "{s}");
    let _ = std::fs::remove_file(&marker);
}
