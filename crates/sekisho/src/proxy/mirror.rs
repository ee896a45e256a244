//! Mirroring: a copy of a share of a route's requests goes to a shadow cluster. The copy
//! is fire-and-forget: its response is thrown away, and if the shadow falls behind the
//! copy is abandoned rather than slowing the client's request.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body::{Body as HttpBody, Frame};
use http_body_util::BodyExt;
use pin_project_lite::pin_project;
use rand::Rng;
use tokio::sync::mpsc;

use crate::body::{self, Body, BoxError};
use crate::observe::metrics;
use crate::upstream::{Cluster, Outcome};

/// Body frames the copy may lag behind the original before it is abandoned.
const LAG: usize = 32;
/// Bound on a mirrored request when the route sets none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// A route's mirror, compiled.
pub struct MirrorPolicy {
    /// Where copies go.
    pub cluster: Arc<Cluster>,
    /// Share of requests copied, 0.0 to 1.0.
    pub ratio: f64,
}

impl MirrorPolicy {
    /// Whether this request is one of the share copied.
    pub fn sample(&self) -> bool {
        self.ratio >= 1.0 || (self.ratio > 0.0 && rand::rng().random_bool(self.ratio))
    }
}

/// Splits `body` into the original (returned) and a copy for the shadow request.
pub fn split(body: Body) -> (Body, Body) {
    if body.is_end_stream() {
        return (body, body::empty());
    }
    let (sender, receiver) = mpsc::channel(LAG);
    let complete = Arc::new(AtomicBool::new(false));
    let original = Tee {
        inner: body,
        copy: Some(sender),
        complete: complete.clone(),
    };
    let copy = Copy { receiver, complete };
    (body::boxed(original), body::boxed(copy))
}

/// Sends the shadow request and discards its answer, in the background.
pub fn send(cluster: Arc<Cluster>, host: String, req: Request<Body>, timeout: Option<Duration>) {
    let admitted = match cluster.admit() {
        Ok(slot) => slot,
        Err(_) => {
            metrics::mirror(&cluster.name, "overloaded");
            return;
        }
    };
    tokio::spawn(async move {
        let _admitted = admitted;
        let Some(in_flight) = cluster.pick(&[]) else {
            metrics::mirror(&cluster.name, "no_endpoint");
            return;
        };
        let send = cluster.send(in_flight.endpoint(), &host, req);
        let result = tokio::time::timeout(timeout.unwrap_or(DEFAULT_TIMEOUT), async {
            let response = send.await.map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let mut body = response.into_body();
            while let Some(frame) = body.frame().await {
                frame.map_err(|e| e.to_string())?;
            }
            Ok::<u16, String>(status)
        })
        .await;
        match result {
            Ok(Ok(status)) => {
                in_flight.report(Outcome::of_response(status, None));
                metrics::mirror(&cluster.name, "sent");
            }
            Ok(Err(_)) | Err(_) => {
                in_flight.report(Outcome::Failure);
                metrics::mirror(&cluster.name, "failed");
            }
        }
    });
}

pin_project! {
    /// The original body, handing a copy of each frame to the shadow request.
    struct Tee {
        #[pin]
        inner: Body,
        copy: Option<mpsc::Sender<Frame<Bytes>>>,
        complete: Arc<AtomicBool>,
    }
}

impl HttpBody for Tee {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                let copy = if let Some(data) = frame.data_ref() {
                    Some(Frame::data(data.clone()))
                } else {
                    frame.trailers_ref().map(|t| Frame::trailers(t.clone()))
                };
                if let (Some(sender), Some(copy)) = (this.copy.as_ref(), copy)
                    && sender.try_send(copy).is_err()
                {
                    // The shadow fell behind or is gone: abandon the copy.
                    *this.copy = None;
                }
            }
            Some(Err(_)) => *this.copy = None,
            None => {
                if this.copy.take().is_some() {
                    this.complete.store(true, Ordering::Release);
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The shadow request's body: the copied frames; an error if the copy was abandoned, so
/// the shadow never sees a truncated body as a whole one.
struct Copy {
    receiver: mpsc::Receiver<Frame<Bytes>>,
    complete: Arc<AtomicBool>,
}

impl HttpBody for Copy {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match ready!(self.receiver.poll_recv(cx)) {
            Some(frame) => Poll::Ready(Some(Ok(frame))),
            None if self.complete.load(Ordering::Acquire) => Poll::Ready(None),
            None => Poll::Ready(Some(Err("mirrored copy abandoned".into()))),
        }
    }

    /// Ends with the last copied frame, not with an extra empty one.
    fn is_end_stream(&self) -> bool {
        self.complete.load(Ordering::Acquire) && self.receiver.is_empty()
    }
}
