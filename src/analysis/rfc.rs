//! Takes an anomaly kind and gives the rule it breaks: the RFC section, the close code a strict
//! peer sends when it sees it, and the error code the Node `ws` library reports (`WS_ERR_*`).
//!
//! A static table: kinds not listed (capture limits such as `frame_too_large`, decoding notes
//! such as `frame_sync_lost`) are wsinspect's own and break no rule.

use serde::Serialize;

/// The rule behind one anomaly kind.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Rule {
    /// The anomaly kind.
    pub kind: &'static str,
    /// RFC and section.
    pub rfc: &'static str,
    /// Close code a strict peer sends on seeing it (`None`: the handshake fails instead, so there
    /// is no WebSocket connection to close, or peers do not act on it).
    pub close_code: Option<u16>,
    /// What `ws` 8 reports (`None` when it does not check).
    pub ws_error: Option<&'static str>,
}

const fn r(
    kind: &'static str,
    rfc: &'static str,
    close_code: Option<u16>,
    ws_error: Option<&'static str>,
) -> Rule {
    Rule {
        kind,
        rfc,
        close_code,
        ws_error,
    }
}

/// Every anomaly kind that breaks a protocol rule.
pub const RULES: &[Rule] = &[
    r(
        "continuation_without_start",
        "RFC 6455 §5.4",
        Some(1002),
        Some("WS_ERR_INVALID_OPCODE"),
    ),
    r(
        "data_frame_inside_fragmented_message",
        "RFC 6455 §5.4",
        Some(1002),
        Some("WS_ERR_INVALID_OPCODE"),
    ),
    r(
        "control_frame_fragmented",
        "RFC 6455 §5.5",
        Some(1002),
        Some("WS_ERR_EXPECTED_FIN"),
    ),
    r(
        "control_frame_too_large",
        "RFC 6455 §5.5",
        Some(1002),
        Some("WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH"),
    ),
    r(
        "reserved_opcode",
        "RFC 6455 §5.2",
        Some(1002),
        Some("WS_ERR_INVALID_OPCODE"),
    ),
    r(
        "rsv_bits_without_extension",
        "RFC 6455 §5.2",
        Some(1002),
        Some("WS_ERR_UNEXPECTED_RSV_1"),
    ),
    r(
        "rsv1_on_continuation",
        "RFC 7692 §6.1",
        Some(1002),
        Some("WS_ERR_UNEXPECTED_RSV_1"),
    ),
    r(
        "rsv1_on_control_frame",
        "RFC 7692 §6.1",
        Some(1002),
        Some("WS_ERR_UNEXPECTED_RSV_1"),
    ),
    r("non_minimal_length", "RFC 6455 §5.2", Some(1002), None),
    r(
        "invalid_utf8_text",
        "RFC 6455 §8.1",
        Some(1007),
        Some("WS_ERR_INVALID_UTF8"),
    ),
    r("inflate_error", "RFC 7692 §7.2.3", Some(1007), None),
    r(
        "unmasked_client_frame",
        "RFC 6455 §5.1",
        Some(1002),
        Some("WS_ERR_EXPECTED_MASK"),
    ),
    r(
        "masked_server_frame",
        "RFC 6455 §5.1",
        Some(1002),
        Some("WS_ERR_UNEXPECTED_MASK"),
    ),
    r(
        "close_code_not_allowed",
        "RFC 6455 §7.4",
        Some(1002),
        Some("WS_ERR_INVALID_CLOSE_CODE"),
    ),
    r(
        "close_payload_one_byte",
        "RFC 6455 §5.5.1",
        Some(1002),
        Some("WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH"),
    ),
    r(
        "invalid_utf8_close_reason",
        "RFC 6455 §5.5.1",
        Some(1007),
        Some("WS_ERR_INVALID_UTF8"),
    ),
    r("data_after_close", "RFC 6455 §5.5.1", None, None),
    r("close_after_close", "RFC 6455 §5.5.1", None, None),
    r(
        "invalid_length",
        "RFC 6455 §5.2",
        Some(1002),
        Some("WS_ERR_UNSUPPORTED_MESSAGE_LENGTH"),
    ),
    r(
        "message_over_max_payload",
        "ws maxPayload (RFC 6455 §7.4.1: 1009)",
        Some(1009),
        Some("WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH"),
    ),
    r("upgrade_not_get", "RFC 6455 §4.1", None, None),
    r("request_missing_upgrade", "RFC 6455 §4.2.1", None, None),
    r(
        "request_missing_connection_upgrade",
        "RFC 6455 §4.2.1",
        None,
        None,
    ),
    r("response_missing_upgrade", "RFC 6455 §4.1", None, None),
    r(
        "response_missing_connection_upgrade",
        "RFC 6455 §4.1",
        None,
        None,
    ),
    r("missing_key", "RFC 6455 §4.2.1", None, None),
    r("missing_accept", "RFC 6455 §4.1", None, None),
    r("wrong_accept", "RFC 6455 §4.1", None, None),
    r("unsupported_version", "RFC 6455 §4.4", None, None),
    r("extension_not_offered", "RFC 6455 §9.1", None, None),
    r("subprotocol_not_offered", "RFC 6455 §4.1", None, None),
    r("deflate_params_invalid", "RFC 7692 §7.1", None, None),
];

/// The rule for `kind`, if it breaks one.
pub fn rule(kind: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analysis_rules_are_unique_and_codes_are_protocol_codes() {
        for (i, a) in RULES.iter().enumerate() {
            assert!(
                RULES[i + 1..].iter().all(|b| b.kind != a.kind),
                "{}",
                a.kind
            );
            if let Some(c) = a.close_code {
                assert!((1002..=1011).contains(&c), "{}", a.kind);
            }
        }
        assert_eq!(
            rule("invalid_utf8_text").and_then(|r| r.close_code),
            Some(1007)
        );
        assert!(rule("frame_sync_lost").is_none());
    }
}
