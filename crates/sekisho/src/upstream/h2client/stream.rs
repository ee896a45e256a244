//! One request on an upstream HTTP/2 connection: its stream opened and its frames queued
//! from the request's own task, its body pumped, its response read off the stream's slot.
//!
//! A stream lives while its response body or its request body pump holds it ([`Open`]);
//! a response let go before its end cancels the stream (RST_STREAM CANCEL), so a client
//! that leaves takes its request off the endpoint too.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker, ready};

use bytes::{Buf, Bytes};
use h2conn::{ErrorCode, SendError, StreamId};
use http::{HeaderMap, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};

use super::Connection;
use super::shared::{Gone, Slot, lock, wait_for};
use crate::body::{Body, BoxError};
use crate::h2stream::Piece;

/// Request body bytes handed over from the request's task without waiting for flow
/// control; a body larger than this, or one still arriving, is sent by a task of its own.
const INLINE_BODY_BYTES: usize = 64 * 1024;

/// Why a request got no response on a connection.
pub enum StreamError {
    /// The connection was closed or going away before the request left: it may go on
    /// another connection as it is.
    Unsent(Box<Request<Body>>),
    /// The stream failed after the request (maybe) left.
    Failed(io::Error),
}

/// Sends `req` on `connection` (at `now`, in the pool's clock) and waits for the response
/// head. The request queues for a stream while the endpoint's stream limit is full.
pub async fn send(
    connection: &Arc<Connection>,
    req: Request<Body>,
    now: u64,
) -> Result<Response<RecvBody>, StreamError> {
    let (parts, body) = req.into_parts();
    let end_of_stream = body.is_end_stream();
    let opened = wait_for(&connection.handle, |shared| {
        if shared.ended.is_some() || shared.abandoned || connection.is_closed() {
            return Some(None);
        }
        match shared.conn.send_request(&parts, end_of_stream) {
            Ok(id) => {
                shared.slots.insert(id, Slot::default());
                shared.wake_writer();
                Some(Some(id))
            }
            // The endpoint's stream limit is full: wait for room.
            Err(SendError::NoStream) if !shared.conn.is_closed() => None,
            Err(_) => Some(None),
        }
    })
    .await;
    let Some(id) = opened else {
        return Err(StreamError::Unsent(Box::new(Request::from_parts(
            parts, body,
        ))));
    };
    // Encoded and sent: the map goes back for the next message this thread reads.
    h2conn::recycle(parts.headers);
    let open = Arc::new(Open::new(connection, id, now));
    let mut response = RecvBody {
        open: open.clone(),
        done: false,
    };
    if !end_of_stream {
        send_body(open, body);
    }
    let head = poll_fn(|cx| response.poll_head(cx))
        .await
        .map_err(StreamError::Failed)?;
    Ok(Response::from_parts(head, response))
}

/// A stream counted open on its connection while a request or response body holds it.
struct Open {
    connection: Arc<Connection>,
    id: StreamId,
    /// When it began, in the pool's clock.
    began: u64,
}

impl Open {
    fn new(connection: &Arc<Connection>, id: StreamId, now: u64) -> Self {
        connection.open.fetch_add(1, Ordering::AcqRel);
        connection.last_used.store(now, Ordering::Relaxed);
        Open {
            connection: connection.clone(),
            id,
            began: now,
        }
    }

    /// Cancels the stream: the endpoint is told (RST_STREAM `code`) and whoever still
    /// waits on it sees it gone.
    fn cancel(&self, code: ErrorCode) {
        let mut shared = lock(&self.connection.handle);
        let _ = shared.conn.reset(self.id, code);
        shared.gone(self.id, Gone::Refused(code));
        shared.wake_writer();
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        {
            let mut shared = lock(&self.connection.handle);
            shared.slots.remove(&self.id);
            // Still open (the request body never ended): nobody will finish it.
            let _ = shared.conn.reset(self.id, ErrorCode::CANCEL);
            shared.wake_writer();
            shared.wake_waiting();
        }
        self.connection.open.fetch_sub(1, Ordering::AcqRel);
        // The time it began is close enough for the idle rule, and costs no clock read.
        self.connection
            .last_used
            .fetch_max(self.began, Ordering::Relaxed);
    }
}

