//! Live capture (feature `live`): real WebSocket peers on loopback while `wsinspect -i` runs,
//! checked against the peers' own logs as the NDJSON lines arrive; stopping on signals; the `-w`
//! file; the queue between capture and analysis and its drop counter; the error lines.
//! Capturing needs root or CAP_NET_RAW (CI runs as root) and the Node peers in samples/peers
//! (`npm ci` there).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::util::{
    Tmux, payload_bytes, sample, shell_exit_status, shell_quote, temp_path, wsinspect,
};

/// Long enough for a loaded 2-core machine; a wait that runs out fails the test.
const PATIENCE: Duration = Duration::from_secs(30);

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Children killed when the test ends, however it ends.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            if matches!(c.try_wait(), Ok(None)) {
                c.kill().ok();
                c.wait().ok();
            }
        }
    }
}

/// `wsinspect -i ...` with its output lines delivered as they are written.
struct Capture {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    lines: Vec<Value>,
}

impl Capture {
    fn start(args: &[&str]) -> Capture {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wsinspect"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run wsinspect");
        let stdout = lines_of(child.stdout.take().expect("stdout"));
        let stderr = lines_of(child.stderr.take().expect("stderr"));
        let mut cap = Capture {
            child,
            stdout,
            stderr,
            lines: Vec::new(),
        };
        cap.wait_capturing();
        cap
    }

    /// Waits for the line saying the handle is open and filtered.
    fn wait_capturing(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        let mut said = String::new();
        while Instant::now() < deadline {
            match self.stderr.recv_timeout(Duration::from_millis(100)) {
                Ok(l) if l.contains("capturing on") => return,
                Ok(l) => said.push_str(&l),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
        panic!("wsinspect did not start capturing: {said}");
    }

    /// Reads one more line.
    fn read_line(&mut self, what: &str) {
        match self.stdout.recv_timeout(PATIENCE) {
            Ok(l) => {
                let v = serde_json::from_str(&l)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"));
                self.lines.push(v);
            }
            Err(e) => panic!("no {what} line ({e}); got {:#?}", self.lines),
        }
    }

    /// Reads lines until one satisfies `pred`; returns its index.
    fn until(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> usize {
        loop {
            if let Some(i) = self.lines.iter().position(&pred) {
                return i;
            }
            self.read_line(what);
        }
    }

    /// Reads lines until `n` `event` lines arrived; returns the index of the last.
    fn until_count(&mut self, event: &str, n: usize) -> usize {
        while count(&self.lines, event) < n {
            self.read_line(event);
        }
        let mut idx = self
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l["event"] == event);
        idx.nth(n - 1).map(|(i, _)| i).expect("counted")
    }

    /// Sends `signal` (e.g. `INT`) and collects everything up to the exit.
    fn stop(mut self, signal: &str) -> (ExitStatus, Vec<Value>, String) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .expect("kill");
        assert!(sent.success());
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "wsinspect did not stop on SIG{signal}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        for l in self.stdout.iter() {
            self.lines
                .push(serde_json::from_str(&l).expect("JSON line"));
        }
        let err: Vec<String> = self.stderr.iter().collect();
        (status, self.lines, err.join("\n"))
    }
}

