//! `Sec-WebSocket-Extensions`: takes a header value and gives the list of extensions with their
//! parameters (RFC 6455 §9.1), and reads the parameters of permessage-deflate (RFC 7692 §7.1).
//!
//! Parsing is lenient (whitespace anywhere, empty list elements, unterminated quotes) because
//! the point is to report what peers sent; `deflate_params` is strict because a wrong window
//! size or context-takeover flag would make inflation fail later.

use super::{DeflateParams, Extension};
use std::iter::Peekable;
use std::str::Chars;

/// Parses a `Sec-WebSocket-Extensions` value (RFC 6455 §9.1).
///
/// ```text
/// extension-list  = 1#extension
/// extension       = extension-token *( ";" extension-param )
/// extension-param = token [ "=" (token | quoted-string) ]
/// ```
///
/// Quotes are removed from values (with `\` escapes resolved); elements without a name are
/// dropped. Several offers of the same extension stay separate, in order.
pub fn parse_extensions(value: &str) -> Vec<Extension> {
    let mut chars = value.chars().peekable();
    let mut out = Vec::new();
    loop {
        let name = read_until(&mut chars, &[',', ';']);
        let mut params = Vec::new();
        while chars.next_if_eq(&';').is_some() {
            let pname = read_until(&mut chars, &[',', ';', '=']);
            let pvalue = chars.next_if_eq(&'=').map(|_| read_value(&mut chars));
            if !pname.is_empty() {
                params.push((pname, pvalue));
            }
        }
        if !name.is_empty() {
            out.push(Extension { name, params });
        }
        // Here the next character is a comma or the value has ended.
        if chars.next().is_none() {
            return out;
        }
    }
}

/// Characters up to (not including) one of `stops`, trimmed.
fn read_until(chars: &mut Peekable<Chars<'_>>, stops: &[char]) -> String {
    let mut s = String::new();
    while let Some(c) = chars.next_if(|c| !stops.contains(c)) {
        s.push(c);
    }
    s.trim().to_owned()
}

/// A parameter value: a token or a quoted-string (RFC 9110 §5.6.4), up to the next `,` or `;`.
fn read_value(chars: &mut Peekable<Chars<'_>>) -> String {
    while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
    if chars.next_if_eq(&'"').is_none() {
        return read_until(chars, &[',', ';']);
    }
    let mut s = String::new();
    while let Some(c) = chars.next() {
        match c {
            '"' => break,
            // quoted-pair: the next character stands for itself.
            '\\' => s.extend(chars.next()),
            c => s.push(c),
        }
    }
    // Anything between the closing quote and the next separator is malformed; drop it.
    read_until(chars, &[',', ';']);
    s
}

/// Reads permessage-deflate parameters; `Err` says which parameter is malformed.
///
/// RFC 7692 §7.1: each parameter at most once; the `*_no_context_takeover` ones take no value;
/// `server_max_window_bits` needs one; `client_max_window_bits` may be bare in an offer, which is
/// recorded as `Some(15)` (§7.1.2.2). A bare `client_max_window_bits` in a *response* is invalid;
/// this function cannot tell the two apart, so the caller checks `ext.params` for that.
pub fn deflate_params(ext: &Extension) -> Result<DeflateParams, String> {
    if !ext.name.eq_ignore_ascii_case("permessage-deflate") {
        return Err(format!("{:?} is not permessage-deflate", ext.name));
    }
    let mut p = DeflateParams::default();
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in &ext.params {
        if seen.iter().any(|s| s.eq_ignore_ascii_case(name)) {
            return Err(format!("duplicate parameter {name}"));
        }
        seen.push(name);
        let value = value.as_deref();
        match name.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" => {
                no_value(name, value)?;
                p.server_no_context_takeover = true;
            }
            "client_no_context_takeover" => {
                no_value(name, value)?;
                p.client_no_context_takeover = true;
            }
            "server_max_window_bits" => match value {
                Some(v) => p.server_max_window_bits = Some(window_bits(name, v)?),
                None => return Err(format!("{name} needs a value")),
            },
            "client_max_window_bits" => {
                // §7.1.2.2: a bare parameter only says the client supports the limit; 15 is
                // the default window, so nothing changes unless the server answers with one.
                let bits = match value {
                    Some(v) => window_bits(name, v)?,
                    None => 15,
                };
                p.client_max_window_bits = Some(bits);
            }
            _ => return Err(format!("unknown parameter {name}")),
        }
    }
    Ok(p)
}

fn no_value(name: &str, value: Option<&str>) -> Result<(), String> {
    match value {
        None => Ok(()),
        Some(v) => Err(format!("{name} takes no value (got {v:?})")),
    }
}

