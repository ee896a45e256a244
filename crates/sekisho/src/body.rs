//! The one body type that flows through the gateway, boxed so requests and responses
//! from any source (client, upstream, a locally rendered error) share a type; and the
//! [`Watched`] request body, which tells whether a broken upstream exchange was the
//! client's doing.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};

use crate::listener::idle::BodyIdleTimeout;

/// Any error a body can end with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A streaming body of bytes.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// A body with nothing in it.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A body holding `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Boxes any body whose error converts into [`BoxError`].
pub fn boxed<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// A client's request body as a listener received it, from the gateway's own HTTP/2 or
/// HTTP/1.1 server, with the silence the listener allows it (carried here rather than in
/// the request's extensions, which would be a map allocated for every request).
pub enum ClientBody {
    /// No body.
    Empty,
    /// An HTTP/2 request's body.
    Http2(crate::listener::http2::RequestBody, Option<BodyIdleTimeout>),
    /// An HTTP/1.x request's body.
    Http1(
        crate::listener::http1::body::RequestBody,
        Option<BodyIdleTimeout>,
    ),
}

impl ClientBody {
    /// The listener's bound on the body's silence, for whoever reads the body to enforce.
    pub fn take_idle_timeout(&mut self) -> Option<BodyIdleTimeout> {
        match self {
            ClientBody::Empty => None,
            ClientBody::Http2(_, idle) | ClientBody::Http1(_, idle) => idle.take(),
        }
    }
}

impl http_body::Body for ClientBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        use std::pin::Pin;
        use std::task::Poll;
        match self.get_mut() {
            ClientBody::Empty => Poll::Ready(None),
            ClientBody::Http2(body, _) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            ClientBody::Http1(body, _) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ClientBody::Empty => true,
            ClientBody::Http2(body, _) => body.is_end_stream(),
            ClientBody::Http1(body, _) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self {
            ClientBody::Empty => http_body::SizeHint::with_exact(0),
            ClientBody::Http2(body, _) => body.size_hint(),
            ClientBody::Http1(body, _) => body.size_hint(),
        }
    }
}

/// The request body was longer than the route allows. A type of its own, so that whoever
/// sees the body fail can tell this refusal (413) from a broken body.
#[derive(Debug)]
pub struct TooLong {
    /// The route's limit, in bytes.
    pub limit: u64,
}

impl std::fmt::Display for TooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "request body is longer than {} bytes", self.limit)
    }
}

impl std::error::Error for TooLong {}

/// How a client's request body failed. An upstream exchange that breaks because of one of
/// these is the client's doing, and must not count against the endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The client went away mid-body: it closed or reset its connection, or reset its
    /// HTTP/2 stream. Logged as 499, nginx's "client closed request".
    Closed,
    /// The body's framing was broken (a malformed chunk size, more data than declared),
    /// or an adapter could not read it (gRPC-Web, a WAF refusal mid-stream): 400.
    Malformed,
    /// Longer than the route allows: 413.
    TooLong {
        /// The route's limit, in bytes.
        limit: u64,
    },
    /// Silent for the listener's `request_body_idle_timeout`: 408.
    Idle {
        /// How long it was silent.
        after: std::time::Duration,
    },
}

/// The first error a client's request body ended with, classified.
#[derive(Clone, Debug)]
pub struct ClientFailure {
    /// What kind of failure.
    pub fault: Fault,
    /// The error, for the log.
    pub reason: String,
}

impl ClientFailure {
    /// Classifies a body error by walking its causes: our own [`TooLong`], the socket's
    /// I/O errors, and HTTP/2 resets and GOAWAYs received from the client (or its
    /// connection breaking); anything unrecognised counts as a malformed body, which is
    /// still the client's fault.
    pub fn of(error: &(dyn std::error::Error + 'static)) -> Self {
        let reason = chain(error);
        let mut fault = Fault::Malformed;
        let mut cause = Some(error);
        while let Some(e) = cause {
            if let Some(too_long) = e.downcast_ref::<TooLong>() {
                fault = Fault::TooLong {
                    limit: too_long.limit,
                };
                break;
            }
            if let Some(idle) = e.downcast_ref::<crate::listener::idle::BodyIdle>() {
                fault = Fault::Idle { after: idle.after };
                break;
            }
            if let Some(io) = e.downcast_ref::<std::io::Error>()
                && gone(io.kind())
            {
                fault = Fault::Closed;
                break;
            }
            cause = e.source();
        }
        ClientFailure { fault, reason }
    }
}

/// Whether an I/O error means the peer went away (EOF mid-message, reset, closed).
fn gone(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        kind,
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe | NotConnected
    )
}

