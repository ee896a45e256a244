//! One HTTP/2 stream: the request handed to the request path, its response sent back.
//!
//! A client that resets its stream while the request path works cancels the request (as
//! one closing an HTTP/1.1 connection does). A response body is sent as the client's
//! flow-control window allows, one piece ahead of it, so a client that does not read holds
//! at most one piece of each stream in the gateway.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body::Body as HttpBody;

use crate::body::{Body, ClientBody, H2Body};
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

/// How a stream ended, as the connection's budget of cancelled streams counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered, refused or cut by the gateway, or lost with the connection.
    Finished,
    /// The client reset the stream before its response was complete.
    Cancelled,
}

/// Serves the stream `request` arrived on; `respond` answers it.
pub async fn serve(
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    downstream: Arc<Downstream>,
    bounds: Bounds,
) -> Outcome {
    let (mut parts, recv) = request.into_parts();
    let body = H2Body::new(recv, content_length(&parts.headers));
    // Only a request with a body to wait for needs its silence bounded.
    let listener = downstream.listener.clone();
    let progress = bounds
        .body_idle
        .filter(|_| !body.is_end_stream())
        .map(|after| BodyIdleTimeout::attach(&mut parts.extensions, after, &downstream.listener));
    let head_only = parts.method == Method::HEAD;
    let request = Request::from_parts(parts, ClientBody::Http2(body));

    // Boxed: the request path's state is large, and a stream's future is moved into the
    // connection's set; a pointer is cheaper to move.
    let mut answer = Box::pin(proxy::handle(downstream, request));
    let answered = poll_fn(|cx| {
        if let Poll::Ready(reset) = respond.poll_reset(cx) {
            return Poll::Ready(Err(reset.is_ok()));
        }
        answer.as_mut().poll(cx).map(Ok)
    })
    .await;
    let response = match answered {
        Ok(Ok(response)) => response,
        Ok(Err(never)) => match never {},
        // The client reset the stream (or the connection ended): the request is
        // cancelled with it.
        Err(true) => return Outcome::Cancelled,
        Err(false) => return Outcome::Finished,
    };
    let (mut head, body) = response.into_parts();
    let body = Tracked::new(body, progress, None);
    prepare(&mut head.headers, head.status, &body, head_only);
    let end = body.is_end_stream();
    let Ok(send) = respond.send_response(Response::from_parts(head, ()), end) else {
        return Outcome::Finished;
    };
    if end {
        return Outcome::Finished;
    }
    let mut body = body;
    match send_body(&mut body, send, bounds.send_timeout).await {
        Ok(outcome) => outcome,
        Err(stalled) => {
            metrics::downstream_response_cut(&listener, "send_timeout");
            tracing::debug!(%listener, error = %stalled, "response cut");
            stall::cut(body, &stalled);
            Outcome::Finished
        }
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

/// Sends `body` on `send`, each piece once the window has room for a byte of it (h2
/// holds the rest of a piece until the window grows), and its trailers. A body that fails
/// resets the stream; a client that resets it stops the sending (and the stream counts as
/// cancelled); a window that stays shut for `send_timeout` resets the stream and is the
/// error.
async fn send_body(
    body: &mut Tracked<Body>,
    mut send: SendStream<Bytes>,
    send_timeout: Option<Duration>,
) -> Result<Outcome, Stalled> {
    let mut body = Pin::new(body);
    let mut stall = Stall::new(send_timeout);
    loop {
        send.reserve_capacity(1);
        let next = poll_fn(|cx| {
            while send.capacity() == 0 {
                match send.poll_capacity(cx) {
                    Poll::Ready(Some(Ok(_))) => {}
                    Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(Next::Gone),
                    Poll::Pending => {
                        if let Poll::Ready(reset) = send.poll_reset(cx) {
                            return Poll::Ready(Next::reset(reset));
                        }
                        return stall.poll_expired(cx).map(Next::Stalled);
                    }
                }
            }
            stall.moved();
            if let Poll::Ready(reset) = send.poll_reset(cx) {
                return Poll::Ready(Next::reset(reset));
            }
            body.as_mut().poll_frame(cx).map(Next::Frame)
        })
        .await;
        let frame = match next {
            Next::Frame(frame) => frame,
            Next::Gone => return Ok(Outcome::Finished),
            Next::Cancelled => return Ok(Outcome::Cancelled),
            Next::Stalled(stalled) => {
                send.send_reset(Reason::CANCEL);
                return Err(stalled);
            }
        };
        match frame {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    let end = body.is_end_stream();
                    if send.send_data(data, end).is_err() || end {
                        return Ok(Outcome::Finished);
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        let _ = send.send_trailers(trailers);
                        return Ok(Outcome::Finished);
                    }
                }
            },
            None => {
                let _ = send.send_data(Bytes::new(), true);
                return Ok(Outcome::Finished);
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "response body failed; stream reset");
                send.send_reset(Reason::INTERNAL_ERROR);
                return Ok(Outcome::Finished);
            }
        }
    }
}

/// What the wait in [`send_body`] came to.
enum Next {
    /// The body's next frame (or its end).
    Frame(Option<Result<http_body::Frame<Bytes>, crate::body::BoxError>>),
    /// The connection ended.
    Gone,
    /// The client reset the stream.
    Cancelled,
    /// The window stayed shut for the send timeout.
    Stalled(Stalled),
}

impl Next {
    /// A reset seen on the stream: the client's, or the connection's end.
    fn reset(reset: Result<Reason, h2::Error>) -> Self {
        match reset {
            Ok(_) => Next::Cancelled,
            Err(_) => Next::Gone,
        }
    }
}

/// The request's declared length (h2 has checked that it is a number, and holds the
/// client to it).
fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}
