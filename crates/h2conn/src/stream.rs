//! Per-stream state (RFC 9113 section 5.1), for either role; there is no server
//! push, so every stream is client-initiated (odd).
//!
//! Only streams that are not closed are kept: every odd id at or below the
//! highest one opened (by the client, or by us in the client role) and absent
//! from the map is closed, and every id above it, or even, is idle. That keeps
//! the map as small as the number of live streams.

use h2frame::StreamId;

use crate::flow::{RecvWindow, SendWindow};
use crate::stream_map::StreamMap;

/// Our side of a stream: whether our head (the response, or in the client
/// role the request) has gone out, and whether our side has ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SendState {
    /// No final response yet (informational ones may have been sent); never
    /// in the client role, whose streams open with the request head.
    AwaitingResponse,
    /// Head sent; DATA and trailers may follow.
    Streaming,
    /// END_STREAM sent: half-closed (local).
    Done,
}

/// One open or half-closed stream.
#[derive(Debug)]
pub(crate) struct Stream {
    /// The client may still send (not half-closed remote).
    pub(crate) recv_open: bool,
    pub(crate) send: SendState,
    pub(crate) send_window: SendWindow,
    pub(crate) recv_window: RecvWindow,
    /// Declared `content-length`, checked against the DATA received.
    pub(crate) content_length: Option<u64>,
    pub(crate) received: u64,
    /// `send_data` came up short: owe a `WindowOpened` when capacity returns.
    pub(crate) blocked: bool,
    /// Client role: no final response yet, so a header block is the response
    /// (or a 1xx) and DATA is a fault.
    pub(crate) awaiting_response: bool,
    /// Client role: the request was HEAD, so the response has no body whatever
    /// its `content-length` says.
    pub(crate) head_request: bool,
    /// Client role: the response may carry no body (HEAD, 204, 304): non-empty
    /// DATA is a fault.
    pub(crate) no_body: bool,
}

impl Stream {
    pub(crate) fn new(send_window: u32, recv_window: u32, recv_target: u32) -> Self {
        Self {
            recv_open: true,
            send: SendState::AwaitingResponse,
            send_window: SendWindow::new(send_window),
            recv_window: RecvWindow::new(recv_window, recv_target),
            content_length: None,
            received: 0,
            blocked: false,
            awaiting_response: false,
            head_request: false,
            no_body: false,
        }
    }

    /// Both sides done: the stream is closed and can be forgotten.
    pub(crate) fn is_closed(&self) -> bool {
        !self.recv_open && self.send == SendState::Done
    }
}

/// Where a stream id stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Never used yet.
    Idle,
    /// Open or half-closed: in the map.
    Live,
    /// Used and finished.
    Closed,
}

/// How many closed streams are remembered.
const RECENT: usize = 16;

/// Marks an id in [`Recent`] as reset by us (ids use only 31 bits).
const RESET_BY_US: u32 = 1 << 31;

/// The last few streams that closed, and whether we reset them. Frames the
/// client sent before it saw our RST_STREAM are ignored (RFC 9113 section 5.1);
/// frames on a stream the client itself ended are its error; a HEADERS on an id
/// never seen here reuses an old id. A fixed array: no allocation per
/// connection.
#[derive(Debug, Default)]
pub(crate) struct Recent {
    ids: [u32; RECENT],
    next: usize,
}

impl Recent {
    pub(crate) fn remember(&mut self, id: StreamId, reset_by_us: bool) {
        let tagged = id.get() | if reset_by_us { RESET_BY_US } else { 0 };
        if let Some(slot) = self.ids.get_mut(self.next) {
            *slot = tagged;
        }
        self.next = (self.next + 1) % RECENT;
    }

    /// `Some(true)` if we reset the stream, `Some(false)` if it closed otherwise,
    /// `None` if it is not among the last few.
    pub(crate) fn find(&self, id: StreamId) -> Option<bool> {
        if id.is_zero() {
            return None;
        }
        self.ids
            .iter()
            .find(|&&tagged| tagged & !RESET_BY_US == id.get())
            .map(|&tagged| tagged & RESET_BY_US != 0)
    }
}

/// The live streams and the id bookkeeping that tells idle from closed.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    map: StreamMap<Stream>,
    /// The highest stream id opened (or refused, in the server role): ids must
    /// increase.
    pub(crate) highest: u32,
    pub(crate) recent: Recent,
}

impl Streams {
    pub(crate) fn lookup(&self, id: StreamId) -> Lookup {
        if self.map.contains_key(&id) {
            Lookup::Live
        } else if id.get() > self.highest || !id.is_client_initiated() {
            // Even ids are never opened: servers here do not push, and ours
            // refuse PUSH_PROMISE.
            Lookup::Idle
        } else {
            Lookup::Closed
        }
    }

    pub(crate) fn get_mut(&mut self, id: StreamId) -> Option<&mut Stream> {
        self.map.get_mut(&id)
    }

    pub(crate) fn insert(&mut self, id: StreamId, stream: Stream) {
        self.map.insert(id, stream);
    }

    pub(crate) fn remove(&mut self, id: StreamId) -> Option<Stream> {
        self.map.remove(&id)
    }

    /// Gives the table back once no stream is left (see `Connection::shrink_idle`).
    pub(crate) fn shrink_idle(&mut self) {
        if self.map.is_empty() && self.map.capacity() > 0 {
            crate::room::give_streams(std::mem::take(&mut self.map));
        }
    }

    /// Takes a table a quiet connection gave back, when this one has none.
    pub(crate) fn wake(&mut self) {
        if self.map.capacity() == 0
            && let Some(map) = crate::room::streams()
        {
            self.map = map;
        }
    }

    /// Streams that count against SETTINGS_MAX_CONCURRENT_STREAMS.
    pub(crate) fn active(&self) -> usize {
        self.map.len()
    }

    /// The live stream ids above `last`, lowest first (those a peer's GOAWAY
    /// refused).
    pub(crate) fn ids_above(&self, last: StreamId) -> Vec<StreamId> {
        let mut ids: Vec<StreamId> = self.map.keys().filter(|&&id| id > last).copied().collect();
        ids.sort_unstable();
        ids
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (StreamId, &mut Stream)> {
        self.map.iter_mut().map(|(id, s)| (*id, s))
    }

    /// Bytes the table holds, for the memory bound.
    pub(crate) fn memory(&self) -> usize {
        self.map.memory()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_remembers_the_last_closures_and_who_reset() {
        let mut recent = Recent::default();
        recent.remember(StreamId::new(1), true);
        recent.remember(StreamId::new(3), false);
        assert_eq!(recent.find(StreamId::new(1)), Some(true));
        assert_eq!(recent.find(StreamId::new(3)), Some(false));
        assert_eq!(recent.find(StreamId::new(5)), None);
        assert_eq!(recent.find(StreamId::ZERO), None);
        for i in 0..RECENT as u32 {
            recent.remember(StreamId::new(101 + 2 * i), false);
        }
        assert_eq!(recent.find(StreamId::new(1)), None);
    }
}
