//! A fast, non-cryptographic hasher for the engine's per-transaction maps. Keys come
//! from requests, but each map lives for one transaction and holds at most a bounded
//! number of entries, so flooding one bucket costs the attacker as much as the engine.

use std::hash::{BuildHasherDefault, Hasher};

/// Multiply-rotate hashing over 8-byte words (the scheme rustc's FxHash uses).
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` using [`FastHasher`].
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FastHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_hash_equal_and_lengths_matter() {
        let mut m: FastMap<Vec<u8>, u8> = FastMap::default();
        m.insert(b"abc".to_vec(), 1);
        m.insert(b"abc\0".to_vec(), 2);
        m.insert(b"0123456789abcdef0".to_vec(), 3);
        assert_eq!(m.get(b"abc".as_slice()), Some(&1));
        assert_eq!(m.get(b"abc\0".as_slice()), Some(&2));
        assert_eq!(m.get(b"0123456789abcdef0".as_slice()), Some(&3));
    }
}
