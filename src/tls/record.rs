//! TLS wire parsing: takes one direction's stream bytes and gives records (the 5-byte header and
//! fragment), handshake messages (joined across records), and the few fields of ClientHello,
//! ServerHello and EncryptedExtensions this tool reports or needs for keys: randoms, cipher
//! suite, versions, SNI and ALPN (RFC 8446 §4–5, RFC 5246 §6.2, RFC 6066 §3, RFC 7301).
//!
//! Streaming nom 8 parsers for the record header (exact `Needed`), complete ones for the
//! message bodies. Anything malformed gives `None`/`Invalid`, never a panic.

use nom::bytes::complete::take as take_c;
use nom::bytes::streaming::take;
use nom::multi::length_data;
use nom::number::complete::{be_u8 as be_u8_c, be_u16 as be_u16_c, be_u24};
use nom::number::streaming::{be_u8, be_u16};
use nom::{IResult, Parser};

/// Record content types.
pub mod content {
    /// change_cipher_spec.
    pub const CCS: u8 = 20;
    /// alert.
    pub const ALERT: u8 = 21;
    /// handshake.
    pub const HANDSHAKE: u8 = 22;
    /// application_data.
    pub const APPLICATION_DATA: u8 = 23;
    /// heartbeat (RFC 6520).
    pub const HEARTBEAT: u8 = 24;
}

/// Handshake message types.
pub mod hs {
    /// hello_request (TLS 1.2: the server asks for renegotiation).
    pub const HELLO_REQUEST: u8 = 0;
    /// client_hello.
    pub const CLIENT_HELLO: u8 = 1;
    /// server_hello.
    pub const SERVER_HELLO: u8 = 2;
    /// encrypted_extensions (TLS 1.3).
    pub const ENCRYPTED_EXTENSIONS: u8 = 8;
    /// finished.
    pub const FINISHED: u8 = 20;
    /// key_update (TLS 1.3).
    pub const KEY_UPDATE: u8 = 24;
}

/// Largest record fragment a peer may send (TLS 1.2's ciphertext limit, RFC 5246 §6.2.3).
pub const MAX_FRAGMENT: usize = (1 << 14) + 2048;

/// One record.
#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Content type.
    pub content_type: u8,
    /// Version field of the header.
    pub version: u16,
    /// The fragment (ciphertext when protected).
    pub fragment: &'a [u8],
}

/// What [`parse_record`] found at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum RecordParse<'a> {
    /// A whole record and the bytes it took.
    Record(Record<'a>, usize),
    /// More bytes are needed.
    Incomplete,
    /// Not a TLS record.
    Invalid,
}

fn header(i: &[u8]) -> IResult<&[u8], (u8, u16, u16)> {
    (be_u8, be_u16, be_u16).parse(i)
}

/// The record at the start of `input`.
pub fn parse_record(input: &[u8]) -> RecordParse<'_> {
    let (rest, (content_type, version, len)) = match header(input) {
        Ok(v) => v,
        Err(nom::Err::Incomplete(_)) => return RecordParse::Incomplete,
        Err(_) => return RecordParse::Invalid,
    };
    if !(content::CCS..=content::HEARTBEAT).contains(&content_type)
        || version >> 8 != 3
        || usize::from(len) > MAX_FRAGMENT
    {
        return RecordParse::Invalid;
    }
    match take::<_, _, nom::error::Error<&[u8]>>(len).parse(rest) {
        Ok((_, fragment)) => RecordParse::Record(
            Record {
                content_type,
                version,
                fragment,
            },
            5 + usize::from(len),
        ),
        Err(_) => RecordParse::Incomplete,
    }
}

/// Whether a direction's first bytes are the start of a ClientHello record.
pub fn looks_like_client_hello(bytes: &[u8]) -> bool {
    matches!(
        bytes,
        [content::HANDSHAKE, 3, 0..=4, _, _, hs::CLIENT_HELLO, ..]
    )
}

/// The first handshake message in `input`: (type, body, bytes taken), or `None` when incomplete.
pub fn parse_handshake(input: &[u8]) -> Option<(u8, &[u8], usize)> {
    let (rest, (t, len)) = (be_u8_c::<_, nom::error::Error<&[u8]>>, be_u24)
        .parse(input)
        .ok()?;
    let len = usize::try_from(len).ok()?;
    let body = rest.get(..len)?;
    Some((t, body, 4 + len))
}

/// ClientHello fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientHello {
    /// The client random (the key log's index).
    pub random: [u8; 32],
    /// server_name, when a host name was sent.
    pub sni: Option<String>,
    /// ALPN protocols offered, in order.
    pub alpn: Vec<String>,
    /// supported_versions offered (empty: the legacy version field applies).
    pub versions: Vec<u16>,
}

/// ServerHello fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerHello {
    /// The server random.
    pub random: [u8; 32],
    /// The chosen cipher suite.
    pub cipher_suite: u16,
    /// The negotiated version (supported_versions when present).
    pub version: u16,
    /// ALPN protocol chosen (TLS 1.2; TLS 1.3 sends it encrypted).
    pub alpn: Option<String>,
    /// A HelloRetryRequest (RFC 8446 §4.1.3), not a real ServerHello.
    pub retry: bool,
}

type E<'a> = nom::error::Error<&'a [u8]>;

fn u8_data(i: &[u8]) -> IResult<&[u8], &[u8]> {
    length_data(be_u8_c).parse(i)
}

fn u16_data(i: &[u8]) -> IResult<&[u8], &[u8]> {
    length_data(be_u16_c).parse(i)
}

/// (type, data) of each extension in an extensions block.
fn extensions(mut block: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while !block.is_empty() {
        let Ok((rest, (t, data))) = (be_u16_c::<_, E<'_>>, u16_data).parse(block) else {
            break;
        };
        out.push((t, data));
        block = rest;
    }
    out
}

