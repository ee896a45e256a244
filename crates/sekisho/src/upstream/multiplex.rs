//! HTTP/2 to one endpoint, driven with the `h2` crate from the task that forwards the
//! request.
//!
//! A request goes out from the forwarding task itself: no dispatch channel between it and
//! the connection, and no task for the request body unless the body is still arriving (a
//! body the client has already sent whole, a GET's or a unary gRPC call's, is handed to
//! the connection at once). The response body is read straight off the stream.
//!
//! An endpoint gets as many connections as its stream limit asks for. A request takes
//! the first connection with a stream free under the peer's
//! `SETTINGS_MAX_CONCURRENT_STREAMS`; when every connection is full, the pool opens
//! another (within the cluster's `max_connections`), so no request waits on a full
//! connection while another could be opened or has room. Extra connections that stay
//! unused for [`IDLE_TIMEOUT`] are closed; the first one stays.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::Reason;
use h2::client::SendRequest;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::body::{Body, BoxError, H2Body};

/// An extra connection (not the first) with no stream open for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(50);
/// How often a connection is pinged, and how long the answer may take before the
/// connection counts as dead and is closed.
const PING_EVERY: Duration = Duration::from_secs(30);
const PING_TIMEOUT: Duration = Duration::from_secs(10);
/// Streams assumed allowed until the peer's SETTINGS say otherwise (RFC 9113 asks peers
/// to allow at least 100).
const ASSUMED_MAX_STREAMS: usize = 100;
/// Request body bytes the forwarding task hands over at once, without waiting for flow
/// control; a body larger than this, or one still arriving, is sent by a task of its own
/// that waits for window.
const INLINE_BODY_BYTES: usize = 64 * 1024;

/// Headers that mean something only to one HTTP/1.1 connection and must not appear in
/// HTTP/2 (RFC 9113 §8.2.2). The proxy strips hop-by-hop headers before this; this is the
/// last guard, since `h2` refuses a request that carries one.
const CONNECTION_SPECIFIC: [HeaderName; 5] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// The endpoint's HTTP/2 connections.
pub struct Multiplex {
    connections: Mutex<Vec<Arc<Connection>>>,
    /// One opener at a time, so a burst opens the connections it needs, not one each.
    pub opening: tokio::sync::Mutex<()>,
    /// Start of this pool's clock for [`Connection::last_used`].
    epoch: Instant,
}

/// One HTTP/2 connection and what the pool knows of its load.
pub struct Connection {
    sender: SendRequest<Bytes>,
    /// Streams this gateway has open on the connection (requests whose response has not
    /// ended).
    open: AtomicUsize,
    /// Set when the connection has ended or refuses new streams (GOAWAY).
    closed: Arc<AtomicBool>,
    /// Milliseconds since the pool's epoch when a stream last ended or began.
    last_used: AtomicU64,
}

/// Why a request got no response on a connection.
pub enum StreamError {
    /// The connection was closed or going away before the request left: it may go on
    /// another connection as it is.
    Unsent(Request<Body>),
    /// The stream failed after the request (maybe) left.
    Failed(h2::Error),
}

impl Multiplex {
    /// A pool with no connection yet.
    pub fn new() -> Self {
        Multiplex {
            connections: Mutex::new(Vec::new()),
            opening: tokio::sync::Mutex::new(()),
            epoch: Instant::now(),
        }
    }

    /// The first live connection with a stream free, dropping closed connections and
    /// extra ones idle too long on the way.
    pub fn with_room(&self) -> Option<Arc<Connection>> {
        let mut list = self.connections.lock().ok()?;
        let now = self.now();
        let idle_after = IDLE_TIMEOUT.as_millis() as u64;
        let mut first = true;
        list.retain(|c| {
            let keep = !c.closed.load(Ordering::Acquire)
                && (first
                    || c.open.load(Ordering::Acquire) > 0
                    || now.saturating_sub(c.last_used.load(Ordering::Relaxed)) < idle_after);
            first &= !keep;
            keep
        });
        list.iter().find(|c| c.has_room()).cloned()
    }

    /// The live connection with the fewest open streams: where a request queues when
    /// every connection is full and no other may be opened.
    pub fn least_busy(&self) -> Option<Arc<Connection>> {
        let list = self.connections.lock().ok()?;
        list.iter()
            .filter(|c| !c.closed.load(Ordering::Acquire))
            .min_by_key(|c| c.open.load(Ordering::Acquire))
            .cloned()
    }

