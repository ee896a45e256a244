//! Writable collections (TX, ENV, ...).

use std::sync::Arc;

use crate::fasthash::FastMap;
use crate::variable::Selector;

/// A writable collection (TX, ENV, ...) with names compared without regard to case.
/// CRS keeps about a hundred TX variables and reads or writes them in most rules, so
/// lookups go through an index rather than a scan and neither allocates.
#[derive(Debug, Default)]
pub(super) struct Members {
    /// In insertion order, for iteration; names in lower case (as ModSecurity's setvar
    /// keeps them), shared with the rule that names them when it can be.
    pairs: Vec<Member>,
    /// Name to position in `pairs`.
    index: FastMap<Arc<str>, usize>,
    /// While recording: each member's value before its first change (`None`: it did not
    /// exist), so [`Members::roll_back`] can undo the changes.
    journal: Option<Vec<(String, Option<Vec<u8>>)>>,
}

/// A member's lower-case name and value.
pub(super) type Member = (Arc<str>, Vec<u8>);

/// CRS sets about this many TX variables in every transaction; sizing a collection for
/// them at its first write saves regrowing its table and index several times per request.
pub(super) const MEMBERS_CAPACITY: usize = 128;

/// Names up to this long are lower-cased on the stack for a lookup.
const SHORT_NAME: usize = 64;

/// Calls `f` with `key` in lower case, without allocating for the usual short names.
fn with_lowercase<T>(key: &str, f: impl FnOnce(&str) -> T) -> T {
    if !key.bytes().any(|b| b.is_ascii_uppercase()) {
        return f(key);
    }
    let mut buf = [0u8; SHORT_NAME];
    if let Some(short) = buf.get_mut(..key.len()) {
        short.copy_from_slice(key.as_bytes());
        short.make_ascii_lowercase();
        // Lower-casing ASCII bytes keeps UTF-8 valid, so this always succeeds.
        if let Ok(lower) = std::str::from_utf8(short) {
            return f(lower);
        }
    }
    f(&key.to_ascii_lowercase())
}

impl Members {
    pub(super) fn position(&self, key: &str) -> Option<usize> {
        with_lowercase(key, |lower| self.index.get(lower).copied())
    }

    pub(super) fn get(&self, key: &str) -> Option<&[u8]> {
        self.position(key).map(|i| self.pairs[i].1.as_slice())
    }

    pub(super) fn set(&mut self, key: &str, value: &[u8]) {
        self.set_with(key, None, |v| v.extend_from_slice(value));
    }

    /// Sets a member to what `write` appends to an empty buffer; an existing member's
    /// buffer is reused, so rewriting a score allocates nothing. `shared` is `key` in lower
    /// case, when the caller holds it so, for a new member to take without allocating.
    pub(super) fn set_with(
        &mut self,
        key: &str,
        shared: Option<&Arc<str>>,
        write: impl FnOnce(&mut Vec<u8>),
    ) {
        let position = self.position(key);
        self.record(key, position);
        match position {
            Some(i) => {
                let value = &mut self.pairs[i].1;
                value.clear();
                write(value);
            }
            None => {
                if self.pairs.capacity() == 0 {
                    self.pairs.reserve(MEMBERS_CAPACITY);
                    self.index.reserve(MEMBERS_CAPACITY);
                }
                let mut value = Vec::new();
                write(&mut value);
                let name = match shared {
                    Some(name) => Arc::clone(name),
                    None => Arc::from(key.to_ascii_lowercase()),
                };
                self.index.insert(Arc::clone(&name), self.pairs.len());
                self.pairs.push((name, value));
            }
        }
    }

    /// How many members the tables have room for.
    pub(super) fn capacity(&self) -> usize {
        self.pairs.capacity()
    }

    /// Removes every member, keeping the tables' capacity.
    pub(super) fn clear(&mut self) {
        self.pairs.clear();
        self.index.clear();
        self.journal = None;
    }

    pub(super) fn remove(&mut self, key: &str) {
        if let Some(i) = self.position(key) {
            self.record(key, Some(i));
            self.remove_at(i);
        }
    }

