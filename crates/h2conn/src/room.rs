//! The room a busy connection works in (its output buffer, event queue and stream table),
//! handed from one connection to the next on a thread.
//!
//! A connection gives its room back when it goes quiet, so an idle connection holds none.
//! Under load a connection goes quiet between every batch of requests, and making the room
//! again cost an allocation and a few reallocations each time (the buffer, the queue and the
//! table growing back to their working size). The room goes to a short per-thread list
//! instead, and the next connection to wake up on that thread takes it as it was.
//!
//! What is kept is bounded: at most [`KEPT`] of each kind per thread, none larger than its
//! limit: at most 1 MiB of output buffers, 464 KiB of event queues (232 bytes an event) and
//! 320 KiB of stream tables (80 bytes a bucket) per thread.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::thread::LocalKey;

use bytes::BytesMut;

use crate::event::Event;
use crate::stream::Stream;
use crate::stream_map::StreamMap;

/// Room of each kind a thread keeps: the connections that go quiet at once in a batch.
const KEPT: usize = 32;

/// Output buffers larger than this are freed: a burst of large responses is rare, and its
/// buffer would hold memory for the common small ones.
const MAX_OUTPUT: usize = 32 * 1024;

/// Event queues and stream tables with room for more than this are freed.
const MAX_ENTRIES: usize = 64;

thread_local! {
    static OUTPUTS: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
    static EVENTS: RefCell<Vec<VecDeque<Event>>> = const { RefCell::new(Vec::new()) };
    static STREAMS: RefCell<Vec<StreamMap<Stream>>> = const { RefCell::new(Vec::new()) };
}

/// Keeps an emptied output buffer for the next connection, unless it is large.
pub(crate) fn give_output(mut output: BytesMut) {
    if !output.is_empty() {
        return;
    }
    // Written bytes were advanced past; take their room back so `capacity` is all of it.
    let _ = output.try_reclaim(output.capacity() + 1);
    if output.capacity() > 0 && output.capacity() <= MAX_OUTPUT {
        keep(&OUTPUTS, output);
    }
}

/// An output buffer a quiet connection gave back, if there is one.
pub(crate) fn output() -> Option<BytesMut> {
    take(&OUTPUTS)
}

/// Keeps an empty event queue for the next connection, unless it is large.
pub(crate) fn give_events(events: VecDeque<Event>) {
    if events.is_empty() && events.capacity() > 0 && events.capacity() <= MAX_ENTRIES {
        keep(&EVENTS, events);
    }
}

/// An event queue a quiet connection gave back, if there is one.
pub(crate) fn events() -> Option<VecDeque<Event>> {
    take(&EVENTS)
}

/// Keeps an empty stream table for the next connection, unless it is large.
pub(crate) fn give_streams(streams: StreamMap<Stream>) {
    if streams.is_empty() && streams.capacity() > 0 && streams.capacity() <= MAX_ENTRIES {
        keep(&STREAMS, streams);
    }
}

/// A stream table a quiet connection gave back, if there is one.
pub(crate) fn streams() -> Option<StreamMap<Stream>> {
    take(&STREAMS)
}

/// Frees the room quiet connections left on this thread: for a thread that is done
/// serving, or to measure what a connection itself holds.
pub fn free_spare_room() {
    let _ = OUTPUTS.try_with(|kept| kept.take());
    let _ = EVENTS.try_with(|kept| kept.take());
    let _ = STREAMS.try_with(|kept| kept.take());
}

fn keep<T: 'static>(list: &'static LocalKey<RefCell<Vec<T>>>, room: T) {
    // A thread being torn down keeps nothing.
    let _ = list.try_with(|kept| {
        if let Ok(mut kept) = kept.try_borrow_mut()
            && kept.len() < KEPT
        {
            kept.push(room);
        }
    });
}

fn take<T: 'static>(list: &'static LocalKey<RefCell<Vec<T>>>) -> Option<T> {
    list.try_with(|kept| kept.try_borrow_mut().ok()?.pop())
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_buffer_comes_back_with_all_its_room() {
        let mut written = BytesMut::with_capacity(4096);
        written.extend_from_slice(&[7; 1000]);
        bytes::Buf::advance(&mut written, 1000);
        give_output(written);
        let again = output().expect("kept");
        assert!(again.is_empty());
        assert!(again.capacity() >= 4096, "{}", again.capacity());
    }

    #[test]
    fn large_or_busy_room_and_room_beyond_the_limit_is_not_kept() {
        give_output(BytesMut::with_capacity(MAX_OUTPUT * 2));
        let mut busy = BytesMut::with_capacity(64);
        busy.extend_from_slice(b"unwritten");
        give_output(busy);
        assert!(output().is_none());
        give_events(VecDeque::with_capacity(MAX_ENTRIES * 2));
        assert!(events().is_none());
        for _ in 0..KEPT + 3 {
            give_events(VecDeque::with_capacity(8));
        }
        EVENTS.with_borrow(|kept| assert_eq!(kept.len(), KEPT));
    }
}