/// The protocol names of an ALPN extension body.
fn alpn_list(data: &[u8]) -> Vec<String> {
    let Ok((_, mut list)) = u16_data(data) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while let Ok((rest, name)) = u8_data(list) {
        out.push(String::from_utf8_lossy(name).into_owned());
        list = rest;
    }
    out
}

/// The host name of a server_name extension body.
fn sni(data: &[u8]) -> Option<String> {
    let (_, mut list) = u16_data(data).ok()?;
    while let Ok((rest, (t, name))) = (be_u8_c::<_, E<'_>>, u16_data).parse(list) {
        if t == 0 {
            return Some(String::from_utf8_lossy(name).into_owned());
        }
        list = rest;
    }
    None
}

const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
const EXT_SUPPORTED_VERSIONS: u16 = 43;

/// SHA-256("HelloRetryRequest"), the random of a HelloRetryRequest.
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// Parses a ClientHello body.
pub fn parse_client_hello(body: &[u8]) -> Option<ClientHello> {
    let (rest, (_version, random, _sid, _suites, _comp)) = (
        be_u16_c::<_, E<'_>>,
        take_c(32usize),
        u8_data,
        u16_data,
        u8_data,
    )
        .parse(body)
        .ok()?;
    let mut ch = ClientHello {
        random: random.try_into().ok()?,
        ..ClientHello::default()
    };
    if let Ok((_, block)) = u16_data(rest) {
        for (t, data) in extensions(block) {
            match t {
                EXT_SERVER_NAME => ch.sni = sni(data),
                EXT_ALPN => ch.alpn = alpn_list(data),
                EXT_SUPPORTED_VERSIONS => {
                    if let Ok((_, mut list)) = u8_data(data) {
                        while let Ok((rest, v)) = be_u16_c::<_, E<'_>>(list) {
                            ch.versions.push(v);
                            list = rest;
                        }
                    }
                }
                _ => {}
            }
        }
    }
    Some(ch)
}

/// Parses a ServerHello body.
pub fn parse_server_hello(body: &[u8]) -> Option<ServerHello> {
    let (rest, (version, random, _sid, cipher_suite, _comp)) = (
        be_u16_c::<_, E<'_>>,
        take_c(32usize),
        u8_data,
        be_u16_c,
        be_u8_c,
    )
        .parse(body)
        .ok()?;
    let random: [u8; 32] = random.try_into().ok()?;
    let mut sh = ServerHello {
        random,
        cipher_suite,
        version,
        alpn: None,
        retry: random == HRR_RANDOM,
    };
    if let Ok((_, block)) = u16_data(rest) {
        for (t, data) in extensions(block) {
            match t {
                EXT_SUPPORTED_VERSIONS => {
                    if let Ok((_, v)) = be_u16_c::<_, E<'_>>(data) {
                        sh.version = v;
                    }
                }
                EXT_ALPN => sh.alpn = alpn_list(data).into_iter().next(),
                _ => {}
            }
        }
    }
    Some(sh)
}

/// The ALPN protocol in a TLS 1.3 EncryptedExtensions body.
pub fn parse_encrypted_extensions(body: &[u8]) -> Option<String> {
    let (_, block) = u16_data(body).ok()?;
    extensions(block)
        .into_iter()
        .find(|(t, _)| *t == EXT_ALPN)
        .and_then(|(_, d)| alpn_list(d).into_iter().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_need_exact_bytes_and_reject_non_tls() {
        let rec = [23, 3, 3, 0, 2, 0xaa, 0xbb, 0xcc];
        assert_eq!(
            parse_record(&rec),
            RecordParse::Record(
                Record {
                    content_type: 23,
                    version: 0x0303,
                    fragment: &[0xaa, 0xbb]
                },
                7
            )
        );
        assert_eq!(parse_record(&rec[..6]), RecordParse::Incomplete);
        assert_eq!(parse_record(&rec[..3]), RecordParse::Incomplete);
        assert_eq!(parse_record(b"GET / HTTP/1.1"), RecordParse::Invalid);
        assert_eq!(parse_record(&[23, 3, 3, 0xff, 0xff]), RecordParse::Invalid);
    }

    #[test]
    fn client_hello_fields() {
        // type, len, version, random, session id, suites, compression, extensions:
        // SNI "ws.example", ALPN [http/1.1], supported_versions [1.3, 1.2].
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
        let mut exts = Vec::new();
        let host = b"ws.example";
        exts.extend_from_slice(&[
            0,
            0,
            0,
            (host.len() + 5) as u8,
            0,
            (host.len() + 3) as u8,
            0,
        ]);
        exts.extend_from_slice(&[0, host.len() as u8]);
        exts.extend_from_slice(host);
        exts.extend_from_slice(&[0, 16, 0, 11, 0, 9, 8]);
        exts.extend_from_slice(b"http/1.1");
        exts.extend_from_slice(&[0, 43, 0, 5, 4, 3, 4, 3, 3]);
        body.extend_from_slice(&[0, exts.len() as u8]);
        body.extend_from_slice(&exts);
        let ch = parse_client_hello(&body).unwrap_or_default();
        assert_eq!(ch.random, [7; 32]);
        assert_eq!(ch.sni.as_deref(), Some("ws.example"));
        assert_eq!(ch.alpn, vec!["http/1.1".to_owned()]);
        assert_eq!(ch.versions, vec![0x0304, 0x0303]);
        // Cut anywhere inside the fixed part: no hello, no panic.
        for n in 0..40 {
            assert!(parse_client_hello(&body[..n]).is_none());
        }
    }
}
