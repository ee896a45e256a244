//! The gateway's HTTP/2 server: one client connection, its streams served in the
//! connection's own task.
//!
//! The protocol is `h2conn`'s, the gateway's own sans-I/O connection: this module owns the
//! socket and the timers, feeds the connection what it reads, hands each request to the
//! request path and writes what the connection queues. Each stream is a future in the
//! connection's set ([`stream`]), polled when its own waker fires: a request costs no
//! task, no spawn and no hand-off to another thread. Nothing is buffered while nothing is
//! in flight: the read buffer is allocated when bytes arrive and dropped once the
//! connection has taken them all, and the connection keeps no output buffer while it has
//! nothing to write, so an idle connection holds its protocol state and little else.
//!
//! The connection keeps to its listener's bounds: it is sent GOAWAY once nothing has been
//! open on it for `http2.idle_timeout` (and closed if it has not closed itself within
//! `http2.keep_alive_timeout` after), it is closed when a PING goes unanswered for
//! `http2.keep_alive_timeout`, and when the listener drains it is sent GOAWAY and ends once
//! its open streams have. A client that takes nothing of what the connection owes it while
//! the connection has stopped reading it is closed after `send_timeout`. The abuse bounds (rapid and after-the-fact resets, floods of
//! control, empty or CONTINUATION frames, a client that does not read) are the
//! connection's, each ending it with GOAWAY(ENHANCE_YOUR_CALM).

mod request_body;
mod shared;
mod stream;

pub use request_body::RequestBody;

use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use h2conn::{Abuse, Connection, ConnectionError, ErrorCode, Event};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep};

use self::shared::{Gone, Handle, Shared, Slot, lock};
use super::stall::Stall;
use super::wait_list::Waiter;
use crate::h2socket::Socket;
use crate::heap;
use crate::keep_alive::{Beat, KeepAlive};
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
    /// Time for the client's preface and its acknowledgement of the gateway's SETTINGS.
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

impl Settings {
    fn connection(&self) -> h2conn::Config {
        h2conn::Config {
            max_concurrent_streams: self.max_concurrent_streams,
            initial_stream_window: self.initial_stream_window_size,
            connection_window: self.initial_connection_window_size,
            max_header_list_size: self.max_header_list_size,
            max_frame_size: self.max_frame_size,
            max_header_block_size: 2 * self.max_header_list_size as usize,
            max_reset_streams: match self.max_cancelled_streams {
                0 => u32::MAX,
                n => n,
            },
            ..h2conn::Config::default()
        }
    }
}

/// The payload of the gateway's keep-alive PINGs.
const KEEP_ALIVE_PING: [u8; 8] = *b"sekisho!";

/// Serves HTTP/2 on `io` (its preface not yet read) until the client leaves, the
/// connection breaks or idles, or the listener closes (`waiter`) and its streams end.
pub async fn serve<IO>(io: IO, downstream: Arc<Downstream>, settings: Settings, waiter: Waiter)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let listener = downstream.listener.clone();
    let client = downstream.client;
    let handle = Shared::new(Connection::new(settings.connection()));
    let mut served = Served {
        socket: Socket::new(io),
        handle: handle.clone(),
        streams: FuturesUnordered::new(),
        downstream,
        bounds: stream::Bounds {
            body_idle: settings.body_idle,
            send_timeout: settings.send_timeout,
        },
        handshake: Some(Box::pin(tokio::time::sleep(settings.handshake_timeout))),
        keep_alive: settings
            .keep_alive_interval
            .map(|every| KeepAlive::new(every, settings.keep_alive_timeout)),
        idle: settings
            .idle_timeout
            .map(|after| Idle::new(after, settings.keep_alive_timeout)),
        drain: None,
        grace: settings.keep_alive_timeout,
        stall: Stall::new(settings.send_timeout),
        waiter,
    };
    let ended = poll_fn(|cx| served.poll(cx)).await;
    // Whatever is still open ends with the connection: the request path sees its streams
    // gone and cancels their upstream requests as the futures drop.
    lock(&handle).close_all();
    drop(served);
    match ended {
        Ended::Done => {}
        Ended::Idle => metrics::downstream_connection_cut(&listener, "idle"),
        Ended::KeepAlive => {
            metrics::downstream_connection_cut(&listener, "keep_alive");
            tracing::debug!(%listener, %client, "a PING went unanswered; connection closed");
        }
        Ended::Stalled => {
            metrics::downstream_connection_cut(&listener, "send_timeout");
            tracing::info!(
                %listener,
                %client,
                "the client took nothing the gateway wrote for send_timeout while the gateway had stopped reading it; connection closed"
            );
        }
        Ended::Handshake => {
            metrics::downstream_connection_cut(&listener, "handshake_timeout");
            tracing::debug!(%listener, %client, "HTTP/2 handshake timed out");
        }
        Ended::Protocol(error) => match error.abuse() {
            Some(abuse) => {
                metrics::downstream_connection_cut(&listener, abuse_reason(abuse));
                tracing::info!(%listener, %client, %error, "client connection cut");
            }
            None => {
                tracing::debug!(%listener, %client, %error, "client connection ended with an error");
            }
        },
        Ended::Io(error) => {
            tracing::debug!(%listener, %client, %error, "client connection broke");
        }
    }
}

