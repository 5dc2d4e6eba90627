//! Tests of head parsing, body framing and the accept check: takes handshakes (RFC examples and
//! verbatim ones from the public capture corpus) and gives pass/fail.

use super::*;
use proptest::prelude::*;

const MAX: usize = 16 * 1024;

/// The opening handshake of corpus zeek/wrong-accept-header.pcap (Python websockets 12.0).
const ZEEK_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost:8080\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: VMueuJIhu60C0hDKL+vS6g==\r\nSec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
Sec-WebSocket-Protocol: v1\r\nUser-Agent: Python/3.10 websockets/12.0\r\n\r\n";
/// Its reply: the right accept value with `-wrong` appended.
const ZEEK_RESPONSE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\n\
upgrade: websocket\r\nsec-websocket-accept: N8ntNYkX6Qerw4tK3s/CYzpSZNc=-wrong\r\n\
sec-websocket-protocol: v1\r\n\r\n";
/// The server's first frame, a ping with payload `Zeek`, which follows the reply.
const ZEEK_PING: &[u8] = b"\x89\x04Zeek";

/// The five attempts of corpus scapy-pr4579/websocket_invalid_handshakes.pcap, in order. The
/// first four replies end their `Upgrade` line with a bare LF, as sent.
const SCAPY: [(&[u8], &[u8]); 5] = [
    (
        b"POST / HTTP/1.1\r\nHost: localhost:5000\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: qahP4HKA9p47jHXBgcoaKg==\r\n\r\n",
        SCAPY_REPLY_WEBSOCKETS,
    ),
    (
        b"GET / HTTP/1.1\r\nHost: localhost:5000\r\nUpgrade: websockets\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: qahP4HKA9p47jHXBgcoaKg==\r\n\r\n",
        SCAPY_REPLY_WEBSOCKETS,
    ),
    (
        b"GET / HTTP/1.1\r\nHost: localhost:5000\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        SCAPY_REPLY_WEBSOCKETS,
    ),
    (SCAPY_GOOD_REQUEST, SCAPY_REPLY_WEBSOCKETS),
    (
        SCAPY_GOOD_REQUEST,
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: invalid=\r\n\r\n",
    ),
];
const SCAPY_GOOD_REQUEST: &[u8] =
    b"GET / HTTP/1.1\r\nHost: localhost:5000\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: qahP4HKA9p47jHXBgcoaKg==\r\n\r\n";
const SCAPY_REPLY_WEBSOCKETS: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n\
Upgrade: websockets\nConnection: Upgrade\r\nSec-WebSocket-Accept: csijM8sNFtKBM2xeBxZVLhfk2Hk=\r\n\r\n";

fn complete<T: std::fmt::Debug>(p: Parsed<T>) -> (T, usize) {
    match p {
        Parsed::Complete { head, head_len } => (head, head_len),
        other => panic!("expected a complete head, got {other:?}"),
    }
}

