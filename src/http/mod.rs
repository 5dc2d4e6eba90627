//! HTTP/1.1 upgrade detection: takes the start of each direction's byte stream and gives the
//! parsed request and response heads, the body framing of requests that came before the upgrade,
//! and the WebSocket-specific checks (accept key, subprotocol, extensions).
//!
//! Pure functions over byte slices; the per-connection state lives in `session`. Heads are parsed
//! with `httparse`, chunked bodies are skipped with [`BodySkipper`] (`body.rs`) and
//! `Sec-WebSocket-Extensions` is read by `extensions.rs`.

mod body;
mod extensions;
#[cfg(test)]
mod tests;

pub use body::BodySkipper;
pub use extensions::{deflate_params, parse_extensions};

use base64::Engine as _;
use sha1::Digest as _;

/// A parsed request head.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// e.g. `GET`.
    pub method: String,
    /// The request target as sent.
    pub path: String,
    /// Minor HTTP version (1 for HTTP/1.1).
    pub version: u8,
    /// Headers in order, names as sent, values trimmed, lossily decoded as UTF-8.
    pub headers: Vec<(String, String)>,
}

/// A parsed response head.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// Status code, e.g. 101.
    pub status: u16,
    /// Reason phrase as sent.
    pub reason: String,
    /// Minor HTTP version.
    pub version: u8,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
}

/// Outcome of parsing a head from the start of a buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed<T> {
    /// More bytes are needed.
    Partial,
    /// A complete head of `head_len` bytes (the body or the WebSocket stream starts after it).
    Complete {
        /// The head.
        head: T,
        /// Bytes the head occupies, the blank line included.
        head_len: usize,
    },
    /// Not valid HTTP; the text says why.
    Invalid(String),
    /// The head is longer than the allowed maximum.
    TooLarge,
}

/// How the body after a head is delimited (RFC 9112 §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the connection closes (responses only).
    UntilClose,
}

/// permessage-deflate parameters (RFC 7692 §7.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeflateParams {
    /// The server will not keep its compression context between messages.
    pub server_no_context_takeover: bool,
    /// The client will not keep its compression context between messages.
    pub client_no_context_takeover: bool,
    /// LZ77 window the server compresses with (8..=15), when limited.
    pub server_max_window_bits: Option<u8>,
    /// LZ77 window the client compresses with, when limited (`Some(15)` for a bare parameter).
    pub client_max_window_bits: Option<u8>,
}

/// One element of a `Sec-WebSocket-Extensions` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extension {
    /// Extension token, e.g. `permessage-deflate`.
    pub name: String,
    /// Parameters with their values (quotes removed).
    pub params: Vec<(String, Option<String>)>,
}

/// Header slots tried first; doubled whenever httparse reports `TooManyHeaders`.
const INITIAL_HEADERS: usize = 64;

/// Parses a request head from the start of `buf`.
///
/// Only the first `max_head` bytes are looked at; bytes after the head are left alone.
pub fn parse_request(buf: &[u8], max_head: usize) -> Parsed<Request> {
    parse_head(buf, max_head, |window, slots| {
        let mut req = httparse::Request::new(slots);
        Ok(match req.parse(window)? {
            httparse::Status::Partial => httparse::Status::Partial,
            httparse::Status::Complete(len) => {
                let head = Request {
                    method: req.method.unwrap_or_default().to_owned(),
                    path: req.path.unwrap_or_default().to_owned(),
                    version: req.version.unwrap_or_default(),
                    headers: owned_headers(req.headers),
                };
                httparse::Status::Complete((head, len))
            }
        })
    })
}

