//! The static Huffman code for string literals (RFC 7541 section 5.2, Appendix B).
//!
//! Public because QPACK (RFC 9204) reuses the same code for its string literals, and
//! so that its properties can be tested on their own.

mod codes;
mod machine;
#[cfg(test)]
mod reference;

use self::codes::CODES;
use self::machine::{ENDINGS, Ending, STEPS, Step};
use crate::DecodeError;

/// The shortest code is 5 bits, so `n` encoded bytes decode to at most `8n/5` bytes.
const MIN_CODE_LEN: usize = 5;

/// The most bytes that `encoded_len` bytes of Huffman code can decode to, which lets
/// callers size buffers and budgets from the encoded length alone.
pub fn max_decoded_len(encoded_len: usize) -> usize {
    encoded_len.saturating_mul(8) / MIN_CODE_LEN
}

/// Encoded size in bytes, padding included, so an encoder can pick Huffman only when
/// it is shorter than the raw string.
pub fn encoded_len(src: &[u8]) -> usize {
    let bits: usize = src
        .iter()
        .map(|&b| usize::from(CODES[usize::from(b)].1))
        .sum();
    bits.div_ceil(8)
}

/// Appends the Huffman encoding of `src`, padded with the high bits of EOS as RFC 7541
/// section 5.2 requires.
pub fn encode(src: &[u8], dst: &mut Vec<u8>) {
    encode_sized(src, encoded_len(src), dst);
}

/// [`encode`] for a caller that has already measured `src` with [`encoded_len`].
///
/// Bits gather in a 64-bit accumulator and leave four bytes at a time: fewer than 32
/// pending plus one code of at most 30 bits always fit, and a header value costs a few
/// instructions per byte instead of a capacity check per output byte.
pub(crate) fn encode_sized(src: &[u8], encoded_len: usize, dst: &mut Vec<u8>) {
    dst.reserve(encoded_len);
    let mut acc: u64 = 0;
    let mut pending: u32 = 0;
    for &byte in src {
        let (code, len) = CODES[usize::from(byte)];
        acc = (acc << len) | u64::from(code);
        pending += u32::from(len);
        if pending >= 32 {
            pending -= 32;
            // The 32 bits just above the ones still pending.
            dst.extend_from_slice(&((acc >> pending) as u32).to_be_bytes());
        }
    }
    while pending >= 8 {
        pending -= 8;
        dst.push((acc >> pending) as u8);
    }
    if pending > 0 {
        let pad = 8 - pending;
        dst.push(((acc << pad) as u8) | ((1u8 << pad) - 1));
    }
}