#[test]
fn rfc_accept_vector() {
    // RFC 6455 §1.3.
    assert_eq!(
        accept_for_key("dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[test]
fn request_split_at_every_byte() {
    let mut stream = ZEEK_REQUEST.to_vec();
    stream.extend_from_slice(b"GET /next HTTP/1.1\r\n");
    for cut in 0..stream.len() {
        let got = parse_request(&stream[..cut], MAX);
        if cut < ZEEK_REQUEST.len() {
            assert_eq!(got, Parsed::Partial, "cut {cut}");
        } else {
            let (req, len) = complete(got);
            assert_eq!(len, ZEEK_REQUEST.len(), "cut {cut}");
            assert_eq!(req.method, "GET");
            assert_eq!(req.path, "/");
            assert_eq!(req.version, 1);
            assert_eq!(req.headers.len(), 8);
        }
    }
}

#[test]
fn response_then_frame_bytes_at_every_byte() {
    // The 101 and the first frame often share a segment: the head must end exactly before it.
    let mut stream = ZEEK_RESPONSE.to_vec();
    stream.extend_from_slice(ZEEK_PING);
    for cut in 0..=stream.len() {
        let got = parse_response(&stream[..cut], MAX);
        if cut < ZEEK_RESPONSE.len() {
            assert_eq!(got, Parsed::Partial, "cut {cut}");
        } else {
            let (resp, len) = complete(got);
            assert_eq!(len, ZEEK_RESPONSE.len());
            assert_eq!(&stream[len..cut], &ZEEK_PING[..cut - len]);
            assert_eq!(
                (resp.status, resp.reason.as_str()),
                (101, "Switching Protocols")
            );
            assert_eq!(resp.body_framing("GET"), BodyFraming::None);
        }
    }
}

#[test]
fn wrong_accept_is_detectable() {
    let (req, _) = complete(parse_request(ZEEK_REQUEST, MAX));
    let (resp, _) = complete(parse_response(ZEEK_RESPONSE, MAX));
    assert!(req.has_token("connection", "upgrade") && req.has_token("UPGRADE", "WebSocket"));
    assert_eq!(req.header("sec-websocket-version"), Some("13"));
    let key = req.header("Sec-WebSocket-Key").unwrap();
    let expected = accept_for_key(key);
    let found = resp.header("Sec-WebSocket-Accept").unwrap();
    assert_ne!(found, expected);
    assert_eq!(found, format!("{expected}-wrong"));
    // Lower-case names as sent; lookups ignore case.
    assert_eq!(resp.headers[0].0, "connection");
    assert!(resp.has_token("Connection", "Upgrade"));
}

#[test]
fn scapy_invalid_handshakes_are_parseable_and_detectable() {
    let mut heads = Vec::new();
    for (i, (req, resp)) in SCAPY.iter().enumerate() {
        let (rq, rq_len) = complete(parse_request(req, MAX));
        let (rs, rs_len) = complete(parse_response(resp, MAX));
        assert_eq!(
            (rq_len, rs_len),
            (req.len(), resp.len()),
            "attempt {}",
            i + 1
        );
        assert_eq!(rs.status, 101);
        // None of them sends Sec-WebSocket-Version (RFC 6455 §4.1 item 9).
        assert_eq!(rq.header("Sec-WebSocket-Version"), None);
        heads.push((rq, rs));
    }
    let key = "qahP4HKA9p47jHXBgcoaKg==";
    // 1: the method is not GET (§4.1 item 2).
    assert_eq!(heads[0].0.method, "POST");
    // 2: the Upgrade token is wrong (§4.1 item 5).
    assert!(!heads[1].0.has_token("upgrade", "websocket"));
    assert_eq!(heads[1].0.header("upgrade"), Some("websockets"));
    // 3: no key (§4.1 item 7).
    assert_eq!(heads[2].0.header("sec-websocket-key"), None);
    assert!(heads[2].0.has_token("upgrade", "websocket"));
    // 4: a well-formed request except for the missing version; the reply's token is wrong even
    // though its bare-LF line parsed.
    assert_eq!(heads[3].0.method, "GET");
    assert_eq!(heads[3].0.header("sec-websocket-key"), Some(key));
    assert!(!heads[3].1.has_token("upgrade", "websocket"));
    assert_eq!(heads[3].1.header("connection"), Some("Upgrade"));
    // The first four replies carry the right accept value for the key; the fifth does not.
    for (_, rs) in &heads[..4] {
        assert_eq!(
            rs.header("sec-websocket-accept"),
            Some(accept_for_key(key).as_str())
        );
    }
    assert!(heads[4].1.has_token("upgrade", "websocket"));
    assert_ne!(
        heads[4].1.header("sec-websocket-accept"),
        Some(accept_for_key(key).as_str())
    );
}

#[test]
fn corpus_strings_are_verbatim() {
    // The constants above were copied by hand; check them against the captures when the corpus
    // sits beside the checkout (it is not part of the repository).
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus/");
    let cases: [(&str, &[&[u8]]); 2] = [
        (
            "zeek/wrong-accept-header.pcap",
            &[ZEEK_REQUEST, ZEEK_RESPONSE, ZEEK_PING],
        ),
        (
            "scapy-pr4579/websocket_invalid_handshakes.pcap",
            &[
                SCAPY[0].0, SCAPY[1].0, SCAPY[2].0, SCAPY[3].0, SCAPY[0].1, SCAPY[4].1,
            ],
        ),
    ];
    for (file, needles) in cases {
        // The corpus sits beside the repository wherever the tests run; a missing file is a
        // broken setup, not a reason to pass without checking.
        let capture = std::fs::read(format!("{dir}{file}"))
            .unwrap_or_else(|e| panic!("corpus file {file}: {e}"));
        for needle in needles {
            assert!(
                memchr::memmem::find(&capture, needle).is_some(),
                "{file}: {needle:?}"
            );
        }
    }
}

#[test]
fn too_large_head() {
    let mut req = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    req.extend(std::iter::repeat_n(b'a', 200));
    assert_eq!(parse_request(&req, 100), Parsed::TooLarge);
    // Exactly at the limit and still unfinished: nothing more can fit.
    assert_eq!(parse_request(&req[..100], 100), Parsed::TooLarge);
    assert_eq!(parse_request(&req[..99], 100), Parsed::Partial);
    req.extend_from_slice(b"\r\n\r\n");
    assert_eq!(parse_request(&req, 100), Parsed::TooLarge);
    let (_, len) = complete(parse_request(&req, req.len()));
    assert_eq!(len, req.len());
    assert_eq!(parse_response(&ZEEK_RESPONSE[..50], 50), Parsed::TooLarge);
}

#[test]
fn many_headers_grow_the_array() {
    let mut req = b"GET /ws HTTP/1.1\r\n".to_vec();
    for i in 0..500 {
        req.extend_from_slice(format!("X-H{i}: {i}\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    let (head, len) = complete(parse_request(&req, MAX));
    assert_eq!((head.headers.len(), len), (500, req.len()));
    assert_eq!(head.header("x-h499"), Some("499"));
}

#[test]
fn invalid_heads() {
    for bad in [
        &b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n"[..],
        b"\x16\x03\x01\x02\x00",
        b"GET / FTP/1.0\r\n",
    ] {
        assert!(
            matches!(parse_request(bad, MAX), Parsed::Invalid(_)),
            "{bad:?}"
        );
    }
    assert!(matches!(
        parse_response(b"HTTP/1.1 abc OK\r\n\r\n", MAX),
        Parsed::Invalid(_)
    ));
    assert!(matches!(
        parse_response(b"\x81\x05hello", MAX),
        Parsed::Invalid(_)
    ));
}

#[test]
fn sloppy_responses_are_accepted() {
    let resp = b"HTTP/1.1  101  Switching Protocols\r\nUpgrade : websocket\r\nX-Fold: a\r\n b\r\n\
Bad\x01Name: x\r\nConnection: Upgrade\r\nX-Latin: caf\xe9 \r\n\r\n";
    let (r, len) = complete(parse_response(resp, MAX));
    assert_eq!(len, resp.len());
    assert_eq!(r.status, 101);
    assert_eq!(r.header("upgrade"), Some("websocket"));
    assert_eq!(r.header("x-fold"), Some("a b"));
    assert_eq!(r.header("x-latin"), Some("caf\u{FFFD}"));
    assert!(r.has_token("connection", "upgrade"));
    assert_eq!(
        r.headers.len(),
        4,
        "the malformed line is dropped: {:?}",
        r.headers
    );
}

#[test]
fn leading_empty_line_and_http10() {
    let (r, len) = complete(parse_request(b"\r\nGET / HTTP/1.0\r\n\r\n", MAX));
    assert_eq!((r.version, len), (0, 20));
}

#[test]
fn looks_like_request_cases() {
    for yes in [
        &b"GET / HTTP/1.1"[..],
        b"POST ",
        b"OPTIONS * HTTP/1.1",
        b"M-SEARCH * HTTP/1.1",
        b"G",
        b"GE",
        b"DELE",
        b"",
        b"\r\nGET /",
        b"X-CUSTOM ",
    ] {
        assert!(looks_like_request(yes), "{yes:?}");
    }
    for no in [
        &b"\x81\x05hello"[..],
        b"\x16\x03\x01",
        b" GET",
        b"HTTP/1.1 101",
        b"GET/",
        b"{\"a\":1}",
        b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        assert!(!looks_like_request(no), "{no:?}");
    }
}

fn req_with(headers: &[(&str, &str)]) -> Request {
    Request {
        method: "POST".into(),
        path: "/".into(),
        version: 1,
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).into(), (*v).into()))
            .collect(),
    }
}

fn resp_with(status: u16, headers: &[(&str, &str)]) -> Response {
    Response {
        status,
        reason: String::new(),
        version: 1,
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).into(), (*v).into()))
            .collect(),
    }
}

