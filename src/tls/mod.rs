//! TLS under WebSocket (wss://): takes one TCP connection's reassembled byte streams (per
//! application direction) and gives the plaintext of each direction, when the key log holds the
//! session's secrets, plus the TLS facts every output reports with or without keys: version,
//! cipher suite, SNI, ALPN, records and bytes each way, alerts (close_notify included), key
//! updates, renegotiations, and anomalies (missing keys, authentication failure, unsupported
//! cipher suite, lost bytes).
//!
//! The session feeds it before its HTTP/WebSocket handling: the plaintext goes through the same
//! code as a ws:// stream. TLS 1.3 (AES-128/256-GCM, ChaCha20-Poly1305, handshake and
//! application epochs, KeyUpdate) and TLS 1.2 AEAD suites (GCM, ChaCha20-Poly1305) are decrypted;
//! anything else is still described.

pub mod decrypt;
pub mod kdf;
pub mod keylog;
pub mod record;

use serde::Serialize;

use crate::types::{Dir, Ts};
use decrypt::{Algorithm, DecryptError, DirKeys};
use kdf::Hash;
pub use keylog::{KeyLog, Secrets};
pub use record::looks_like_client_hello;
use record::{RecordParse, content, hs};

/// Largest handshake message buffered while it spans records.
const MAX_HANDSHAKE_BYTES: usize = 1 << 18;
/// The fragment length of an encrypted TLS 1.3 alert without padding: 2 bytes of alert, the
/// inner content type, the 16-byte tag.
const TLS13_ALERT_RECORD: usize = 19;

/// A cipher suite this tool knows: name, and for AEAD suites how to decrypt.
struct Suite {
    name: &'static str,
    aead: Option<(Algorithm, Hash)>,
}

fn suite(id: u16) -> Suite {
    use Algorithm::{Aes128Gcm as A128, Aes256Gcm as A256, ChaCha20Poly1305 as C20};
    use Hash::{Sha256 as S256, Sha384 as S384};
    let (name, aead) = match id {
        0x1301 => ("TLS_AES_128_GCM_SHA256", Some((A128, S256))),
        0x1302 => ("TLS_AES_256_GCM_SHA384", Some((A256, S384))),
        0x1303 => ("TLS_CHACHA20_POLY1305_SHA256", Some((C20, S256))),
        0xc02b => (
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            Some((A128, S256)),
        ),
        0xc02c => (
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            Some((A256, S384)),
        ),
        0xc02f => ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", Some((A128, S256))),
        0xc030 => ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", Some((A256, S384))),
        0xcca8 => (
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            Some((C20, S256)),
        ),
        0xcca9 => (
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            Some((C20, S256)),
        ),
        0x009c => ("TLS_RSA_WITH_AES_128_GCM_SHA256", Some((A128, S256))),
        0x009d => ("TLS_RSA_WITH_AES_256_GCM_SHA384", Some((A256, S384))),
        0x009e => ("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", Some((A128, S256))),
        0x009f => ("TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", Some((A256, S384))),
        0xc013 => ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", None),
        0xc014 => ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", None),
        0xc009 => ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", None),
        0xc00a => ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", None),
        0x002f => ("TLS_RSA_WITH_AES_128_CBC_SHA", None),
        0x0035 => ("TLS_RSA_WITH_AES_256_CBC_SHA", None),
        _ => ("", None),
    };
    Suite { name, aead }
}

fn version_name(v: u16) -> &'static str {
    match v {
        0x0304 => "TLS 1.3",
        0x0303 => "TLS 1.2",
        0x0302 => "TLS 1.1",
        0x0301 => "TLS 1.0",
        0x0300 => "SSL 3.0",
        _ => "unknown",
    }
}

/// Alert description names (RFC 8446 §6, RFC 5246 §7.2).
pub fn alert_name(desc: u8) -> &'static str {
    match desc {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        22 => "record_overflow",
        40 => "handshake_failure",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        112 => "unrecognized_name",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => "unknown",
    }
}