/// RFC 7692 §7.1.2.1: a decimal integer 8..15 without leading zeros (also after unquoting).
fn window_bits(name: &str, v: &str) -> Result<u8, String> {
    let well_formed = !v.is_empty() && !v.starts_with('0') && v.bytes().all(|b| b.is_ascii_digit());
    match v.parse::<u8>() {
        Ok(n @ 8..=15) if well_formed => Ok(n),
        _ => Err(format!("{name}={v:?} is not a window size in 8..15")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(name: &str, params: &[(&str, Option<&str>)]) -> Extension {
        Extension {
            name: name.into(),
            params: params
                .iter()
                .map(|(n, v)| ((*n).into(), v.map(Into::into)))
                .collect(),
        }
    }

    #[test]
    fn real_offers_and_answers() {
        // Python websockets' default offer (corpus zeek/wrong-accept-header.pcap).
        let e = parse_extensions("permessage-deflate; client_max_window_bits");
        assert_eq!(
            e,
            vec![ext(
                "permessage-deflate",
                &[("client_max_window_bits", None)]
            )]
        );
        let p = deflate_params(&e[0]).unwrap();
        assert_eq!(p.client_max_window_bits, Some(15));
        assert_eq!(p.server_max_window_bits, None);

        // Negotiated in corpus zeek/pr5646/websocket_compressed.pcap.
        let e = parse_extensions(
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
        );
        let p = deflate_params(&e[0]).unwrap();
        assert_eq!(p.server_max_window_bits, Some(12));
        assert_eq!(p.client_max_window_bits, Some(12));
        assert!(!p.server_no_context_takeover && !p.client_no_context_takeover);

        let e = parse_extensions(
            "permessage-deflate; client_no_context_takeover; server_no_context_takeover",
        );
        let p = deflate_params(&e[0]).unwrap();
        assert_eq!(
            p,
            DeflateParams {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                ..DeflateParams::default()
            }
        );

        // Offer and answer in corpus scapy-pr4579/websocket_compressed_session.pcap.
        let e = parse_extensions(
            "permessage-deflate; client_max_window_bits=10; server_max_window_bits=10",
        );
        let p = deflate_params(&e[0]).unwrap();
        assert_eq!(
            (p.client_max_window_bits, p.server_max_window_bits),
            (Some(10), Some(10))
        );
        let e = parse_extensions("permessage-deflate; client_max_window_bits=10");
        assert_eq!(
            deflate_params(&e[0]).unwrap().client_max_window_bits,
            Some(10)
        );

        // Server answer in corpus suricata-verify/websocket-compressed/example_websocket.pcap.
        let e = parse_extensions("permessage-deflate; client_max_window_bits=15");
        assert_eq!(
            deflate_params(&e[0]).unwrap().client_max_window_bits,
            Some(15)
        );

        // An empty header is sent in corpus ndpi/false_positives.pcapng.
        assert_eq!(parse_extensions(""), vec![]);
    }

    #[test]
    fn multiple_offers_stay_separate() {
        let e = parse_extensions("permessage-deflate; client_max_window_bits, permessage-deflate");
        assert_eq!(
            e,
            vec![
                ext("permessage-deflate", &[("client_max_window_bits", None)]),
                ext("permessage-deflate", &[]),
            ]
        );
        assert_eq!(deflate_params(&e[1]), Ok(DeflateParams::default()));
    }

    #[test]
    fn quoted_values_and_whitespace() {
        assert_eq!(
            parse_extensions(r#"x; a="1""#),
            vec![ext("x", &[("a", Some("1"))])]
        );
        // Separators inside quotes do not split; escapes are resolved.
        assert_eq!(
            parse_extensions(r#"x; a="1,2;3" ;b = "q\"x" , y"#),
            vec![
                ext("x", &[("a", Some("1,2;3")), ("b", Some("q\"x"))]),
                ext("y", &[])
            ]
        );
        assert_eq!(
            parse_extensions("  foo ;bar= 5\t;baz ,, ,bar  "),
            vec![
                ext("foo", &[("bar", Some("5")), ("baz", None)]),
                ext("bar", &[])
            ]
        );
        assert_eq!(parse_extensions(""), vec![]);
        assert_eq!(parse_extensions(" , ; a=1"), vec![]);
        // Unterminated quote: the rest is the value.
        assert_eq!(
            parse_extensions(r#"x; a="1, y"#),
            vec![ext("x", &[("a", Some("1, y"))])]
        );
        // A quoted window size is allowed after unquoting (RFC 7692 §7.1.2.1).
        let e = parse_extensions(r#"permessage-deflate; server_max_window_bits="10""#);
        assert_eq!(
            deflate_params(&e[0]).unwrap().server_max_window_bits,
            Some(10)
        );
    }

    #[test]
    fn deflate_param_errors() {
        for bad in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=+9",
            "permessage-deflate; client_max_window_bits=",
            "permessage-deflate; client_max_window_bits=300",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=\"\"",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
            "permessage-deflate; foo",
            "x-webkit-deflate-frame",
        ] {
            let e = parse_extensions(bad);
            assert!(deflate_params(&e[0]).is_err(), "{bad}");
        }
        for bits in 8..=15u8 {
            let e = parse_extensions(&format!(
                "permessage-deflate; client_max_window_bits={bits}"
            ));
            assert_eq!(
                deflate_params(&e[0]).unwrap().client_max_window_bits,
                Some(bits)
            );
        }
    }
}