/// A response read off its HTTP/2 stream. Each piece read gives its flow-control window
/// back, so the endpoint may send more once the gateway has passed a piece on, and no
/// sooner. Dropped before its end, it cancels the stream.
pub struct RecvBody {
    open: Arc<Open>,
    done: bool,
}

impl RecvBody {
    fn poll_head(&mut self, cx: &Context<'_>) -> Poll<io::Result<http::response::Parts>> {
        let mut shared = lock(&self.open.connection.handle);
        let Some(slot) = shared.slots.get_mut(&self.open.id) else {
            return Poll::Ready(Err(broken(Gone::Closed(shared.why_ended()))));
        };
        if let Some(head) = slot.head.take() {
            return Poll::Ready(Ok(head));
        }
        if let Some(gone) = slot.stream.gone() {
            self.done = true;
            return Poll::Ready(Err(broken(gone)));
        }
        slot.stream.park_reader(cx);
        Poll::Pending
    }
}

impl HttpBody for RecvBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let id = self.open.id;
        let open = self.open.clone();
        let mut shared = lock(&open.connection.handle);
        let Some(slot) = shared.slots.get_mut(&id) else {
            self.done = true;
            return Poll::Ready(Some(Err(broken(Gone::Closed(shared.why_ended())))));
        };
        let piece = ready!(slot.stream.next(cx));
        self.done = !matches!(piece, Piece::Data(_));
        Poll::Ready(match piece {
            Piece::Data(data) => {
                shared.conn.release(id, data.len());
                shared.wake_writer();
                Some(Ok(Frame::data(data)))
            }
            Piece::Trailers(trailers) => Some(Ok(Frame::trailers(trailers))),
            Piece::End => None,
            Piece::Gone(gone) => Some(Err(broken(gone))),
        })
    }

    fn is_end_stream(&self) -> bool {
        self.done
            || lock(&self.open.connection.handle)
                .slots
                .get(&self.open.id)
                .is_some_and(|slot| slot.stream.is_drained())
    }

    fn size_hint(&self) -> SizeHint {
        if self.done {
            SizeHint::with_exact(0)
        } else {
            SizeHint::default()
        }
    }
}

impl Drop for RecvBody {
    fn drop(&mut self) {
        if !self.done {
            self.open.cancel(ErrorCode::CANCEL);
        }
    }
}

/// The error a response ends with when its stream ends early.
fn broken(gone: Gone) -> io::Error {
    match gone {
        Gone::Reset(code) => io::Error::new(
            io::ErrorKind::ConnectionReset,
            format!("the endpoint reset the stream ({code})"),
        ),
        Gone::Refused(code) => io::Error::new(
            io::ErrorKind::InvalidData,
            format!("stream reset by the gateway ({code})"),
        ),
        Gone::Closed(why) => io::Error::new(
            io::ErrorKind::ConnectionAborted,
            format!("the upstream connection ended: {why}"),
        ),
    }
}

/// What became of a piece of the request body handed to the stream.
enum Put {
    /// All of it is queued; the body goes on.
    Sent,
    /// The stream is finished (the body ended, or the stream is gone).
    Finished,
    /// Flow control took part of it; the rest waits for window.
    Blocked(Bytes, bool),
}

/// Sends the request body: what is already here at once, the rest from a task of its own
/// that waits for flow-control window and stops when the stream is gone.
fn send_body(open: Arc<Open>, mut body: Body) {
    let mut cx = Context::from_waker(Waker::noop());
    let mut handed = 0;
    let mut blocked = None;
    while handed <= INLINE_BODY_BYTES {
        let Poll::Ready(frame) = Pin::new(&mut body).poll_frame(&mut cx) else {
            break;
        };
        let len = frame
            .as_ref()
            .and_then(|f| f.as_ref().ok())
            .and_then(Frame::data_ref)
            .map_or(0, Bytes::len);
        match put(&open, &body, frame) {
            Put::Sent => handed += len,
            Put::Finished => return,
            Put::Blocked(rest, last) => {
                blocked = Some((rest, last));
                break;
            }
        }
    }
    tokio::spawn(pump(open, body, blocked));
}