/// A TLS alert.
#[derive(Clone, Debug, Serialize)]
pub struct TlsAlert {
    /// Capture time of the record.
    pub ts: Ts,
    /// Who sent it.
    pub dir: Dir,
    /// 1 warning, 2 fatal; `None` when the alert is encrypted and no keys read it.
    pub level: Option<u8>,
    /// Description code; `None` when encrypted.
    pub description: Option<u8>,
    /// Description name (`close_notify`, ...); `None` when encrypted.
    pub name: Option<&'static str>,
    /// Seen only as an encrypted record: a TLS 1.2 alert record after ChangeCipherSpec, or a
    /// TLS 1.3 record of an alert's exact size as a side's last record before its FIN or RST.
    /// Such an alert is almost always close_notify.
    pub encrypted: bool,
}

impl TlsAlert {
    /// A close_notify, or an encrypted alert (which at the end of a stream is one).
    pub fn is_close(&self) -> bool {
        self.description == Some(0) || (self.encrypted && self.description.is_none())
    }
}

/// Records and bytes one way.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TlsDirInfo {
    /// Records.
    pub records: u64,
    /// Record bytes, headers included.
    pub bytes: u64,
    /// Application-data records (after this side's handshake).
    pub app_records: u64,
    /// Their fragment bytes (ciphertext).
    pub app_bytes: u64,
    /// First application-data record.
    pub first_app_ts: Option<Ts>,
    /// Last application-data record.
    pub last_app_ts: Option<Ts>,
    /// Longest time between two application-data records, seconds.
    pub longest_silence_s: Option<f64>,
    /// Whether this side sent close_notify (or an encrypted alert at its end).
    pub close_notify: bool,
}

/// The TLS facts of a connection, in `connection_open` (as far as known then) and
/// `connection_end`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TlsInfo {
    /// Negotiated version (`TLS 1.3`, `TLS 1.2`, ...), once the ServerHello is seen.
    pub version: Option<&'static str>,
    /// Negotiated cipher suite (IANA name, or hex when unknown).
    pub cipher_suite: Option<String>,
    /// server_name the client sent.
    pub sni: Option<String>,
    /// ALPN protocols the client offered.
    pub alpn_offered: Vec<String>,
    /// ALPN protocol chosen (TLS 1.3 sends it encrypted: known only with keys).
    pub alpn: Option<String>,
    /// `decrypted`, `no_keys` (none given), `keys_missing` (not for this session), `failed`
    /// (authentication failure: wrong keys), `unsupported_cipher`, or `no_hello` (the
    /// handshake is not in the capture).
    pub decryption: &'static str,
    /// Both Finished messages went by (seen decrypted, or inferred from the record flow).
    pub handshake_complete: bool,
    /// Client to server.
    pub c2s: TlsDirInfo,
    /// Server to client.
    pub s2c: TlsDirInfo,
    /// Alerts in order.
    pub alerts: Vec<TlsAlert>,
    /// KeyUpdate messages (TLS 1.3, decrypted).
    pub key_updates: u32,
    /// Renegotiations (TLS 1.2: a ClientHello or HelloRequest after the handshake).
    pub renegotiations: u32,
}

/// What one call produced.
#[derive(Default)]
pub struct Output {
    /// Decrypted application data of the direction pushed.
    pub plain: Vec<u8>,
    /// Anomalies: (kind, detail).
    pub anomalies: Vec<(&'static str, String)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decryption {
    NoHello,
    NoKeys,
    KeysMissing,
    Pending,
    Decrypted,
    Failed,
    Unsupported,
}

impl Decryption {
    fn as_str(self) -> &'static str {
        match self {
            Decryption::NoHello => "no_hello",
            Decryption::NoKeys => "no_keys",
            Decryption::KeysMissing => "keys_missing",
            Decryption::Pending | Decryption::Decrypted => "decrypted",
            Decryption::Failed => "failed",
            Decryption::Unsupported => "unsupported_cipher",
        }
    }
}

