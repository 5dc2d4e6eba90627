//! Sequence-number arithmetic: takes 32-bit TCP sequence numbers and gives signed distances
//! (RFC 1982 serial-number arithmetic) and positions in a per-direction 64-bit stream offset
//! space, so that a stream longer than 4 GiB or crossing 2^32 keeps a single ordering.
//!
//! Raw `u32` sequence numbers are never compared with `<`: every comparison goes through
//! [`distance`], which is only meaningful while the two numbers are less than 2^31 apart. TCP
//! guarantees that for anything inside a window, and reassembly always measures from the next
//! byte it expects, so the reference point moves along with the stream.

/// Signed distance from `from` to `to` in sequence space: positive when `to` comes after `from`.
pub(super) fn distance(from: u32, to: u32) -> i64 {
    // Reinterpreting the wrapped difference as i32 is exactly RFC 1982's comparison.
    i64::from(to.wrapping_sub(from) as i32)
}

/// The sequence number of stream offset `off` in a direction whose offset 0 is `base`.
pub(super) fn seq_at(base: u32, off: u64) -> u32 {
    // Only the low 32 bits matter: sequence numbers wrap every 2^32 offsets.
    base.wrapping_add(off as u32)
}

/// Where a run of `len` sequence numbers starting `rel` after the next expected offset `next`
/// falls: `None` when it ends at or before `next` (all seen already); otherwise the absolute
/// offset of its first byte not before `next`, and how many of its leading bytes precede `next`.
pub(super) fn place(next: u64, rel: i64, len: u64) -> Option<(u64, u64)> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    if rel.saturating_add(len) <= 0 {
        return None;
    }
    if rel < 0 {
        Some((next, rel.unsigned_abs()))
    } else {
        Some((next.saturating_add(rel.unsigned_abs()), 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_wraps() {
        assert_eq!(distance(10, 15), 5);
        assert_eq!(distance(15, 10), -5);
        assert_eq!(distance(u32::MAX - 2, 3), 6);
        assert_eq!(distance(3, u32::MAX - 2), -6);
        assert_eq!(distance(0, 0x7fff_ffff), 0x7fff_ffff);
        assert_eq!(distance(0, 0x8000_0000), -0x8000_0000);
    }

    #[test]
    fn seq_at_wraps() {
        assert_eq!(seq_at(u32::MAX, 1), 0);
        assert_eq!(seq_at(5, (1u64 << 32) + 3), 8);
    }

    #[test]
    fn place_trims_old_bytes() {
        assert_eq!(place(100, -10, 5), None);
        assert_eq!(place(100, -10, 10), None);
        assert_eq!(place(100, -10, 15), Some((100, 10)));
        assert_eq!(place(100, 0, 1), Some((100, 0)));
        assert_eq!(place(100, 7, 1), Some((107, 0)));
        assert_eq!(place(100, -3, u64::MAX), Some((100, 3)));
    }
}
