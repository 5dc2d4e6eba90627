//! Helpers: run wsinspect on a capture and read its JSON document.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use wsinspect::analysis::AnalysisOptions;
use wsinspect::capture::CaptureReader;
use wsinspect::config::{Config, PayloadMode};
use wsinspect::output::json::JsonSink;
use wsinspect::parallel;
use wsinspect::pipeline;
use wsinspect::sink::EventSink;

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

/// A program running in a real terminal: a tmux server of its own, killed when this is dropped.
pub struct Tmux {
    socket: String,
    target: String,
}

impl Tmux {
    /// Runs the shell command `cmd` in a `width` x `height` terminal. Fails the test with a
    /// clear message when tmux is not installed (`.ci/run` installs it).
    pub fn start(name: &str, width: u16, height: u16, cmd: &str) -> Tmux {
        let have = Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            have,
            "tmux is not installed: this test runs wsinspect in a real terminal and needs it \
             (.ci/run installs it; locally: apt-get install tmux)"
        );
        let socket = format!("wsinspect-{name}-{}", std::process::id());
        let (w, h) = (width.to_string(), height.to_string());
        let ok = Command::new("tmux")
            .args(["-L", &socket, "new-session", "-d", "-s", &socket])
            .args(["-x", &w, "-y", &h, cmd])
            .status()
            .expect("tmux new-session");
        assert!(ok.success(), "tmux new-session failed");
        let target = format!("{socket}:0");
        Tmux { socket, target }
    }

    /// Types `keys` (tmux key names: `Enter`, `Escape`, `q`, ...).
    pub fn keys(&self, keys: &[&str]) {
        let ok = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", &self.target])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(ok.success());
    }

    /// Waits up to `patience` for the screen to satisfy `ok`, and returns it; fails the test
    /// with the last screen otherwise.
    pub fn wait_for(
        &self,
        what: &str,
        patience: std::time::Duration,
        ok: &dyn Fn(&str) -> bool,
    ) -> String {
        let deadline = std::time::Instant::now() + patience;
        loop {
            let out = Command::new("tmux")
                .args(["-L", &self.socket, "capture-pane", "-p", "-t", &self.target])
                .output()
                .expect("tmux capture-pane");
            let screen = String::from_utf8_lossy(&out.stdout).into_owned();
            if ok(&screen) {
                return screen;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}:\n{screen}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

/// `s` quoted for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Runs `path` with `threads` workers into `sink`, returning what it wrote.
pub fn run_sharded<S: EventSink>(path: &Path, cfg: &Config, threads: usize, sink: S) -> S {
    let mut reader =
        CaptureReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (sink, _) = parallel::run_observed(
        &mut reader,
        &path.display().to_string(),
        cfg.clone(),
        AnalysisOptions::default(),
        sink,
        threads,
        &mut |_| {},
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    sink
}

/// The exit status a shell wrote with `echo $? > path`, once the whole line is there: the shell
/// creates the file before it writes the number, so the file existing is not enough.
pub fn shell_exit_status(path: &Path, patience: std::time::Duration) -> String {
    let deadline = std::time::Instant::now() + patience;
    loop {
        if let Ok(s) = std::fs::read_to_string(path)
            && s.ends_with('\n')
        {
            return s.trim().to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no exit status in {} (the program did not exit?)",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
