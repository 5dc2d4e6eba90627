//! The frame header parser (RFC 6455 §5.2): a streaming nom parser that says how many more bytes
//! it needs.

/// Opcode values.
pub mod opcode {
    /// Continuation frame.
    pub const CONTINUATION: u8 = 0x0;
    /// Text frame.
    pub const TEXT: u8 = 0x1;
    /// Binary frame.
    pub const BINARY: u8 = 0x2;
    /// Close frame.
    pub const CLOSE: u8 = 0x8;
    /// Ping frame.
    pub const PING: u8 = 0x9;
    /// Pong frame.
    pub const PONG: u8 = 0xA;
}

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN bit.
    pub fin: bool,
    /// RSV1..RSV3 as a 3-bit number (RSV1 = 0b100).
    pub rsv: u8,
    /// Opcode (4 bits).
    pub opcode: u8,
    /// Masking key, when the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// Payload length as declared (7, 16 or 64-bit form).
    pub payload_len: u64,
    /// Header size in bytes (2 to 14).
    pub header_len: u8,
}

impl FrameHeader {
    /// Whether RSV1 (the permessage-deflate "compressed" bit) is set.
    pub fn rsv1(&self) -> bool {
        self.rsv & 0b100 != 0
    }

    /// Whether this is a control frame (opcode 8 and above).
    pub fn is_control(&self) -> bool {
        self.opcode & 0x8 != 0
    }
}

/// Why a header could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// At least this many more bytes are needed.
    Incomplete(usize),
    /// The 64-bit length has its most significant bit set (RFC 6455 §5.2 forbids it).
    LengthMsbSet,
}

/// Parses a frame header at the start of `input`.
pub fn parse_header(input: &[u8]) -> Result<FrameHeader, HeaderError> {
    let _ = input;
    unimplemented!()
}
