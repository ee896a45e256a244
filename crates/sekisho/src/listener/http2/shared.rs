//! The state a connection's task shares with its streams: the protocol state machine and,
//! per stream, what the client sent that the request path has not taken yet.
//!
//! One lock per connection, never held across an await. Streams are polled inside the
//! connection's task, so the lock is uncontended but for request bodies read elsewhere
//! (an upstream connection's task); whoever queues output from outside the connection's
//! task wakes it to write.

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Waker};

use bytes::Bytes;
use h2conn::{Connection, ErrorCode, StreamId, StreamMap};

use crate::h2stream::StreamSlot;

/// A connection's shared state.
pub type Handle = Arc<Mutex<Shared>>;

/// The protocol state and the streams the request path knows.
pub struct Shared {
    pub conn: Connection,
    pub slots: StreamMap<Slot>,
    /// The connection's task, woken when output was queued outside it.
    task: Option<Waker>,
}

/// Locks `handle`, whatever a panicking holder left: the state is only ever changed by
/// whole calls, so it is consistent.
pub fn lock(handle: &Handle) -> MutexGuard<'_, Shared> {
    handle
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub fn new(conn: Connection) -> Handle {
        Arc::new(Mutex::new(Shared {
            conn,
            slots: StreamMap::default(),
            task: None,
        }))
    }

    /// Remembers the connection's task, to be woken for output queued elsewhere.
    pub fn register_task(&mut self, cx: &Context<'_>) {
        match &self.task {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => self.task = Some(cx.waker().clone()),
        }
    }

    /// Gives back what a busy connection keeps for reuse, once nothing is open.
    pub fn shrink_idle(&mut self) {
        if self.slots.is_empty() {
            if self.slots.capacity() > 0 {
                self.slots = StreamMap::default();
            }
            self.conn.shrink_idle();
        }
    }

    /// Wakes the connection's task when there is output for it to write.
    pub fn wake_writer(&mut self) {
        if !self.conn.output().is_empty()
            && let Some(waker) = &self.task
        {
            waker.wake_by_ref();
        }
    }

    /// Hands the client's DATA to the stream's body, or, when nobody will read it,
    /// gives its window straight back.
    pub fn deliver(&mut self, id: StreamId, data: Bytes, end: bool) {
        match self.slots.get_mut(&id) {
            Some(slot) if !slot.body_dropped => slot.stream.push(data, end),
            _ => self.conn.release(id, data.len()),
        }
    }

    /// The stream ended without its response: the client reset it, the gateway reset
    /// it for a broken rule, or the connection ended.
    pub fn gone(&mut self, id: StreamId, why: Gone) {
        if let Some(slot) = self.slots.get_mut(&id) {
            slot.stream.end(why);
        }
    }

    /// The connection ended: every stream still served is gone with it.
    pub fn close_all(&mut self) {
        for slot in self.slots.values_mut() {
            slot.stream.end(Gone::Closed);
        }
    }
}

/// Why a stream ended before the gateway finished with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gone {
    /// The client sent RST_STREAM.
    ResetByClient(ErrorCode),
    /// The gateway reset it for a rule the client broke (a body longer than its
    /// `content-length`, say).
    Refused(ErrorCode),
    /// The connection ended.
    Closed,
}

/// One stream the request path knows.
#[derive(Default)]
pub struct Slot {
    pub stream: StreamSlot<Gone>,
    /// The request body was dropped: what arrives for it is released unread.
    pub body_dropped: bool,
}

impl Slot {
    pub fn new(ended: bool) -> Self {
        Slot {
            stream: StreamSlot::new(ended),
            body_dropped: false,
        }
    }
}
