//! The gateway's HTTP/2 server: one client connection, its streams served in the
//! connection's own task.
//!
//! Driven with `h2` directly, as the upstream side is, rather than through hyper's server,
//! which spawns a task for every stream and pipes each response body through it. Here each
//! stream is a future in the connection's set ([`stream`]), polled when its own waker
//! fires: a request costs no task, no spawn and no hand-off to another thread, and a
//! connection's streams run on the core that reads its socket.
//!
//! The connection keeps to its listener's bounds: it is sent GOAWAY once nothing has been
//! open on it for `http2.idle_timeout` (and closed if it has not closed itself within
//! `http2.keep_alive_timeout` after), it is closed when a PING goes unanswered for
//! `http2.keep_alive_timeout`, and when the listener drains it is sent GOAWAY and ends once
//! its open streams have. A client that cancels far more streams than it lets finish is
//! sent GOAWAY(ENHANCE_YOUR_CALM) ([`cancels`]).

mod cancels;
mod stream;

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use h2::{Ping, PingPong};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep};

use self::cancels::CancelBudget;
use super::wait_list::Waiter;
use crate::observe::metrics;
use crate::proxy::Downstream;

/// The bounds and settings one connection is served with.
pub struct Settings {
    /// Streams the client may have open at once.
    pub max_concurrent_streams: u32,
    /// Each stream's receive window.
    pub initial_stream_window_size: u32,
    /// The connection's receive window.
    pub initial_connection_window_size: u32,
    /// Largest header list a client may send, in bytes.
    pub max_header_list_size: u32,
    /// Largest frame a client may send.
    pub max_frame_size: u32,
    /// Time for the client's preface.
    pub handshake_timeout: Duration,
    /// Nothing open for this long: GOAWAY. `None`: never.
    pub idle_timeout: Option<Duration>,
    /// A PING this often. `None`: none.
    pub keep_alive_interval: Option<Duration>,
    /// An unanswered PING closes the connection after this long; also the time an idle
    /// connection is given to close after its GOAWAY.
    pub keep_alive_timeout: Duration,
    /// How long a request body may be silent.
    pub body_idle: Option<Duration>,
    /// How long a response may wait for the client to open its window.
    pub send_timeout: Option<Duration>,
    /// Streams the client may cancel beyond those it lets finish; 0: no bound.
    pub max_cancelled_streams: u32,
}

/// Serves HTTP/2 on `io` (its preface not yet read) until the client leaves, the
/// connection breaks or idles, or the listener closes (`waiter`) and its streams end.
pub async fn serve<IO>(io: IO, downstream: Arc<Downstream>, settings: Settings, waiter: Waiter)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let listener = downstream.listener.clone();
    let client = downstream.client;
    let handshake = h2::server::Builder::new()
        .max_concurrent_streams(settings.max_concurrent_streams)
        .initial_window_size(settings.initial_stream_window_size)
        .initial_connection_window_size(settings.initial_connection_window_size)
        .max_header_list_size(settings.max_header_list_size)
        .max_frame_size(settings.max_frame_size)
        .handshake::<_, Bytes>(io);
    let mut conn = match tokio::time::timeout(settings.handshake_timeout, handshake).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            tracing::debug!(%listener, %client, error = %e, "HTTP/2 handshake failed");
            return;
        }
        Err(_) => {
            metrics::downstream_connection_cut(&listener, "handshake_timeout");
            tracing::debug!(%listener, %client, "HTTP/2 handshake timed out");
            return;
        }
    };
    let mut keep_alive = settings
        .keep_alive_interval
        .zip(conn.ping_pong())
        .map(|(every, pings)| KeepAlive::new(pings, every, settings.keep_alive_timeout));
    let mut idle = settings
        .idle_timeout
        .map(|after| Idle::new(after, settings.keep_alive_timeout));
    let bounds = stream::Bounds {
        body_idle: settings.body_idle,
        send_timeout: settings.send_timeout,
    };
    let mut streams = FuturesUnordered::new();
    let mut cancels = CancelBudget::new(settings.max_cancelled_streams);
    // Set once a GOAWAY has gone out: how the connection ends once it has closed.
    let mut going_away: Option<Ended> = None;

    let ended = poll_fn(|cx| {
        loop {
            // Streams whose wakers fired; those that are done leave the set.
            while let Poll::Ready(Some(outcome)) = streams.poll_next_unpin(cx) {
                if !cancels.record(outcome) && !matches!(going_away, Some(Ended::Cancels)) {
                    conn.abrupt_shutdown(h2::Reason::ENHANCE_YOUR_CALM);
                    going_away = Some(Ended::Cancels);
                }
            }
            match conn.poll_accept(cx) {
                Poll::Ready(Some(Ok((request, respond)))) => {
                    streams.push(stream::serve(request, respond, downstream.clone(), bounds));
                    continue;
                }
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(match going_away.take() {
                        Some(Ended::Idle) => Ended::Idle,
                        Some(Ended::Cancels) => Ended::Cancels,
                        _ => Ended::Broken(e),
                    });
                }
                Poll::Ready(None) => return Poll::Ready(going_away.take().unwrap_or(Ended::Done)),
                Poll::Pending => {}
            }
            if going_away.is_none() && waiter.poll(cx, true).is_ready() {
                conn.graceful_shutdown();
                going_away = Some(Ended::Done);
                continue;
            }
            if let Some(pings) = keep_alive.as_mut()
                && pings.poll_expired(cx).is_ready()
            {
                return Poll::Ready(Ended::KeepAlive);
            }
            if let Some(idle) = idle.as_mut() {
                match idle.poll(cx, streams.is_empty(), going_away.is_some()) {
                    Poll::Ready(Lapse::Idle) => {
                        conn.graceful_shutdown();
                        going_away = Some(Ended::Idle);
                        continue;
                    }
                    Poll::Ready(Lapse::Grace) => return Poll::Ready(Ended::Idle),
                    Poll::Pending => {}
                }
            }
            return Poll::Pending;
        }
    })
    .await;
    match ended {
        Ended::Done => {}
        Ended::Idle => metrics::downstream_connection_cut(&listener, "idle"),
        Ended::Cancels => {
            metrics::downstream_connection_cut(&listener, "cancelled_streams");
            tracing::info!(
                %listener,
                %client,
                limit = settings.max_cancelled_streams,
                "client cancelled more streams than it let finish; GOAWAY(ENHANCE_YOUR_CALM)"
            );
        }
        Ended::KeepAlive => {
            metrics::downstream_connection_cut(&listener, "keep_alive");
            tracing::debug!(%listener, %client, "a PING went unanswered; connection closed");
        }
        Ended::Broken(e) => {
            tracing::debug!(%listener, %client, error = %e, "client connection ended with an error");
        }
    }
}

