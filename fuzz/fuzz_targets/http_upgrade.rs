//! The HTTP upgrade parser: request and response heads, body framing and skipping, extension
//! negotiation and the accept key, on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsinspect::http::{self, BodyFraming, BodySkipper, Parsed};

fn skip_body(framing: BodyFraming, rest: &[u8]) {
    if framing == BodyFraming::None {
        return;
    }
    let mut s = BodySkipper::new(framing);
    // Fed in two pieces so that partial chunk headers are exercised.
    let (a, b) = rest.split_at(rest.len() / 2);
    let mut pos = 0;
    for piece in [a, b] {
        let mut buf = rest[pos..pos + piece.len()].to_vec();
        while let Ok(n) = s.push(&buf) {
            assert!(n <= buf.len());
            if n == 0 || s.done() {
                break;
            }
            buf.drain(..n);
        }
        pos += piece.len();
    }
}

fuzz_target!(|data: &[u8]| {
    let max = 4096;
    let _ = http::looks_like_request(data);
    if let Parsed::Complete { head, head_len } = http::parse_request(data, max) {
        assert!(head_len <= data.len().min(max));
        skip_body(head.body_framing(), &data[head_len..]);
        for (_, v) in &head.headers {
            for ext in http::parse_extensions(v) {
                let _ = http::deflate_params(&ext);
            }
        }
        if let Some(key) = head.header("sec-websocket-key") {
            let _ = http::accept_for_key(key);
        }
    }
    if let Parsed::Complete { head, head_len } = http::parse_response(data, max) {
        assert!(head_len <= data.len().min(max));
        skip_body(head.body_framing("GET"), &data[head_len..]);
        if let Some(v) = head.header("sec-websocket-extensions") {
            for ext in http::parse_extensions(v) {
                let _ = http::deflate_params(&ext);
            }
        }
    }
});