/// The metric reason for a connection cut for abuse.
fn abuse_reason(abuse: Abuse) -> &'static str {
    match abuse {
        Abuse::ResetStreams => "cancelled_streams",
        Abuse::ControlFrames => "control_frames",
        Abuse::EmptyFrames => "empty_frames",
        Abuse::HeaderBlock | Abuse::Continuations => "header_flood",
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
    /// The client did not complete the handshake in time.
    Handshake,
    /// The client took nothing the gateway wrote for `send_timeout`, while the gateway had
    /// stopped reading it for what it owed.
    Stalled,
    /// A connection error: the client broke a rule or a bound (GOAWAY sent).
    Protocol(ConnectionError),
    /// The socket failed.
    Io(io::Error),
}

/// A stream's future in the connection's set; it ends with the stream's id.
type StreamFuture = Pin<Box<dyn Future<Output = h2conn::StreamId> + Send>>;

/// One connection being served.
struct Served<IO> {
    socket: Socket<IO>,
    handle: Handle,
    streams: FuturesUnordered<StreamFuture>,
    downstream: Arc<Downstream>,
    bounds: stream::Bounds,
    /// Until the client has acknowledged the gateway's SETTINGS.
    handshake: Option<Pin<Box<Sleep>>>,
    keep_alive: Option<KeepAlive>,
    idle: Option<Idle>,
    /// Once the listener drains: how long the client has to let its streams finish after
    /// the first GOAWAY before the final one.
    drain: Option<Pin<Box<Sleep>>>,
    grace: Duration,
    /// How long the socket may take none of the output while reading is paused for it.
    stall: Stall,
    waiter: Waiter,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Served<IO> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Ended> {
        loop {
            // Streams whose wakers fired; those that are done leave the set.
            while let Poll::Ready(Some(id)) = self.streams.poll_next_unpin(cx) {
                let mut shared = lock(&self.handle);
                shared.slots.remove(&id);
                // A response complete while the client still sends: tell it to stop
                // (RFC 9113 section 8.1). A stream already closed is left alone.
                let _ = shared.conn.reset(id, ErrorCode::NO_ERROR);
            }
            let handle = self.handle.clone();
            let mut shared = lock(&handle);
            shared.register_task(cx);
            // Reading paused for what the client is owed: once the output drains, the
            // socket must be polled again, or nothing would wake the task to read.
            let paused = !self.socket.eof() && !shared.conn.wants_read();
            let read = match self.read(cx, &mut shared) {
                Ok(read) => read,
                Err(error) => return Poll::Ready(Ended::Io(error)),
            };
            self.dispatch(&mut shared);
            if let Some(ended) = self.timers(cx, &mut shared) {
                // Whatever the timer queued (the handshake's GOAWAY) goes out if the
                // socket takes it now; the connection does not wait for it.
                let _ = self.write(cx, &mut shared);
                return Poll::Ready(ended);
            }
            if let Err(error) = self.write(cx, &mut shared) {
                return Poll::Ready(Ended::Io(error));
            }
            // Writing may have opened windows for blocked streams.
            self.dispatch(&mut shared);
            // Reading paused because the client takes nothing of what it is owed (a flood
            // of PINGs it never reads the answers to, say): bounded like a response's wait.
            if !shared.conn.output().is_empty()
                && !shared.conn.wants_read()
                && self.stall.poll_expired(cx).is_ready()
            {
                return Poll::Ready(Ended::Stalled);
            }
            let written = self.socket.written(&shared.conn);
            if written && shared.conn.is_closed() {
                let idled = self.idle.as_ref().is_some_and(|idle| idle.sent);
                return Poll::Ready(match shared.conn.error() {
                    Some(error) => Ended::Protocol(error),
                    None if idled => Ended::Idle,
                    None => Ended::Done,
                });
            }
            if written && self.socket.eof() {
                return Poll::Ready(Ended::Done);
            }
            if paused && shared.conn.wants_read() {
                continue;
            }
            if !read {
                // Quiet: an idle connection keeps no buffer.
                shared.shrink_idle();
                return Poll::Pending;
            }
        }
    }

