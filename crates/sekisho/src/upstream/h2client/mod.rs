//! HTTP/2 to one endpoint on the gateway's own connection (`h2conn` in its client role).
//!
//! The connection's task owns the socket: it feeds the connection what it reads, hands
//! each response, body piece and trailer to the stream's slot ([`shared`]) and writes
//! what the connection queued. A request opens its stream and queues its frames from its
//! own task, under the connection's lock, and wakes the connection's task to write them
//! ([`stream`]); its response is read off the slot. There is no dispatch channel, no task
//! per request (one only for a request body still arriving, or too large to hand over at
//! once), and no buffer kept while nothing is in flight.
//!
//! The connection is handed to the pool once the endpoint's SETTINGS have arrived, so its
//! stream limit is known before the first request counts against it. It is pinged every
//! [`PING_EVERY`] and closed when a PING goes unanswered for [`PING_TIMEOUT`]; once the
//! pool lets it go it is sent GOAWAY and closes when its last stream ends.

mod shared;
mod stream;

pub use stream::{RecvBody, StreamError, send};

use std::future::poll_fn;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use h2conn::{ErrorCode, Event};
use tokio::io::{AsyncRead, AsyncWrite};

use self::shared::{Gone, Handle, Shared, lock, wait_for};
use crate::h2socket::Socket;
use crate::keep_alive::{Beat, KeepAlive};

/// How often a connection is pinged, and how long the answer may take before the
/// connection counts as dead and is closed.
const PING_EVERY: Duration = Duration::from_secs(30);
const PING_TIMEOUT: Duration = Duration::from_secs(10);
const PING: [u8; 8] = *b"upstream";

/// The connection's settings: windows large enough that a response streams at the
/// socket's pace (the request path releases each piece as it passes it on), a bound on
/// response headers, and header values sent raw: on the link to a backend a byte is
/// cheaper than the CPU to Huffman-code the values that change on every request.
fn config() -> h2conn::Config {
    h2conn::Config {
        initial_stream_window: 1024 * 1024,
        connection_window: 4 * 1024 * 1024,
        max_frame_size: 64 * 1024,
        max_header_list_size: 256 * 1024,
        max_header_block_size: 512 * 1024,
        max_continuation_frames: 256,
        // An endpoint that resets its streams is not an attacker; one that floods control
        // or empty frames is bounded like a client.
        max_reset_streams: u32::MAX,
        max_buffered_output: 1024 * 1024,
        huffman: false,
        ..h2conn::Config::default()
    }
}

/// One HTTP/2 connection to an endpoint and what the pool knows of its load.
pub struct Connection {
    handle: Handle,
    /// Streams this gateway has open on the connection (requests whose response has not
    /// been let go).
    pub open: AtomicUsize,
    /// Set when the connection has ended or refuses new streams (GOAWAY).
    closed: Arc<AtomicBool>,
    /// Milliseconds since the pool's epoch when a stream last ended or began.
    pub last_used: AtomicU64,
}

impl Connection {
    /// Whether the connection has ended or takes no new stream.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Whether a request could open a stream now.
    pub fn has_room(&self) -> bool {
        !self.is_closed() && lock(&self.handle).conn.can_open_stream()
    }
}

impl Drop for Connection {
    /// Nobody will open a stream on it any more: its task sends GOAWAY and ends once the
    /// streams still open have.
    fn drop(&mut self) {
        let mut shared = lock(&self.handle);
        shared.abandoned = true;
        shared.wake_task();
    }
}

/// Opens HTTP/2 on `io` and spawns the task that drives it; `on_close` runs when a
/// connection that was handed over has ended. Fails when the endpoint's SETTINGS do not
/// arrive within `timeout`.
pub async fn handshake<T>(
    io: T,
    timeout: Duration,
    on_close: impl FnOnce() + Send + 'static,
) -> Result<Arc<Connection>, String>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let handle = Shared::new(h2conn::Connection::client(config()));
    let closed = Arc::new(AtomicBool::new(false));
    let mut driver = Driver {
        socket: Socket::new(io),
        handle: handle.clone(),
        closed: closed.clone(),
        keep_alive: KeepAlive::new(PING_EVERY, PING_TIMEOUT),
        settled: false,
    };
    tokio::spawn(async move {
        let ended = poll_fn(|cx| driver.poll(cx)).await;
        driver.closed.store(true, Ordering::Release);
        let handed = {
            let mut shared = lock(&driver.handle);
            shared.close_all(ended);
            shared.handed
        };
        tracing::debug!(reason = ended, "upstream HTTP/2 connection ended");
        // A connection never handed over is the opener's to count as failed.
        if handed {
            on_close();
        }
    });
    let settled = wait_for(&handle, |shared| {
        if shared.conn.peer_settings_received() {
            shared.handed = true;
            return Some(Ok(()));
        }
        shared.ended.map(|why| Err(why.to_owned()))
    });
    let outcome = match tokio::time::timeout(timeout, settled).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("no SETTINGS within {timeout:?}")),
    };
    if let Err(why) = outcome {
        // Not handed over: the task ends at once (`abandoned`, nothing open).
        let mut shared = lock(&handle);
        shared.abandoned = true;
        shared.wake_task();
        return Err(why);
    }
    Ok(Arc::new(Connection {
        handle,
        open: AtomicUsize::new(0),
        closed,
        last_used: AtomicU64::new(0),
    }))
}

