//! HTTP/1.1 upgrade detection: takes the start of each direction's byte stream and gives the
//! parsed request and response heads, the body framing of requests that came before the upgrade,
//! and the WebSocket-specific checks (accept key, subprotocol, extensions).
//!
//! Pure functions over byte slices; the per-connection state lives in `session`.

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

/// Parses a request head from the start of `buf`.
pub fn parse_request(buf: &[u8], max_head: usize) -> Parsed<Request> {
    let _ = (buf, max_head);
    unimplemented!()
}

/// Parses a response head from the start of `buf`.
pub fn parse_response(buf: &[u8], max_head: usize) -> Parsed<Response> {
    let _ = (buf, max_head);
    unimplemented!()
}

/// Whether `buf` plausibly starts an HTTP/1.x request (a method token then a space; a prefix of
/// one is enough when `buf` is short).
pub fn looks_like_request(buf: &[u8]) -> bool {
    let _ = buf;
    unimplemented!()
}

/// The `Sec-WebSocket-Accept` value a server must send for `key` (RFC 6455 §4.2.2).
pub fn accept_for_key(key: &str) -> String {
    let _ = key;
    unimplemented!()
}

/// Parses a `Sec-WebSocket-Extensions` value (RFC 6455 §9.1).
pub fn parse_extensions(value: &str) -> Vec<Extension> {
    let _ = value;
    unimplemented!()
}

/// Reads permessage-deflate parameters; `Err` says which parameter is malformed.
pub fn deflate_params(ext: &Extension) -> Result<DeflateParams, String> {
    let _ = ext;
    unimplemented!()
}

/// Skips a message body of the given framing, across as many pushes as needed.
#[derive(Clone, Debug)]
pub struct BodySkipper {
    _private: (),
}

impl BodySkipper {
    /// A skipper for one body.
    pub fn new(framing: BodyFraming) -> BodySkipper {
        let _ = framing;
        unimplemented!()
    }

    /// Consumes body bytes from the start of `buf`; returns how many belonged to the body.
    /// `Err` when chunked coding is malformed.
    pub fn push(&mut self, buf: &[u8]) -> Result<usize, String> {
        let _ = buf;
        unimplemented!()
    }

    /// Whether the whole body has been consumed.
    pub fn done(&self) -> bool {
        unimplemented!()
    }
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

    /// How the request's body is delimited.
    pub fn body_framing(&self) -> BodyFraming {
        unimplemented!()
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
        let _ = request_method;
        unimplemented!()
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

fn has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}
