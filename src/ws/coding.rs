//! Wire enumerations: opcodes and close codes (RFC 6455 §5.2, §7.4 and the IANA registry).

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
    let _ = code;
    unimplemented!()
}

/// The class of a close code.
pub fn close_code_class(code: u16) -> CloseClass {
    let _ = code;
    unimplemented!()
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
pub fn parse_close(payload: &[u8]) -> ClosePayload {
    let _ = payload;
    unimplemented!()
}

/// The name of an opcode: `continuation`, `text`, `binary`, `close`, `ping`, `pong`, or
/// `reserved`.
pub fn opcode_name(opcode: u8) -> &'static str {
    let _ = opcode;
    unimplemented!()
}
