//! The command line as people meet it: help, version, completions, the manual page, colour,
//! selection of connections (`--conn`, `--since`, `--until`, `--filter`) and usage errors.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::util::{sample, wsinspect};

fn stdout(args: &[&str]) -> String {
    let out = wsinspect(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn ndjson(args: &[&str]) -> Vec<Value> {
    stdout(args)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

fn json_ids(doc: &Value) -> Vec<u64> {
    let mut ids: Vec<u64> = doc["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .filter_map(|c| c["id"].as_u64())
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn help_groups_options_and_teaches_by_example() {
    let help = stdout(&["--help"]);
    for heading in [
        "Input:",
        "Output:",
        "Selection:",
        "Analysis:",
        "Limits:",
        "Examples:",
    ] {
        assert!(help.contains(heading), "no {heading} in --help:\n{help}");
    }
    // Every example names an option that exists, so the examples cannot rot.
    let examples = &help[help.find("Examples:").expect("examples")..];
    for line in examples
        .lines()
        .filter(|l| l.trim_start().starts_with("wsinspect "))
    {
        for word in line.split_whitespace().filter(|w| w.starts_with("--")) {
            assert!(
                help[..help.find("Examples:").unwrap_or(0)].contains(word),
                "example uses {word}, which --help does not list"
            );
        }
    }
    assert!(help.contains("Exit status"), "{help}");
}

#[test]
fn version_names_the_crate_version_and_features() {
    let v = stdout(&["--version"]);
    assert!(
        v.starts_with(&format!("wsinspect {}", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
    let features = v
        .lines()
        .find_map(|l| l.strip_prefix("features: "))
        .expect("a features line");
    assert_eq!(
        features.split(", ").any(|f| f == "live"),
        cfg!(feature = "live"),
        "{v}"
    );
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = stdout(&["completions", shell]);
        assert!(script.contains("wsinspect"), "{shell}");
        assert!(script.contains("ndjson"), "{shell} completes options");
    }
    // The bash script must at least parse.
    let script = stdout(&["completions", "bash"]);
    if let Ok(mut child) = Command::new("bash")
        .args(["-n"])
        .stdin(Stdio::piped())
        .spawn()
    {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes())
            .expect("write");
        assert!(
            child.wait().expect("bash").success(),
            "bash -n rejects the completions"
        );
    }
    let out = wsinspect(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn committed_man_page_is_current() {
    let man = stdout(&["man"]);
    assert!(man.contains(".TH wsinspect 1"), "not roff");
    let committed =
        std::fs::read_to_string(sample("../docs/wsinspect.1")).expect("docs/wsinspect.1");
    assert!(
        committed == man,
        "docs/wsinspect.1 is stale: regenerate it with `cargo run -- man > docs/wsinspect.1`"
    );
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let file = sample("node-basic.pcap");
    let file = file.to_str().expect("path");
    let always = stdout(&[file, "--color", "always"]);
    assert!(always.contains("\x1b[32mclean_close\x1b[0m"), "{always}");
    // Into a pipe, `auto` means none.
    let auto = stdout(&[file]);
    assert!(!auto.contains('\x1b'));
    assert_eq!(auto, stdout(&[file, "--color", "never"]));
    // Colour never reaches the machine formats.
    assert!(!stdout(&[file, "--ndjson", "--color", "always"]).contains("\\u001b[3"));
}

#[test]
fn conn_selects_connections_in_every_format() {
    let file = sample("app-close-codes.pcap");
    let file = file.to_str().expect("path");
    let all: Value = serde_json::from_str(&stdout(&[file, "--json"])).expect("JSON");
    assert_eq!(json_ids(&all), [1, 2, 3]);
    assert!(all["capture"].get("selected").is_none());

    let two: Value = serde_json::from_str(&stdout(&[file, "--json", "--conn", "2"])).expect("JSON");
    assert_eq!(json_ids(&two), [2]);
    assert_eq!(two["capture"]["selected"], 1);
    assert_eq!(
        two["capture"]["connections"], 3,
        "the capture summary still counts all"
    );
    let same = all["connections"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == 2))
        .expect("#2");
    assert_eq!(
        &two["connections"][0], same,
        "a selected connection is reported whole"
    );

    let lines = ndjson(&[file, "--ndjson", "--conn", "1,3"]);
    let conns: std::collections::BTreeSet<u64> =
        lines.iter().filter_map(|e| e["conn"].as_u64()).collect();
    assert_eq!(conns.into_iter().collect::<Vec<_>>(), [1, 3]);
    assert_eq!(lines.last().expect("lines")["capture"]["selected"], 2);

    let text = stdout(&[file, "--conn", "3"]);
    assert!(
        text.contains("#3 ") && !text.contains("#1 ") && !text.contains("#2 "),
        "{text}"
    );
}

#[test]
fn since_and_until_cut_by_time() {
    let file = sample("app-close-codes.pcap");
    let file = file.to_str().expect("path");
    let all: Value = serde_json::from_str(&stdout(&[file, "--json"])).expect("JSON");
    let conns = all["connections"].as_array().expect("connections");
    let first = all["capture"]["first_ts"].as_f64().expect("first_ts");
    let start = |id: u64| {
        conns.iter().find(|c| c["id"] == id).expect("conn")["start_ts"]
            .as_f64()
            .expect("start")
    };
    let end = |id: u64| {
        conns.iter().find(|c| c["id"] == id).expect("conn")["end_ts"]
            .as_f64()
            .expect("end")
    };
    // A moment between the end of #1 and the start of #3, as an offset and as a time.
    let cut = (end(1) + start(3)) / 2.0;
    assert!(end(1) < cut && cut < start(3));
    let offset = format!("{}us", ((cut - first) * 1e6) as u64);
    let since: Value =
        serde_json::from_str(&stdout(&[file, "--json", "--since", &offset])).expect("JSON");
    let expect_since: Vec<u64> = [1, 2, 3].into_iter().filter(|&id| end(id) >= cut).collect();
    assert_eq!(json_ids(&since), expect_since);
    let until: Value =
        serde_json::from_str(&stdout(&[file, "--json", "--until", &offset])).expect("JSON");
    let expect_until: Vec<u64> = [1, 2, 3]
        .into_iter()
        .filter(|&id| start(id) <= cut)
        .collect();
    assert_eq!(json_ids(&until), expect_until);
    assert_ne!(expect_since, expect_until);

    // Events outside the window are left out of the stream.
    for e in ndjson(&[file, "--ndjson", "--since", &offset]) {
        if matches!(
            e["event"].as_str(),
            Some("message" | "close" | "tcp" | "ping" | "pong")
        ) {
            assert!(e["ts"].as_f64().expect("ts") >= cut - 1e-6, "{e}");
        }
    }

    // The same instant written as RFC 3339.
    let secs = cut.floor();
    let micros = ((cut - secs) * 1e6).round() as u64;
    let at = humantime::format_rfc3339_micros(
        std::time::UNIX_EPOCH + std::time::Duration::new(secs as u64, (micros * 1000) as u32),
    )
    .to_string();
    let since_at: Value =
        serde_json::from_str(&stdout(&[file, "--json", "--since", &at])).expect("JSON");
    assert_eq!(json_ids(&since_at), expect_since);

    let bad = wsinspect(&[file, "--since", "yesterday-ish"]);
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&bad.stderr).lines().count(), 1);
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["--no-such-flag"][..],
        &[][..],
        &["samples/x.pcap", "--json", "--ndjson"][..],
        &["samples/x.pcap", "--color", "sometimes"][..],
        &["samples/x.pcap", "--conn", "two"][..],
    ] {
        let out = wsinspect(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?} says why");
    }
}

/// The connections of a sample's full document that `keep` says yes to.
fn expected_ids(file: &str, keep: impl Fn(&Value) -> bool) -> Vec<u64> {
    let doc: Value = serde_json::from_str(&stdout(&[file, "--json"])).expect("JSON");
    let mut ids: Vec<u64> = doc["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .filter(|c| keep(c))
        .filter_map(|c| c["id"].as_u64())
        .collect();
    ids.sort_unstable();
    ids
}

fn codes(c: &Value) -> Vec<u64> {
    let d = &c["diagnosis"];
    let mut out: Vec<u64> = c["close"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["code"].as_u64())
        .collect();
    out.extend(d["client_observed_code"].as_u64());
    out.extend(d["server_observed_code"].as_u64());
    out
}

/// Which connections a query should keep, judged from the full document.
type Keep = Box<dyn Fn(&Value) -> bool>;

#[test]
fn filter_selects_what_the_query_says_on_every_sample() {
    let mut hits = 0;
    for entry in std::fs::read_dir(sample("")).expect("samples") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "pcap") {
            continue;
        }
        let file = path.to_str().expect("path");
        let cases: [(&str, Keep); 5] = [
            ("code:1006", Box::new(|c: &Value| codes(c).contains(&1006))),
            (
                "kind:rst_without_close",
                Box::new(|c: &Value| c["diagnosis"]["kind"] == "rst_without_close"),
            ),
            (
                "-verdict:clean",
                Box::new(|c: &Value| {
                    c["diagnosis"]["abnormal"] == true
                        || !c["anomalies"].as_array().is_none_or(Vec::is_empty)
                }),
            ),
            (
                "port:9112",
                Box::new(|c: &Value| {
                    [&c["client"], &c["server"]]
                        .iter()
                        .any(|a| a.as_str().is_some_and(|a| a.ends_with(":9112")))
                }),
            ),
            (
                "path:/",
                Box::new(|c: &Value| {
                    c["handshake"]["path"]
                        .as_str()
                        .is_some_and(|p| p.contains('/'))
                }),
            ),
        ];
        for (query, keep) in cases {
            let want = expected_ids(file, keep);
            let doc: Value =
                serde_json::from_str(&stdout(&[file, "--json", "--filter", query])).expect("JSON");
            assert_eq!(json_ids(&doc), want, "{file} --filter {query}");
            assert_eq!(
                doc["capture"]["selected"],
                want.len(),
                "{file} --filter {query}"
            );
            hits += want.len();
            // NDJSON holds the same connections, each whole (open to end).
            let lines = ndjson(&[file, "--ndjson", "--filter", query]);
            let ends: Vec<u64> = lines
                .iter()
                .filter(|e| e["event"] == "connection_end")
                .filter_map(|e| e["conn"].as_u64())
                .collect();
            let mut sorted = ends.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, want, "{file} --ndjson --filter {query}");
            for id in &want {
                assert!(
                    lines
                        .iter()
                        .any(|e| e["event"] == "connection_open" && e["conn"] == *id),
                    "{file} {query}: #{id} has its open"
                );
            }
        }
    }
    assert!(
        hits > 10,
        "the queries select something across the samples ({hits})"
    );
}

#[test]
fn a_bad_filter_is_one_line_and_exit_2() {
    let file = sample("node-basic.pcap");
    let out = wsinspect(&[file.to_str().expect("path"), "--filter", "kind:sideways"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("rst_without_close"), "lists the kinds: {err}");
}

#[test]
fn host_filter_uses_the_tls_server_name_when_there_are_no_keys() {
    let file = sample("wss-node-tls13-chacha-sigkill.pcap");
    let file = file.to_str().expect("path");
    let doc: Value = serde_json::from_str(&stdout(&[file, "--json"])).expect("JSON");
    let sni = doc["connections"][0]["tls"]["sni"]
        .as_str()
        .expect("the ClientHello names the server")
        .to_owned();
    assert!(
        doc["connections"][0]["handshake"].is_null(),
        "not decrypted"
    );
    let hit: Value = serde_json::from_str(&stdout(&[
        file,
        "--json",
        "--filter",
        &format!("host:{sni}"),
    ]))
    .expect("JSON");
    assert_eq!(json_ids(&hit), [1]);
    let miss: Value = serde_json::from_str(&stdout(&[
        file,
        "--json",
        "--filter",
        "host:elsewhere.example",
    ]))
    .expect("JSON");
    assert!(json_ids(&miss).is_empty());
}