#[test]
fn request_framing() {
    assert_eq!(req_with(&[]).body_framing(), BodyFraming::None);
    assert_eq!(
        req_with(&[("Content-Length", "12")]).body_framing(),
        BodyFraming::Length(12)
    );
    assert_eq!(
        req_with(&[("content-length", "7, 7")]).body_framing(),
        BodyFraming::Length(7)
    );
    assert_eq!(
        req_with(&[
            ("Content-Length", "5"),
            ("Transfer-Encoding", "gzip, Chunked")
        ])
        .body_framing(),
        BodyFraming::Chunked
    );
    assert_eq!(
        req_with(&[("Transfer-Encoding", "chunked, gzip")]).body_framing(),
        BodyFraming::None
    );
    assert_eq!(
        req_with(&[("Content-Length", "+5")]).body_framing(),
        BodyFraming::None
    );
    assert_eq!(
        req_with(&[("Content-Length", "5"), ("Content-Length", "6")]).body_framing(),
        BodyFraming::None
    );
}

#[test]
fn response_framing() {
    let cl = [("Content-Length", "10")];
    assert_eq!(resp_with(101, &cl).body_framing("GET"), BodyFraming::None);
    assert_eq!(resp_with(100, &[]).body_framing("GET"), BodyFraming::None);
    assert_eq!(resp_with(204, &cl).body_framing("GET"), BodyFraming::None);
    assert_eq!(resp_with(304, &cl).body_framing("GET"), BodyFraming::None);
    assert_eq!(resp_with(200, &cl).body_framing("HEAD"), BodyFraming::None);
    assert_eq!(
        resp_with(200, &[]).body_framing("CONNECT"),
        BodyFraming::None
    );
    assert_eq!(
        resp_with(200, &cl).body_framing("GET"),
        BodyFraming::Length(10)
    );
    assert_eq!(
        resp_with(400, &[]).body_framing("GET"),
        BodyFraming::UntilClose
    );
    assert_eq!(
        resp_with(200, &[("Transfer-Encoding", "chunked")]).body_framing("GET"),
        BodyFraming::Chunked
    );
    assert_eq!(
        resp_with(200, &[("Transfer-Encoding", "gzip")]).body_framing("GET"),
        BodyFraming::UntilClose
    );
    assert_eq!(
        resp_with(200, &[("Content-Length", "x")]).body_framing("GET"),
        BodyFraming::UntilClose
    );
}

