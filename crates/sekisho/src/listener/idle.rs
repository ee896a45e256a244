//! Bounds on silence: a request body that stops sending, and an HTTP/2 connection with
//! nothing open on it.
//!
//! A client that opens a request and then sends its body one byte at a time, or not at
//! all, holds a request slot, an upstream stream and memory for as long as it likes unless
//! someone notices the silence. [`IdleBody`] notices it: while the gateway waits for the
//! next piece of a request body, and neither that body nor the response moved for the
//! listener's `request_body_idle_timeout`, the body fails with [`BodyIdle`]. Silence while
//! the upstream is not asking for more (it reads slowly) is not the client's and does not
//! count; a response still streaming (a gRPC call whose server talks while its client
//! listens) keeps the request alive. The response's frames are counted, not timed, and
//! looked at when the timeout falls due, so a body that stays silent after the response's
//! last frame fails between one and two timeouts after that frame.
//!
//! [`Streams`] counts the streams open on one HTTP/2 connection; [`idle`] completes once
//! none has been open for the listener's `http2.idle_timeout`, when the connection is
//! sent GOAWAY.

use std::fmt;
use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::body::BoxError;
use crate::observe::metrics;

/// A moment kept in an atomic: nanoseconds after a base instant.
struct Stamp {
    base: Instant,
    nanos: AtomicU64,
}

impl Stamp {
    fn now() -> Self {
        Stamp {
            base: Instant::now(),
            nanos: AtomicU64::new(0),
        }
    }

    fn set_now(&self) {
        let nanos = self.base.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64;
        self.nanos.store(nanos, Ordering::Relaxed);
    }

    fn get(&self) -> Instant {
        self.base + Duration::from_nanos(self.nanos.load(Ordering::Relaxed))
    }
}

/// Whether a request's response has moved, shared by the response (which counts each
/// frame) and the request's body (which looks when its silence would time out). A count,
/// not a time: a frame costs an increment instead of a clock read, and the body reads the
/// clock only when it has to wait.
pub struct Progress(AtomicU64);

impl Progress {
    /// No progress yet (the request's head has just arrived).
    pub fn new() -> Arc<Self> {
        Arc::new(Progress(AtomicU64::new(0)))
    }