/// An error with its causes, for the log.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

/// Nothing read yet, or the last read handed over data.
const IDLE: u8 = 0;
/// The last read found the client had nothing new: the gateway waits on the client.
const WAITING: u8 = 1;
/// The body ended.
const ENDED: u8 = 2;

/// What became of a client's request body while it was sent upstream, shared by the
/// [`Watched`] body that reads it and whoever must decide whose fault a failed exchange
/// was: when the upstream send fails after the client's body failed, or a timeout passes
/// while the gateway waits for the client's next bytes, the client is to blame, not the
/// endpoint.
#[derive(Debug, Default)]
pub struct Watch {
    reading: std::sync::atomic::AtomicU8,
    failure: std::sync::OnceLock<ClientFailure>,
}

impl Watch {
    /// How the client's body failed, if it did.
    pub fn failure(&self) -> Option<&ClientFailure> {
        self.failure.get()
    }

    /// Whether the gateway is waiting for the client to send more of its body (the last
    /// read found nothing, and the body has not ended). A timeout now is the client's
    /// slowness: an upstream that does not read would not have asked for more.
    pub fn waiting_for_client(&self) -> bool {
        self.reading.load(std::sync::atomic::Ordering::Relaxed) == WAITING
    }

    fn set_reading(&self, state: u8) {
        use std::sync::atomic::Ordering::Relaxed;
        // Read first: most frames do not change the state.
        if self.reading.load(Relaxed) != state {
            self.reading.store(state, Relaxed);
        }
    }
}

pin_project_lite::pin_project! {
    /// A client's request body on its way upstream, reporting into a [`Watch`] whether the
    /// gateway waits on the client and how the body failed, if it does.
    pub struct Watched<B> {
        #[pin]
        inner: B,
        watch: std::sync::Arc<Watch>,
    }
}

impl<B> Watched<B> {
    /// Wraps `inner`, reporting into `watch`.
    pub fn new(inner: B, watch: std::sync::Arc<Watch>) -> Self {
        Watched { inner, watch }
    }
}

impl<B> http_body::Body for Watched<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        use std::task::Poll;
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Pending => {
                this.watch.set_reading(WAITING);
                Poll::Pending
            }
            Poll::Ready(None) => {
                this.watch.set_reading(ENDED);
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(frame))) => {
                this.watch.set_reading(IDLE);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                let e: BoxError = e.into();
                let _ = this.watch.failure.set(ClientFailure::of(&*e));
                this.watch.set_reading(ENDED);
                Poll::Ready(Some(Err(e)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;
    use std::sync::Arc;

    fn fault_of(error: BoxError) -> Fault {
        ClientFailure::of(&*error).fault
    }

    #[test]
    fn body_errors_are_classified_by_their_causes() {
        let eof = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "incomplete body");
        assert_eq!(fault_of(Box::new(eof)), Fault::Closed);
        let chunk = std::io::Error::new(std::io::ErrorKind::InvalidInput, "bad chunk size");
        assert_eq!(fault_of(Box::new(chunk)), Fault::Malformed);
        assert_eq!(
            fault_of(Box::new(TooLong { limit: 10 })),
            Fault::TooLong { limit: 10 }
        );
        assert_eq!(fault_of("something else".into()), Fault::Malformed);
    }

    #[tokio::test]
    async fn a_watched_body_reports_its_failure_and_its_waiting() {
        let (sender, receiver) =
            tokio::sync::mpsc::channel::<Result<http_body::Frame<Bytes>, BoxError>>(1);
        let incoming =
            http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(receiver));
        let watch = Arc::new(Watch::default());
        let mut body = std::pin::pin!(Watched::new(incoming, watch.clone()));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(body.as_mut().poll_frame(&mut cx).is_pending());
        assert!(watch.waiting_for_client());
        let data = http_body::Frame::data(Bytes::from_static(b"abc"));
        sender.send(Ok(data)).await.expect("send");
        assert!(body.as_mut().poll_frame(&mut cx).is_ready());
        assert!(!watch.waiting_for_client());
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        sender.send(Err(Box::new(reset))).await.expect("send");
        assert!(matches!(
            body.as_mut().poll_frame(&mut cx),
            std::task::Poll::Ready(Some(Err(_)))
        ));
        assert_eq!(watch.failure().map(|f| f.fault), Some(Fault::Closed));
        assert!(!watch.waiting_for_client());
    }
}