/// Parses a response head from the start of `buf`.
///
/// Lenient in the ways real servers are sloppy: spaces before a header's colon, several spaces
/// in the status line, obsolete line folding (unfolded to one space, RFC 9112 §5.2) and
/// malformed header lines (dropped, as browsers do). Bare-LF line ends are accepted too
/// (RFC 9112 §2.2 allows it; httparse always does).
pub fn parse_response(buf: &[u8], max_head: usize) -> Parsed<Response> {
    let mut config = httparse::ParserConfig::default();
    config
        .allow_spaces_after_header_name_in_responses(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .ignore_invalid_headers_in_responses(true);
    parse_head(buf, max_head, |window, slots| {
        let mut resp = httparse::Response::new(slots);
        Ok(match config.parse_response(&mut resp, window)? {
            httparse::Status::Partial => httparse::Status::Partial,
            httparse::Status::Complete(len) => {
                let head = Response {
                    status: resp.code.unwrap_or_default(),
                    reason: resp.reason.unwrap_or_default().to_owned(),
                    version: resp.version.unwrap_or_default(),
                    headers: owned_headers(resp.headers),
                };
                httparse::Status::Complete((head, len))
            }
        })
    })
}

/// Runs `attempt` over the first `max_head` bytes, growing the header array while httparse
/// says it is too small. There can never be more header lines than bytes, which bounds the
/// growth.
fn parse_head<T>(
    buf: &[u8],
    max_head: usize,
    mut attempt: impl for<'b> FnMut(
        &'b [u8],
        &mut [httparse::Header<'b>],
    ) -> httparse::Result<(T, usize)>,
) -> Parsed<T> {
    let window = &buf[..buf.len().min(max_head)];
    let mut slots = INITIAL_HEADERS;
    loop {
        let mut headers = vec![httparse::EMPTY_HEADER; slots];
        match attempt(window, &mut headers) {
            Ok(httparse::Status::Complete((head, head_len))) => {
                return Parsed::Complete { head, head_len };
            }
            // All of the allowed prefix is here and the head is still unfinished.
            Ok(httparse::Status::Partial) if buf.len() >= max_head => return Parsed::TooLarge,
            Ok(httparse::Status::Partial) => return Parsed::Partial,
            Err(httparse::Error::TooManyHeaders) if slots < window.len() => {
                slots = slots.saturating_mul(2);
            }
            Err(e) => return Parsed::Invalid(e.to_string()),
        }
    }
}

/// Copies httparse's borrowed headers out: values lossily decoded, obs-folds replaced by a
/// space (RFC 9112 §5.2) and trimmed.
fn owned_headers(headers: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|h| (h.name.to_owned(), unfold(&String::from_utf8_lossy(h.value))))
        .collect()
}

fn unfold(value: &str) -> String {
    if !value.contains(['\r', '\n']) {
        return value.trim().to_owned();
    }
    let mut out = String::with_capacity(value.len());
    for (i, line) in value.split('\n').enumerate() {
        let line = line.trim_end_matches('\r');
        if i > 0 {
            out.push(' ');
        }
        out.push_str(line.trim_matches([' ', '\t']));
    }
    out.trim().to_owned()
}

/// Longest method token [`looks_like_request`] waits for before giving up. The registered
/// methods are at most 17 bytes (`UPDATEREDIRECTREF`); this leaves room for private ones.
const MAX_METHOD_LEN: usize = 32;

/// Whether `buf` plausibly starts an HTTP/1.x request (a method token then a space; a prefix of
/// one is enough when `buf` is short).
pub fn looks_like_request(buf: &[u8]) -> bool {
    // RFC 9112 §2.2: a server should ignore at least one empty line before the request line.
    let buf = buf
        .strip_prefix(b"\r\n")
        .or_else(|| buf.strip_prefix(b"\n"))
        .unwrap_or(buf);
    for (i, &b) in buf.iter().enumerate().take(MAX_METHOD_LEN + 1) {
        if b == b' ' {
            return i > 0;
        }
        if !is_tchar(b) {
            return false;
        }
    }
    // Only token characters so far: a method if the space is still to come.
    buf.len() <= MAX_METHOD_LEN
}