    /// Something moved.
    pub fn touch(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn moves(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// How long a request's body may be silent: the listener puts it on the request (in the
/// body it hands on, or for hyper's server in the request's extensions), and [`limit`]
/// enforces it where the body is read.
#[derive(Clone)]
pub struct BodyIdleTimeout {
    after: Duration,
    progress: Arc<Progress>,
    listener: Arc<str>,
}

impl BodyIdleTimeout {
    /// `after` of silence on the request of `listener` whose progress is `progress`.
    pub fn new(after: Duration, progress: Arc<Progress>, listener: Arc<str>) -> Self {
        BodyIdleTimeout {
            after,
            progress,
            listener,
        }
    }

    /// `after` of silence for a request arriving now on `listener`, and the progress its
    /// response is to touch as it moves.
    pub fn start(after: Duration, listener: &Arc<str>) -> (Self, Arc<Progress>) {
        let progress = Progress::new();
        let timeout = BodyIdleTimeout::new(after, progress.clone(), listener.clone());
        (timeout, progress)
    }

    /// Bounds the silence of the body of the request whose `extensions` these are to
    /// `after`, on `listener`; the progress its response is to touch as it moves.
    pub fn attach(
        extensions: &mut http::Extensions,
        after: Duration,
        listener: &Arc<str>,
    ) -> Arc<Progress> {
        let (timeout, progress) = BodyIdleTimeout::start(after, listener);
        extensions.insert(timeout);
        progress
    }

    /// The bound [`attach`](Self::attach) put on a request's `extensions`, if any.
    pub fn of(extensions: &http::Extensions) -> Option<Self> {
        extensions.get::<BodyIdleTimeout>().cloned()
    }
}

/// The request body sent nothing for the listener's `request_body_idle_timeout`: the
/// client's slowness, answered 408 when no response has started.
#[derive(Debug)]
pub struct BodyIdle {
    /// The silence allowed.
    pub after: Duration,
}

impl BodyIdle {
    /// The silence allowed, when `error` (or one of its causes) is a [`BodyIdle`].
    pub fn find(error: &(dyn std::error::Error + 'static)) -> Option<Duration> {
        let mut cause = Some(error);
        while let Some(e) = cause {
            if let Some(idle) = e.downcast_ref::<BodyIdle>() {
                return Some(idle.after);
            }
            cause = e.source();
        }
        None
    }
}

impl fmt::Display for BodyIdle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the request body sent nothing for {:?} (request_body_idle_timeout)",
            self.after
        )
    }
}

impl std::error::Error for BodyIdle {}

/// Bounds the silence of a request body by the listener's [`BodyIdleTimeout`]; without
/// one (the timeout is off) the body is unchanged.
pub fn limit<B>(body: B, timeout: Option<BodyIdleTimeout>) -> IdleBody<B> {
    IdleBody {
        inner: body,
        watch: timeout.map(|timeout| Watch {
            timeout,
            sleep: None,
            armed: false,
            seen: 0,
        }),
        fired: false,
    }
}

struct Watch {
    timeout: BodyIdleTimeout,
    /// Allocated at the first wait, then reset.
    sleep: Option<Pin<Box<Sleep>>>,
    /// Whether `sleep` times the current silence; false again once a piece arrives.
    armed: bool,
    /// The response's progress count when `sleep` was set.
    seen: u64,
}

pin_project! {
    /// A request body that fails with [`BodyIdle`] when it stays silent too long.
    pub struct IdleBody<B> {
        #[pin]
        inner: B,
        watch: Option<Watch>,
        fired: bool,
    }
}

impl<B> HttpBody for IdleBody<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if *this.fired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            if let Some(watch) = this.watch.as_mut() {
                // The next wait is a new silence, timed from when it starts.
                watch.armed = false;
            }
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let Some(watch) = this.watch.as_mut() else {
            return Poll::Pending;
        };
        let after = watch.timeout.after;
        loop {
            let moves = watch.timeout.progress.moves();
            if !watch.armed || watch.seen != moves {
                // Silence starts now: the body just waited for the first time since its
                // last piece, or the response moved since the clock was set. (Progress is
                // seen when the body is polled, so a silence that follows the response's
                // last frame is cut between `after` and twice `after` after that frame.)
                let deadline = Instant::now() + after;
                match watch.sleep.as_mut() {
                    Some(sleep) => sleep.as_mut().reset(deadline),
                    None => watch.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
                }
                watch.armed = true;
                watch.seen = moves;
            }
            let sleep = watch
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(after)));
            ready!(sleep.as_mut().poll(cx));
            if watch.timeout.progress.moves() != watch.seen {
                // The response moved while the body was silent: time the silence again.
                continue;
            }
            *this.fired = true;
            metrics::downstream_request_refused(&watch.timeout.listener, "body_idle");
            return Poll::Ready(Some(Err(Box::new(BodyIdle { after }))));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.fired || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The streams open on one HTTP/2 connection, and since when none has been.
pub struct Streams {
    open: AtomicUsize,
    idle_since: Stamp,
}

impl Streams {
    /// A connection that has just started, with no stream open.
    pub fn new() -> Arc<Self> {
        Arc::new(Streams {
            open: AtomicUsize::new(0),
            idle_since: Stamp::now(),
        })
    }

    /// A stream opened; it counts until the returned guard is dropped (with the
    /// response body, or the request's future when the client resets the stream first).
    pub fn opened(self: &Arc<Self>) -> OpenStream {
        self.open.fetch_add(1, Ordering::AcqRel);
        OpenStream(self.clone())
    }

    /// Since when no stream has been open; `None` while one is.
    fn idle_since(&self) -> Option<Instant> {
        (self.open.load(Ordering::Acquire) == 0).then(|| self.idle_since.get())
    }
}

