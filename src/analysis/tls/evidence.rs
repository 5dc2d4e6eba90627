//! The evidence lines of a TLS-level diagnosis beyond those every wss:// connection gets: takes
//! the TLS facts of its end and gives one line per fact behind the verdict (records and bytes
//! each way, each FIN and RST with its TTL, the last application-data record each way), plus the
//! middlebox a foreign TTL points to.

use std::fmt::Write as _;

use super::facts::TlsEnding;
use crate::analysis::evidence::tcp_close_lines;
use crate::analysis::facts::tcp_marks;
use crate::analysis::phrases::secs;
use crate::diagnosis::Idle;
use crate::tls::TlsInfo;
use crate::types::Dir;

/// One line on the connection's TLS: version, suite, names, and why nothing was decrypted.
pub(super) fn summary_line(t: &TlsInfo) -> String {
    let mut s = format!(
        "{} {}",
        t.version.unwrap_or("TLS (version not seen)"),
        t.cipher_suite.as_deref().unwrap_or("")
    );
    if let Some(n) = &t.sni {
        let n: String = n.chars().take(80).collect();
        let _ = write!(s, ", SNI {n:?}");
    }
    match (&t.alpn, t.alpn_offered.is_empty()) {
        (Some(p), _) => {
            let _ = write!(s, ", ALPN {p}");
        }
        (None, false) => {
            let _ = write!(s, ", ALPN offered {}", t.alpn_offered.join(","));
        }
        (None, true) => s.push_str(", no ALPN"),
    }
    let why = match t.decryption {
        "decrypted" => "decrypted",
        "no_keys" => "not decrypted: no key log given (--keylog)",
        "keys_missing" => "not decrypted: the key log lacks this session",
        "failed" => "not decrypted: the keys do not match (authentication failure)",
        "unsupported_cipher" => "not decrypted: cipher suite not supported",
        _ => "not decrypted: the TLS handshake is not in the capture",
    };
    let _ = write!(s, "; {why}");
    s
}

/// Records and bytes each way, and the application-data records among them.
pub(super) fn records(t: &TlsInfo, ev: &mut Vec<String>) {
    for (d, info) in [(Dir::C2s, &t.c2s), (Dir::S2c, &t.s2c)] {
        ev.push(format!(
            "{}: {} TLS records, {} bytes; {} application-data records ({} bytes)",
            d.as_str(),
            info.records,
            info.bytes,
            info.app_records,
            info.app_bytes
        ));
    }
}

/// Each FIN and RST in time order with its TTL, worded as for a ws:// connection; gives the
/// first whose TTL is unlike its sender's other packets, as a clause: something on the path
/// sent it.
pub(super) fn tcp_closes(e: &TlsEnding<'_>, ev: &mut Vec<String>) -> Option<String> {
    tcp_close_lines(e.end, &tcp_marks(e.end), ev)
}

/// The last application-data record each way, and how long before the end.
pub(super) fn last_app_data(e: &TlsEnding<'_>, idle: &Idle, ev: &mut Vec<String>) {
    for (d, info, i) in [
        (Dir::C2s, &e.t.c2s, &idle.c2s),
        (Dir::S2c, &e.t.s2c, &idle.s2c),
    ] {
        if let (Some(ts), Some(f)) = (info.last_app_ts, i.final_silence_s) {
            ev.push(format!(
                "last {} application-data record at {}, {} before the end",
                d.as_str(),
                e.rel(ts),
                secs(f)
            ));
        }
    }
}