    /// Adds a connection opened by [`handshake`].
    pub fn add(&self, connection: Arc<Connection>) {
        connection.last_used.store(self.now(), Ordering::Relaxed);
        if let Ok(mut list) = self.connections.lock() {
            list.push(connection);
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Sends `req` on `connection`; the response's body keeps the stream counted until it
    /// ends or is dropped.
    pub async fn send(
        &self,
        connection: &Arc<Connection>,
        req: Request<Body>,
    ) -> Result<Response<RecvBody>, StreamError> {
        let (mut parts, body) = req.into_parts();
        strip_connection_specific(&mut parts.headers);
        if let Some(len) = body.size_hint().exact()
            && (len != 0 || has_payload_semantics(&parts.method))
            && !parts.headers.contains_key(header::CONTENT_LENGTH)
        {
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        }
        // Ready fails only when the connection is closed or going away; the request is
        // still whole then and may go elsewhere.
        let sender = match connection.sender.clone().ready().await {
            Ok(sender) => sender,
            Err(_) => {
                connection.closed.store(true, Ordering::Release);
                return Err(StreamError::Unsent(Request::from_parts(parts, body)));
            }
        };
        let mut sender = sender;
        let end_of_stream = body.is_end_stream();
        let stream = Stream::begin(connection, self.now());
        let (response, send) = sender
            .send_request(Request::from_parts(parts, ()), end_of_stream)
            .map_err(StreamError::Failed)?;
        if !end_of_stream {
            send_body(body, send);
        }
        let response = response.await.map_err(StreamError::Failed)?;
        let (parts, recv) = response.into_parts();
        Ok(Response::from_parts(
            parts,
            RecvBody {
                body: H2Body::new(recv, None),
                _stream: stream,
            },
        ))
    }
}

impl Connection {
    fn has_room(&self) -> bool {
        let limit = self.sender.current_max_send_streams();
        self.open.load(Ordering::Acquire) < limit
    }
}

/// Opens HTTP/2 on `io` and spawns the task that drives the connection (and pings it);
/// `on_close` runs when the connection has ended.
///
/// The connection is handed over only once the peer's SETTINGS are in force, so its
/// stream limit is known before the first request counts against it: the peer sends its
/// SETTINGS before anything else, so once it has answered a PING they have been applied.
/// That costs one round trip per connection, within `timeout`.
pub async fn handshake<T>(
    io: T,
    timeout: Duration,
    on_close: impl FnOnce() + Send + 'static,
) -> Result<Arc<Connection>, String>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, mut connection) = h2::client::Builder::new()
        .enable_push(false)
        .initial_max_send_streams(ASSUMED_MAX_STREAMS)
        .initial_window_size(1024 * 1024)
        .initial_connection_window_size(4 * 1024 * 1024)
        .max_frame_size(64 * 1024)
        .handshake::<T, Bytes>(io)
        .await
        .map_err(|e| e.to_string())?;
    let closed = Arc::new(AtomicBool::new(false));
    let ended = closed.clone();
    let mut ping = connection.ping_pong();
    let (settled, known) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut settled = Some(settled);
        let mut wait = Duration::ZERO;
        loop {
            tokio::select! {
                _ = &mut connection => break,
                () = tokio::time::sleep(wait) => {}
            }
            wait = PING_EVERY;
            let Some(ping) = ping.as_mut() else {
                if let Some(settled) = settled.take() {
                    let _ = settled.send(());
                }
                continue;
            };
            let limit = if settled.is_some() {
                timeout
            } else {
                PING_TIMEOUT
            };
            let answered = tokio::select! {
                _ = &mut connection => break,
                answer = tokio::time::timeout(limit, ping.ping(h2::Ping::opaque())) => {
                    matches!(answer, Ok(Ok(_)))
                }
            };
            if !answered {
                tracing::debug!("upstream HTTP/2 connection did not answer a ping; closing it");
                break;
            }
            if let Some(settled) = settled.take() {
                let _ = settled.send(());
            }
        }
        ended.store(true, Ordering::Release);
        // A connection never handed over is the opener's to count as failed.
        if settled.is_none() {
            on_close();
        }
    });
    if known.await.is_err() {
        return Err(format!(
            "no answer to a PING within {timeout:?} after the handshake"
        ));
    }
    Ok(Arc::new(Connection {
        sender,
        open: AtomicUsize::new(0),
        closed,
        last_used: AtomicU64::new(0),
    }))
}

/// A stream counted open on its connection until dropped.
struct Stream {
    connection: Arc<Connection>,
    epoch_ms: u64,
}

