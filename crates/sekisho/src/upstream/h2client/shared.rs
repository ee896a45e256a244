//! The state an upstream connection's task shares with the requests on it: the protocol
//! state machine and, per stream, what the endpoint sent that the request path has not
//! taken yet.
//!
//! One lock per connection, never held across an await. Requests queue their frames under
//! it from their own tasks and wake the connection's task to write them.

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Waker};

use bytes::Bytes;
use h2conn::{Connection, ErrorCode, StreamId, StreamMap};
use http::response::Parts;
use tokio::sync::Notify;

use crate::h2stream::StreamSlot;

/// A connection's shared state.
pub type Handle = Arc<Mutex<Shared>>;

/// The protocol state and the streams the request path knows.
pub struct Shared {
    pub conn: Connection,
    pub slots: StreamMap<Slot>,
    /// Wakes requests (and the handshake) waiting for the endpoint's stream limit to
    /// leave room. A waiter that is dropped leaves nothing behind, so requests cancelled
    /// while a connection stays full hold no memory here.
    room: Arc<Notify>,
    /// Nobody may open a stream any more (the pool let the connection go): it ends once
    /// its streams have.
    pub abandoned: bool,
    /// The connection has ended (`why`): no stream may open.
    pub ended: Option<&'static str>,
    /// The pool took the connection: its end is the pool's to count.
    pub handed: bool,
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
            room: Arc::new(Notify::new()),
            abandoned: false,
            ended: None,
            handed: false,
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

    /// Wakes the connection's task: there is output for it to write, or it should look
    /// at whether it is still wanted.
    pub fn wake_task(&mut self) {
        if let Some(waker) = &self.task {
            waker.wake_by_ref();
        }
    }

    /// Wakes the connection's task when there is output for it to write.
    pub fn wake_writer(&mut self) {
        if !self.conn.output().is_empty() {
            self.wake_task();
        }
    }

    /// Wakes the requests waiting for a stream when one may open now, or never will.
    pub fn wake_waiting(&mut self) {
        if self.conn.can_open_stream() || self.ended.is_some() {
            self.room.notify_waiters();
        }
    }

    /// Wakes every request (and the handshake) waiting on the connection: its SETTINGS
    /// arrived, or a GOAWAY, which may have changed what they wait for.
    pub fn wake_all_waiting(&mut self) {
        self.room.notify_waiters();
    }

    /// Hands the endpoint's DATA to the stream's response body, or, when nobody will read
    /// it, gives its window straight back.
    pub fn deliver(&mut self, id: StreamId, data: Bytes, end: bool) {
        match self.slots.get_mut(&id) {
            Some(slot) => slot.stream.push(data, end),
            None => self.conn.release(id, data.len()),
        }
    }

    /// The stream ended before its response did.
    pub fn gone(&mut self, id: StreamId, why: Gone) {
        if let Some(slot) = self.slots.get_mut(&id) {
            slot.stream.end(why);
        }
    }

    /// Why the connection ended, for a stream that finds itself gone with it.
    pub fn why_ended(&self) -> &'static str {
        self.ended.unwrap_or("it was closed")
    }

    /// The connection ended: every stream still open is gone with it.
    pub fn close_all(&mut self, why: &'static str) {
        self.ended.get_or_insert(why);
        for slot in self.slots.values_mut() {
            slot.stream.end(Gone::Closed(why));
        }
        self.wake_waiting();
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
}

/// Waits until `check` decides, checking again whenever the connection may have room for
/// a stream, has settled or has ended.
pub async fn wait_for<T>(handle: &Handle, mut check: impl FnMut(&mut Shared) -> Option<T>) -> T {
    let room = lock(handle).room.clone();
    loop {
        // Registered before the check, so a wake between the two is not lost.
        let mut notified = std::pin::pin!(room.notified());
        notified.as_mut().enable();
        if let Some(decided) = check(&mut lock(handle)) {
            return decided;
        }
        notified.await;
    }
}

/// Why a stream ended before its response did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gone {
    /// The endpoint reset it (REFUSED_STREAM: it never processed the request, including
    /// streams above the last one its GOAWAY named).
    Reset(ErrorCode),
    /// The gateway reset it: the endpoint broke a rule on it, or the request was
    /// cancelled.
    Refused(ErrorCode),
    /// The connection ended, for this reason.
    Closed(&'static str),
}

/// One stream the request path knows.
#[derive(Default)]
pub struct Slot {
    /// The response head, until the request path takes it.
    pub head: Option<Parts>,
    pub stream: StreamSlot<Gone>,
}