/// The task that owns one connection's socket.
struct Driver<IO> {
    socket: Socket<IO>,
    handle: Handle,
    closed: Arc<AtomicBool>,
    keep_alive: KeepAlive,
    /// The endpoint's first SETTINGS arrived.
    settled: bool,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Driver<IO> {
    /// Runs the connection until it ends; why it did.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<&'static str> {
        loop {
            let handle = self.handle.clone();
            let mut shared = lock(&handle);
            shared.register_task(cx);
            let paused = !self.socket.eof() && !shared.conn.wants_read();
            let read = match self.read(cx, &mut shared) {
                Ok(read) => read,
                Err(error) => {
                    tracing::debug!(%error, "upstream HTTP/2 connection broke");
                    return Poll::Ready("the socket failed");
                }
            };
            self.dispatch(&mut shared);
            match self.keep_alive.poll(cx) {
                Poll::Ready(Beat::Ping) => shared.conn.ping(PING),
                Poll::Ready(Beat::Expired) => return Poll::Ready("a PING went unanswered"),
                Poll::Pending => {}
            }
            if shared.abandoned && shared.slots.is_empty() && shared.conn.active_streams() == 0 {
                shared.conn.go_away(ErrorCode::NO_ERROR);
            }
            if let Err(error) = self.write(cx, &mut shared) {
                tracing::debug!(%error, "upstream HTTP/2 connection broke");
                return Poll::Ready("the socket failed");
            }
            // Writing may have opened windows for blocked streams.
            self.dispatch(&mut shared);
            shared.wake_waiting();
            let written = self.socket.written(&shared.conn);
            if shared.conn.is_closed() && (written || self.socket.eof()) {
                return Poll::Ready(match shared.conn.error() {
                    // The rule the endpoint broke, as sent in the GOAWAY's debug data.
                    Some(error) => error.reason,
                    None => "the endpoint sent GOAWAY",
                });
            }
            if self.socket.eof() {
                return Poll::Ready("the endpoint closed the connection");
            }
            if paused && shared.conn.wants_read() {
                continue;
            }
            if !read {
                shared.shrink_idle();
                return Poll::Pending;
            }
        }
    }

    /// Reads what the socket has into the connection; whether anything came.
    fn read(&mut self, cx: &mut Context<'_>, shared: &mut Shared) -> io::Result<bool> {
        let Some(received) = self.socket.read(cx, &mut shared.conn)? else {
            return Ok(false);
        };
        // The error has queued GOAWAY; the connection reports it once that is written.
        if let Err(error) = received {
            tracing::info!(%error, "an upstream endpoint broke HTTP/2; connection closed");
        }
        Ok(true)
    }

    /// Acts on what the endpoint did.
    fn dispatch(&mut self, shared: &mut Shared) {
        if !self.settled && shared.conn.peer_settings_received() {
            self.settled = true;
            shared.wake_all_waiting();
        }
        while let Some(event) = shared.conn.poll_event() {
            match event {
                Event::Response {
                    stream,
                    head,
                    end_stream,
                } => {
                    if let Some(slot) = shared.slots.get_mut(&stream) {
                        slot.head = Some(head);
                        slot.stream.set_ended(end_stream);
                        slot.stream.wake_reader();
                    }
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
                        Gone::Reset(code)
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
                    if payload == PING {
                        self.keep_alive.answered();
                    }
                }
                // No new stream goes on it; those open finish (the connection refused the
                // ones above its last stream).
                Event::GoAway { .. } => {
                    self.closed.store(true, Ordering::Release);
                    // Requests queued for a stream here go to another connection.
                    shared.wake_all_waiting();
                }
                // A client connection is never sent requests.
                Event::Request { .. } => {}
            }
        }
    }

    /// Writes what the connection queued, as far as the socket takes it.
    fn write(&mut self, cx: &mut Context<'_>, shared: &mut Shared) -> io::Result<()> {
        self.socket.write(cx, &mut shared.conn).map(|_| ())
    }
}
