//! Prefixed integers (RFC 7541 section 5.1).
//!
//! Public because QPACK (RFC 9204) reuses the same integer coding, and so that its
//! properties can be tested on their own.
//!
//! Decoding caps values at `u32::MAX`: no legitimate index, length or table size
//! comes close, and the cap bounds the number of continuation bytes a peer can make
//! us read for one integer.

use crate::DecodeError;

/// At most this many bytes may follow the prefix: five 7-bit groups cover 35 bits,
/// enough for any `u32` on top of the largest prefix. Longer encodings, even of small
/// values padded with zero groups, are rejected so that a peer cannot make us spin
/// on continuation bytes.
pub const MAX_CONTINUATION_BYTES: usize = 5;

/// The largest value [`decode`] accepts.
pub const MAX_VALUE: usize = u32::MAX as usize;

/// Appends `value` with a `prefix_bits`-bit prefix; `flags` supplies the bits of the
/// first byte above the prefix (the representation's type pattern).
///
/// # Panics
///
/// If `prefix_bits` is not in `1..=8`, which is a bug in the caller.
#[inline]
pub fn encode(value: usize, prefix_bits: u8, flags: u8, dst: &mut Vec<u8>) {
    assert!(
        (1..=8).contains(&prefix_bits),
        "HPACK prefixes are 1 to 8 bits"
    );
    let max_prefix = (1usize << prefix_bits) - 1;
    debug_assert!(
        usize::from(flags) & max_prefix == 0,
        "flags overlap the prefix"
    );
    if value < max_prefix {
        // Lossless: value < max_prefix <= 255.
        dst.push(flags | value as u8);
    } else {
        encode_long(value, max_prefix, flags, dst);
    }
}

/// The multi-byte form, kept out of line so that the one-byte case inlines small.
fn encode_long(value: usize, max_prefix: usize, flags: u8, dst: &mut Vec<u8>) {
    dst.push(flags | max_prefix as u8);
    let mut rest = value - max_prefix;
    while rest >= 0x80 {
        dst.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    dst.push(rest as u8);
}

/// Reads an integer whose `prefix_bits`-bit prefix is in `src[*pos]`, advancing `pos`
/// past it. The bits above the prefix are ignored: they are the caller's to read.
///
/// Fails with [`DecodeError::Truncated`] if `src` ends first, and with
/// [`DecodeError::IntegerOverflow`] if the value exceeds [`MAX_VALUE`] or uses more
/// than [`MAX_CONTINUATION_BYTES`]; it never reads past the byte that fails.
///
/// # Panics
///
/// If `prefix_bits` is not in `1..=8`, which is a bug in the caller.
pub fn decode(prefix_bits: u8, src: &[u8], pos: &mut usize) -> Result<usize, DecodeError> {
    assert!(
        (1..=8).contains(&prefix_bits),
        "HPACK prefixes are 1 to 8 bits"
    );
    let max_prefix = (1u64 << prefix_bits) - 1;
    let first = *src.get(*pos).ok_or(DecodeError::Truncated)?;
    *pos += 1;
    let mut value = u64::from(first) & max_prefix;
    if value < max_prefix {
        // Lossless: value < max_prefix <= 255.
        return Ok(value as usize);
    }
    for group in 0..MAX_CONTINUATION_BYTES {
        let byte = *src.get(*pos).ok_or(DecodeError::Truncated)?;
        *pos += 1;
        value += u64::from(byte & 0x7f) << (7 * group);
        if value > MAX_VALUE as u64 {
            return Err(DecodeError::IntegerOverflow);
        }
        if byte & 0x80 == 0 {
            // Lossless: value <= u32::MAX, and usize is at least 32 bits here.
            return Ok(value as usize);
        }
    }
    Err(DecodeError::IntegerOverflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(value: usize, prefix_bits: u8) {
        let mut buf = Vec::new();
        encode(value, prefix_bits, 0, &mut buf);
        let mut pos = 0;
        assert_eq!(decode(prefix_bits, &buf, &mut pos), Ok(value));
        assert_eq!(pos, buf.len());
    }

    /// RFC 7541 C.1.1: 10 with a 5-bit prefix.
    #[test]
    fn rfc_c_1_1() {
        let mut buf = Vec::new();
        encode(10, 5, 0, &mut buf);
        assert_eq!(buf, [0b0000_1010]);
        let mut pos = 0;
        assert_eq!(decode(5, &buf, &mut pos), Ok(10));
    }

    /// RFC 7541 C.1.2: 1337 with a 5-bit prefix.
    #[test]
    fn rfc_c_1_2() {
        let mut buf = Vec::new();
        encode(1337, 5, 0, &mut buf);
        assert_eq!(buf, [0b0001_1111, 0b1001_1010, 0b0000_1010]);
        let mut pos = 0;
        assert_eq!(decode(5, &buf, &mut pos), Ok(1337));
        assert_eq!(pos, 3);
    }

    /// RFC 7541 C.1.3: 42 starting at an octet boundary (8-bit prefix).
    #[test]
    fn rfc_c_1_3() {
        let mut buf = Vec::new();
        encode(42, 8, 0, &mut buf);
        assert_eq!(buf, [0b0010_1010]);
        let mut pos = 0;
        assert_eq!(decode(8, &buf, &mut pos), Ok(42));
    }

    #[test]
    fn flags_are_preserved_and_ignored_on_decode() {
        let mut buf = Vec::new();
        encode(3, 6, 0x40, &mut buf);
        assert_eq!(buf, [0x43]);
        let mut pos = 0;
        assert_eq!(decode(6, &buf, &mut pos), Ok(3));
    }

    #[test]
    fn boundaries_round_trip() {
        for prefix_bits in 1..=8 {
            let max_prefix = (1usize << prefix_bits) - 1;
            for value in [
                0,
                1,
                max_prefix - 1,
                max_prefix,
                max_prefix + 1,
                127,
                128,
                16_383,
            ] {
                round_trip(value, prefix_bits);
            }
            round_trip(u32::MAX as usize, prefix_bits);
        }
    }

    #[test]
    fn rejects_values_past_u32() {
        let mut buf = Vec::new();
        encode(u32::MAX as usize + 1, 5, 0, &mut buf);
        let mut pos = 0;
        assert_eq!(decode(5, &buf, &mut pos), Err(DecodeError::IntegerOverflow));
    }

    #[test]
    fn rejects_too_many_continuation_bytes() {
        // Zero-valued continuation bytes never overflow, so only the count stops them.
        let buf = [0x1f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00];
        let mut pos = 0;
        assert_eq!(decode(5, &buf, &mut pos), Err(DecodeError::IntegerOverflow));
    }

    #[test]
    fn rejects_truncation() {
        let mut pos = 0;
        assert_eq!(
            decode(5, &[0x1f, 0x9a], &mut pos),
            Err(DecodeError::Truncated)
        );
        let mut pos = 0;
        assert_eq!(decode(5, &[], &mut pos), Err(DecodeError::Truncated));
    }
}