#[derive(Default)]
struct DirState {
    /// Bytes of an incomplete record.
    buf: Vec<u8>,
    /// Bytes of an incomplete handshake message (plaintext).
    hs_buf: Vec<u8>,
    keys: Option<DirKeys>,
    /// TLS 1.3 current application traffic secret (for KeyUpdate).
    app_secret: Option<Vec<u8>>,
    /// Records are protected from here on.
    protected: bool,
    /// This side's Finished went by.
    hs_done: bool,
    /// Record boundaries lost or the stream is not TLS: nothing more is parsed.
    dead: bool,
    failed: bool,
    info: TlsDirInfo,
    /// (time, fragment length, outer content type) of the last record.
    last_record: Option<(Ts, usize, u8)>,
    /// Application-data record time before the last one.
    prev_app_ts: Option<Ts>,
}

/// One connection's TLS state; see the module doc.
pub struct TlsConn {
    dirs: [DirState; 2],
    version: Option<u16>,
    suite: Option<u16>,
    sni: Option<String>,
    alpn_offered: Vec<String>,
    alpn: Option<String>,
    client_random: Option<[u8; 32]>,
    server_random: Option<[u8; 32]>,
    secrets: Option<Secrets>,
    decryption: Decryption,
    hello_seen: bool,
    alerts: Vec<TlsAlert>,
    key_updates: u32,
    renegotiations: u32,
}

impl Default for TlsConn {
    fn default() -> Self {
        TlsConn::new()
    }
}

impl TlsConn {
    /// State for a connection whose first client bytes are a ClientHello record.
    pub fn new() -> TlsConn {
        TlsConn {
            dirs: [DirState::default(), DirState::default()],
            version: None,
            suite: None,
            sni: None,
            alpn_offered: Vec::new(),
            alpn: None,
            client_random: None,
            server_random: None,
            secrets: None,
            decryption: Decryption::NoHello,
            hello_seen: false,
            alerts: Vec::new(),
            key_updates: 0,
            renegotiations: 0,
        }
    }

    /// Whether the connection is listed without its plaintext: the ClientHello was seen, no
    /// plaintext is coming (no keys, wrong keys, unsupported suite), and it looks like
    /// WebSocket: the client offered exactly `http/1.1` by ALPN (browsers do for a WebSocket and
    /// add `h2` for everything else), or offered no ALPN to a server port from 1024 up (library
    /// clients send none; below 1024 are HTTPS and the other TLS services), or the server name
    /// looks like a WebSocket endpoint. Keys that fail to authenticate list the connection
    /// anyway: the key log claimed it. With working keys the plaintext decides, as for ws://.
    pub fn listed_without_plaintext(&self, server_port: u16) -> bool {
        if !self.hello_seen
            || matches!(self.decryption, Decryption::Pending | Decryption::Decrypted)
        {
            return false;
        }
        if self.decryption == Decryption::Failed {
            return true;
        }
        let alpn_ws = match self.alpn_offered.as_slice() {
            [] => server_port >= 1024,
            [only] => only == "http/1.1",
            _ => false,
        };
        alpn_ws || self.sni.as_deref().is_some_and(sni_looks_websocket)
    }

    /// Whether any record was decrypted.
    pub fn decrypted(&self) -> bool {
        self.decryption == Decryption::Decrypted
    }

