//! Unmasking (RFC 6455 §5.3): takes a payload slice, its masking key and the slice's offset in
//! the frame payload, and XORs it in place, a word at a time, with the naive loop kept as its
//! reference.
//!
//! Byte `j` of a payload is XORed with `key[j % 4]` (§5.3). A slice starting at payload offset
//! `o` therefore sees the key rotated left by `o % 4`; eight consecutive bytes always see the
//! rotated key twice, so one `u64` built from it serves every aligned-or-not 8-byte chunk.
//! `chunks_exact_mut` + `from_ne_bytes` needs no alignment and no `unsafe`, and LLVM vectorises
//! the loop (this is tungstenite's fast32 idea without the `align_to` prefix handling: unaligned
//! loads cost nothing on current x86-64/aarch64).

/// XORs `buf` with `key`, where `buf[0]` is byte `offset` of the frame payload (so a payload
/// unmasked in pieces gives the same result as in one go).
pub fn unmask(buf: &mut [u8], key: [u8; 4], offset: u64) {
    // `offset & 3` < 4, so the rotation is a small shift.
    let rot = (offset & 3) as u32;
    let k = u32::from_be_bytes(key).rotate_left(8 * rot).to_be_bytes();
    let word = u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]]);

    // 32-byte blocks of four words give the vectoriser a wide body to work with.
    let mut blocks = buf.chunks_exact_mut(32);
    for block in &mut blocks {
        for w in block.chunks_exact_mut(8) {
            xor_word(w, word);
        }
    }
    let rest = blocks.into_remainder();
    let mut words = rest.chunks_exact_mut(8);
    for w in &mut words {
        xor_word(w, word);
    }
    // The tail starts at a multiple of 8 from `buf[0]`, so it sees the same rotated key.
    for (b, m) in words.into_remainder().iter_mut().zip(k.iter().cycle()) {
        *b ^= m;
    }
}

#[inline(always)]
fn xor_word(w: &mut [u8], word: u64) {
    if let Ok(arr) = <&mut [u8; 8]>::try_from(w) {
        *arr = (u64::from_ne_bytes(*arr) ^ word).to_ne_bytes();
    }
}

/// The byte-at-a-time definition the fast path is checked against.
pub fn unmask_naive(buf: &mut [u8], key: [u8; 4], offset: u64) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[((offset.wrapping_add(i as u64)) & 3) as usize];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + 7) as u8).collect()
    }

    #[test]
    fn fast_equals_naive_small() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in 0..=64 {
            for offset in 0..=7u64 {
                // Also vary the slice's alignment in memory.
                for start in 0..4 {
                    let mut a = pattern(len + start);
                    let mut b = a.clone();
                    unmask(&mut a[start..], key, offset);
                    unmask_naive(&mut b[start..], key, offset);
                    assert_eq!(a, b, "len {len} offset {offset} start {start}");
                }
            }
        }
    }

    #[test]
    fn fast_equals_naive_large_and_pieces() {
        let key = [1, 2, 0x80, 0xff];
        let orig = pattern(100_003);
        let mut whole = orig.clone();
        unmask_naive(&mut whole, key, 0);
        let mut fast = orig.clone();
        unmask(&mut fast, key, 0);
        assert_eq!(fast, whole);
        // Unmasking in odd-sized pieces at their payload offsets gives the same bytes.
        let mut pieces = orig.clone();
        let mut off = 0usize;
        for step in [1usize, 3, 7, 8, 13, 4096, 5, 65_537].iter().cycle() {
            if off >= pieces.len() {
                break;
            }
            let end = (off + step).min(pieces.len());
            unmask(&mut pieces[off..end], key, off as u64);
            off = end;
        }
        assert_eq!(pieces, whole);
        // RFC 6455 §5.7 example.
        let mut hello = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        unmask(&mut hello, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&hello, b"Hello");
    }

    proptest! {
        #[test]
        fn fast_equals_naive(buf in proptest::collection::vec(any::<u8>(), 0..300),
                             key: [u8; 4], offset: u64) {
            let mut a = buf.clone();
            let mut b = buf;
            unmask(&mut a, key, offset);
            unmask_naive(&mut b, key, offset);
            prop_assert_eq!(a, b);
        }
    }
}
