//! One HTTP/2 stream: the request handed to the request path, its response sent back.
//!
//! A client that resets its stream while the request path works cancels the request (as
//! one closing an HTTP/1.1 connection does). A response body is sent as the client's
//! flow-control window allows, one piece ahead of it, so a client that does not read holds
//! at most one piece of each stream in the gateway.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use h2conn::{ErrorCode, StreamId};
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body::Body as HttpBody;

use super::request_body::RequestBody;
use super::shared::{Handle, lock};
use crate::body::{Body, ClientBody};
use crate::heap;
use crate::listener::date;
use crate::listener::idle::{BodyIdleTimeout, Tracked};
use crate::listener::stall::{self, Stall, Stalled};
use crate::observe::metrics;
use crate::proxy::{self, Downstream};

/// The bounds each stream of a connection is served within.
#[derive(Clone, Copy)]
pub struct Bounds {
    /// How long a request body may be silent.
    pub body_idle: Option<Duration>,
    /// How long a response may wait for the client to open its window.
    pub send_timeout: Option<Duration>,
}

/// Serves the request that opened stream `id` (`end_stream`: it has no body) and sends
/// its response; done when the response is, or the stream or connection is gone.
pub async fn serve(
    id: StreamId,
    parts: http::request::Parts,
    end_stream: bool,
    handle: Handle,
    downstream: Arc<Downstream>,
    bounds: Bounds,
) {
    // Only a request with a body to wait for needs its silence bounded.
    let listener = downstream.listener.clone();
    let (body, progress) = if end_stream {
        (ClientBody::Empty, None)
    } else {
        let length = content_length(&parts.headers);
        let (idle, progress) = bounds
            .body_idle
            .map(|after| BodyIdleTimeout::start(after, &listener))
            .unzip();
        let body = RequestBody::new(handle.clone(), id, length);
        (ClientBody::Http2(body, idle), progress)
    };
    let head_only = parts.method == Method::HEAD;
    let request = Request::from_parts(parts, body);

    // Boxed, and built in its box: the request path's state is large (3.3 KiB), and a
    // stream's future is moved into the connection's set; a pointer is cheaper to move.
    // The box is one the thread kept from an earlier stream when it has one.
    let mut answer = heap::Recycled::new(|| proxy::handle(downstream, request));
    let answered = poll_fn(|cx| {
        if gone(&handle, id, cx) {
            return Poll::Ready(None);
        }
        answer.as_mut().poll(cx).map(Some)
    })
    .await;
    let response = match answered {
        Some(Ok(response)) => response,
        Some(Err(never)) => match never {},
        // The client reset the stream: the request is cancelled with it.
        None => return,
    };
    drop(answer);
    let (mut head, body) = response.into_parts();
    let body = Tracked::new(body, progress, None);
    prepare(&mut head.headers, head.status, &body, head_only);
    let end = body.is_end_stream();
    let sent = lock(&handle)
        .conn
        .send_response(id, head.status, &head.headers, end);
    h2conn::recycle(head.headers);
    if sent.is_err() || end {
        return;
    }
    let mut body = body;
    if let Err(stalled) = send_body(id, &handle, &mut body, bounds.send_timeout).await {
        metrics::downstream_response_cut(&listener, "send_timeout");
        tracing::debug!(%listener, error = %stalled, "response cut");
        stall::cut(body, &stalled);
    }
}

/// Whether the stream is gone (reset, or its connection ended); if not, the caller is
/// woken when it goes.
fn gone(handle: &Handle, id: StreamId, cx: &Context<'_>) -> bool {
    let mut shared = lock(handle);
    match shared.slots.get_mut(&id) {
        Some(slot) if slot.stream.gone().is_none() => {
            slot.stream.park_sender(cx);
            false
        }
        _ => true,
    }
}

/// Makes a response's fields fit for HTTP/2: no connection-specific fields, a `date`, and
/// the length when the body knows it exactly.
fn prepare(headers: &mut HeaderMap, status: StatusCode, body: &Tracked<Body>, head_only: bool) {
    crate::upstream::strip_connection_specific(headers);
    if !headers.contains_key(header::DATE) {
        headers.insert(header::DATE, date::now());
    }
    let has_content = !(head_only
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED);
    if has_content
        && !headers.contains_key(header::CONTENT_LENGTH)
        && let Some(length) = body.size_hint().exact()
    {
        headers.insert(header::CONTENT_LENGTH, length.into());
    }
}

/// A piece of the body taken from upstream and not yet all sent.
struct Piece {
    data: Bytes,
    /// The body ends with it.
    end: bool,
}

/// Sends `body` on stream `id`, a piece at a time: the next piece is taken from upstream
/// only once the last one is all out, which the client's window decides. A body that fails
/// resets the stream; a client that resets it stops the sending; a window that stays shut
/// for `send_timeout` resets the stream and is the error.
async fn send_body(
    id: StreamId,
    handle: &Handle,
    body: &mut Tracked<Body>,
    send_timeout: Option<Duration>,
) -> Result<(), Stalled> {
    let mut body = Pin::new(body);
    let mut stall = Stall::new(send_timeout);
    let mut piece: Option<Piece> = None;
    poll_fn(|cx| {
        loop {
            if let Some(Piece { data, end }) = piece.as_mut() {
                let mut shared = lock(handle);
                let Some(slot) = shared.slots.get_mut(&id) else {
                    return Poll::Ready(Ok(()));
                };
                if slot.stream.gone().is_some() {
                    return Poll::Ready(Ok(()));
                }
                let Ok(n) = shared.conn.send_data(id, data, *end) else {
                    return Poll::Ready(Ok(()));
                };
                if n > 0 {
                    stall.moved();
                    data.advance(n);
                }
                if data.is_empty() {
                    if *end {
                        return Poll::Ready(Ok(()));
                    }
                    piece = None;
                    continue;
                }
                // The window is shut: wait for the client to open it.
                if let Some(slot) = shared.slots.get_mut(&id) {
                    slot.stream.park_sender(cx);
                }
                drop(shared);
                return match stall.poll_expired(cx) {
                    Poll::Ready(stalled) => {
                        let _ = lock(handle).conn.reset(id, ErrorCode::CANCEL);
                        Poll::Ready(Err(stalled))
                    }
                    Poll::Pending => Poll::Pending,
                };
            }
            if gone(handle, id, cx) {
                return Poll::Ready(Ok(()));
            }
            let frame = match body.as_mut().poll_frame(cx) {
                Poll::Ready(frame) => frame,
                Poll::Pending => return Poll::Pending,
            };
            let mut shared = lock(handle);
            match frame {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        piece = Some(Piece {
                            data,
                            end: body.is_end_stream(),
                        });
                    }
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            let _ = shared.conn.send_trailers(id, &trailers);
                            return Poll::Ready(Ok(()));
                        }
                    }
                },
                None => {
                    let _ = shared.conn.send_data(id, &[], true);
                    return Poll::Ready(Ok(()));
                }
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "response body failed; stream reset");
                    let _ = shared.conn.reset(id, ErrorCode::INTERNAL_ERROR);
                    return Poll::Ready(Ok(()));
                }
            }
        }
    })
    .await
}

/// The request's declared length (the connection has checked that it is a number, and
/// holds the client to it).
fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}