    /// The facts so far. `ended` says which directions sent FIN or RST: a TLS 1.3 direction
    /// whose last record has an encrypted alert's size before its end is taken to have sent
    /// close_notify.
    pub fn info(&self, ended: [bool; 2]) -> TlsInfo {
        let mut alerts = self.alerts.clone();
        let mut dirs = [self.dirs[0].info.clone(), self.dirs[1].info.clone()];
        let tls13_unread = self.version == Some(0x0304)
            && !matches!(self.decryption, Decryption::Decrypted | Decryption::Pending);
        for (i, d) in self.dirs.iter().enumerate() {
            let Some((ts, len, ct)) = d.last_record else {
                continue;
            };
            if tls13_unread
                && ended[i]
                && ct == content::APPLICATION_DATA
                && len == TLS13_ALERT_RECORD
                && d.hs_done
            {
                let dir = if i == 0 { Dir::C2s } else { Dir::S2c };
                alerts.push(TlsAlert {
                    ts,
                    dir,
                    level: None,
                    description: None,
                    name: None,
                    encrypted: true,
                });
                // It was counted as application data; it is not.
                let info = &mut dirs[i];
                info.app_records = info.app_records.saturating_sub(1);
                info.app_bytes = info.app_bytes.saturating_sub(len as u64);
                info.last_app_ts = d.prev_app_ts;
                if info.app_records == 0 {
                    info.first_app_ts = None;
                }
            }
        }
        alerts.sort_by_key(|a| a.ts);
        for a in &alerts {
            if a.is_close() {
                dirs[a.dir.index()].close_notify = true;
            }
        }
        let [c2s, s2c] = dirs;
        TlsInfo {
            version: self.version.map(version_name),
            cipher_suite: self.suite.map(|id| {
                let s = suite(id);
                if s.name.is_empty() {
                    format!("0x{id:04x}")
                } else {
                    s.name.to_owned()
                }
            }),
            sni: self.sni.clone(),
            alpn_offered: self.alpn_offered.clone(),
            alpn: self.alpn.clone(),
            decryption: self.decryption.as_str(),
            handshake_complete: self.dirs[0].hs_done && self.dirs[1].hs_done,
            c2s,
            s2c,
            alerts,
            key_updates: self.key_updates,
            renegotiations: self.renegotiations,
        }
    }

    /// Bytes were lost in a direction: its record boundaries are gone, so it is not parsed
    /// (or decrypted) any further.
    pub fn gap(&mut self, dir: Dir, len: u64, out: &mut Output) {
        let d = &mut self.dirs[dir.index()];
        if d.dead {
            return;
        }
        d.dead = true;
        d.keys = None;
        d.buf = Vec::new();
        out.anomalies.push((
            "tls_bytes_lost",
            format!(
                "{len} bytes of TLS records lost: the rest of this direction cannot be decrypted"
            ),
        ));
    }

