//! The whole pipeline (capture reader, decode, reassembly, sessions, analysis) on one capture,
//! with small caps so that every cap path is reachable, into the JSON and text sinks.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use wsinspect::capture::CaptureReader;
use wsinspect::config::{Config, Limits, PayloadMode};
use wsinspect::output::json::JsonSink;
use wsinspect::output::text::TextSink;
use wsinspect::pipeline;

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, bytes)) = data.split_first() else {
        return;
    };
    let limits = if cfg & 1 == 0 {
        Limits::default()
    } else {
        Limits {
            max_frame_bytes: 300,
            max_message_bytes: 200,
            max_ooo_bytes_per_dir: 500,
            max_flows: 3,
            max_http_header_bytes: 256,
            preview_bytes: 16,
            ..Limits::default()
        }
    };
    let config = Config {
        limits,
        payloads: if cfg & 2 == 0 {
            PayloadMode::Preview
        } else {
            PayloadMode::Full
        },
        frames: cfg & 4 != 0,
        ..Config::default()
    };
    let Ok(mut reader) = CaptureReader::from_reader(Box::new(Cursor::new(bytes.to_vec()))) else {
        return;
    };
    if cfg & 8 == 0 {
        let sink = JsonSink::new(Vec::new(), config.frames, false);
        if let Ok((out, _)) = pipeline::run(&mut reader, "fuzz", config, sink) {
            let _ = out;
        }
    } else {
        let sink = TextSink::new(Vec::new());
        let _ = pipeline::run(&mut reader, "fuzz", config, sink);
    }
});