    /// Reads what the socket has into the connection; whether anything came. A
    /// connection error has queued its GOAWAY; the connection reports it once that is out.
    fn read(&mut self, cx: &mut Context<'_>, shared: &mut Shared) -> io::Result<bool> {
        Ok(self.socket.read(cx, &mut shared.conn)?.is_some())
    }

    /// Acts on what the client did.
    fn dispatch(&mut self, shared: &mut Shared) {
        while let Some(event) = shared.conn.poll_event() {
            match event {
                Event::Request {
                    stream: id,
                    head,
                    end_stream,
                } => {
                    let mut slot = Slot::new(end_stream);
                    slot.body_dropped = end_stream;
                    shared.slots.insert(id, slot);
                    let handle = self.handle.clone();
                    let downstream = self.downstream.clone();
                    let bounds = self.bounds;
                    self.streams.push(heap::pin(move || async move {
                        stream::serve(id, head, end_stream, handle, downstream, bounds).await;
                        id
                    }));
                }
                Event::Data {
                    stream,
                    data,
                    end_stream,
                } => shared.deliver(stream, data, end_stream),
                Event::Trailers { stream, headers } => {
                    if let Some(slot) = shared.slots.get_mut(&stream) {
                        slot.stream.push_trailers(headers);
                    }
                }
                Event::Reset {
                    stream,
                    code,
                    by_peer,
                } => {
                    let why = if by_peer {
                        Gone::ResetByClient(code)
                    } else {
                        Gone::Refused(code)
                    };
                    shared.gone(stream, why);
                }
                Event::WindowOpened { stream } => {
                    if let Some(slot) = shared.slots.get_mut(&stream) {
                        slot.stream.wake_sender();
                    }
                }
                Event::PingAck { payload } => {
                    if payload == KEEP_ALIVE_PING
                        && let Some(keep_alive) = self.keep_alive.as_mut()
                    {
                        keep_alive.answered();
                    }
                }
                // The connection itself ends once the client's open streams have.
                Event::GoAway { .. } => {}
                // A server connection is never sent responses.
                Event::Response { .. } => {}
            }
        }
    }

    /// The handshake, keep-alive, idle and drain timers; how the connection ends when
    /// one of them ends it.
    fn timers(&mut self, cx: &mut Context<'_>, shared: &mut Shared) -> Option<Ended> {
        if let Some(handshake) = self.handshake.as_mut() {
            if !shared.conn.awaiting_settings_ack() {
                self.handshake = None;
            } else if handshake.as_mut().poll(cx).is_ready() {
                shared
                    .conn
                    .abort(ErrorCode::SETTINGS_TIMEOUT, "no SETTINGS acknowledgement");
                return Some(Ended::Handshake);
            }
        }
        if let Some(keep_alive) = self.keep_alive.as_mut() {
            match keep_alive.poll(cx) {
                Poll::Ready(Beat::Ping) => shared.conn.ping(KEEP_ALIVE_PING),
                Poll::Ready(Beat::Expired) => return Some(Ended::KeepAlive),
                Poll::Pending => {}
            }
        }
        if self.drain.is_none() && self.waiter.poll(cx, true).is_ready() {
            shared.conn.shutdown();
            self.drain = Some(Box::pin(tokio::time::sleep(self.grace)));
        }
        if let Some(drain) = self.drain.as_mut()
            && drain.as_mut().poll(cx).is_ready()
        {
            // The client had its time to see the first GOAWAY: name the last stream.
            shared.conn.go_away(ErrorCode::NO_ERROR);
        }
        if let Some(idle) = self.idle.as_mut() {
            let empty = shared.slots.is_empty() && shared.conn.active_streams() == 0;
            match idle.poll(cx, empty, self.drain.is_some()) {
                Poll::Ready(Lapse::Idle) => shared.conn.go_away(ErrorCode::NO_ERROR),
                Poll::Ready(Lapse::Grace) => return Some(Ended::Idle),
                Poll::Pending => {}
            }
        }
        None
    }

    /// Writes what the connection queued, as far as the socket takes it.
    fn write(&mut self, cx: &mut Context<'_>, shared: &mut Shared) -> io::Result<()> {
        if self.socket.write(cx, &mut shared.conn)? {
            self.stall.moved();
        }
        Ok(())
    }
}

/// A connection's time without an open stream.
struct Idle {
    after: Duration,
    grace: Duration,
    timer: Pin<Box<Sleep>>,
    /// Whether `timer` counts the time idle (or, once the GOAWAY is out, the grace).
    armed: bool,
    /// The GOAWAY for idleness is out.
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
