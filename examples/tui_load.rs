//! Loads a capture into the terminal UI's model the way `wsinspect FILE` does (reader thread,
//! batched channel, `App::ingest` on this thread) without a terminal, and prints when the first
//! connection row existed and when the whole file was in. Peak memory: run it under
//! `/usr/bin/time -v`.
//!
//! `cargo run --release --example tui_load -- CAPTURE`

use std::path::PathBuf;
use std::time::Instant;

use wsinspect::analysis::AnalysisOptions;
use wsinspect::config::Config;
use wsinspect::tui::{App, Options, Update, spawn_file};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path: PathBuf = std::env::args_os()
        .nth(1)
        .ok_or("usage: tui_load CAPTURE")?
        .into();
    let start = Instant::now();
    let (rx, source) = spawn_file(&path, Config::default(), AnalysisOptions::default())?;
    let mut app = App::new(
        source,
        Options {
            color: false,
            ..Options::default()
        },
    );
    app.resize(120, 40);
    let mut first_row = None;
    for u in rx {
        let done = matches!(u, Update::Finished(_) | Update::Failed(_));
        app.ingest([u]);
        if first_row.is_none() && !app.model.conns.is_empty() {
            first_row = Some(start.elapsed());
        }
        if done {
            break;
        }
    }
    let entries: usize = app.model.conns.iter().map(|c| c.entries.len()).sum();
    println!(
        "first row after {:.3} s; whole file after {:.3} s; {} connections, {} timeline entries, {} payload bytes kept, {} payloads not kept",
        first_row.map_or(f64::NAN, |d| d.as_secs_f64()),
        start.elapsed().as_secs_f64(),
        app.model.conns.len(),
        entries,
        app.model.budget - app.model.budget_left,
        app.model.dropped_payloads
    );
    if let Some(e) = &app.progress.error {
        println!("reader error: {e}");
    }
    Ok(())
}