    fn remove_at(&mut self, i: usize) {
        let (name, _) = self.pairs.remove(i);
        self.index.remove(&name);
        for position in self.index.values_mut() {
            if *position > i {
                *position -= 1;
            }
        }
    }

    /// Notes a member's value before its first change while recording.
    fn record(&mut self, key: &str, position: Option<usize>) {
        let Some(journal) = &mut self.journal else {
            return;
        };
        if journal.iter().any(|(k, _)| k.eq_ignore_ascii_case(key)) {
            return;
        }
        let before = position.map(|i| self.pairs[i].1.clone());
        journal.push((key.to_ascii_lowercase(), before));
    }

    /// Starts recording changes, forgetting earlier ones: the current state becomes what
    /// [`Members::roll_back`] returns to.
    pub(super) fn checkpoint(&mut self) {
        match &mut self.journal {
            Some(journal) => journal.clear(),
            None => self.journal = Some(Vec::new()),
        }
    }

    /// Whether [`Members::checkpoint`] was called.
    pub(super) fn has_checkpoint(&self) -> bool {
        self.journal.is_some()
    }

    /// Undoes every change since the checkpoint and keeps recording from there.
    pub(super) fn roll_back(&mut self) {
        let Some(mut journal) = self.journal.take() else {
            return;
        };
        for (key, before) in journal.drain(..).rev() {
            match (self.position(&key), before) {
                (Some(i), Some(value)) => self.pairs[i].1 = value,
                (Some(i), None) => self.remove_at(i),
                (None, Some(value)) => {
                    let name: Arc<str> = Arc::from(key);
                    self.index.insert(Arc::clone(&name), self.pairs.len());
                    self.pairs.push((name, value));
                }
                (None, None) => {}
            }
        }
        self.journal = Some(journal);
    }

    /// The members a selector takes: a direct lookup for a plain name.
    pub(super) fn select(&self, selector: &Selector) -> &[Member] {
        match selector {
            Selector::Key(k) => match self.position(k) {
                Some(i) => std::slice::from_ref(&self.pairs[i]),
                None => &[],
            },
            _ => &self.pairs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(m: &Members) -> Vec<(String, Vec<u8>)> {
        m.pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn names_are_case_insensitive() {
        let mut m = Members::default();
        m.set("Anomaly_Score", b"5");
        assert_eq!(m.get("ANOMALY_SCORE"), Some(&b"5"[..]));
        m.set_with("anomaly_score", None, |v| v.extend_from_slice(b"10"));
        assert_eq!(m.get("anomaly_score"), Some(&b"10"[..]));
        let long = "X".repeat(100);
        m.set(&long, b"1");
        assert_eq!(m.get(&long.to_lowercase()), Some(&b"1"[..]));
    }

    #[test]
    fn removal_keeps_the_others_reachable() {
        let mut m = Members::default();
        for (k, v) in [("a", b"1"), ("b", b"2"), ("c", b"3")] {
            m.set(k, v);
        }
        m.remove("B");
        assert_eq!(m.get("a"), Some(&b"1"[..]));
        assert_eq!(m.get("b"), None);
        assert_eq!(m.get("c"), Some(&b"3"[..]));
    }

    #[test]
    fn roll_back_restores_the_checkpoint() {
        let mut m = Members::default();
        m.set("score", b"0");
        m.set("kept", b"k");
        m.set("gone", b"g");
        m.checkpoint();
        let before = names(&m);
        for _ in 0..2 {
            m.set("score", b"5");
            m.set("Score", b"10");
            m.set("new", b"n");
            m.remove("gone");
            m.roll_back();
            let mut after = names(&m);
            let mut expected = before.clone();
            after.sort();
            expected.sort();
            assert_eq!(after, expected);
            assert_eq!(m.get("gone"), Some(&b"g"[..]));
            assert_eq!(m.get("new"), None);
            assert_eq!(m.get("score"), Some(&b"0"[..]));
        }
    }
}