/// `tchar` of RFC 9110 §5.6.2.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The GUID of RFC 6455 §1.3 that every accept value is derived with.
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Accept` value a server must send for `key` (RFC 6455 §4.2.2).
pub fn accept_for_key(key: &str) -> String {
    // The key is used as sent, without base64-decoding it (§4.2.2 step 5.4).
    let digest = sha1::Sha1::new()
        .chain_update(key.as_bytes())
        .chain_update(WEBSOCKET_GUID.as_bytes())
        .finalize();
    base64::engine::general_purpose::STANDARD.encode(digest)
}
impl Request {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// Whether any header with this name lists `token` (comma-separated, case-insensitive).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        has_token(&self.headers, name, token)
    }

    /// How the request's body is delimited (RFC 9112 §6.3). Malformed framing (a transfer
    /// coding other than a final `chunked`, or an unparsable `Content-Length`) gives `None`: the
    /// server must reject such a request (§6.3 items 4 and 5), and parsing the bytes that follow
    /// as the next head makes the problem visible.
    pub fn body_framing(&self) -> BodyFraming {
        if has_header(&self.headers, "transfer-encoding") {
            // §6.3 item 3: Transfer-Encoding overrides Content-Length.
            return if chunked_is_final(&self.headers) {
                BodyFraming::Chunked
            } else {
                BodyFraming::None
            };
        }
        match content_length(&self.headers) {
            Some(Ok(n)) => BodyFraming::Length(n),
            Some(Err(())) | None => BodyFraming::None,
        }
    }
}

impl Response {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// Whether any header with this name lists `token` (comma-separated, case-insensitive).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        has_token(&self.headers, name, token)
    }

    /// How the response's body is delimited, given the request method it answers.
    pub fn body_framing(&self, request_method: &str) -> BodyFraming {
        // RFC 9112 §6.3 item 1: no body after HEAD, 1xx (101 included: the stream switches
        // protocols right after the head), 204 or 304. Methods are case-sensitive (RFC 9110 §9.1).
        if request_method == "HEAD"
            || (100..200).contains(&self.status)
            || self.status == 204
            || self.status == 304
        {
            return BodyFraming::None;
        }
        // Item 2: a 2xx to CONNECT turns the connection into a tunnel.
        if request_method == "CONNECT" && (200..300).contains(&self.status) {
            return BodyFraming::None;
        }
        if has_header(&self.headers, "transfer-encoding") {
            // Item 4: a response whose final coding is not chunked runs until close.
            return if chunked_is_final(&self.headers) {
                BodyFraming::Chunked
            } else {
                BodyFraming::UntilClose
            };
        }
        match content_length(&self.headers) {
            Some(Ok(n)) => BodyFraming::Length(n),
            // Item 5: an invalid length is unrecoverable; the client closes, so nothing after
            // it is a message we could frame.
            Some(Err(())) => BodyFraming::UntilClose,
            // Item 8.
            None => BodyFraming::UntilClose,
        }
    }
}

/// The first header with this name (case-insensitive) in a header list.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Whether any header with this name lists `token` (comma-separated, case-insensitive), as
/// `Connection: keep-alive, Upgrade` lists `upgrade`.
pub fn has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn has_header(headers: &[(String, String)], name: &str) -> bool {
    headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// Whether the last transfer coding listed (over all `Transfer-Encoding` fields) is `chunked`
/// (RFC 9112 §6.3 items 3 and 4; §7 allows a list across several fields).
fn chunked_is_final(headers: &[(String, String)]) -> bool {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .rfind(|t| !t.is_empty())
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
}

/// The `Content-Length`, if present: `Err` when it is not a number or when the fields disagree.
/// A list of identical values is accepted (RFC 9110 §8.6 lets recipients do so).
fn content_length(headers: &[(String, String)]) -> Option<Result<u64, ()>> {
    let mut found: Option<Result<u64, ()>> = None;
    for v in headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .flat_map(|(_, v)| v.split(','))
    {
        let v = v.trim();
        // `u64::from_str` would accept a leading `+`; the grammar is 1*DIGIT.
        let n = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
            v.parse::<u64>().map_err(|_| ())
        } else {
            Err(())
        };
        found = match (found, n) {
            (None, n) => Some(n),
            (Some(Ok(a)), Ok(b)) if a == b => Some(Ok(a)),
            _ => Some(Err(())),
        };
    }
    found
}
