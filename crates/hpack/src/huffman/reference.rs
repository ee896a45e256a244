//! A bit-at-a-time Huffman decoder over a canonical-code index, kept as the oracle
//! that the automaton in [`super::machine`] is checked against: it is short enough to
//! verify by reading, and shares nothing with the automaton but [`CODES`].

use super::codes::CODES;
use crate::DecodeError;

const EOS: u16 = 256;
const MAX_CODE_LEN: usize = 30;

/// Canonical-code index: codes of length `len` are the range
/// `first[len]..first[len] + count[len]`, mapping in order to
/// `symbols[offset[len]..]`.
pub(super) struct Canonical {
    pub(super) first: [u32; MAX_CODE_LEN + 1],
    pub(super) count: [u32; MAX_CODE_LEN + 1],
    pub(super) offset: [usize; MAX_CODE_LEN + 1],
    pub(super) symbols: [u16; 257],
}

const fn build() -> Canonical {
    let mut first = [u32::MAX; MAX_CODE_LEN + 1];
    let mut count = [0u32; MAX_CODE_LEN + 1];
    let mut sym = 0;
    while sym < CODES.len() {
        let (code, len) = CODES[sym];
        count[len as usize] += 1;
        if code < first[len as usize] {
            first[len as usize] = code;
        }
        sym += 1;
    }

    let mut offset = [0usize; MAX_CODE_LEN + 1];
    let mut len = 1;
    while len <= MAX_CODE_LEN {
        offset[len] = offset[len - 1] + count[len - 1] as usize;
        if count[len] == 0 {
            first[len] = 0;
        }
        len += 1;
    }

    // Symbols of one length are listed in symbol order, which for a canonical code is
    // also code order.
    let mut symbols = [0u16; 257];
    let mut next = offset;
    let mut sym = 0;
    while sym < CODES.len() {
        let len = CODES[sym].1 as usize;
        symbols[next[len]] = sym as u16;
        next[len] += 1;
        sym += 1;
    }

    Canonical {
        first,
        count,
        offset,
        symbols,
    }
}

pub(super) static CANONICAL: Canonical = build();

/// Decodes `src` with no output limit.
pub(super) fn decode(src: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let table = &CANONICAL;
    let mut dst = Vec::new();
    let mut code: u32 = 0;
    let mut len: usize = 0;
    for &byte in src {
        for shift in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> shift) & 1);
            len += 1;
            let rank = code.wrapping_sub(table.first[len]);
            if rank < table.count[len] {
                let symbol = table.symbols[table.offset[len] + rank as usize];
                if symbol == EOS {
                    return Err(DecodeError::HuffmanEos);
                }
                dst.push(symbol as u8);
                code = 0;
                len = 0;
            } else {
                // Every 30-bit string has a code as prefix (checked below).
                assert!(len < MAX_CODE_LEN, "incomplete code table");
            }
        }
    }

    if len > 7 {
        return Err(DecodeError::HuffmanPaddingTooLong);
    }
    if code != (1 << len) - 1 {
        return Err(DecodeError::HuffmanPaddingNotOnes);
    }
    Ok(dst)
}

#[test]
fn code_is_complete_and_canonical() {
    // Kraft sum of exactly 1 (scaled by 2^30): every bit string has a code prefix.
    let kraft: u64 = CODES
        .iter()
        .map(|&(_, len)| 1u64 << (MAX_CODE_LEN - len as usize))
        .sum();
    assert_eq!(kraft, 1 << MAX_CODE_LEN);
    for (sym, &(code, len)) in CODES.iter().enumerate() {
        let len = len as usize;
        let rank = code - CANONICAL.first[len];
        assert!(rank < CANONICAL.count[len]);
        assert_eq!(
            usize::from(CANONICAL.symbols[CANONICAL.offset[len] + rank as usize]),
            sym
        );
    }
    // Canonical: each length's first code follows on from the previous length's last.
    let mut next = 0u32;
    for len in 1..=MAX_CODE_LEN {
        next <<= 1;
        if CANONICAL.count[len] > 0 {
            assert_eq!(CANONICAL.first[len], next, "length {len}");
            next += CANONICAL.count[len];
        }
    }
    assert_eq!(CODES[256], (0x3fff_ffff, 30));
}
