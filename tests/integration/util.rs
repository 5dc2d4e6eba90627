//! Helpers: run wsinspect on a capture and read its JSON document.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use wsinspect::capture::CaptureReader;
use wsinspect::config::{Config, PayloadMode};
use wsinspect::output::json::JsonSink;
use wsinspect::pipeline;

/// A file of the public corpus, which sits beside the repository.
pub fn corpus(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus")
        .join(rel)
}

/// A file in samples/.
pub fn sample(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(rel)
}

/// Runs the pipeline in-process with frames listed and whole payloads, and parses the document.
pub fn doc(path: &Path) -> Value {
    doc_with(
        path,
        Config {
            frames: true,
            payloads: PayloadMode::Full,
            ..Config::default()
        },
    )
}

/// [`doc`] for a sample's truth file: a wss:// capture is decrypted with the key log its peers
/// wrote (`tls.keys`).
pub fn truth_doc(truth: &Value) -> Value {
    let mut cfg = Config {
        frames: true,
        payloads: PayloadMode::Full,
        ..Config::default()
    };
    if let Some(keys) = truth["tls"]["keys"].as_str() {
        cfg.keylog
            .add(&std::fs::read(sample(keys)).expect("the sample's key log"));
    }
    doc_with(&sample(truth["capture"].as_str().expect("capture")), cfg)
}

/// Same with a given configuration.
pub fn doc_with(path: &Path, cfg: Config) -> Value {
    let mut reader =
        CaptureReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    let frames = cfg.frames;
    pipeline::run(
        &mut reader,
        &path.display().to_string(),
        cfg,
        JsonSink::new(&mut out, frames, false),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("{}: output is not JSON: {e}", path.display()))
}

/// The document's connections, sorted by id.
pub fn connections(doc: &Value) -> Vec<Value> {
    let mut conns = doc["connections"].as_array().cloned().unwrap_or_default();
    conns.sort_by_key(|c| c["id"].as_u64());
    conns
}

/// Runs the built binary.
pub fn wsinspect(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wsinspect"))
        .args(args)
        .output()
        .expect("run wsinspect")
}

/// A message's decoded payload bytes from `--payloads full` output.
pub fn payload_bytes(msg: &Value) -> Vec<u8> {
    use base64::Engine as _;
    match msg["payload_encoding"].as_str() {
        Some("text") => msg["payload"]
            .as_str()
            .unwrap_or_default()
            .as_bytes()
            .to_vec(),
        Some("base64") => base64::engine::general_purpose::STANDARD
            .decode(msg["payload"].as_str().unwrap_or_default())
            .expect("valid base64"),
        _ => Vec::new(),
    }
}

/// A message's payload as text (lossy), for comparisons with text references.
pub fn payload_text(msg: &Value) -> String {
    String::from_utf8_lossy(&payload_bytes(msg)).into_owned()
}

/// Every message of a connection as text (lossy), in order.
pub fn message_texts(conn: &Value) -> Vec<String> {
    conn["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(payload_text)
        .collect()
}

/// `ip:port` without IPv6 brackets, as tshark and Zeek print endpoints.
pub fn endpoint(s: &str) -> String {
    s.replace(['[', ']'], "")
}

/// Kinds of the connection's anomalies.
pub fn anomaly_kinds(conn: &Value) -> Vec<String> {
    conn["anomalies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["kind"].as_str().map(str::to_owned))
        .collect()
}

/// A temporary file path unique to this test process.
pub fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("wsinspect-test-{}-{name}", std::process::id()))
}

/// Every `*.truth.json` in samples/, parsed.
pub fn truth_files() -> Vec<(String, Value)> {
    let dir = sample("");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("samples/") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if let Some(scenario) = name.strip_suffix(".truth.json") {
            let truth: Value = serde_json::from_slice(&std::fs::read(&path).expect("truth"))
                .expect("truth is JSON");
            out.push((scenario.to_owned(), truth));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