    /// Takes stream bytes of one direction.
    pub fn push(&mut self, dir: Dir, ts: Ts, bytes: &[u8], keys: &KeyLog, out: &mut Output) {
        let i = dir.index();
        if self.dirs[i].dead {
            return;
        }
        let mut buf = std::mem::take(&mut self.dirs[i].buf);
        buf.extend_from_slice(bytes);
        let mut off = 0;
        while !self.dirs[i].dead {
            match record::parse_record(buf.get(off..).unwrap_or_default()) {
                RecordParse::Record(r, n) => {
                    off += n;
                    self.record(dir, ts, r.content_type, r.version, r.fragment, keys, out);
                }
                RecordParse::Incomplete => break,
                RecordParse::Invalid => {
                    self.dirs[i].dead = true;
                    out.anomalies.push((
                        "tls_record_invalid",
                        "bytes that are not a TLS record header: the rest of this direction is not parsed".into(),
                    ));
                }
            }
        }
        if !self.dirs[i].dead {
            buf.drain(..off.min(buf.len()));
            self.dirs[i].buf = buf;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        dir: Dir,
        ts: Ts,
        content_type: u8,
        version: u16,
        fragment: &[u8],
        keys: &KeyLog,
        out: &mut Output,
    ) {
        let i = dir.index();
        let d = &mut self.dirs[i];
        d.info.records += 1;
        d.info.bytes += 5 + fragment.len() as u64;
        d.last_record = Some((ts, fragment.len(), content_type));
        let tls13 = self.version == Some(0x0304);
        if content_type == content::CCS {
            // TLS 1.3 sends it only for middlebox compatibility; in TLS 1.2 it switches this
            // direction to the negotiated keys.
            if !tls13 {
                d.protected = true;
                self.tls12_keys(dir, out);
            }
            return;
        }
        if !d.protected {
            match content_type {
                content::HANDSHAKE => self.handshake_bytes(dir, ts, fragment, keys, out),
                content::ALERT => self.alert(dir, ts, fragment, false, out),
                // Early data before the ServerHello, or a peer that is not speaking TLS right.
                _ => {}
            }
            return;
        }
        let Some(k) = d.keys.as_mut() else {
            // No keys: only the record flow is known.
            if content_type == content::ALERT {
                self.alert(dir, ts, &[], true, out);
                return;
            }
            if content_type != content::APPLICATION_DATA {
                return;
            }
            if d.hs_done {
                app_record(d, ts, fragment.len());
            } else if tls13 {
                // TLS 1.3: the client's first protected record is its Finished; the server's
                // records before that are its handshake flight.
                if dir == Dir::C2s {
                    d.hs_done = true;
                    self.dirs[1].hs_done = true;
                }
            } else {
                // TLS 1.2: the first protected record after ChangeCipherSpec is Finished.
                d.hs_done = true;
            }
            return;
        };
        match k.decrypt(content_type, version, fragment) {
            Ok(mut plain) => {
                if self.decryption == Decryption::Pending {
                    self.decryption = Decryption::Decrypted;
                }
                let inner = if tls13 {
                    // TLSInnerPlaintext: content, the real type, zero padding.
                    while plain.last() == Some(&0) {
                        plain.pop();
                    }
                    plain.pop().unwrap_or(0)
                } else {
                    content_type
                };
                match inner {
                    content::HANDSHAKE => self.handshake_bytes(dir, ts, &plain, keys, out),
                    content::ALERT => self.alert(dir, ts, &plain, false, out),
                    content::APPLICATION_DATA => {
                        app_record(&mut self.dirs[i], ts, fragment.len());
                        out.plain.extend_from_slice(&plain);
                    }
                    _ => {}
                }
            }
            Err(e) => {
                d.keys = None;
                d.failed = true;
                self.decryption = Decryption::Failed;
                let why = match e {
                    DecryptError::Authentication => {
                        "record authentication failed: the key log's secrets do not match this session (wrong keys), or the bytes were damaged"
                    }
                    DecryptError::TooShort => "a protected record too short to hold its tag",
                };
                out.anomalies.push((
                    "tls_decrypt_failed",
                    format!("{why}; no plaintext from here on"),
                ));
                // Later records are still counted as the record flow.
                if content_type == content::APPLICATION_DATA {
                    let d = &mut self.dirs[i];
                    if d.hs_done {
                        app_record(d, ts, fragment.len());
                    }
                    d.hs_done = true;
                }
            }
        }
    }

    /// Joins handshake fragments and handles each whole message.
    fn handshake_bytes(&mut self, dir: Dir, ts: Ts, bytes: &[u8], keys: &KeyLog, out: &mut Output) {
        let i = dir.index();
        let mut buf = std::mem::take(&mut self.dirs[i].hs_buf);
        buf.extend_from_slice(bytes);
        let mut off = 0;
        while let Some((t, body, n)) = record::parse_handshake(buf.get(off..).unwrap_or_default()) {
            off += n;
            self.handshake_message(dir, ts, t, body, keys, out);
        }
        buf.drain(..off.min(buf.len()));
        if buf.len() > MAX_HANDSHAKE_BYTES {
            buf = Vec::new();
        }
        self.dirs[i].hs_buf = buf;
    }

    fn handshake_message(
        &mut self,
        dir: Dir,
        _ts: Ts,
        t: u8,
        body: &[u8],
        keys: &KeyLog,
        out: &mut Output,
    ) {
        let done = self.dirs[0].hs_done && self.dirs[1].hs_done;
        match (dir, t) {
            (Dir::C2s, hs::CLIENT_HELLO) => {
                let Some(ch) = record::parse_client_hello(body) else {
                    return;
                };
                if done {
                    self.renegotiations += 1;
                    out.anomalies.push((
                        "tls_renegotiation",
                        "the client started a new handshake on the established connection (TLS 1.2 renegotiation)".into(),
                    ));
                } else if self.hello_seen {
                    // The second ClientHello after a HelloRetryRequest keeps the random.
                    return;
                }
                self.hello_seen = true;
                self.client_random = Some(ch.random);
                if !done {
                    self.sni = ch.sni;
                    self.alpn_offered = ch.alpn;
                }
                self.secrets = keys.get(&ch.random).cloned();
                self.decryption = match (&self.secrets, keys.is_empty()) {
                    (Some(_), _) => Decryption::Pending,
                    (None, true) => Decryption::NoKeys,
                    (None, false) => {
                        out.anomalies.push((
                            "tls_keys_missing",
                            "the key log has no secrets for this TLS session (client random not listed)".into(),
                        ));
                        Decryption::KeysMissing
                    }
                };
            }
            (Dir::S2c, hs::HELLO_REQUEST) if done => {
                self.renegotiations += 1;
                out.anomalies.push((
                    "tls_renegotiation",
                    "the server asked for a new handshake (TLS 1.2 HelloRequest)".into(),
                ));
            }
            (Dir::S2c, hs::SERVER_HELLO) => {
                let Some(sh) = record::parse_server_hello(body) else {
                    return;
                };
                if sh.retry {
                    return;
                }
                self.version = Some(sh.version);
                self.suite = Some(sh.cipher_suite);
                self.server_random = Some(sh.random);
                if sh.alpn.is_some() {
                    self.alpn = sh.alpn;
                }
                let s = suite(sh.cipher_suite);
                if s.aead.is_none() || !matches!(sh.version, 0x0303 | 0x0304) {
                    if self.secrets.is_some() {
                        out.anomalies.push((
                            "tls_unsupported_cipher",
                            format!(
                                "{} with {}: only AEAD suites (AES-GCM, ChaCha20-Poly1305) of TLS 1.2 and 1.3 are decrypted",
                                version_name(sh.version),
                                if s.name.is_empty() { format!("0x{:04x}", sh.cipher_suite) } else { s.name.to_owned() }
                            ),
                        ));
                    }
                    if matches!(self.decryption, Decryption::Pending) {
                        self.decryption = Decryption::Unsupported;
                    }
                    self.secrets = None;
                }
                if sh.version == 0x0304 {
                    self.dirs[0].protected = true;
                    self.dirs[1].protected = true;
                    self.tls13_handshake_keys(out);
                }
            }
            (Dir::S2c, hs::ENCRYPTED_EXTENSIONS) => {
                if let Some(p) = record::parse_encrypted_extensions(body) {
                    self.alpn = Some(p);
                }
            }
            (_, hs::FINISHED) => {
                let i = dir.index();
                self.dirs[i].hs_done = true;
                if self.version == Some(0x0304) {
                    let secret = self.secrets.as_ref().and_then(|s| match dir {
                        Dir::C2s => s.client_traffic.clone(),
                        Dir::S2c => s.server_traffic.clone(),
                    });
                    self.tls13_set_app_keys(dir, secret, out);
                }
            }
            (_, hs::KEY_UPDATE) if self.version == Some(0x0304) => {
                self.key_updates += 1;
                let i = dir.index();
                let Some((alg, hash)) = self.suite.and_then(|id| suite(id).aead) else {
                    return;
                };
                let next = self.dirs[i]
                    .app_secret
                    .as_deref()
                    .and_then(|s| kdf::tls13_next_secret(hash, s));
                let _ = alg;
                self.tls13_set_app_keys(dir, next, out);
            }
            _ => {}
        }
    }

    fn tls13_handshake_keys(&mut self, out: &mut Output) {
        let Some((alg, hash)) = self.suite.and_then(|id| suite(id).aead) else {
            return;
        };
        let Some(s) = &self.secrets else { return };
        let (c, sv) = (s.client_handshake.clone(), s.server_handshake.clone());
        let mut missing = false;
        for (i, secret) in [c, sv].into_iter().enumerate() {
            match secret.and_then(|sec| kdf::tls13_key_iv(hash, &sec, alg.key_len())) {
                Some((key, iv)) => self.dirs[i].keys = DirKeys::new(alg, &key, &iv, true),
                None => missing = true,
            }
        }
        if missing {
            self.no_keys_after_all(
                "the key log lacks this session's TLS 1.3 handshake traffic secrets",
                out,
            );
        }
    }

    fn tls13_set_app_keys(&mut self, dir: Dir, secret: Option<Vec<u8>>, out: &mut Output) {
        let i = dir.index();
        if self.secrets.is_none() {
            return;
        }
        let Some((alg, hash)) = self.suite.and_then(|id| suite(id).aead) else {
            return;
        };
        let keys = secret
            .as_deref()
            .and_then(|s| kdf::tls13_key_iv(hash, s, alg.key_len()));
        match keys {
            Some((key, iv)) => {
                self.dirs[i].keys = DirKeys::new(alg, &key, &iv, true);
                self.dirs[i].app_secret = secret;
            }
            None => {
                self.dirs[i].keys = None;
                if !self.dirs[i].failed {
                    self.no_keys_after_all(
                        "the key log lacks this session's TLS 1.3 application traffic secret",
                        out,
                    );
                }
            }
        }
    }

    fn tls12_keys(&mut self, dir: Dir, out: &mut Output) {
        let i = dir.index();
        let (Some(s), Some(cr), Some(sr), Some(id)) = (
            &self.secrets,
            self.client_random,
            self.server_random,
            self.suite,
        ) else {
            return;
        };
        let Some((alg, hash)) = suite(id).aead else {
            return;
        };
        let Some(master) = s.master.clone() else {
            self.no_keys_after_all(
                "the key log has no CLIENT_RANDOM line for this TLS 1.2 session",
                out,
            );
            return;
        };
        let Some([ck, sk, civ, siv]) =
            kdf::tls12_keys(hash, &master, &cr, &sr, alg.key_len(), alg.tls12_iv_len())
        else {
            return;
        };
        let (key, iv) = if dir == Dir::C2s {
            (ck, civ)
        } else {
            (sk, siv)
        };
        self.dirs[i].keys = DirKeys::new(alg, &key, &iv, false);
    }

    fn no_keys_after_all(&mut self, why: &str, out: &mut Output) {
        if matches!(self.decryption, Decryption::Pending | Decryption::Decrypted) {
            out.anomalies.push(("tls_keys_missing", why.to_owned()));
            self.decryption = Decryption::KeysMissing;
        }
        self.secrets = None;
        self.dirs[0].keys = None;
        self.dirs[1].keys = None;
    }

    fn alert(&mut self, dir: Dir, ts: Ts, body: &[u8], encrypted: bool, out: &mut Output) {
        let (level, description) = match body {
            [l, d, ..] if !encrypted => (Some(*l), Some(*d)),
            _ => (None, None),
        };
        if level == Some(2) {
            out.anomalies.push((
                "tls_fatal_alert",
                format!(
                    "fatal alert {} ({})",
                    description.map_or("?", alert_name),
                    description.unwrap_or(0)
                ),
            ));
        }
        self.alerts.push(TlsAlert {
            ts,
            dir,
            level,
            description,
            name: description.map(alert_name),
            encrypted: encrypted || (body.is_empty() && level.is_none()),
        });
    }
}

/// Counts one application-data record.
fn app_record(d: &mut DirState, ts: Ts, len: usize) {
    let info = &mut d.info;
    if let Some(prev) = info.last_app_ts {
        let gap = ts.secs_since(prev);
        if info.longest_silence_s.is_none_or(|l| gap > l) {
            info.longest_silence_s = Some(gap);
        }
    }
    d.prev_app_ts = info.last_app_ts;
    info.app_records += 1;
    info.app_bytes += len as u64;
    info.first_app_ts.get_or_insert(ts);
    info.last_app_ts = Some(ts);
}

/// A server name that says WebSocket: a label `ws`, `wss`, or one containing `websocket` or
/// `socket`.
fn sni_looks_websocket(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.split('.').any(|l| {
        l == "ws"
            || l == "wss"
            || l.starts_with("ws-")
            || l.contains("websocket")
            || l.contains("socket")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_looking_names() {
        assert!(sni_looks_websocket("ws.example.com"));
        assert!(sni_looks_websocket("api-websocket.example.com"));
        assert!(sni_looks_websocket("socket.example.com"));
        assert!(!sni_looks_websocket("www.example.com"));
        assert!(!sni_looks_websocket("news.example.com"));
    }
}
