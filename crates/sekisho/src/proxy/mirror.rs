//! Mirroring: a copy of a share of a route's requests goes to a shadow cluster. The copy
//! is fire-and-forget: its response is thrown away, and if the shadow falls behind the
//! copy is abandoned rather than slowing the client's request.
//!
//! The shadow's own failures count as the main path's do (`forward`): against its
//! endpoint (outlier ejection) and in `sekisho_upstream_failures_total`. But a copy fails
//! with its original when the client's body does (a short body, a cancelled stream, a
//! client gone mid-body), and that failure is the client's: it is counted as an
//! `incomplete` copy and held against nothing.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body::{Body as HttpBody, Frame};
use http_body_util::BodyExt;
use pin_project_lite::pin_project;
use rand::Rng;
use tokio::sync::mpsc;

use crate::body::{self, Body, BoxError, Watch, Watched};
use crate::observe::metrics;
use crate::upstream::{Cluster, Outcome, SendError};

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
    let state = Arc::new(AtomicU8::new(COPYING));
    let original = Tee {
        inner: body,
        copy: Some(CopySender {
            sender,
            state: state.clone(),
        }),
    };
    let copy = Copy { receiver, state };
    (body::boxed(original), body::boxed(copy))
}

/// How one shadow exchange went wrong.
enum Failure {
    /// Sending, or reading the response's head.
    Send(SendError),
    /// Reading the response's body.
    Body,
    /// The mirror's time ran out.
    Timeout,
}

/// Sends the shadow request and discards its answer, in the background. The copy's head
/// names its host; the TLS name is the shadow cluster's own.
pub fn send(cluster: Arc<Cluster>, req: Request<Body>, timeout: Option<Duration>) {
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
        // Watched, as the main path watches the client's body: a copy cut short because
        // the client's body failed, or a timeout while the copy waited for the client's
        // next bytes, is the client's doing.
        let watch = Arc::new(Watch::default());
        let cut = Arc::new(AtomicBool::new(false));
        let req = req.map(|copy| {
            let cut = cut.clone();
            let copy = copy.map_err(move |e: BoxError| {
                if matches!(e.downcast_ref::<Abandoned>(), Some(Abandoned::Cut)) {
                    cut.store(true, Ordering::Release);
                }
                e
            });
            body::boxed(Watched::new(copy, watch.clone()))
        });
        let send = cluster.send(in_flight.endpoint(), req);
        let result = tokio::time::timeout(timeout.unwrap_or(DEFAULT_TIMEOUT), async {
            let response = send.await.map_err(Failure::Send)?;
            let status = response.status().as_u16();
            let mut body = response.into_body();
            while let Some(frame) = body.frame().await {
                frame.map_err(|_| Failure::Body)?;
            }
            Ok::<u16, Failure>(status)
        })
        .await
        .unwrap_or(Err(Failure::Timeout));
        let name = &cluster.name;
        let failure = match result {
            Ok(status) => {
                in_flight.report(Outcome::of_response(status, None));
                metrics::mirror(name, "sent");
                return;
            }
            Err(failure) => failure,
        };
        // As on the main path, a failed connect or a cluster limit is never the client's:
        // no body was read for them.
        let client_fault = cut.load(Ordering::Acquire)
            || (matches!(failure, Failure::Timeout) && watch.waiting_for_client());
        let kind = match failure {
            Failure::Send(SendError::Overloaded(_)) => {
                metrics::mirror(name, "overloaded");
                return;
            }
            Failure::Send(SendError::Connect(_)) => Some("connect"),
            _ if client_fault => {
                metrics::mirror(name, "incomplete");
                return;
            }
            // The gateway cut a copy the shadow read too slowly: the shadow's slowness,
            // but no failed exchange to count.
            _ if watch.failure().is_some() => None,
            Failure::Send(SendError::Reset(_)) => Some("reset"),
            Failure::Body => Some("response"),
            Failure::Timeout => Some("timeout"),
        };
        in_flight.report(Outcome::Failure);
        if let Some(kind) = kind {
            metrics::upstream_failure(name, kind);
        }
        metrics::mirror(name, "failed");
    });
}

/// The copy is still being made.
const COPYING: u8 = 0;
/// The original ended and every frame was copied.
const COMPLETE: u8 = 1;
/// The shadow fell `LAG` frames behind; the copy was abandoned.
const LAGGED: u8 = 2;
/// The original did not arrive whole: the client's body failed, or the original was
/// dropped before its end (the client left, or the primary stopped reading it).
const CUT: u8 = 3;
/// The shadow stopped reading (its exchange ended on its own).
const GONE: u8 = 4;

/// Why a copy ended before its original's end, as the shadow request's body error.
#[derive(Debug)]
enum Abandoned {
    /// The shadow fell behind.
    Lagged,
    /// The original did not arrive whole.
    Cut,
}

impl std::fmt::Display for Abandoned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Abandoned::Lagged => "mirrored copy abandoned: the shadow fell behind",
            Abandoned::Cut => "mirrored copy abandoned: the client's body did not arrive whole",
        })
    }
}

impl std::error::Error for Abandoned {}

/// The sending end of a copy, with its state. Dropped while still copying (the original
/// was dropped before its end) it marks the copy cut, before the channel closes.
struct CopySender {
    sender: mpsc::Sender<Frame<Bytes>>,
    state: Arc<AtomicU8>,
}

impl CopySender {
    /// Ends the copy as `state`; the channel closes when `self` is dropped.
    fn finish(self, state: u8) {
        self.state.store(state, Ordering::Release);
    }
}

impl Drop for CopySender {
    fn drop(&mut self) {
        let _ = self
            .state
            .compare_exchange(COPYING, CUT, Ordering::AcqRel, Ordering::Acquire);
    }
}

pin_project! {
    /// The original body, handing a copy of each frame to the shadow request.
    struct Tee {
        #[pin]
        inner: Body,
        copy: Option<CopySender>,
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
                    && let Err(e) = sender.sender.try_send(copy)
                    && let Some(sender) = this.copy.take()
                {
                    sender.finish(match e {
                        mpsc::error::TrySendError::Full(_) => LAGGED,
                        mpsc::error::TrySendError::Closed(_) => GONE,
                    });
                }
            }
            Some(Err(_)) => {
                if let Some(sender) = this.copy.take() {
                    sender.finish(CUT);
                }
            }
            None => {
                if let Some(sender) = this.copy.take() {
                    sender.finish(COMPLETE);
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
    state: Arc<AtomicU8>,
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
            None => match self.state.load(Ordering::Acquire) {
                COMPLETE => Poll::Ready(None),
                LAGGED => Poll::Ready(Some(Err(Box::new(Abandoned::Lagged)))),
                _ => Poll::Ready(Some(Err(Box::new(Abandoned::Cut)))),
            },
        }
    }

    /// Ends with the last copied frame, not with an extra empty one.
    fn is_end_stream(&self) -> bool {
        self.state.load(Ordering::Acquire) == COMPLETE && self.receiver.is_empty()
    }
}
