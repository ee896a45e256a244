//! Writable collections (TX, ENV, ...).

use crate::body::Pair;
use crate::fasthash::FastMap;
use crate::variable::Selector;

/// A writable collection (TX, ENV, ...) with names compared without regard to case.
/// CRS keeps about a hundred TX variables and reads them in most rules, so lookups go
/// through an index rather than a scan.
#[derive(Debug, Default, Clone)]
pub(super) struct Members {
    /// In insertion order, for iteration; names as first written.
    pairs: Vec<Pair>,
    /// Lower-cased name to position in `pairs`.
    index: FastMap<String, usize>,
}

/// CRS sets about this many TX variables in every transaction; sizing a collection for
/// them at its first write saves regrowing its table and index several times per request.
pub(super) const MEMBERS_CAPACITY: usize = 128;

impl Members {
    pub(super) fn position(&self, key: &str) -> Option<usize> {
        if key.bytes().any(|b| b.is_ascii_uppercase()) {
            self.index.get(&key.to_ascii_lowercase()).copied()
        } else {
            self.index.get(key).copied()
        }
    }

    pub(super) fn get(&self, key: &str) -> Option<&[u8]> {
        self.position(key).map(|i| self.pairs[i].1.as_slice())
    }

    pub(super) fn set(&mut self, key: &str, value: Vec<u8>) {
        match self.position(key) {
            Some(i) => self.pairs[i].1 = value,
            None => {
                if self.pairs.capacity() == 0 {
                    self.pairs.reserve(MEMBERS_CAPACITY);
                    self.index.reserve(MEMBERS_CAPACITY);
                }
                self.index
                    .insert(key.to_ascii_lowercase(), self.pairs.len());
                self.pairs.push((key.to_string(), value));
            }
        }
    }

    pub(super) fn remove(&mut self, key: &str) {
        if let Some(i) = self.position(key) {
            self.pairs.remove(i);
            self.index = self
                .pairs
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.to_ascii_lowercase(), i))
                .collect();
        }
    }

    /// The members a selector takes: a direct lookup for a plain name.
    pub(super) fn select(&self, selector: &Selector) -> &[Pair] {
        match selector {
            Selector::Key(k) => match self.position(k) {
                Some(i) => std::slice::from_ref(&self.pairs[i]),
                None => &[],
            },
            _ => &self.pairs,
        }
    }
}
