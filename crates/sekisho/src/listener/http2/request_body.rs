//! A client's request body on one HTTP/2 stream, read from what the connection's task
//! delivered. Each piece read gives its flow-control window back, so the client may send
//! more once the gateway has passed a piece on, and no sooner.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use h2conn::StreamId;
use http_body::{Frame, SizeHint};

use super::shared::{Gone, Handle, Shared, lock};
use crate::h2stream::Piece;

/// The body of the request on stream `id`.
pub struct RequestBody {
    handle: Handle,
    id: StreamId,
    /// What is left of a declared `content-length` (the connection holds the client to it).
    left: Option<u64>,
    done: bool,
}

impl RequestBody {
    pub(super) fn new(handle: Handle, id: StreamId, length: Option<u64>) -> Self {
        RequestBody {
            handle,
            id,
            left: length,
            done: false,
        }
    }
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let id = self.id;
        let handle = self.handle.clone();
        let mut shared = lock(&handle);
        let Shared { conn, slots, .. } = &mut *shared;
        let Some(slot) = slots.get_mut(&id) else {
            self.done = true;
            return Poll::Ready(Some(Err(broken(Gone::Closed))));
        };
        let piece = ready!(slot.stream.next(cx));
        self.done = !matches!(piece, Piece::Data(_));
        Poll::Ready(match piece {
            Piece::Data(data) => {
                conn.release(id, data.len());
                if let Some(left) = self.left.as_mut() {
                    *left = left.saturating_sub(data.len() as u64);
                }
                shared.wake_writer();
                Some(Ok(Frame::data(data)))
            }
            Piece::Trailers(trailers) => Some(Ok(Frame::trailers(trailers))),
            Piece::End => None,
            Piece::Gone(gone) => Some(Err(broken(gone))),
        })
    }

    /// Also true once everything the client sent has been read, so the last piece
    /// upstream carries END_STREAM instead of an empty frame following it.
    fn is_end_stream(&self) -> bool {
        self.done
            || lock(&self.handle)
                .slots
                .get(&self.id)
                .is_some_and(|slot| slot.stream.is_drained())
    }

    fn size_hint(&self) -> SizeHint {
        match self.left {
            _ if self.done => SizeHint::with_exact(0),
            Some(left) => SizeHint::with_exact(left),
            None => SizeHint::default(),
        }
    }
}

impl Drop for RequestBody {
    /// What nobody will read goes back to the client's windows.
    fn drop(&mut self) {
        let mut shared = lock(&self.handle);
        let Shared { conn, slots, .. } = &mut *shared;
        if let Some(slot) = slots.get_mut(&self.id) {
            slot.body_dropped = true;
            let unread = slot.stream.discard();
            if unread > 0 {
                conn.release(self.id, unread);
            }
        }
        shared.wake_writer();
    }
}

/// The error a body ends with when its stream ends early: the client's doing, as an I/O
/// error the request path classifies (a reset or a closed connection: the client went
/// away; a rule the client broke: a malformed body).
fn broken(gone: Gone) -> io::Error {
    match gone {
        Gone::ResetByClient(code) => io::Error::new(
            io::ErrorKind::ConnectionReset,
            format!("the client reset the stream ({code})"),
        ),
        Gone::Closed => io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "the client's connection ended",
        ),
        Gone::Refused(code) => io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the request broke an HTTP/2 rule; stream reset ({code})"),
        ),
    }
}
