//! String literals (RFC 7541 section 5.2): a length-prefixed byte string, optionally
//! Huffman-coded.

use crate::{DecodeError, huffman, integer};

/// Appends `value` as a string literal, Huffman-coded only when that is strictly
/// shorter, so the encoder never pays for the code on incompressible values.
pub(crate) fn write(value: &[u8], dst: &mut Vec<u8>) {
    let huffman_len = huffman::encoded_len(value);
    if huffman_len < value.len() {
        integer::encode(huffman_len, 7, 0x80, dst);
        huffman::encode_sized(value, huffman_len, dst);
    } else {
        write_raw(value, dst);
    }
}

/// Appends `value` as a raw string literal, never Huffman-coded.
pub(crate) fn write_raw(value: &[u8], dst: &mut Vec<u8>) {
    integer::encode(value.len(), 7, 0x00, dst);
    dst.extend_from_slice(value);
}

/// Reads a string literal at `src[*pos]` into `dst`, advancing `pos` past it.
///
/// A declared length past the end of `src` fails before anything is copied, and the
/// output may not exceed `limit` bytes ([`DecodeError::HeaderListTooLarge`] with
/// `limit`): `dst` never grows beyond `limit`, whatever the peer declares.
pub(crate) fn read(
    src: &[u8],
    pos: &mut usize,
    dst: &mut Vec<u8>,
    limit: usize,
) -> Result<(), DecodeError> {
    let literal = Literal::at(src, pos)?;
    literal.decode_into(dst, limit)
}

/// A string literal as sent: its bytes, Huffman-coded or not.
#[derive(Clone, Copy)]
pub(crate) struct Literal<'a> {
    pub(crate) huffman: bool,
    pub(crate) bytes: &'a [u8],
}

impl<'a> Literal<'a> {
    /// The literal at `src[*pos]`, advancing `pos` past it; fails on a declared length
    /// past the end of `src`, before anything is copied.
    pub(crate) fn at(src: &'a [u8], pos: &mut usize) -> Result<Self, DecodeError> {
        let huffman = src.get(*pos).ok_or(DecodeError::Truncated)? & 0x80 != 0;
        let len = integer::decode(7, src, pos)?;
        let rest = src.get(*pos..).unwrap_or_default();
        let bytes = rest.get(..len).ok_or(DecodeError::StringPastEnd {
            len,
            available: rest.len(),
        })?;
        *pos += len;
        Ok(Literal { huffman, bytes })
    }

    /// Appends the string to `dst`, which may not grow by more than `limit` bytes.
    pub(crate) fn decode_into(self, dst: &mut Vec<u8>, limit: usize) -> Result<(), DecodeError> {
        if self.huffman {
            huffman::decode(self.bytes, dst, limit)
        } else if self.bytes.len() > limit {
            Err(DecodeError::HeaderListTooLarge { limit })
        } else {
            dst.extend_from_slice(self.bytes);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(src: &[u8], limit: usize) -> Result<(Vec<u8>, usize), DecodeError> {
        let mut pos = 0;
        let mut out = Vec::new();
        read(src, &mut pos, &mut out, limit).map(|()| (out, pos))
    }

    #[test]
    fn raw_and_huffman_round_trip() {
        for value in [&b""[..], b"a", b"custom-key", &[0, 1, 2, 254, 255]] {
            let mut buf = Vec::new();
            write(value, &mut buf);
            assert_eq!(read_all(&buf, usize::MAX), Ok((value.to_vec(), buf.len())));
        }
    }

    #[test]
    fn picks_the_shorter_form() {
        let mut buf = Vec::new();
        write(b"www.example.com", &mut buf);
        assert_eq!(buf[0], 0x8c, "Huffman, 12 bytes");
        buf.clear();
        write(&[0xff; 4], &mut buf);
        assert_eq!(buf[0], 0x04, "raw, 4 bytes");
    }

    #[test]
    fn declared_length_past_end_fails_before_copying() {
        // Length u32::MAX, with three bytes present.
        let src = [0x7f, 0x80, 0xff, 0xff, 0xff, 0x0f, b'a', b'b', b'c'];
        assert_eq!(
            read_all(&src, usize::MAX),
            Err(DecodeError::StringPastEnd {
                len: 127 + 0xffff_ff80,
                available: 3
            })
        );
    }

    #[test]
    fn limit_applies_to_raw_and_huffman() {
        assert_eq!(read_all(b"\x03abc", 3).map(|(v, _)| v), Ok(b"abc".to_vec()));
        assert_eq!(
            read_all(b"\x03abc", 2),
            Err(DecodeError::HeaderListTooLarge { limit: 2 })
        );
        let mut buf = Vec::new();
        write(b"aaaaaaaa", &mut buf);
        assert_eq!(buf[0] & 0x80, 0x80);
        assert_eq!(
            read_all(&buf, 7),
            Err(DecodeError::HeaderListTooLarge { limit: 7 })
        );
    }
}
