//! The command line: exit codes, error lines, truncation, and the three output forms.

use serde_json::Value;

use crate::util::{corpus, sample, temp_path, wsinspect};

#[test]
fn missing_file_is_one_line_and_exit_2() {
    let out = wsinspect(&["no/such/capture.pcap"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no/such/capture.pcap"), "{err}");
    // The operating system's reason, said once.
    assert_eq!(err.matches("os error").count(), 1, "{err}");
}

#[test]
fn not_a_capture_is_exit_2() {
    let path = temp_path("garbage.pcap");
    std::fs::write(&path, b"this is not a packet capture at all, just text\n").unwrap();
    let out = wsinspect(&[path.to_str().unwrap()]);
    std::fs::remove_file(&path).ok();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a pcap"));
}

#[test]
fn unsupported_link_type_is_exit_2() {
    // A valid pcap header declaring link type 147 (a user DLT).
    let mut hdr = Vec::new();
    hdr.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    hdr.extend_from_slice(&2u16.to_le_bytes());
    hdr.extend_from_slice(&4u16.to_le_bytes());
    hdr.extend_from_slice(&[0; 8]);
    hdr.extend_from_slice(&65535u32.to_le_bytes());
    hdr.extend_from_slice(&147u32.to_le_bytes());
    let path = temp_path("dlt147.pcap");
    std::fs::write(&path, &hdr).unwrap();
    let out = wsinspect(&[path.to_str().unwrap()]);
    std::fs::remove_file(&path).ok();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("link type 147"));
}

#[test]
fn truncated_capture_keeps_everything_before_the_cut() {
    let full = std::fs::read(corpus("zeek/two-binary-fragments.pcap")).unwrap();
    let whole: Value = serde_json::from_slice(
        &wsinspect(&[
            corpus("zeek/two-binary-fragments.pcap").to_str().unwrap(),
            "--json",
        ])
        .stdout,
    )
    .unwrap();
    // Cut in the middle of the last packet record.
    let path = temp_path("cut.pcap");
    std::fs::write(&path, &full[..full.len() - 20]).unwrap();
    let out = wsinspect(&[path.to_str().unwrap(), "--json"]);
    std::fs::remove_file(&path).ok();
    assert_eq!(out.status.code(), Some(0));
    let cut: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cut["capture"]["truncated"], true);
    assert_eq!(whole["capture"]["truncated"], false);
    assert_eq!(
        cut["capture"]["packets"].as_u64().unwrap() + 1,
        whole["capture"]["packets"].as_u64().unwrap()
    );
    // Every message before the cut is still there.
    assert_eq!(
        cut["connections"][0]["messages"],
        whole["connections"][0]["messages"]
    );
}

#[test]
fn ndjson_is_one_event_per_line_ending_with_the_capture() {
    let out = wsinspect(&[
        corpus("zeek/reply-ping-separate.pcap").to_str().unwrap(),
        "--ndjson",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let types: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(types.first(), Some(&"connection_open"));
    assert_eq!(types.last(), Some(&"capture_end"));
    assert_eq!(types[types.len() - 2], "connection_end");
    for t in ["handshake", "message", "ping", "pong", "close"] {
        assert!(types.contains(&t), "no {t} event in {types:?}");
    }
    // Events come in capture order.
    let ts: Vec<f64> = lines
        .iter()
        .filter(|l| l["event"] != "capture_end" && l["event"] != "connection_open")
        .map(|l| l["ts"].as_f64().unwrap())
        .collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{ts:?}");
}

#[test]
fn text_summary_names_the_close_codes() {
    let out = wsinspect(&[corpus("zeek/message-too-big-status.pcap").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("1009 message_too_big"), "{text}");
    assert!(text.contains("1 WebSocket connection"), "{text}");
}

#[test]
fn gzip_capture_reads_the_same() {
    use std::io::Write;
    let raw = std::fs::read(corpus("zeek/two-binary-fragments.pcap")).unwrap();
    let path = temp_path("cap.pcap.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).unwrap();
    std::fs::write(&path, gz.finish().unwrap()).unwrap();
    let b: Value = serde_json::from_slice(
        &wsinspect(&[
            corpus("zeek/two-binary-fragments.pcap").to_str().unwrap(),
            "--json",
        ])
        .stdout,
    )
    .unwrap();
    // One thread decompresses on a thread of its own when there is a second core; two workers
    // on two cores do not.
    for threads in ["1", "2"] {
        let out = wsinspect(&[path.to_str().unwrap(), "--json", "--threads", threads]);
        let a: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(a["connections"], b["connections"], "--threads {threads}");
        assert_eq!(a["capture"]["gzip"], true);
    }
    std::fs::remove_file(&path).ok();
}

#[test]
fn standard_input_reads_the_same_as_the_file() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let path = corpus("zeek/two-binary-fragments.pcap");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsinspect"))
        .args(["-", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(&path).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let from_stdin: Value = serde_json::from_slice(&out.stdout).unwrap();
    let from_file: Value =
        serde_json::from_slice(&wsinspect(&[path.to_str().unwrap(), "--json"]).stdout).unwrap();
    assert_eq!(from_stdin["connections"], from_file["connections"]);
    assert_eq!(from_stdin["capture"]["file"], "-");
}

#[test]
fn payloads_none_and_frames_flag() {
    let path = corpus("zeek/two-binary-fragments.pcap");
    let none: Value = serde_json::from_slice(
        &wsinspect(&[path.to_str().unwrap(), "--json", "--payloads", "none"]).stdout,
    )
    .unwrap();
    let m = &none["connections"][0]["messages"][0];
    assert!(
        m.get("preview").is_none() && m.get("payload").is_none(),
        "{m}"
    );
    assert!(
        none["connections"][0].get("frames").is_none(),
        "frames only with --frames"
    );
    let frames: Value =
        serde_json::from_slice(&wsinspect(&[path.to_str().unwrap(), "--json", "--frames"]).stdout)
            .unwrap();
    assert_eq!(
        frames["connections"][0]["frames"].as_array().unwrap().len(),
        7
    );
}

#[test]
fn a_full_disk_is_an_output_error_not_a_read_error() {
    use std::process::{Command, Stdio};
    let path = sample("node-deflate-takeover.pcap");
    for threads in ["1", "2"] {
        for mode in ["--json", "--ndjson", "--no-tui"] {
            // Linux's always-full device: every write fails with ENOSPC.
            let full = std::fs::File::create("/dev/full").unwrap();
            let out = Command::new(env!("CARGO_BIN_EXE_wsinspect"))
                .args([path.to_str().unwrap(), mode, "--threads", threads])
                .stdout(Stdio::from(full))
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{mode} {threads}: {err}");
            assert!(
                err.contains("cannot write the output") && !err.contains("read error"),
                "{mode} {threads}: {err}"
            );
        }
    }
}