/// How a connection ended.
enum Ended {
    /// The client closed it, or it closed after a GOAWAY once its streams were done.
    Done,
    /// It was idle and was closed for it.
    Idle,
    /// A PING went unanswered.
    KeepAlive,
    /// The client cancelled more streams than its budget allows.
    Cancels,
    /// A protocol or I/O error.
    Broken(h2::Error),
}

/// PINGs at an interval, each to be answered within a timeout.
struct KeepAlive {
    pings: PingPong,
    every: Duration,
    timeout: Duration,
    /// The next PING while none is out; the deadline for its answer while one is.
    timer: Pin<Box<Sleep>>,
    awaiting: bool,
}

impl KeepAlive {
    fn new(pings: PingPong, every: Duration, timeout: Duration) -> Self {
        KeepAlive {
            pings,
            every,
            timeout,
            timer: Box::pin(tokio::time::sleep(every)),
            awaiting: false,
        }
    }

    /// Ready when a PING has gone unanswered for the timeout.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if self.awaiting {
                if let Poll::Ready(Ok(_)) = self.pings.poll_pong(cx) {
                    self.awaiting = false;
                    self.timer.as_mut().reset(Instant::now() + self.every);
                    continue;
                }
                // An error here is the connection's, which it reports itself.
                return self.timer.as_mut().poll(cx);
            }
            ready!(self.timer.as_mut().poll(cx));
            self.awaiting = self.pings.send_ping(Ping::opaque()).is_ok();
            let next = if self.awaiting {
                self.timeout
            } else {
                self.every
            };
            self.timer.as_mut().reset(Instant::now() + next);
        }
    }
}

/// A connection's time without an open stream.
struct Idle {
    after: Duration,
    grace: Duration,
    timer: Pin<Box<Sleep>>,
    /// Whether `timer` counts the time idle (or, once the GOAWAY is out, the grace).
    armed: bool,
    sent: bool,
}

/// What an idle connection's time came to.
enum Lapse {
    /// Idle for its time: send GOAWAY.
    Idle,
    /// The GOAWAY went out and the client has not closed: close.
    Grace,
}

impl Idle {
    fn new(after: Duration, grace: Duration) -> Self {
        Idle {
            after,
            grace,
            timer: Box::pin(tokio::time::sleep(after)),
            armed: true,
            sent: false,
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>, empty: bool, going_away: bool) -> Poll<Lapse> {
        if self.sent {
            ready!(self.timer.as_mut().poll(cx));
            return Poll::Ready(Lapse::Grace);
        }
        if !empty || going_away {
            self.armed = false;
            return Poll::Pending;
        }
        if !self.armed {
            self.armed = true;
            self.timer.as_mut().reset(Instant::now() + self.after);
        }
        ready!(self.timer.as_mut().poll(cx));
        self.sent = true;
        self.timer.as_mut().reset(Instant::now() + self.grace);
        Poll::Ready(Lapse::Idle)
    }
}
