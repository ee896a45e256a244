//! The dynamic table (RFC 7541 section 2.3.2 and 4).

use std::collections::VecDeque;

use crate::ENTRY_OVERHEAD;

/// A FIFO of recently indexed fields, bounded by size rather than count so that
/// both peers evict the same entries at the same moment.
///
/// Lookups scan linearly: at the default 4 KiB there are at most 128 entries, and
/// typically a few dozen.
#[derive(Clone, Debug, Default)]
pub struct DynamicTable {
    /// Newest entry first, matching HPACK's index order.
    entries: VecDeque<(Vec<u8>, Vec<u8>)>,
    size: usize,
    max_size: usize,
}

impl DynamicTable {
    pub(crate) fn new(max_size: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            size: 0,
            max_size,
        }
    }

    /// Current size in HPACK terms (name + value + 32 per entry), for checking that
    /// both ends of a connection agree and for metrics.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The size the table is currently allowed to reach.
    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// Number of entries; dynamic index `62 + i` refers to the `i`-th newest.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table holds no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries newest first, i.e. in HPACK index order, for inspection in tests and
    /// debugging.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> {
        self.entries
            .iter()
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
    }

    /// Looks up a 0-based position in the table (0 is the newest entry).
    pub(crate) fn get(&self, position: usize) -> Option<(&[u8], &[u8])> {
        self.entries
            .get(position)
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
    }

    /// Adds a field, evicting the oldest entries to make room. A field larger than
    /// the whole table empties it and is not stored (RFC 7541 section 4.4).
    pub(crate) fn insert(&mut self, name: &[u8], value: &[u8]) {
        let size = name.len() + value.len() + ENTRY_OVERHEAD;
        if size > self.max_size {
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max_size - size);
        self.entries.push_front((name.to_vec(), value.to_vec()));
        self.size += size;
    }

    /// Applies a dynamic table size update, evicting as needed.
    pub(crate) fn set_max_size(&mut self, max_size: usize) {
        self.max_size = max_size;
        self.evict_to(max_size);
    }

    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            match self.entries.pop_back() {
                Some((name, value)) => self.size -= name.len() + value.len() + ENTRY_OVERHEAD,
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }

    /// Finds the newest entry equal to the field, or else the newest with its name, as
    /// `(position, full_match)`.
    pub(crate) fn find(&self, name: &[u8], value: &[u8]) -> Option<(usize, bool)> {
        let mut name_match = None;
        for (position, (n, v)) in self.entries.iter().enumerate() {
            if n.as_slice() == name {
                if v.as_slice() == value {
                    return Some((position, true));
                }
                name_match.get_or_insert((position, false));
            }
        }
        name_match
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_oldest_first() {
        let mut table = DynamicTable::new(100);
        table.insert(b"a", b"1"); // 34
        table.insert(b"b", b"2"); // 34, total 68
        table.insert(b"c", b"3"); // 34: evicts "a"
        assert_eq!(table.size(), 68);
        let names: Vec<_> = table.iter().map(|(n, _)| n.to_vec()).collect();
        assert_eq!(names, [b"c".to_vec(), b"b".to_vec()]);
    }

    #[test]
    fn oversized_entry_empties_table() {
        let mut table = DynamicTable::new(40);
        table.insert(b"a", b"1");
        table.insert(b"name", b"too-long-value");
        assert!(table.is_empty());
        assert_eq!(table.size(), 0);
    }

    #[test]
    fn shrinking_evicts() {
        let mut table = DynamicTable::new(100);
        table.insert(b"a", b"1");
        table.insert(b"b", b"2");
        table.set_max_size(34);
        assert_eq!(table.len(), 1);
        assert_eq!(table.get(0), Some((&b"b"[..], &b"2"[..])));
        table.set_max_size(0);
        assert!(table.is_empty());
    }

    #[test]
    fn find_prefers_full_match() {
        let mut table = DynamicTable::new(200);
        table.insert(b"x", b"1");
        table.insert(b"x", b"2");
        assert_eq!(table.find(b"x", b"1"), Some((1, true)));
        assert_eq!(table.find(b"x", b"3"), Some((0, false)));
        assert_eq!(table.find(b"y", b"1"), None);
    }
}