fn lines_of(r: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn node_peer(script: &str, scenarios: &Path, port: u16, log: &Path, extra: &[&str]) -> Child {
    let peers = sample("peers");
    assert!(
        peers.join("node_modules/ws").is_dir(),
        "the Node peers need their library: run `npm ci` in samples/peers"
    );
    Command::new("node")
        .arg(peers.join(script))
        .args(["--scenarios", scenarios.to_str().expect("utf-8 path")])
        .args(["--scenario", "live", "--port", &port.to_string()])
        .args(["--host", "127.0.0.1", "--log", log.to_str().expect("utf-8")])
        .args(extra)
        .stdout(Stdio::null())
        .spawn()
        .expect("node (install nodejs)")
}

/// Starts the scenario's Node server, waits until it listens, then its client (pushed in that
/// order, so `procs.0[len - 1]` is the client); their logs go to `logs` (client, server).
fn start_peers(procs: &mut Procs, scenarios: &Path, port: u16, logs: [&Path; 2], ready: &Path) {
    let ready_s = ready.to_str().expect("utf-8 path");
    let [client_log, server_log] = logs;
    procs.0.push(node_peer(
        "node_server.js",
        scenarios,
        port,
        server_log,
        &["--ready", ready_s],
    ));
    wait_file(ready);
    procs.0.push(node_peer(
        "node_client.js",
        scenarios,
        port,
        client_log,
        &[],
    ));
}

fn wait_exit(child: &mut Child, what: &str) -> ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s;
        }
        assert!(Instant::now() < deadline, "{what} did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_file(path: &Path) {
    let deadline = Instant::now() + PATIENCE;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A peer's log: one record per connection. The peer rewrites the file after every event, so
/// a read can catch it empty or half written: read again until it parses.
fn peer_log(path: &Path) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let bytes = std::fs::read(path).unwrap_or_default();
        if let Ok(Value::Array(records)) = serde_json::from_slice::<Value>(&bytes)
            && let Some(first) = records.first()
        {
            return first.clone();
        }
        assert!(Instant::now() < deadline, "no log in {}", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `(type, len, sha256)` of each message, as the peers log them.
fn logged(entries: &Value) -> Vec<(String, u64, String)> {
    entries
        .as_array()
        .expect("array")
        .iter()
        .map(|m| {
            (
                m["type"].as_str().expect("type").to_owned(),
                m["len"].as_u64().expect("len"),
                m["sha256"].as_str().expect("sha256").to_owned(),
            )
        })
        .collect()
}

/// The same from NDJSON `message` events of one direction (`--payloads full`).
fn seen(lines: &[Value], dir: &str) -> Vec<(String, u64, String)> {
    lines
        .iter()
        .filter(|l| l["event"] == "message" && l["dir"] == dir)
        .map(|m| {
            let bytes = payload_bytes(m);
            assert_eq!(m["len"].as_u64(), Some(bytes.len() as u64), "{m}");
            (
                m["type"].as_str().expect("type").to_owned(),
                bytes.len() as u64,
                hex::encode(Sha256::digest(&bytes)),
            )
        })
        .collect()
}

fn count(lines: &[Value], event: &str) -> usize {
    lines.iter().filter(|l| l["event"] == event).count()
}

/// A live test's scratch directory, its port, and the files the ws peers read and write there.
struct Scratch {
    port: u16,
    dir: PathBuf,
    gate: PathBuf,
    scenarios: PathBuf,
    client_log: PathBuf,
    server_log: PathBuf,
    ready: PathBuf,
}

impl Scratch {
    /// A fresh directory named after `name` and a free port.
    fn new(name: &str) -> Scratch {
        let port = free_port();
        let dir = temp_path(&format!("{name}-{port}"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Scratch {
            port,
            gate: dir.join("gate"),
            scenarios: dir.join("scenario.json"),
            client_log: dir.join("client.json"),
            server_log: dir.join("server.json"),
            ready: dir.join("ready"),
            dir,
        }
    }
}

/// The scenario both peers run: messages both ways (one fragmented, one 64-bit length, a
/// ping), then the client holds the connection open until `gate` exists, sends one more message
/// and closes with 4000.
fn scenario(gate: &Path, deflate: bool) -> Value {
    let pmd = if deflate {
        json!({"threshold": 0})
    } else {
        json!(false)
    };
    json!({"live": {
        "port": 0,
        "server": {"impl": "node", "perMessageDeflate": pmd, "protocols": ["chat.v1"],
            "connections": [{"steps": [
                {"send": {"text": "welcome"}},
                {"expect": 3},
                {"send": {"binary_len": 3000, "seed": 5}},
                {"send": {"json": 7}}
            ]}]},
        "client": {"impl": "node", "perMessageDeflate": pmd,
            "connections": [{"path": "/live?room=1", "protocols": ["chat.v1"], "steps": [
                {"expect": 1},
                {"send": {"text": "hello live"}},
                {"send": {"binary_len": 70000, "seed": 3}},
                {"ping": "abcd"},
                {"fragments": [{"text": "part one, "}, {"text": "part two"}]},
                {"expect": 3},
                {"wait_file": gate.to_str().expect("utf-8 path")},
                {"send": {"text": "after the gate"}},
                {"close": 4000, "reason": "live test done"}
            ]}]}
    }})
}

/// Runs the scenario while `wsinspect -i IFACE` captures; checks every event against the
/// peers' logs, and the `-w` file against the live output. Returns the capture's link type.
fn live_session(iface: &str, deflate: bool) -> u64 {
    let Scratch {
        port,
        dir,
        gate,
        scenarios,
        client_log,
        server_log,
        ready,
    } = Scratch::new(&format!("live-{iface}"));
    let saved = dir.join("saved.pcap");
    std::fs::write(&scenarios, scenario(&gate, deflate).to_string()).expect("scenario");

    let filter = format!("tcp port {port}");
    let saved_s = saved.to_str().expect("utf-8").to_owned();
    let mut cap = Capture::start(&[
        "-i",
        iface,
        "--bpf",
        &filter,
        "--ndjson",
        "--payloads",
        "full",
        "--duration",
        "60s",
        "--stats-interval",
        "1s",
        "-w",
        &saved_s,
    ]);
    let mut procs = Procs(Vec::new());
    start_peers(
        &mut procs,
        &scenarios,
        port,
        [&client_log, &server_log],
        &ready,
    );

    // Everything before the gate arrives while the client holds the connection open.
    let hs = cap.until("handshake", |l| l["event"] == "handshake");
    let sixth = cap.until_count("message", 6);
    assert!(hs < sixth);
    let client_now = peer_log(&client_log);
    assert!(
        client_now["close"].is_null(),
        "the connection is still open: {client_now}"
    );
    assert_eq!(count(&cap.lines, "connection_end"), 0);
    assert_eq!(count(&cap.lines, "close"), 0);
    std::fs::write(&gate, b"open\n").expect("gate");

    assert!(wait_exit(&mut procs.0[1], "client").success());
    assert!(wait_exit(&mut procs.0[0], "server").success());
    let client = peer_log(&client_log);
    let server = peer_log(&server_log);

    // Both close frames, and a periodic counter line, arrive before any stop is asked for.
    cap.until("second close", |l| {
        l["event"] == "close" && l["dir"] == "s2c"
    });
    cap.until("periodic stats", |l| {
        l["event"] == "stats" && l["final"] == false && l["packets"].as_u64() > Some(0)
    });
    let (status, lines, err) = cap.stop("INT");
    assert_eq!(status.code(), Some(0), "{err}");

    // The handshake as the client saw it.
    let h = &lines[hs]["handshake"];
    assert_eq!(h["status"], client["handshake"]["status"]);
    assert_eq!(h["subprotocol"], client["handshake"]["subprotocol"]);
    assert_eq!(h["extensions"], client["handshake"]["extensions"]);
    assert_eq!(h["path"], "/live?room=1");
    let open = lines
        .iter()
        .find(|l| l["event"] == "connection_open")
        .expect("connection_open");
    assert_eq!(
        open["client"],
        format!("127.0.0.1:{}", client["client_port"])
    );
    assert_eq!(open["server"], format!("127.0.0.1:{port}"));

    // Every message, in order, with the hashes the senders logged (and the receivers agree).
    assert_eq!(seen(&lines, "c2s"), logged(&client["sent"]));
    assert_eq!(seen(&lines, "s2c"), logged(&server["sent"]));
    assert_eq!(logged(&client["sent"]), logged(&server["received"]));
    assert_eq!(logged(&server["sent"]), logged(&client["received"]));
    assert_eq!(logged(&client["sent"]).len(), 4);
    if deflate {
        assert!(
            lines
                .iter()
                .any(|l| l["event"] == "message" && l["compressed"] == true),
            "deflate was negotiated: {h}"
        );
    }
    assert_eq!(count(&lines, "ping"), 1);
    assert_eq!(count(&lines, "pong"), 1);

    // The close codes both peers logged.
    let closes: Vec<&Value> = lines.iter().filter(|l| l["event"] == "close").collect();
    assert_eq!(closes.len(), 2, "{closes:?}");
    assert_eq!(closes[0]["dir"], "c2s");
    for (c, side) in closes.iter().zip([&server, &client]) {
        assert_eq!(c["code"], side["close"]["code"]);
        assert_eq!(c["reason"], side["close"]["reason"]);
    }
    assert_eq!(client["close"]["was_clean"], true);

    // The end: counters (final), the connection, the summary last.
    let last = lines.last().expect("lines");
    assert_eq!(last["event"], "capture_end");
    let stats: Vec<&Value> = lines.iter().filter(|l| l["event"] == "stats").collect();
    let fin = stats.last().expect("stats");
    assert_eq!(fin["final"], true);
    assert_eq!(stats.iter().filter(|s| s["final"] == true).count(), 1);
    let capture = &last["capture"];
    assert_eq!(capture["format"], "live");
    assert_eq!(capture["file"], iface);
    let mut fin_fields = (*fin).clone();
    fin_fields.as_object_mut().expect("object").remove("event");
    assert_eq!(capture["live"], fin_fields);
    assert_eq!(fin["packets"], capture["packets"]);
    assert!(fin["received"].as_u64() >= fin["packets"].as_u64());
    // A light load: the analysis keeps up and its queue drops nothing, on every stats line.
    for s in &stats {
        assert_eq!(s["dropped_queue"], 0, "{s}");
    }
    assert!(
        err.contains(&format!(
            "{} packets analysed",
            fin["packets"].as_u64().expect("packets")
        )) && err.contains(", 0 dropped by the analysis queue"),
        "{err}"
    );
    let end = lines
        .iter()
        .find(|l| l["event"] == "connection_end")
        .expect("connection_end");
    assert_eq!(end["diagnosis"]["kind"], "clean_close", "{end}");
    assert_eq!(last["summary"]["by_kind"]["clean_close"], 1);

    // The -w file holds what was analysed: the same packets and messages.
    let out = wsinspect(&[&saved_s, "--json", "--payloads", "full"]);
    assert_eq!(out.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["capture"]["packets"], capture["packets"]);
    assert_eq!(doc["capture"]["link_types"], capture["link_types"]);
    let messages = doc["connections"][0]["messages"]
        .as_array()
        .expect("messages");
    let live_messages: Vec<&Value> = lines.iter().filter(|l| l["event"] == "message").collect();
    assert_eq!(messages.len(), live_messages.len());
    for (a, b) in messages.iter().zip(live_messages) {
        assert_eq!(payload_bytes(a), payload_bytes(b));
    }
    std::fs::remove_dir_all(&dir).ok();
    capture["link_types"][0].as_u64().expect("link type")
}

#[test]
fn loopback_session_streams_as_it_happens_and_matches_the_peers() {
    assert_eq!(live_session("lo", true), 1);
}

#[test]
fn any_interface_is_linux_cooked() {
    let lt = live_session("any", false);
    assert!(lt == 276 || lt == 113, "link type {lt}");
}

/// The packets of a pcap file.
fn packets_in(path: &Path) -> u64 {
    let mut reader = wsinspect::capture::CaptureReader::open(path).expect("a pcap file");
    let mut n = 0;
    while reader.next_packet().expect("a whole file").is_some() {
        n += 1;
    }
    n
}

/// A queue too small for any packet: the analysis gets none, every one is counted as dropped
/// by the queue, and the `-w` file, written by the capture thread, still holds them all.
#[test]
fn a_full_queue_drops_and_counts_while_w_keeps_every_packet() {
    let Scratch {
        port,
        dir,
        gate,
        scenarios,
        client_log,
        server_log,
        ready,
    } = Scratch::new("live-queue");
    let saved = dir.join("saved.pcap");
    std::fs::write(&gate, b"open\n").expect("gate");
    std::fs::write(&scenarios, scenario(&gate, false).to_string()).expect("scenario");
    let filter = format!("tcp port {port}");
    let saved_s = saved.to_str().expect("utf-8").to_owned();
    let cap = Capture::start(&[
        "-i",
        "lo",
        "--bpf",
        &filter,
        "--ndjson",
        "--queue-size",
        "1",
        "-w",
        &saved_s,
        "--duration",
        "60s",
    ]);
    let mut procs = Procs(Vec::new());
    start_peers(
        &mut procs,
        &scenarios,
        port,
        [&client_log, &server_log],
        &ready,
    );
    assert!(wait_exit(&mut procs.0[1], "client").success());
    assert!(wait_exit(&mut procs.0[0], "server").success());
    let (client, server) = (peer_log(&client_log), peer_log(&server_log));
    // The capture thread has read the last packets once it is idle; give it that moment.
    std::thread::sleep(Duration::from_millis(500));
    let (status, lines, err) = cap.stop("INT");
    assert_eq!(status.code(), Some(0), "{err}");

    let types: Vec<&str> = lines.iter().filter_map(|l| l["event"].as_str()).collect();
    assert_eq!(types, ["stats", "capture_end"], "nothing was analysed");
    let fin = &lines[0];
    assert_eq!(fin["packets"], 0);
    assert_eq!(fin["bytes"], 0);
    let dropped = fin["dropped_queue"].as_u64().expect("dropped_queue");
    assert_eq!(
        dropped,
        packets_in(&saved),
        "every packet captured was dropped"
    );
    assert!(
        dropped >= 10,
        "a WebSocket session is more packets than {dropped}"
    );
    assert_eq!(lines[1]["capture"]["live"]["dropped_queue"], dropped);
    assert!(
        err.contains(&format!("{dropped} dropped by the analysis queue")),
        "{err}"
    );

    // What the queue dropped, the -w file has: the whole session, as the peers logged it.
    let out = wsinspect(&[&saved_s, "--json", "--payloads", "full"]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let conns = doc["connections"].as_array().expect("connections");
    assert_eq!(conns.len(), 1);
    let messages = conns[0]["messages"].as_array().expect("messages");
    let sent = |side: &Value| side["sent"].as_array().expect("sent").len();
    assert_eq!(messages.len(), sent(&client) + sent(&server));
    assert_eq!(conns[0]["diagnosis"]["kind"], "clean_close");
    std::fs::remove_dir_all(&dir).ok();
}

/// A burst of tiny messages into a small queue, read while the analysis is busy: whatever the
/// queue had to drop, every `stats` line adds up to what was captured, and the counters only
/// grow.
#[test]
fn burst_into_a_small_queue_keeps_the_counts_whole() {
    let port = free_port();
    let dir = temp_path(&format!("live-burst-{port}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (saved, events) = (dir.join("saved.pcap"), dir.join("events.ndjson"));
    let filter = format!("tcp port {port}");
    let saved_s = saved.to_str().expect("utf-8").to_owned();
    let cap = Capture::start(&[
        "-i",
        "lo",
        "--bpf",
        &filter,
        "--ndjson",
        "--payloads",
        "none",
        // An event per message: too many lines to read back here, so they go to a file.
        "-o",
        events.to_str().expect("utf-8"),
        "--queue-size",
        "300000",
        "--stats-interval",
        "200ms",
        "-w",
        &saved_s,
        "--duration",
        "60s",
    ]);
    assert!(
        sample("peers/node_modules/ws").is_dir(),
        "the load generator needs the peers' library: run `npm ci` in samples/peers"
    );
    let generator = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/live-load.js");
    let mut procs = Procs(vec![
        Command::new("node")
            .arg(generator)
            .args(["--port", &port.to_string(), "--conns", "16", "--size", "64"])
            .args(["--seconds", "2"])
            .stdout(Stdio::null())
            .spawn()
            .expect("node (install nodejs)"),
    ]);
    assert!(wait_exit(&mut procs.0[0], "the load generator").success());
    std::thread::sleep(Duration::from_millis(500));
    let (status, _, err) = cap.stop("INT");
    assert_eq!(status.code(), Some(0), "{err}");

    let text = std::fs::read_to_string(&events).expect("events");
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| l.contains("\"event\":\"stats\"") || l.contains("\"event\":\"capture_end\""))
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let stats: Vec<&Value> = lines.iter().filter(|l| l["event"] == "stats").collect();
    let n = |s: &Value, field: &str| s[field].as_u64().unwrap_or_else(|| panic!("{field}: {s}"));
    let fin = *stats.last().expect("stats");
    assert_eq!(fin["final"], true);
    assert!(
        stats.len() >= 3,
        "periodic lines while the load ran: {}",
        stats.len()
    );
    let captured = packets_in(&saved);
    assert!(n(fin, "packets") > 0, "{fin}");
    assert_eq!(
        n(fin, "packets") + n(fin, "dropped_queue"),
        captured,
        "analysed + dropped by the queue = captured: {fin}"
    );
    for pair in stats.windows(2) {
        for field in ["packets", "dropped_queue", "received", "dropped_kernel"] {
            assert!(n(pair[0], field) <= n(pair[1], field), "{field}: {pair:?}");
        }
    }
    let last = lines.last().expect("lines");
    assert_eq!(last["capture"]["packets"], fin["packets"]);
    std::fs::remove_dir_all(&dir).ok();
}

/// Runs wsinspect with `args` and returns (status, stderr).
fn fails(args: &[&str]) -> (Option<i32>, String) {
    let out = wsinspect(args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_filter_is_one_line_and_exit_2() {
    let (code, err) = fails(&["-i", "lo", "--bpf", "tcp port", "--duration", "1s"]);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bad BPF filter \"tcp port\""), "{err}");
}

#[test]
fn unknown_interface_is_one_line_and_exit_2() {
    let (code, err) = fails(&["-i", "nosuch0", "--duration", "1s"]);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no interface named \"nosuch0\""), "{err}");
}

#[test]
fn no_permission_is_one_line_naming_setcap() {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wsinspect"));
    cmd.args(["-i", "lo", "--duration", "1s"]);
    if nix::unistd::geteuid().is_root() {
        // As nobody: no CAP_NET_RAW.
        cmd.uid(65534).gid(65534);
    }
    let out = cmd.output().expect("run wsinspect");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no permission to capture on lo"), "{err}");
    assert!(
        err.contains("setcap cap_net_raw,cap_net_admin=eip"),
        "{err}"
    );
}

#[test]
fn unknown_user_stops_before_capturing() {
    let (code, err) = fails(&["-i", "lo", "--user", "no-such-user-x", "--duration", "1s"]);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot drop privileges to user \"no-such-user-x\""),
        "{err}"
    );
}

/// After `--user`, files are created as that user; SIGTERM stops as cleanly as SIGINT, and a
/// quiet interface still ends with the counters and the summary.
#[test]
fn user_owns_the_files_and_sigterm_stops_cleanly() {
    use std::os::unix::fs::MetadataExt;
    let dir: PathBuf = temp_path("live-user");
    std::fs::create_dir_all(&dir).expect("dir");
    // Writable by the user the capture becomes.
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o1777))
        .expect("chmod");
    let saved = dir.join("saved.pcap");
    let filter = format!("tcp port {}", free_port());
    let root = nix::unistd::geteuid().is_root();
    let me = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .expect("user")
        .expect("named");
    let user = if root { "nobody" } else { me.name.as_str() };
    let target = nix::unistd::User::from_name(user)
        .expect("user")
        .expect("known");
    let cap = Capture::start(&[
        "-i",
        "lo",
        "--bpf",
        &filter,
        "--user",
        user,
        "-w",
        saved.to_str().expect("utf-8"),
        "--ndjson",
        "--duration",
        "60s",
    ]);
    let (status, lines, err) = cap.stop("TERM");
    assert_eq!(status.code(), Some(0), "{err}");
    assert_eq!(saved.metadata().expect("saved").uid(), target.uid.as_raw());
    let types: Vec<&str> = lines.iter().filter_map(|l| l["event"].as_str()).collect();
    assert_eq!(types, ["stats", "capture_end"]);
    assert_eq!(lines[1]["capture"]["connections"], 0);
    let out = wsinspect(&[saved.to_str().expect("utf-8"), "--json"]);
    assert_eq!(out.status.code(), Some(0));
    std::fs::remove_dir_all(&dir).ok();
}