/// One open stream's place in [`Streams`].
pub struct OpenStream(Arc<Streams>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        // Stamp before the count drops to zero, so a watcher that sees zero reads a
        // stamp at least this recent.
        self.0.idle_since.set_now();
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Completes once no stream has been open on the connection for `after`. Wakes once per
/// `after` at most, whatever the request rate: no timer is touched per request.
pub async fn idle(streams: &Streams, after: Duration) {
    loop {
        let wake = match streams.idle_since() {
            Some(since) if since + after <= Instant::now() => return,
            Some(since) => since + after,
            None => Instant::now() + after,
        };
        tokio::time::sleep_until(wake).await;
    }
}

pin_project! {
    /// A response body on its way to the client: each frame counts as progress of its
    /// request (whose body may be waiting quietly while the response streams), and an
    /// HTTP/2 stream stays counted as open until the body is dropped.
    pub struct Tracked<B> {
        #[pin]
        inner: B,
        progress: Option<Arc<Progress>>,
        stream: Option<OpenStream>,
    }
}

impl<B> Tracked<B> {
    /// Tracks `inner` for the request's `progress` and the connection's open `stream`.
    pub fn new(inner: B, progress: Option<Arc<Progress>>, stream: Option<OpenStream>) -> Self {
        Tracked {
            inner,
            progress,
            stream,
        }
    }
}

impl<B: HttpBody> HttpBody for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if let Some(progress) = this.progress {
            progress.touch();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn silent_body() -> (
        tokio::sync::mpsc::Sender<Result<Frame<Bytes>, BoxError>>,
        impl HttpBody<Data = Bytes, Error = BoxError>,
    ) {
        let (sender, receiver) = tokio::sync::mpsc::channel(1);
        let body =
            http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(receiver));
        (sender, body)
    }

    fn timeout(after: Duration, progress: &Arc<Progress>) -> Option<BodyIdleTimeout> {
        Some(BodyIdleTimeout::new(
            after,
            progress.clone(),
            Arc::from("test"),
        ))
    }

    #[tokio::test]
    async fn a_silent_body_fails_after_the_timeout() {
        let (_sender, body) = silent_body();
        let progress = Progress::new();
        let body = limit(body, timeout(Duration::from_millis(100), &progress));
        let started = std::time::Instant::now();
        let Err(error) = body.collect().await else {
            panic!("the body fails");
        };
        assert_eq!(BodyIdle::find(&*error), Some(Duration::from_millis(100)));
        assert!(started.elapsed() >= Duration::from_millis(100));
    }

    #[tokio::test]
    async fn each_piece_and_response_progress_restart_the_clock() {
        let (sender, body) = silent_body();
        let progress = Progress::new();
        let body = limit(body, timeout(Duration::from_millis(300), &progress));
        let feeding = tokio::spawn({
            let progress = progress.clone();
            async move {
                for _ in 0..3 {
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    let _ = sender.send(Ok(Frame::data(Bytes::from_static(b"x")))).await;
                }
                for _ in 0..3 {
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    progress.touch();
                }
                drop(sender);
            }
        });
        let body = body.collect().await.expect("never silent for 300 ms");
        assert_eq!(body.to_bytes(), "xxx");
        feeding.await.expect("feeder");
    }

    #[tokio::test]
    async fn without_a_timeout_the_body_is_unchanged() {
        let (sender, body) = silent_body();
        let body = limit(body, None);
        sender
            .send(Ok(Frame::data(Bytes::from_static(b"ab"))))
            .await
            .expect("send");
        drop(sender);
        assert_eq!(body.collect().await.expect("body").to_bytes(), "ab");
    }

    #[tokio::test]
    async fn streams_go_idle_once_the_last_one_closes() {
        let streams = Streams::new();
        let open = streams.opened();
        let waiting = tokio::time::timeout(
            Duration::from_millis(200),
            idle(&streams, Duration::from_millis(50)),
        )
        .await;
        assert!(waiting.is_err(), "not idle while a stream is open");
        drop(open);
        tokio::time::timeout(
            Duration::from_millis(500),
            idle(&streams, Duration::from_millis(50)),
        )
        .await
        .expect("idle 50 ms after the last stream closed");
    }
}
