//! Bodies around an inspection: a plain HTTP request body read up to the limit and
//! replayed, and a gRPC response ended with the refusal's status (PERMISSION_DENIED for a
//! rule) when a later request message is refused.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::Response;
use http_body::{Body as HttpBody, Frame};
use http_body_util::BodyExt;

use super::{Blocked, Inspection};
use crate::body::{Body, BoxError};
use crate::proxy::error::GatewayError;

/// Why a buffered request body did not pass.
pub enum Inspected {
    /// A rule refused it.
    Blocked(Blocked),
    /// The client's body failed while it was read.
    Read(BoxError),
}

impl Inspection {
    /// Reads `body` up to the route's limit, runs phase 2 over it, and gives back a body
    /// that replays what was read and streams the rest (past the limit under
    /// `process_partial`).
    pub async fn request_body(self: &Arc<Self>, mut body: Body) -> Result<Body, Inspected> {
        let limit = self.policy.body_limit;
        let mut kept = BytesMut::new();
        let mut frames = VecDeque::new();
        let mut ended = body.is_end_stream();
        while !ended {
            match body.frame().await {
                None => ended = true,
                Some(Err(e)) => return Err(Inspected::Read(e)),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        let room = limit - kept.len();
                        if data.len() > room {
                            kept.extend_from_slice(&data[..room]);
                            frames.push_back(Ok(Frame::data(data.slice(room..))));
                            break;
                        }
                        kept.extend_from_slice(&data);
                    }
                    Err(other) => {
                        frames.push_back(Ok(other));
                        ended = true;
                    }
                },
            }
        }
        let truncated = !ended;
        let blocked = if kept.len() <= super::pool::INLINE_BYTES {
            self.buffered_body(&kept, truncated)
        } else {
            // Costly in proportion to what it holds: off the runtime's threads.
            let inspection = self.clone();
            let read = kept;
            let (blocked, read) = super::pool::run(move || {
                let blocked = inspection.buffered_body(&read, truncated);
                (blocked, read)
            })
            .await;
            kept = read;
            blocked
        };
        if let Some(blocked) = blocked {
            return Err(Inspected::Blocked(blocked));
        }
        if !kept.is_empty() {
            frames.push_front(Ok(Frame::data(kept.freeze())));
        }
        Ok(crate::body::boxed(Replay {
            frames,
            rest: (!ended).then_some(body),
        }))
    }
}

/// Frames already read (a failure among them), then whatever is still to come.
struct Replay {
    frames: VecDeque<Result<Frame<Bytes>, BoxError>>,
    rest: Option<Body>,
}

impl HttpBody for Replay {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(frame) = self.frames.pop_front() {
            return Poll::Ready(Some(frame));
        }
        match &mut self.rest {
            Some(rest) => Pin::new(rest).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty() && self.rest.as_ref().is_none_or(HttpBody::is_end_stream)
    }
}

/// A gRPC response whose call ends with the refusal's trailers once the WAF refuses a
/// request message, whatever the upstream does after its stream was reset.
pub struct Guarded {
    inner: Body,
    inspection: Arc<Inspection>,
    done: bool,
}

impl Guarded {
    /// Guards `inner`, the upstream's response to the inspected request.
    pub fn new(inner: Body, inspection: Arc<Inspection>) -> Self {
        Guarded {
            inner,
            inspection,
            done: false,
        }
    }

    fn refuse(&mut self, blocked: Blocked) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.done = true;
        // PERMISSION_DENIED for a rule or a limit; UNIMPLEMENTED for an encoding not
        // decoded; INVALID_ARGUMENT for a message that does not decode, naming why.
        let trailers = GatewayError::from(blocked).grpc_trailers();
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }
}

impl HttpBody for Guarded {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(blocked) = self.inspection.register(cx.waker()) {
            return self.refuse(blocked);
        }
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match polled {
            Poll::Ready(Some(Ok(frame))) if !frame.is_trailers() => Poll::Ready(Some(Ok(frame))),
            Poll::Ready(other) => match self.inspection.blocked() {
                Some(blocked) => self.refuse(blocked),
                None => {
                    self.done = other.is_none();
                    Poll::Ready(other)
                }
            },
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }
}

impl Inspection {
    /// Runs phases 3 and 4 over a response for a non-gRPC caller: the head, then the body
    /// read up to the response limit; gives back the response with its body replayed.
    pub async fn response(&self, response: Response<Body>) -> Result<Response<Body>, Blocked> {
        let (parts, mut body) = response.into_parts();
        if let Some(blocked) = self.response_head(parts.status, &parts.headers) {
            return Err(blocked);
        }
        let limit = self.response_body_limit();
        let mut kept = BytesMut::new();
        let mut frames = VecDeque::new();
        let mut ended = body.is_end_stream();
        while !ended && kept.len() <= limit {
            match body.frame().await {
                None => ended = true,
                Some(Err(e)) => {
                    frames.push_back(Err(e));
                    ended = true;
                }
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => kept.extend_from_slice(&data),
                    Err(other) => {
                        frames.push_back(Ok(other));
                        ended = true;
                    }
                },
            }
        }
        if let Some(blocked) = self.response_body(&kept[..kept.len().min(limit)]) {
            return Err(blocked);
        }
        if !kept.is_empty() {
            frames.push_front(Ok(Frame::data(kept.freeze())));
        }
        let body = crate::body::boxed(Replay {
            frames,
            rest: (!ended).then_some(body),
        });
        Ok(Response::from_parts(parts, body))
    }
}