/// `GET path` on a loopback HTTP server; the body, or `None` when nothing answers yet.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    head.contains(" 200 ").then(|| body.to_owned())
}

/// Percent-encodes a PromQL query for a URL.
fn urlencode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value Prometheus stores for an instant query (summed over series), if any.
fn prom_value(port: u16, query: &str) -> Option<f64> {
    let body = http_get(port, &format!("/api/v1/query?query={}", urlencode(query)))?;
    let v: Value = serde_json::from_str(&body).ok()?;
    let result = v["data"]["result"].as_array()?;
    let first = result.first()?;
    first["value"][1].as_str()?.parse().ok()
}

/// A real Prometheus server scrapes `wsinspect -i lo --metrics` while real ws peers talk; the
/// counters it stores match what the peers logged.
#[test]
fn prometheus_scrapes_the_counts_the_peers_logged() {
    let prometheus = Command::new("prometheus").arg("--version").output();
    assert!(
        prometheus.is_ok_and(|o| o.status.success()),
        "this test needs a Prometheus server: apt-get install prometheus (.ci/run does)"
    );
    let (port, metrics_port, prom_port) = (free_port(), free_port(), free_port());
    let dir = temp_path(&format!("prometheus-{port}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (gate, scenarios) = (dir.join("gate"), dir.join("scenario.json"));
    let (client_log, server_log) = (dir.join("client.json"), dir.join("server.json"));
    let ready = dir.join("ready");
    // No holding back here: the client runs its scenario through.
    std::fs::write(&gate, b"open\n").expect("gate");
    std::fs::write(&scenarios, scenario(&gate, true).to_string()).expect("scenario");

    let filter = format!("tcp port {port}");
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let mut cap = Capture::start(&[
        "-i",
        "lo",
        "--bpf",
        &filter,
        "--ndjson",
        "--metrics",
        &metrics_addr,
        "--duration",
        "90s",
        "--stats-interval",
        "1s",
    ]);
    let deadline = Instant::now() + PATIENCE;
    while http_get(metrics_port, "/metrics").is_none() {
        assert!(Instant::now() < deadline, "wsinspect never served /metrics");
        std::thread::sleep(Duration::from_millis(50));
    }

    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: wsinspect\n    static_configs:\n      - targets: ['{metrics_addr}']\n"
        ),
    )
    .expect("config");
    let mut procs = Procs(Vec::new());
    procs.0.push(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    // Prometheus is up and has scraped wsinspect at least once.
    let deadline = Instant::now() + Duration::from_secs(60);
    while prom_value(prom_port, "up{job=\"wsinspect\"}") != Some(1.0) {
        assert!(
            Instant::now() < deadline,
            "Prometheus never scraped wsinspect"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    start_peers(
        &mut procs,
        &scenarios,
        port,
        [&client_log, &server_log],
        &ready,
    );
    assert!(wait_exit(&mut procs.0[2], "client").success());
    assert!(wait_exit(&mut procs.0[1], "server").success());
    let client = peer_log(&client_log);
    let server = peer_log(&server_log);
    // The connection has ended in wsinspect's eyes (after its close linger).
    cap.until("connection_end", |l| l["event"] == "connection_end");

    // What Prometheus stored, against the peers' logs.
    let mut want: Vec<(String, f64)> = Vec::new();
    for (side, dir) in [(&client, "c2s"), (&server, "s2c")] {
        for ty in ["text", "binary"] {
            let sent: Vec<&Value> = side["sent"]
                .as_array()
                .expect("sent")
                .iter()
                .filter(|m| m["type"] == ty)
                .collect();
            if sent.is_empty() {
                continue;
            }
            let bytes: u64 = sent.iter().filter_map(|m| m["len"].as_u64()).sum();
            want.push((
                format!("wsinspect_messages_total{{dir=\"{dir}\",type=\"{ty}\"}}"),
                sent.len() as f64,
            ));
            want.push((
                format!("wsinspect_message_bytes_total{{dir=\"{dir}\",type=\"{ty}\"}}"),
                bytes as f64,
            ));
        }
    }
    for (side, name) in [(&client, "client"), (&server, "server")] {
        let code = side["close"]["code"].as_u64().expect("a logged close code");
        want.push((
            format!("wsinspect_close_observed_total{{side=\"{name}\",code=\"{code}\"}}"),
            1.0,
        ));
    }
    want.push((
        "wsinspect_connections_ended_total{kind=\"clean_close\"}".into(),
        1.0,
    ));
    want.push(("wsinspect_connections_open".into(), 0.0));
    want.push(("wsinspect_ping_rtt_seconds_count".into(), 1.0));
    let deadline = Instant::now() + Duration::from_secs(30);
    for (query, value) in &want {
        loop {
            let got = prom_value(prom_port, query);
            if got == Some(*value) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus has {query} = {got:?}, the peers logged {value}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    let dropped = prom_value(prom_port, "sum(wsinspect_capture_dropped_packets_total)");
    assert_eq!(
        dropped,
        Some(0.0),
        "capture drops are exported (and none here)"
    );
    let (status, _, err) = cap.stop("INT");
    assert_eq!(status.code(), Some(0), "{err}");
    drop(procs);
    std::fs::remove_dir_all(&dir).ok();
}

/// `wsinspect -i lo` on a terminal opens the UI and follows the capture: a connection made
/// after it started appears in it, still open, then ended; `q` stops the capture cleanly.
#[test]
fn terminal_ui_follows_a_live_capture() {
    let Scratch {
        port,
        dir,
        gate,
        scenarios,
        client_log,
        server_log,
        ready,
    } = Scratch::new("live-tui");
    let exited = dir.join("exited");
    std::fs::write(&scenarios, scenario(&gate, false).to_string()).expect("scenario");

    let cmd = format!(
        "TERM=xterm-256color {} -i lo --bpf 'tcp port {port}'; echo $? > {}; sleep 30",
        shell_quote(env!("CARGO_BIN_EXE_wsinspect")),
        shell_quote(&exited.display().to_string())
    );
    let term = Tmux::start(&format!("live-{port}"), 130, 36, &cmd);
    term.wait_for("the UI on the interface", PATIENCE, &|s| {
        s.contains("live: lo")
    });

    let mut procs = Procs(Vec::new());
    start_peers(
        &mut procs,
        &scenarios,
        port,
        [&client_log, &server_log],
        &ready,
    );
    // The client holds the connection open at the gate: the row is there, not yet ended.
    let s = term.wait_for("the open connection", PATIENCE, &|s| {
        s.contains("/live?room=1")
    });
    assert!(!s.contains("clean_close"), "{s}");
    std::fs::write(&gate, b"open\n").expect("gate");
    assert!(wait_exit(&mut procs.0[1], "client").success());
    let s = term.wait_for("the ended connection", PATIENCE, &|s| {
        s.contains("clean_close")
    });
    assert!(s.contains("4000/4000"), "both sides saw 4000: {s}");
    term.keys(&["q"]);
    let code = shell_exit_status(&exited, PATIENCE);
    assert_eq!(code, "0", "wsinspect exits 0 after q");
    std::fs::remove_dir_all(&dir).ok();
}
