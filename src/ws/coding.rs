//! Wire enumerations: takes opcodes, close codes and close-frame payloads and gives their names,
//! classes and parsed fields (RFC 6455 §5.2, §5.5.1, §7.4 and the IANA registry).

/// What the IANA registry and RFC 6455 say about a close code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseClass {
    /// 1000-1015 with a name and allowed on the wire.
    Standard,
    /// 1005, 1006, 1015 and anything the RFC forbids on the wire (0-999, 1004, 1016-2999).
    NotOnWire,
    /// 3000-3999: registered with IANA for libraries and frameworks.
    Registered,
    /// 4000-4999: private use by applications.
    Private,
    /// 5000 and above: outside every range.
    Invalid,
}

/// The registry name of a close code (e.g. `normal_closure` for 1000), if it has one.
pub fn close_code_name(code: u16) -> Option<&'static str> {
    // Names from the IANA "WebSocket Close Code Number Registry" (RFC 6455 §7.4.1, §11.7).
    Some(match code {
        1000 => "normal_closure",
        1001 => "going_away",
        1002 => "protocol_error",
        1003 => "unsupported_data",
        1004 => "reserved",
        1005 => "no_status_received",
        1006 => "abnormal_closure",
        1007 => "invalid_frame_payload_data",
        1008 => "policy_violation",
        1009 => "message_too_big",
        1010 => "mandatory_extension",
        1011 => "internal_error",
        1012 => "service_restart",
        1013 => "try_again_later",
        1014 => "bad_gateway",
        1015 => "tls_handshake",
        _ => return None,
    })
}

/// The class of a close code.
pub fn close_code_class(code: u16) -> CloseClass {
    match code {
        // §7.4.1: 1005, 1006 and 1015 are for reporting locally and MUST NOT be sent; 1004 is
        // reserved without a meaning.
        1004..=1006 | 1015 => CloseClass::NotOnWire,
        1000..=1014 => CloseClass::Standard,
        // §7.4.2: 0-999 are unused; 1016-2999 are kept for future RFCs, none assigned yet.
        0..=999 | 1016..=2999 => CloseClass::NotOnWire,
        3000..=3999 => CloseClass::Registered,
        4000..=4999 => CloseClass::Private,
        5000.. => CloseClass::Invalid,
    }
}

/// The payload of a close frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosePayload {
    /// The status code; `None` for an empty payload.
    pub code: Option<u16>,
    /// The reason, lossily decoded.
    pub reason: String,
    /// Whether the reason bytes were valid UTF-8.
    pub reason_utf8: bool,
    /// A 1-byte payload (always invalid).
    pub one_byte: bool,
}

/// Parses a close frame's (unmasked) payload.
///
/// RFC 6455 §5.5.1: the body, if any, starts with a 2-byte big-endian code and the rest is a
/// UTF-8 reason; a 1-byte body cannot hold a code and is a protocol error.
pub fn parse_close(payload: &[u8]) -> ClosePayload {
    match payload {
        [] => ClosePayload {
            code: None,
            reason: String::new(),
            reason_utf8: true,
            one_byte: false,
        },
        [_] => ClosePayload {
            code: None,
            reason: String::new(),
            reason_utf8: true,
            one_byte: true,
        },
        [hi, lo, reason @ ..] => ClosePayload {
            code: Some(u16::from_be_bytes([*hi, *lo])),
            reason: String::from_utf8_lossy(reason).into_owned(),
            reason_utf8: std::str::from_utf8(reason).is_ok(),
            one_byte: false,
        },
    }
}

/// The name of an opcode: `continuation`, `text`, `binary`, `close`, `ping`, `pong`, or
/// `reserved`.
pub fn opcode_name(opcode: u8) -> &'static str {
    // RFC 6455 §5.2: 0x3-0x7 and 0xB-0xF are reserved; anything wider than 4 bits is not an
    // opcode at all, so it is reported the same way rather than panicking.
    match opcode {
        0x0 => "continuation",
        0x1 => "text",
        0x2 => "binary",
        0x8 => "close",
        0x9 => "ping",
        0xA => "pong",
        _ => "reserved",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_classes() {
        assert_eq!(close_code_name(1000), Some("normal_closure"));
        assert_eq!(close_code_name(1007), Some("invalid_frame_payload_data"));
        assert_eq!(close_code_name(1014), Some("bad_gateway"));
        assert_eq!(close_code_name(1015), Some("tls_handshake"));
        assert_eq!(close_code_name(1016), None);
        assert_eq!(close_code_name(3000), None);
        for code in (1000..=1003).chain(1007..=1014) {
            assert_eq!(close_code_class(code), CloseClass::Standard, "{code}");
            assert!(close_code_name(code).is_some());
        }
        for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999] {
            assert_eq!(close_code_class(code), CloseClass::NotOnWire, "{code}");
        }
        assert_eq!(close_code_class(3000), CloseClass::Registered);
        assert_eq!(close_code_class(3999), CloseClass::Registered);
        assert_eq!(close_code_class(4000), CloseClass::Private);
        assert_eq!(close_code_class(4999), CloseClass::Private);
        assert_eq!(close_code_class(5000), CloseClass::Invalid);
        assert_eq!(close_code_class(u16::MAX), CloseClass::Invalid);
    }

    #[test]
    fn close_payloads() {
        let empty = parse_close(&[]);
        assert_eq!(
            (empty.code, empty.one_byte, empty.reason_utf8),
            (None, false, true)
        );
        let one = parse_close(&[0x03]);
        assert_eq!((one.code, one.one_byte), (None, true));
        let code_only = parse_close(&[0x03, 0xE8]);
        assert_eq!(
            (code_only.code, code_only.reason.as_str()),
            (Some(1000), "")
        );
        // The close in corpus zeek/message-too-big-status.pcap.
        let mut p = vec![0x03, 0xF1];
        p.extend_from_slice(b"over size limit (4 > 2 bytes)");
        let c = parse_close(&p);
        assert_eq!(c.code, Some(1009));
        assert_eq!(c.reason, "over size limit (4 > 2 bytes)");
        assert!(c.reason_utf8 && !c.one_byte);
        let bad = parse_close(&[0x03, 0xE8, b'o', 0xFF, b'k']);
        assert_eq!(
            (bad.reason.as_str(), bad.reason_utf8),
            ("o\u{FFFD}k", false)
        );
    }

    #[test]
    fn opcodes() {
        let names: Vec<_> = (0..=0xF).map(opcode_name).collect();
        assert_eq!(names[0..3], ["continuation", "text", "binary"]);
        assert_eq!(names[8..11], ["close", "ping", "pong"]);
        assert!(
            names[3..8]
                .iter()
                .chain(&names[11..])
                .all(|n| *n == "reserved")
        );
        assert_eq!(opcode_name(0xFF), "reserved");
    }
}
