//! Header maps kept per thread for the next message.
//!
//! A gateway builds a map for every message it reads and drops it once the message is
//! relayed: two allocations to make it, two to free it, and the growth in between. The
//! relaying side hands the map back with [`recycle`]; the next message read on the same
//! thread starts from it, emptied, with its room.

use std::cell::RefCell;

use http::HeaderMap;

/// Maps kept per thread: the messages a thread has in flight at once, within a batch of
/// multiplexed streams.
const KEPT: usize = 64;

/// Maps with room for more fields than this, or holding more values, are freed, not kept:
/// a message that large is rare, and keeping its room would hold memory for the common
/// small ones. (A name repeated many times grows the map's list of extra values, which
/// `capacity` does not count; `len` does.)
const MAX_ROOM: usize = 64;

/// Room made in a new map: most messages fit, and a map that grows field by field
/// reallocates twice on the way.
const EXPECTED_FIELDS: usize = 12;

thread_local! {
    static KEPT_MAPS: RefCell<Vec<HeaderMap>> = const { RefCell::new(Vec::new()) };
}

/// Hands back a map that is done with: it is emptied and kept for the next message read
/// on this thread, unless enough are kept or it grew large.
pub fn recycle(mut map: HeaderMap) {
    if map.capacity() == 0 || map.capacity() > MAX_ROOM || map.len() > MAX_ROOM {
        return;
    }
    map.clear();
    let _ = KEPT_MAPS.try_with(|kept| {
        if let Ok(mut kept) = kept.try_borrow_mut()
            && kept.len() < KEPT
        {
            kept.push(map);
        }
    });
}

/// An empty map with room for a typical message: a kept one if there is one.
pub(crate) fn map() -> HeaderMap {
    KEPT_MAPS
        .try_with(|kept| kept.try_borrow_mut().ok()?.pop())
        .ok()
        .flatten()
        .unwrap_or_else(|| HeaderMap::with_capacity(EXPECTED_FIELDS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{CONTENT_TYPE, SERVER};

    #[test]
    fn a_recycled_map_comes_back_empty_with_its_room() {
        let mut first = map();
        first.insert(SERVER, "backend".parse().expect("value"));
        first.insert(CONTENT_TYPE, "text/plain".parse().expect("value"));
        let room = first.capacity();
        recycle(first);
        let second = map();
        assert!(second.is_empty(), "nothing of the last message");
        assert_eq!(second.get(SERVER), None);
        assert_eq!(second.capacity(), room);
    }

    #[test]
    fn large_maps_many_values_and_too_many_maps_are_not_kept() {
        let mut large = HeaderMap::with_capacity(MAX_ROOM * 2);
        large.insert(SERVER, "x".parse().expect("value"));
        recycle(large);
        let mut repeated = HeaderMap::with_capacity(EXPECTED_FIELDS);
        for _ in 0..MAX_ROOM + 1 {
            repeated.append(SERVER, "x".parse().expect("value"));
        }
        assert!(repeated.capacity() <= MAX_ROOM, "one name, many values");
        recycle(repeated);
        KEPT_MAPS.with_borrow(|kept| assert!(kept.is_empty()));
        for _ in 0..KEPT + 5 {
            recycle(HeaderMap::with_capacity(EXPECTED_FIELDS));
        }
        KEPT_MAPS.with_borrow(|kept| assert_eq!(kept.len(), KEPT));
    }
}
