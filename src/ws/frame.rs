//! The frame header parser (RFC 6455 §5.2): a streaming nom parser that takes the bytes at a
//! frame boundary and gives the decoded header, or says exactly how many more bytes it needs.
//!
//! Layout (RFC 6455 §5.2): byte 0 = FIN, RSV1..3, opcode; byte 1 = MASK, 7-bit length; then a
//! 16-bit (length 126) or 64-bit (length 127) extended length in network order; then the 4-byte
//! masking key when MASK is set. Non-minimal length encodings (e.g. 5 in the 16-bit form) are
//! legal to parse; callers that care can compare `header_len` with [`minimal_header_len`].

use nom::bytes::streaming::take;
use nom::number::streaming::{be_u8, be_u16, be_u64};
use nom::{IResult, Parser};

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

    /// Whether RFC 6455 §5.2 defines this opcode (the others are reserved, 3-7 and 0xB-0xF).
    pub fn is_defined(op: u8) -> bool {
        matches!(op, CONTINUATION | TEXT | BINARY | CLOSE | PING | PONG)
    }
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

    /// Whether the length used a longer form than needed (RFC 6455 §5.2: "the minimal number of
    /// bytes MUST be used to encode the length").
    pub fn non_minimal_length(&self) -> bool {
        self.header_len > minimal_header_len(self.payload_len, self.mask.is_some())
    }
}

/// Header size a sender following RFC 6455 §5.2 would use for this length and masking.
pub fn minimal_header_len(payload_len: u64, masked: bool) -> u8 {
    let len_bytes = match payload_len {
        0..=125 => 0,
        126..=0xFFFF => 2,
        _ => 8,
    };
    2 + len_bytes + if masked { 4 } else { 0 }
}

/// Why a header could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// At least this many more bytes are needed.
    Incomplete(usize),
    /// The 64-bit length has its most significant bit set (RFC 6455 §5.2 forbids it).
    LengthMsbSet,
}

/// Total header size implied by the second header byte (MASK bit and 7-bit length).
fn header_len_from_byte1(b1: u8) -> usize {
    let ext = match b1 & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 }
}

/// Raw header fields: byte 0, byte 1, payload length, masking key.
type RawHeader = (u8, u8, u64, Option<[u8; 4]>);

/// The nom parser proper. Streaming combinators return `Incomplete` on short input; the caller
/// turns that into an exact count because byte 1 alone fixes the header size.
fn header(i: &[u8]) -> IResult<&[u8], RawHeader> {
    let (i, b0) = be_u8(i)?;
    let (i, b1) = be_u8(i)?;
    let (i, len) = match b1 & 0x7F {
        126 => be_u16.map(u64::from).parse(i)?,
        127 => be_u64(i)?,
        n => (i, u64::from(n)),
    };
    let (i, mask) = if b1 & 0x80 != 0 {
        let (i, k) = take(4usize).parse(i)?;
        let key = match *k {
            [a, b, c, d] => [a, b, c, d],
            // `take(4)` yields exactly 4 bytes; this arm is unreachable but keeps us panic-free.
            _ => [0; 4],
        };
        (i, Some(key))
    } else {
        (i, None)
    };
    Ok((i, (b0, b1, len, mask)))
}

/// Parses a frame header at the start of `input`.
///
/// `Incomplete(n)` is exact: with fewer than 2 bytes it asks for the rest of the fixed part,
/// after that byte 1 tells the full header size. A 64-bit length with its MSB set is reported as
/// soon as the first length byte is visible, so a resynchronising caller can reject it early.
pub fn parse_header(input: &[u8]) -> Result<FrameHeader, HeaderError> {
    if let [_, b1, l0, ..] = *input
        && b1 & 0x7F == 127
        && l0 & 0x80 != 0
    {
        return Err(HeaderError::LengthMsbSet);
    }
    match header(input) {
        Ok((_, (b0, b1, payload_len, mask))) => {
            if payload_len >> 63 != 0 {
                return Err(HeaderError::LengthMsbSet);
            }
            Ok(FrameHeader {
                fin: b0 & 0x80 != 0,
                rsv: (b0 >> 4) & 0b111,
                opcode: b0 & 0x0F,
                mask,
                payload_len,
                // At most 14 by construction.
                header_len: header_len_from_byte1(b1) as u8,
            })
        }
        Err(_) => {
            // Only streaming short reads can fail here (every byte pattern is a valid header
            // shape); compute the exact shortfall rather than trusting nom's per-field count.
            let need = match input.get(1) {
                Some(&b1) => header_len_from_byte1(b1),
                None => 2,
            };
            Err(HeaderError::Incomplete(
                need.saturating_sub(input.len()).max(1),
            ))
        }
    }
}

