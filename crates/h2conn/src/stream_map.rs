//! A map keyed by stream id, for tables whose entries come and go with every request.
//!
//! A connection opens a stream, keeps it for one exchange and forgets it, thousands of
//! times a second, while a few dozen are live at once. A general hash table marks each
//! removed entry with a tombstone and, once they fill it, rebuilds the whole table: for a
//! stream table that was every fourth insert. Here removal shifts the entries behind the
//! hole back instead (linear probing with backward-shift deletion), so the table never
//! fills with tombstones and never rebuilds while its size holds.
//!
//! Ids are hashed with one multiplication (Fibonacci hashing), which spreads consecutive
//! odd ids over the table. A peer chooses its ids and could choose ones that collide, but
//! the table never holds more than the live streams (SETTINGS_MAX_CONCURRENT_STREAMS),
//! so a collision costs at most a probe through that many entries.

use std::mem;

use h2frame::StreamId;

/// The fewest buckets a table that holds anything has.
const MIN_BUCKETS: usize = 8;

/// A map from stream id to `V`. At most half of its buckets are full, which keeps probes
/// short.
#[derive(Debug)]
pub struct StreamMap<V> {
    /// A power of two in length (or empty); each entry sits at its id's home bucket or
    /// after it, with no empty bucket between.
    buckets: Vec<Option<(StreamId, V)>>,
    len: usize,
}

impl<V> Default for StreamMap<V> {
    fn default() -> Self {
        StreamMap {
            buckets: Vec::new(),
            len: 0,
        }
    }
}

impl<V> StreamMap<V> {
    /// Entries in the map.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the map holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entries the map can hold before it grows.
    pub fn capacity(&self) -> usize {
        self.buckets.len() / 2
    }

    /// Bytes the table holds, for memory bounds.
    pub fn memory(&self) -> usize {
        self.buckets.len() * mem::size_of::<Option<(StreamId, V)>>()
    }

    /// The value of stream `id`.
    pub fn get(&self, id: &StreamId) -> Option<&V> {
        let at = self.find(*id)?;
        self.buckets[at].as_ref().map(|(_, value)| value)
    }

    /// The value of stream `id`, to change.
    pub fn get_mut(&mut self, id: &StreamId) -> Option<&mut V> {
        let at = self.find(*id)?;
        self.buckets[at].as_mut().map(|(_, value)| value)
    }

    /// Whether stream `id` is in the map.
    pub fn contains_key(&self, id: &StreamId) -> bool {
        self.find(*id).is_some()
    }

    /// Puts `value` in for stream `id`; the value it replaces, if any.
    pub fn insert(&mut self, id: StreamId, value: V) -> Option<V> {
        if let Some(at) = self.find(id) {
            let (_, old) = self.buckets[at].as_mut()?;
            return Some(mem::replace(old, value));
        }
        if (self.len + 1) * 2 > self.buckets.len() {
            self.grow();
        }
        let mask = self.buckets.len() - 1;
        let mut at = self.home(id);
        while self.buckets[at].is_some() {
            at = (at + 1) & mask;
        }
        self.buckets[at] = Some((id, value));
        self.len += 1;
        None
    }

    /// Takes stream `id` out of the map.
    pub fn remove(&mut self, id: &StreamId) -> Option<V> {
        let mut hole = self.find(*id)?;
        let (_, value) = self.buckets[hole].take()?;
        self.len -= 1;
        // Entries after the hole, up to the next empty bucket, may have probed past it:
        // each that is not at or after its home bucket once the hole is filled moves in.
        let mask = self.buckets.len() - 1;
        let mut next = (hole + 1) & mask;
        while let Some((later, _)) = &self.buckets[next] {
            let home = self.home(*later);
            // Whether `home` lies cyclically in (hole, next]: then the entry stays.
            let stays = if hole <= next {
                hole < home && home <= next
            } else {
                hole < home || home <= next
            };
            if !stays {
                self.buckets[hole] = self.buckets[next].take();
                hole = next;
            }
            next = (next + 1) & mask;
        }
        Some(value)
    }

    /// The ids in the map, in no order.
    pub fn keys(&self) -> impl Iterator<Item = &StreamId> {
        self.buckets.iter().flatten().map(|(id, _)| id)
    }

