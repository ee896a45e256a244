//! One HTTP/2 stream as a connection's task and the request path share it, the same on
//! both sides of the gateway: a client's request body (the listener) and a backend's
//! response body (the upstream). The connection's task fills it; the body reads it; each
//! side parks its waker here for the other to wake.

use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::HeaderMap;

/// What arrived for a stream's body and nobody has read yet, and why the stream ended early
/// (`G`: each side has its own reasons).
pub struct StreamSlot<G> {
    /// Body bytes received and not yet read: most bodies are one piece, read before the
    /// next arrives, so the first waits here and only a queue of them takes the deque
    /// (which would allocate for every stream otherwise).
    first: Option<Bytes>,
    /// Pieces that arrived while `first` was still unread, in order.
    inbox: VecDeque<Bytes>,
    trailers: Option<HeaderMap>,
    /// The peer's side has ended: nothing beyond the inbox (and trailers) will come.
    ended: bool,
    gone: Option<G>,
    reader: Option<Waker>,
    sender: Option<Waker>,
}

/// The next thing a stream's body reader gets.
pub enum Piece<G> {
    /// Body bytes, whose window the reader gives back once it passed them on.
    Data(Bytes),
    /// The trailers, which end the body.
    Trailers(HeaderMap),
    /// The body ended cleanly.
    End,
    /// The stream ended before its body did.
    Gone(G),
}

impl<G> Default for StreamSlot<G> {
    fn default() -> Self {
        StreamSlot {
            first: None,
            inbox: VecDeque::new(),
            trailers: None,
            ended: false,
            gone: None,
            reader: None,
            sender: None,
        }
    }
}

impl<G: Copy> StreamSlot<G> {
    /// A slot for a stream whose peer side has already ended (`ended`) or not.
    pub fn new(ended: bool) -> Self {
        StreamSlot {
            ended,
            ..StreamSlot::default()
        }
    }

    /// Takes DATA for the body. An empty frame only ever matters for its END_STREAM:
    /// queued, it would become an empty frame on the other hop too.
    pub fn push(&mut self, data: Bytes, end: bool) {
        if !data.is_empty() {
            if self.first.is_none() && self.inbox.is_empty() {
                self.first = Some(data);
            } else {
                self.inbox.push_back(data);
            }
        }
        self.ended |= end;
        self.wake_reader();
    }

    /// Takes the trailers, which end the body.
    pub fn push_trailers(&mut self, trailers: HeaderMap) {
        self.trailers = Some(trailers);
        self.ended = true;
        self.wake_reader();
    }

    /// Marks the peer's side ended (a head with END_STREAM, say) without waking anyone.
    pub fn set_ended(&mut self, ended: bool) {
        self.ended = ended;
    }

    /// The stream is gone (the first reason stays): both sides are woken to see it.
    pub fn end(&mut self, why: G) {
        self.gone.get_or_insert(why);
        self.wake_reader();
        self.wake_sender();
    }

    /// Why the stream ended early, if it did.
    pub fn gone(&self) -> Option<G> {
        self.gone
    }

    /// The next piece for the body: data, then trailers, then the end; or, when nothing
    /// is there yet, the reader is parked to be woken when something is.
    pub fn next(&mut self, cx: &Context<'_>) -> Poll<Piece<G>> {
        if let Some(data) = self.first.take().or_else(|| self.inbox.pop_front()) {
            return Poll::Ready(Piece::Data(data));
        }
        if let Some(trailers) = self.trailers.take() {
            return Poll::Ready(Piece::Trailers(trailers));
        }
        if self.ended {
            return Poll::Ready(Piece::End);
        }
        if let Some(gone) = self.gone {
            return Poll::Ready(Piece::Gone(gone));
        }
        self.park_reader(cx);
        Poll::Pending
    }

    /// Whether the reader has taken everything and nothing more will come: the last piece
    /// passed on can then carry END_STREAM itself.
    pub fn is_drained(&self) -> bool {
        self.ended && self.first.is_none() && self.inbox.is_empty() && self.trailers.is_none()
    }