impl Stream {
    fn begin(connection: &Arc<Connection>, now: u64) -> Self {
        connection.open.fetch_add(1, Ordering::AcqRel);
        connection.last_used.store(now, Ordering::Relaxed);
        Stream {
            connection: connection.clone(),
            epoch_ms: now,
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.connection.open.fetch_sub(1, Ordering::AcqRel);
        // The time it began is close enough for the idle rule, and costs no clock read.
        self.connection
            .last_used
            .fetch_max(self.epoch_ms, Ordering::Relaxed);
    }
}

/// A response body read off its HTTP/2 stream; the stream counts as open until it is
/// dropped.
pub struct RecvBody {
    body: H2Body,
    _stream: Stream,
}

impl HttpBody for RecvBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Sends the request body: what is already here at once, the rest from a task of its own
/// that waits for flow-control window and stops when the peer resets the stream.
fn send_body(mut body: Body, mut send: h2::SendStream<Bytes>) {
    let mut cx = Context::from_waker(Waker::noop());
    let mut handed = 0;
    while handed <= INLINE_BODY_BYTES {
        match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(frame) => match put(&mut body, &mut send, frame) {
                Some(len) => handed += len,
                None => return,
            },
            Poll::Pending => break,
        }
    }
    tokio::spawn(async move {
        loop {
            if !wait_for_window(&mut send).await {
                return;
            }
            let frame = poll_fn(|cx| {
                if let Poll::Ready(reset) = send.poll_reset(cx) {
                    return Poll::Ready(Err(reset));
                }
                Pin::new(&mut body).poll_frame(cx).map(Ok)
            })
            .await;
            match frame {
                Ok(frame) => {
                    if put(&mut body, &mut send, frame).is_none() {
                        return;
                    }
                }
                // The peer reset the stream (it answered early, or gave up): stop reading.
                Err(_) => return,
            }
        }
    });
}

/// Hands one frame of the request body to the stream. `Some(bytes)` while the body goes
/// on, `None` once the stream is finished (ended, reset, or broken).
fn put(
    body: &mut Body,
    send: &mut h2::SendStream<Bytes>,
    frame: Option<Result<Frame<Bytes>, BoxError>>,
) -> Option<usize> {
    match frame {
        Some(Ok(frame)) => match frame.into_data() {
            Ok(data) => {
                let len = data.len();
                let last = body.is_end_stream();
                if send.send_data(data, last).is_err() || last {
                    return None;
                }
                Some(len)
            }
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    let _ = send.send_trailers(trailers);
                    return None;
                }
                Some(0)
            }
        },
        None => {
            let _ = send.send_data(Bytes::new(), true);
            None
        }
        // The client's body failed (the watcher beneath has noted why): the upstream
        // stream is cancelled, and the exchange fails as the client's doing.
        Some(Err(_)) => {
            send.send_reset(Reason::CANCEL);
            None
        }
    }
}

/// Waits until the stream may send at least a byte; `false` when it never will.
async fn wait_for_window(send: &mut h2::SendStream<Bytes>) -> bool {
    if send.capacity() > 0 {
        return true;
    }
    send.reserve_capacity(INLINE_BODY_BYTES);
    // `poll_capacity` is ready only when the capacity changed, so the loop ends.
    poll_fn(|cx| {
        loop {
            match send.poll_capacity(cx) {
                Poll::Ready(Some(Ok(room))) if room > 0 => return Poll::Ready(true),
                Poll::Ready(Some(Ok(_))) => continue,
                Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(false),
                Poll::Pending => {
                    return match send.poll_reset(cx) {
                        Poll::Ready(_) => Poll::Ready(false),
                        Poll::Pending => Poll::Pending,
                    };
                }
            }
        }
    })
    .await
}

/// Removes the fields that describe one hop's connection, which HTTP/2 forbids (RFC 9113,
/// section 8.2.2), with those `Connection` names.
pub(crate) fn strip_connection_specific(headers: &mut HeaderMap) {
    // One pass over the few headers a request has, instead of a lookup per name: nearly
    // every request has none of these.
    let found = headers.iter().any(|(name, value)| {
        CONNECTION_SPECIFIC.contains(name) || (name == header::TE && value != "trailers")
    });
    if !found {
        return;
    }
    if let Some(nominated) = headers.remove(header::CONNECTION)
        && let Ok(names) = nominated.to_str()
    {
        for name in names.split(',') {
            headers.remove(name.trim());
        }
    }
    for name in &CONNECTION_SPECIFIC[1..] {
        headers.remove(name);
    }
    if headers.get(header::TE).is_some_and(|te| te != "trailers") {
        headers.remove(header::TE);
    }
}

/// Methods whose request body has a meaning, so an empty one still says `content-length: 0`.
fn has_payload_semantics(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::DELETE | Method::CONNECT
    )
}