/// The body's remainder, sent as the window allows.
async fn pump(open: Arc<Open>, mut body: Body, mut blocked: Option<(Bytes, bool)>) {
    loop {
        if let Some((mut rest, last)) = blocked.take() {
            let sent = poll_fn(|cx| poll_send(&open, cx, &mut rest, last)).await;
            if !sent || last {
                return;
            }
        }
        let frame = poll_fn(|cx| {
            {
                let mut shared = lock(&open.connection.handle);
                match shared.slots.get_mut(&open.id) {
                    Some(slot) if slot.stream.gone().is_none() => slot.stream.park_sender(cx),
                    // Reset (the endpoint answered early, or gave up) or cancelled.
                    _ => return Poll::Ready(None),
                }
            }
            Pin::new(&mut body).poll_frame(cx).map(Some)
        })
        .await;
        let Some(frame) = frame else { return };
        match put(&open, &body, frame) {
            Put::Sent => {}
            Put::Finished => return,
            Put::Blocked(rest, last) => blocked = Some((rest, last)),
        }
    }
}

/// Queues what the window allows of `rest`; ready with `true` once all of it is queued,
/// `false` when the stream is gone.
fn poll_send(open: &Open, cx: &Context<'_>, rest: &mut Bytes, last: bool) -> Poll<bool> {
    let mut shared = lock(&open.connection.handle);
    if shared
        .slots
        .get(&open.id)
        .is_none_or(|s| s.stream.gone().is_some())
    {
        return Poll::Ready(false);
    }
    match shared.conn.send_data(open.id, rest, last) {
        Ok(n) => rest.advance(n),
        Err(_) => return Poll::Ready(false),
    }
    shared.wake_writer();
    if rest.is_empty() {
        return Poll::Ready(true);
    }
    if let Some(slot) = shared.slots.get_mut(&open.id) {
        slot.stream.park_sender(cx);
    }
    Poll::Pending
}

/// Hands one frame of the request body to the stream.
fn put(open: &Open, body: &Body, frame: Option<Result<Frame<Bytes>, BoxError>>) -> Put {
    match frame {
        Some(Ok(frame)) => match frame.into_data() {
            Ok(mut data) => {
                let last = body.is_end_stream();
                let mut shared = lock(&open.connection.handle);
                let sent = shared.conn.send_data(open.id, &data, last);
                shared.wake_writer();
                match sent {
                    Ok(n) if n == data.len() && last => Put::Finished,
                    Ok(n) if n == data.len() => Put::Sent,
                    Ok(n) => {
                        data.advance(n);
                        Put::Blocked(data, last)
                    }
                    Err(_) => Put::Finished,
                }
            }
            Err(frame) => match frame.into_trailers() {
                Ok(trailers) => {
                    send_trailers(open, &trailers);
                    Put::Finished
                }
                Err(_) => Put::Sent,
            },
        },
        None => {
            let mut shared = lock(&open.connection.handle);
            let _ = shared.conn.send_data(open.id, &[], true);
            shared.wake_writer();
            Put::Finished
        }
        // The client's body failed (the watcher beneath has noted why): the upstream
        // stream is cancelled, and the exchange fails as the client's doing.
        Some(Err(_)) => {
            open.cancel(ErrorCode::CANCEL);
            Put::Finished
        }
    }
}

fn send_trailers(open: &Open, trailers: &HeaderMap) {
    let mut shared = lock(&open.connection.handle);
    let _ = shared.conn.send_trailers(open.id, trailers);
    shared.wake_writer();
}
