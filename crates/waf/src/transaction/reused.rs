//! A list whose entries keep their buffers across refills.

/// A list cleared and refilled for every rule: its entries keep their buffers when it is
/// cleared, so refilling allocates only when it grows past what an earlier rule needed.
#[derive(Debug, Default)]
pub(super) struct Reused<T> {
    items: Vec<T>,
    len: usize,
}

impl<T: Default> Reused<T> {
    pub(super) fn clear(&mut self) {
        self.len = 0;
    }

    /// The next entry, as a previous fill left it: the caller overwrites every field.
    pub(super) fn next(&mut self) -> &mut T {
        if self.len == self.items.len() {
            self.items.push(T::default());
        }
        self.len += 1;
        &mut self.items[self.len - 1]
    }

    pub(super) fn as_slice(&self) -> &[T] {
        &self.items[..self.len]
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refills_reuse_entries() {
        let mut list: Reused<Vec<u8>> = Reused::default();
        list.next().extend_from_slice(b"first");
        list.next().extend_from_slice(b"second");
        assert_eq!(list.as_slice().len(), 2);
        list.clear();
        assert!(list.is_empty());
        let entry = list.next();
        assert!(entry.capacity() >= 5);
        entry.clear();
        entry.extend_from_slice(b"x");
        assert_eq!(list.as_slice(), [b"x".to_vec()]);
    }
}