/// Appends the decoding of `src` to `dst`, refusing to grow `dst` by more than `limit`
/// bytes so that a peer cannot make us allocate past a budget.
///
/// Fails with [`DecodeError::HeaderListTooLarge`] carrying `limit` when the output
/// would exceed it, and with the `Huffman*` errors when the code contains EOS or
/// invalid padding. On failure `dst` holds a partial decoding.
pub fn decode(src: &[u8], dst: &mut Vec<u8>, limit: usize) -> Result<(), DecodeError> {
    let room = limit.min(max_decoded_len(src.len()));
    dst.reserve(room);
    let end = dst.len() + room;

    let mut state = 0u8;
    for &byte in src {
        for nibble in [byte >> 4, byte & 0x0f] {
            let step = STEPS[usize::from(state)][usize::from(nibble)];
            if step.flags & Step::EOS != 0 {
                return Err(DecodeError::HuffmanEos);
            }
            if step.flags & Step::EMIT != 0 {
                if dst.len() >= end {
                    return Err(DecodeError::HeaderListTooLarge { limit });
                }
                dst.push(step.symbol);
            }
            state = step.next;
        }
    }

    match ENDINGS[usize::from(state)] {
        Ending::Valid => Ok(()),
        Ending::TooLong => Err(DecodeError::HuffmanPaddingTooLong),
        Ending::NotOnes => Err(DecodeError::HuffmanPaddingNotOnes),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn decode_all(src: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::new();
        decode(src, &mut out, usize::MAX).map(|()| out)
    }

    fn encode_all(src: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(src, &mut out);
        out
    }

    #[test]
    fn every_byte_round_trips_alone() {
        for byte in 0..=255u8 {
            let encoded = encode_all(&[byte]);
            assert_eq!(encoded.len(), encoded_len(&[byte]));
            assert_eq!(decode_all(&encoded), Ok(vec![byte]), "byte {byte}");
        }
    }

    #[test]
    fn all_bytes_round_trip_together() {
        let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        let encoded = encode_all(&all);
        assert_eq!(encoded.len(), encoded_len(&all));
        assert_eq!(decode_all(&encoded), Ok(all));
    }

    #[test]
    fn rfc_vectors() {
        // RFC 7541 C.4.1 and C.6.1 string literals.
        assert_eq!(
            encode_all(b"www.example.com"),
            [
                0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff
            ]
        );
        assert_eq!(
            encode_all(b"no-cache"),
            [0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf]
        );
        assert_eq!(encode_all(b"302"), [0x64, 0x02]);
        assert_eq!(decode_all(&[0x64, 0x02]), Ok(b"302".to_vec()));
        assert_eq!(decode_all(&[]), Ok(Vec::new()));
    }

    #[test]
    fn rejects_eos_symbol() {
        // EOS is 30 ones; followed by 2 one bits of padding.
        assert_eq!(
            decode_all(&[0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::HuffmanEos)
        );
        // 'a' (00011, 5 bits) then EOS: EOS inside the string, not at its end.
        let bits = [0b0001_1111, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(decode_all(&bits), Err(DecodeError::HuffmanEos));
    }

    #[test]
    fn rejects_long_padding() {
        // "302" encodes to exactly 16 bits, so an appended 0xff is all padding.
        let mut encoded = encode_all(b"302");
        assert_eq!(encoded.len(), 2);
        encoded.push(0xff);
        assert_eq!(
            decode_all(&encoded),
            Err(DecodeError::HuffmanPaddingTooLong)
        );
        assert_eq!(decode_all(&[0xff]), Err(DecodeError::HuffmanPaddingTooLong));
        // 24 ones: a proper prefix of EOS, far too long to be padding.
        assert_eq!(
            decode_all(&[0xff, 0xff, 0xff]),
            Err(DecodeError::HuffmanPaddingTooLong)
        );
        // 29 ones and a zero complete symbol 22; the two zero bits after it are not
        // valid padding.
        assert_eq!(
            decode_all(&[0xff, 0xff, 0xff, 0xf8]),
            Err(DecodeError::HuffmanPaddingNotOnes)
        );
    }

    #[test]
    fn rejects_padding_with_zeros() {
        // 'a' is 00011: five bits, then three bits of padding which must be 111.
        assert_eq!(decode_all(&[0b0001_1111]), Ok(b"a".to_vec()));
        assert_eq!(
            decode_all(&[0b0001_1110]),
            Err(DecodeError::HuffmanPaddingNotOnes)
        );
        assert_eq!(
            decode_all(&[0b0001_1000]),
            Err(DecodeError::HuffmanPaddingNotOnes)
        );
    }

    #[test]
    fn respects_output_limit() {
        let too_long = DecodeError::HeaderListTooLarge { limit: 3 };
        let encoded = encode_all(b"aaaa");
        let mut out = Vec::new();
        assert_eq!(decode(&encoded, &mut out, 3), Err(too_long));
        assert!(out.len() <= 3);
        let mut out = Vec::new();
        assert_eq!(decode(&encoded, &mut out, 4), Ok(()));
        assert_eq!(out, b"aaaa");
    }

    #[test]
    fn appends_to_existing_output() {
        let mut out = b"x".to_vec();
        assert_eq!(decode(&encode_all(b"yz"), &mut out, 2), Ok(()));
        assert_eq!(out, b"xyz");
    }

    /// Bit strings made of whole codes, so that the differential tests reach deep
    /// states and EOS rather than failing on the first few bits.
    fn code_stream() -> impl Strategy<Value = Vec<u8>> {
        (
            prop::collection::vec(0usize..=256, 0..40),
            any::<u8>(),
            0u32..=8,
        )
            .prop_map(|(symbols, pad_byte, pad_bits)| {
                let mut bits: Vec<bool> = Vec::new();
                for symbol in symbols {
                    let (code, len) = CODES[symbol];
                    bits.extend((0..len).rev().map(|i| (code >> i) & 1 == 1));
                }
                bits.extend((0..pad_bits).map(|i| (pad_byte >> i) & 1 == 1));
                bits.chunks(8)
                    .map(|chunk| {
                        let mut byte = 0u8;
                        for (i, &bit) in chunk.iter().enumerate() {
                            byte |= u8::from(bit) << (7 - i);
                        }
                        // Short last chunk: pad with ones, the usual case.
                        byte | (0xffu8.checked_shr(chunk.len() as u32).unwrap_or(0))
                    })
                    .collect()
            })
    }

    proptest! {
        #[test]
        fn automaton_matches_bitwise_reference_on_any_bytes(
            src in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            prop_assert_eq!(decode_all(&src), reference::decode(&src));
        }

        #[test]
        fn automaton_matches_bitwise_reference_on_code_streams(src in code_stream()) {
            prop_assert_eq!(decode_all(&src), reference::decode(&src));
        }

        #[test]
        fn limit_is_exact(src in code_stream(), limit in 0usize..48) {
            let full = reference::decode(&src);
            let mut out = Vec::new();
            let result = decode(&src, &mut out, limit);
            prop_assert!(out.len() <= limit);
            match full {
                Ok(full) if full.len() <= limit => {
                    prop_assert_eq!(result, Ok(()));
                    prop_assert_eq!(out, full);
                }
                // Over the limit, or invalid: either way it must fail, and only with
                // the limit error or the reference's own error.
                Ok(_) => prop_assert_eq!(result, Err(DecodeError::HeaderListTooLarge { limit })),
                Err(error) => {
                    let too_long = DecodeError::HeaderListTooLarge { limit };
                    prop_assert!(result == Err(error) || result == Err(too_long));
                }
            }
        }
    }
}