#[test]
fn keep_alive_request_before_upgrade() {
    // A chunked POST, then the upgrade on the same connection.
    let mut stream =
        b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n".to_vec();
    stream.extend_from_slice(ZEEK_REQUEST);
    let (first, len) = complete(parse_request(&stream, MAX));
    let mut skipper = BodySkipper::new(first.body_framing());
    let used = skipper.push(&stream[len..]).unwrap();
    assert!(skipper.done());
    let (second, _) = complete(parse_request(&stream[len + used..], MAX));
    assert_eq!(
        second.header("sec-websocket-key"),
        Some("VMueuJIhu60C0hDKL+vS6g==")
    );
}

proptest! {
    #[test]
    fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512), max in 0usize..600) {
        let _ = parse_request(&bytes, max);
        let _ = parse_response(&bytes, max);
        let _ = looks_like_request(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        for ext in parse_extensions(&text) {
            let _ = deflate_params(&ext);
        }
        for framing in [BodyFraming::Chunked, BodyFraming::Length(100), BodyFraming::UntilClose] {
            let mut s = BodySkipper::new(framing);
            for piece in bytes.chunks(7) {
                match s.push(piece) {
                    Ok(n) => prop_assert!(n <= piece.len()),
                    Err(_) => break,
                }
            }
        }
    }

    #[test]
    fn extension_like_text_never_panics(s in "[a-z_ ;,=\"\\\\0-9-]{0,80}") {
        for ext in parse_extensions(&s) {
            let _ = deflate_params(&ext);
        }
    }

    #[test]
    fn valid_chunked_bodies_skip_exactly(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..40), 0..6), cut in 0usize..400) {
        let mut body = Vec::new();
        for c in &chunks {
            body.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            body.extend_from_slice(c);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"0\r\n\r\n");
        let mut stream = body.clone();
        stream.extend_from_slice(b"\x81\x00");
        let cut = cut.min(stream.len());
        let mut s = BodySkipper::new(BodyFraming::Chunked);
        let mut used = s.push(&stream[..cut]).unwrap();
        if !s.done() {
            used += s.push(&stream[cut..]).unwrap();
        }
        prop_assert!(s.done());
        prop_assert_eq!(used, body.len());
    }
}
