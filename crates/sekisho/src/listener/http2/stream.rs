//! One HTTP/2 stream: the request handed to the request path, its response sent back.
//!
//! A client that resets its stream while the request path works cancels the request (as
//! one closing an HTTP/1.1 connection does). A response body is sent as the client's
//! flow-control window allows, one piece ahead of it, so a client that does not read holds
//! at most one piece of each stream in the gateway.

use std::future::{Future, poll_fn};
use std::pin::pin;
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
use crate::proxy::{self, Downstream};

/// Serves the stream `request` arrived on; `respond` answers it.
pub async fn serve(
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    downstream: Arc<Downstream>,
    body_idle: Option<Duration>,
) {
    let (mut parts, recv) = request.into_parts();
    let body = H2Body::new(recv, content_length(&parts.headers));
    // Only a request with a body to wait for needs its silence bounded.
    let progress = body_idle
        .filter(|_| !body.is_end_stream())
        .map(|after| BodyIdleTimeout::attach(&mut parts.extensions, after, &downstream.listener));
    let head_only = parts.method == Method::HEAD;
    let request = Request::from_parts(parts, ClientBody::Http2(body));

    // Boxed: the request path's state is large, and a stream's future is moved into the
    // connection's set; a pointer is cheaper to move.
    let mut answer = Box::pin(proxy::handle(downstream, request));
    let answered = poll_fn(|cx| {
        if respond.poll_reset(cx).is_ready() {
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
    let (mut head, body) = response.into_parts();
    let body = Tracked::new(body, progress, None);
    prepare(&mut head.headers, head.status, &body, head_only);
    let end = body.is_end_stream();
    let Ok(send) = respond.send_response(Response::from_parts(head, ()), end) else {
        return;
    };
    if !end {
        send_body(body, send).await;
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
/// resets the stream; a client that resets it stops the sending.
async fn send_body(body: Tracked<Body>, mut send: SendStream<Bytes>) {
    let mut body = pin!(body);
    loop {
        send.reserve_capacity(1);
        let frame = poll_fn(|cx| {
            while send.capacity() == 0 {
                match send.poll_capacity(cx) {
                    Poll::Ready(Some(Ok(_))) => {}
                    Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(None),
                    Poll::Pending => {
                        return match send.poll_reset(cx) {
                            Poll::Ready(_) => Poll::Ready(None),
                            Poll::Pending => Poll::Pending,
                        };
                    }
                }
            }
            if send.poll_reset(cx).is_ready() {
                return Poll::Ready(None);
            }
            body.as_mut().poll_frame(cx).map(Some)
        })
        .await;
        let Some(frame) = frame else {
            return;
        };
        match frame {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    let end = body.is_end_stream();
                    if send.send_data(data, end).is_err() || end {
                        return;
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        let _ = send.send_trailers(trailers);
                        return;
                    }
                }
            },
            None => {
                let _ = send.send_data(Bytes::new(), true);
                return;
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "response body failed; stream reset");
                send.send_reset(Reason::INTERNAL_ERROR);
                return;
            }
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