/// Encodes a header (minimal length form). Used by tests and tools that synthesise frames.
pub fn encode_header(h: &FrameHeader, out: &mut Vec<u8>) {
    let b0 = (u8::from(h.fin) << 7) | ((h.rsv & 0b111) << 4) | (h.opcode & 0x0F);
    let m = if h.mask.is_some() { 0x80 } else { 0 };
    out.push(b0);
    match h.payload_len {
        n @ 0..=125 => out.push(m | n as u8),
        n @ 126..=0xFFFF => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
    if let Some(k) = h.mask {
        out.extend_from_slice(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check_all_splits(bytes: &[u8], want: FrameHeader) {
        for cut in 0..bytes.len() {
            let need = bytes.len() - cut;
            // Before byte 1 is known, only the 2-byte fixed part can be asked for.
            let expect = if cut < 2 { 2 - cut } else { need };
            assert_eq!(
                parse_header(&bytes[..cut]),
                Err(HeaderError::Incomplete(expect)),
                "cut {cut} of {bytes:02x?}"
            );
        }
        assert_eq!(parse_header(bytes), Ok(want));
        // Extra payload bytes after the header do not matter.
        let mut more = bytes.to_vec();
        more.extend_from_slice(b"payload");
        assert_eq!(parse_header(&more), Ok(want));
    }

    #[test]
    fn rfc_vectors() {
        // RFC 6455 §5.7: unmasked "Hello".
        check_all_splits(
            &[0x81, 0x05],
            FrameHeader {
                fin: true,
                rsv: 0,
                opcode: 1,
                mask: None,
                payload_len: 5,
                header_len: 2,
            },
        );
        // Masked "Hello".
        check_all_splits(
            &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d],
            FrameHeader {
                fin: true,
                rsv: 0,
                opcode: 1,
                mask: Some([0x37, 0xfa, 0x21, 0x3d]),
                payload_len: 5,
                header_len: 6,
            },
        );
        // 256-byte binary, 16-bit length.
        check_all_splits(
            &[0x82, 0x7E, 0x01, 0x00],
            FrameHeader {
                fin: true,
                rsv: 0,
                opcode: 2,
                mask: None,
                payload_len: 256,
                header_len: 4,
            },
        );
        // 64 KiB binary, 64-bit length.
        check_all_splits(
            &[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0],
            FrameHeader {
                fin: true,
                rsv: 0,
                opcode: 2,
                mask: None,
                payload_len: 65536,
                header_len: 10,
            },
        );
        // Masked, 64-bit, RSV1, not FIN, continuation.
        check_all_splits(
            &[0x40, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4],
            FrameHeader {
                fin: false,
                rsv: 0b100,
                opcode: 0,
                mask: Some([1, 2, 3, 4]),
                payload_len: 1 << 32,
                header_len: 14,
            },
        );
        // Ping, masked, 16-bit form holding a small value (non-minimal but legal to parse).
        let h = parse_header(&[0x89, 0xFE, 0x00, 0x05, 9, 9, 9, 9]);
        assert_eq!(
            h.map(|h| (h.payload_len, h.non_minimal_length())),
            Ok((5, true))
        );
    }

    #[test]
    fn length_msb_set() {
        let bytes = [0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(parse_header(&bytes), Err(HeaderError::LengthMsbSet));
        // Reported as soon as the first length byte is visible.
        assert_eq!(parse_header(&bytes[..3]), Err(HeaderError::LengthMsbSet));
        // Largest legal length parses.
        let ok = [0x82, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        assert_eq!(parse_header(&ok).map(|h| h.payload_len), Ok(u64::MAX >> 1));
    }

    proptest! {
        #[test]
        fn round_trip(
            fin: bool,
            rsv in 0u8..8,
            op in 0u8..16,
            mask: Option<[u8; 4]>,
            len in prop_oneof![0u64..=125, 126u64..=0xFFFF, 0x1_0000u64..=(u64::MAX >> 1)],
        ) {
            let want = FrameHeader {
                fin,
                rsv,
                opcode: op,
                mask,
                payload_len: len,
                header_len: minimal_header_len(len, mask.is_some()),
            };
            let mut buf = Vec::new();
            encode_header(&want, &mut buf);
            prop_assert_eq!(buf.len(), usize::from(want.header_len));
            prop_assert_eq!(parse_header(&buf), Ok(want));
            prop_assert!(!want.non_minimal_length());
        }
    }
}