    /// The values in the map, in no order.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.buckets.iter_mut().flatten().map(|(_, value)| value)
    }

    /// The entries, in no order, their values to change.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&StreamId, &mut V)> {
        self.buckets
            .iter_mut()
            .flatten()
            .map(|(id, value)| (&*id, value))
    }

    /// The bucket of `id`, probing from its home bucket to the first empty one.
    fn find(&self, id: StreamId) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mask = self.buckets.len() - 1;
        let mut at = self.home(id);
        loop {
            match &self.buckets[at] {
                Some((held, _)) if *held == id => return Some(at),
                Some(_) => at = (at + 1) & mask,
                None => return None,
            }
        }
    }

    /// The bucket `id` probes from: the top bits of its Fibonacci hash.
    fn home(&self, id: StreamId) -> usize {
        let bits = self.buckets.len().trailing_zeros();
        let hash = id.get().wrapping_mul(0x9E37_79B9);
        // `bits` is at least 3 here: the table has MIN_BUCKETS or more when this is asked.
        (hash >> (32 - bits)) as usize
    }

    /// Doubles the table (or makes its first), putting every entry in again.
    fn grow(&mut self) {
        let buckets = (self.buckets.len() * 2).max(MIN_BUCKETS);
        let old = mem::replace(&mut self.buckets, (0..buckets).map(|_| None).collect());
        let mask = buckets - 1;
        for (id, value) in old.into_iter().flatten() {
            let mut at = self.home(id);
            while self.buckets[at].is_some() {
                at = (at + 1) & mask;
            }
            self.buckets[at] = Some((id, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u32, u32),
        Remove(u32),
        Get(u32),
    }

    fn op(ids: impl Strategy<Value = u32> + Clone) -> impl Strategy<Value = Op> {
        prop_oneof![
            (ids.clone(), any::<u32>()).prop_map(|(id, v)| Op::Insert(id, v)),
            ids.clone().prop_map(Op::Remove),
            ids.prop_map(Op::Get),
        ]
    }

    fn run(ops: Vec<Op>) {
        let mut map = StreamMap::default();
        let mut model = HashMap::new();
        for op in ops {
            match op {
                Op::Insert(id, v) => assert_eq!(
                    map.insert(StreamId::new(id), v),
                    model.insert(id, v),
                    "insert {id}"
                ),
                Op::Remove(id) => {
                    assert_eq!(
                        map.remove(&StreamId::new(id)),
                        model.remove(&id),
                        "remove {id}"
                    )
                }
                Op::Get(id) => {
                    assert_eq!(map.get(&StreamId::new(id)), model.get(&id), "get {id}")
                }
            }
            assert_eq!(map.len(), model.len());
            assert!(map.len() * 2 <= map.buckets.len() || map.buckets.is_empty());
        }
        let mut keys: Vec<u32> = map.keys().map(|id| id.get()).collect();
        keys.sort_unstable();
        let mut expected: Vec<u32> = model.keys().copied().collect();
        expected.sort_unstable();
        assert_eq!(keys, expected);
        for (id, value) in map.iter_mut() {
            assert_eq!(model.get(&id.get()), Some(&*value));
        }
    }

    proptest! {
        /// Any sequence of operations leaves the map agreeing with a standard one: ids
        /// from a small range collide and wrap around the table's end often.
        #[test]
        fn agrees_with_a_standard_map(ops in proptest::collection::vec(op(1u32..64), 0..400)) {
            run(ops);
        }

        /// The same with ids from the whole range a peer may send.
        #[test]
        fn agrees_with_a_standard_map_on_any_ids(
            ops in proptest::collection::vec(op(1u32..(1 << 31)), 0..200),
        ) {
            run(ops);
        }
    }

    #[test]
    fn streams_coming_and_going_never_grow_the_table() {
        let mut map = StreamMap::default();
        let mut next = 1u32;
        for _ in 0..16 {
            map.insert(StreamId::new(next), ());
            next += 2;
        }
        let buckets = map.buckets.len();
        for _ in 0..10_000 {
            map.remove(&StreamId::new(next - 32));
            map.insert(StreamId::new(next), ());
            next += 2;
        }
        assert_eq!(map.len(), 16);
        assert_eq!(
            map.buckets.len(),
            buckets,
            "sixteen live streams, the same table"
        );
        assert!(map.contains_key(&StreamId::new(next - 2)));
        assert!(!map.contains_key(&StreamId::new(next - 34)));
    }
}