    /// Drops what nobody will read; how many bytes that was, for the window.
    pub fn discard(&mut self) -> usize {
        let first = self.first.take().map_or(0, |data| data.len());
        first + self.inbox.drain(..).map(|data| data.len()).sum::<usize>()
    }

    /// The body's reader waits for data, trailers, the end or the stream's end.
    pub fn park_reader(&mut self, cx: &Context<'_>) {
        park(&mut self.reader, cx);
    }

    /// The stream's sender waits for window or for the stream's end.
    pub fn park_sender(&mut self, cx: &Context<'_>) {
        park(&mut self.sender, cx);
    }

    /// Something arrived for the reader.
    pub fn wake_reader(&mut self) {
        if let Some(waker) = self.reader.take() {
            waker.wake();
        }
    }

    /// The window opened for the sender.
    pub fn wake_sender(&mut self) {
        if let Some(waker) = self.sender.take() {
            waker.wake();
        }
    }
}

fn park(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(waker) if waker.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn next(slot: &mut StreamSlot<&'static str>, waker: &Waker) -> Poll<Piece<&'static str>> {
        slot.next(&Context::from_waker(waker))
    }

    #[test]
    fn data_then_trailers_then_the_end_and_the_reader_is_woken_for_each() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut slot = StreamSlot::new(false);
        assert!(next(&mut slot, &waker).is_pending());
        slot.push(Bytes::from_static(b"ab"), false);
        slot.push(Bytes::new(), false);
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "parked once, woken once");
        assert!(matches!(next(&mut slot, &waker), Poll::Ready(Piece::Data(d)) if d == "ab"));
        assert!(
            next(&mut slot, &waker).is_pending(),
            "the empty frame is not a piece"
        );
        slot.push_trailers(HeaderMap::new());
        assert!(!slot.is_drained());
        assert!(matches!(
            next(&mut slot, &waker),
            Poll::Ready(Piece::Trailers(_))
        ));
        assert!(slot.is_drained());
        assert!(matches!(next(&mut slot, &waker), Poll::Ready(Piece::End)));
    }

    #[test]
    fn what_arrived_is_read_before_the_stream_is_found_gone() {
        let waker = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        let mut slot = StreamSlot::new(false);
        slot.push(Bytes::from_static(b"x"), false);
        slot.end("reset");
        slot.end("closed");
        assert!(matches!(
            next(&mut slot, &waker),
            Poll::Ready(Piece::Data(_))
        ));
        assert!(matches!(
            next(&mut slot, &waker),
            Poll::Ready(Piece::Gone("reset"))
        ));
    }

    #[test]
    fn pieces_queued_behind_an_unread_one_come_out_in_arrival_order() {
        let waker = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        let mut slot: StreamSlot<()> = StreamSlot::new(false);
        let mut read = Vec::new();
        let mut take = |slot: &mut StreamSlot<()>| match slot.next(&Context::from_waker(&waker)) {
            Poll::Ready(Piece::Data(data)) => read.push(data),
            _ => panic!("expected data"),
        };
        slot.push(Bytes::from_static(b"a"), false);
        slot.push(Bytes::from_static(b"b"), false);
        take(&mut slot);
        slot.push(Bytes::from_static(b"c"), false);
        take(&mut slot);
        slot.push(Bytes::from_static(b"d"), false);
        take(&mut slot);
        take(&mut slot);
        slot.push(Bytes::from_static(b"e"), true);
        take(&mut slot);
        assert_eq!(read, ["a", "b", "c", "d", "e"]);
        assert!(slot.is_drained());
    }

    #[test]
    fn discarding_counts_the_bytes_given_back() {
        let mut slot: StreamSlot<()> = StreamSlot::new(false);
        slot.push(Bytes::from_static(b"abc"), false);
        slot.push(Bytes::from_static(b"de"), true);
        assert_eq!(slot.discard(), 5);
        assert!(slot.is_drained());
    }
}
