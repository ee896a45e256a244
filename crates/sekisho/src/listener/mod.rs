//! Accepting client connections and serving HTTP/1.1 and HTTP/2 on them.
//!
//! A clear-text listener serves both protocols on one port (HTTP/2 by prior knowledge,
//! told apart by the connection preface); a TLS listener lets ALPN decide. Each
//! connection reads its listener's settings from the current snapshot when it starts, so
//! a reloaded certificate is served to the next handshake.
//!
//! Every connection is kept within bounds, so that clients which send little or nothing
//! cannot hold the gateway's connections, memory or CPU: a listener holds at most
//! `max_connections`; the PROXY header, TLS handshake and protocol sniff must be done
//! within `handshake_timeout` (every wait there is a read, so the deadline fires); an
//! HTTP/1.1 head must arrive within `http1.header_read_timeout`; a request body may not be
//! silent for longer than `request_body_idle_timeout` ([`idle`]); an HTTP/2 connection with
//! nothing open for `http2.idle_timeout` is sent GOAWAY, and one that stops answering
//! PINGs is closed. The admin listener and `up`'s site are served the same way
//! ([`serve_internal`]) with fixed bounds.

pub mod date;
pub mod http1;
pub mod http2;
pub mod idle;
pub mod limit;
pub mod proxy_protocol;
pub mod read_ahead;
mod refusal;
pub mod stall;
pub mod tls;
pub mod wait_list;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::{Body as HttpBody, Incoming};
use hyper::server::conn::{http1 as hyper_http1, http2 as hyper_http2};
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use crate::body::BoxError;
use crate::config::model::Listener as ListenerConfig;
use crate::config::text::{Duration as ConfigDuration, Parsed};
use crate::observe::metrics;
use crate::proxy::Downstream;
use crate::snapshot::ListenerSettings;
use crate::state::State;
use idle::{BodyIdleTimeout, Streams, Tracked};
use limit::{ConnectionLimit, Permit};
use proxy_protocol::Refused;
use read_ahead::{ReadAhead, Wire, sniff};
use wait_list::{WaitList, Waiter};

/// Largest HTTP/2 frame a client may send: bigger than the 16 KiB default so a large
/// gRPC message crosses in fewer frames; memory stays bounded by the flow-control windows.
const MAX_FRAME_SIZE: u32 = 64 * 1024;

/// Edge-safe defaults for a listener's connection bounds; `docs/config.md` shows them.
pub mod defaults {
    use std::time::Duration;

    /// `max_connections`.
    pub const MAX_CONNECTIONS: usize = 10_000;
    /// `handshake_timeout`: as HAProxy's usual `timeout http-request`.
    pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
    /// `http1.header_read_timeout`.
    pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// `request_body_idle_timeout`: half of nginx's `client_body_timeout`.
    pub const REQUEST_BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
    /// `send_timeout`: nginx's.
    pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);
    /// `http2.idle_timeout`: Envoy's edge `stream_idle_timeout`.
    pub const HTTP2_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
    /// `http2.keep_alive_interval`.
    pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(60);
    /// `http2.keep_alive_timeout`: as hyper's HTTP/2 server has it.
    pub const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);
}

/// The bounds one server keeps its client connections in.
#[derive(Clone, Debug)]
pub struct Bounds {
    /// Connections open at once; `0`: no bound.
    pub max_connections: usize,
    /// From accept until the first bytes of HTTP.
    pub handshake_timeout: Duration,
    /// Each HTTP/1.1 head, and so the keep-alive idle time; `None`: off.
    pub header_read_timeout: Option<Duration>,
    /// A request body's silence; `None`: off.
    pub request_body_idle_timeout: Option<Duration>,
    /// A response's wait for its client to take any of it; `None`: off.
    pub send_timeout: Option<Duration>,
    /// HTTP/2 without an open stream; `None`: off.
    pub http2_idle_timeout: Option<Duration>,
    /// HTTP/2 PINGs; `None`: off.
    pub keep_alive_interval: Option<Duration>,
    /// An unanswered PING, and the close after an idle GOAWAY.
    pub keep_alive_timeout: Duration,
}

impl Bounds {
    /// The defaults, which the admin listener and `up`'s site are served with (one
    /// hundred connections: they serve an orchestrator, a scraper and a person).
    pub fn internal() -> Self {
        Bounds {
            max_connections: 100,
            handshake_timeout: defaults::HANDSHAKE_TIMEOUT,
            header_read_timeout: Some(defaults::HEADER_READ_TIMEOUT),
            request_body_idle_timeout: Some(defaults::REQUEST_BODY_IDLE_TIMEOUT),
            send_timeout: Some(defaults::SEND_TIMEOUT),
            http2_idle_timeout: Some(defaults::HTTP2_IDLE_TIMEOUT),
            keep_alive_interval: Some(defaults::KEEP_ALIVE_INTERVAL),
            keep_alive_timeout: defaults::KEEP_ALIVE_TIMEOUT,
        }
    }

    /// A gateway listener's bounds from its config, defaults filled in (`0s` turns a
    /// timeout off where the config allows it).
    pub fn of(listener: &ListenerConfig) -> Self {
        let set = |value: &Option<Parsed<ConfigDuration>>, default| {
            value.as_ref().map_or(default, |v| v.get().0)
        };
        let optional = |value, default| Some(set(value, default)).filter(|d| !d.is_zero());
        let http2 = &listener.http2;
        Bounds {
            max_connections: listener.max_connections,
            handshake_timeout: set(&listener.handshake_timeout, defaults::HANDSHAKE_TIMEOUT),
            header_read_timeout: optional(
                &listener.http1.header_read_timeout,
                defaults::HEADER_READ_TIMEOUT,
            ),
            request_body_idle_timeout: optional(
                &listener.request_body_idle_timeout,
                defaults::REQUEST_BODY_IDLE_TIMEOUT,
            ),
            send_timeout: optional(&listener.send_timeout, defaults::SEND_TIMEOUT),
            http2_idle_timeout: optional(&http2.idle_timeout, defaults::HTTP2_IDLE_TIMEOUT),
            keep_alive_interval: optional(
                &http2.keep_alive_interval,
                defaults::KEEP_ALIVE_INTERVAL,
            ),
            keep_alive_timeout: set(&http2.keep_alive_timeout, defaults::KEEP_ALIVE_TIMEOUT),
        }
    }

    /// The bounds of the listener `name` in the current config.
    fn current(state: &State, name: &str) -> Option<Self> {
        let snapshot = state.snapshot();
        let listener = snapshot
            .config
            .listeners
            .iter()
            .find(|l| &*l.name.value == name)?;
        Some(Bounds::of(listener))
    }

    /// An HTTP/1.1 connection builder within these bounds, for the internal servers.
    fn http1(&self, max_header_bytes: usize) -> hyper_http1::Builder {
        let mut builder = hyper_http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .keep_alive(true)
            .max_buf_size(max_header_bytes.max(8192))
            .header_read_timeout(self.header_read_timeout);
        builder
    }

    /// An HTTP/2 connection builder within these bounds.
    fn http2(&self) -> hyper_http2::Builder<TokioExecutor> {
        let mut builder = hyper_http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .keep_alive_interval(self.keep_alive_interval)
            .keep_alive_timeout(self.keep_alive_timeout);
        builder
    }
}

/// A listener that is accepting connections.
pub struct Running {
    /// The address actually bound (differs from the config for port 0).
    pub local_addr: SocketAddr,
    /// The address as configured; a reload keeps the listener while this is unchanged.
    pub configured: SocketAddr,
    stop: watch::Sender<Option<Duration>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops accepting, asks connections to finish (GOAWAY on HTTP/2, close after the
    /// current response on HTTP/1.1), and waits up to `drain` before closing the rest.
    pub async fn stop(self, drain: Duration) {
        let _ = self.stop.send(Some(drain));
        let _ = self.task.await;
    }
}

/// Binds `address` for the listener `name`.
pub async fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await
}

/// Starts accepting on `socket` for the listener `name`.
pub fn spawn(
    socket: TcpListener,
    name: Arc<str>,
    configured: SocketAddr,
    state: Arc<State>,
) -> std::io::Result<Running> {
    let local_addr = socket.local_addr()?;
    let (stop, stopped) = watch::channel(None);
    let task = tokio::spawn(accept_loop(socket, name, state, stopped));
    Ok(Running {
        local_addr,
        configured,
        stop,
        task,
    })
}

async fn accept_loop(
    socket: TcpListener,
    name: Arc<str>,
    state: Arc<State>,
    mut stopped: watch::Receiver<Option<Duration>>,
) {
    let mut connections = JoinSet::new();
    let limit = ConnectionLimit::new(name.clone(), true);
    // Head deadlines and the drain reach connections from here (`wait_list`).
    let mut waiting = WaitList::default();
    let mut sweep = tokio::time::interval(wait_list::TICK);
    sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let drain = loop {
        tokio::select! {
            accepted = socket.accept() => match accepted {
                Ok((stream, peer)) => {
                    // The bounds as the config is now: a reload applies to new connections.
                    let Some(bounds) = Bounds::current(&state, &name) else { continue };
                    let Some(permit) = limit.admit(bounds.max_connections) else { continue };
                    let start = Start { peer, name: name.clone(), state: state.clone(), waiter: waiting.join(), bounds };
                    connections.spawn(Connection::new(stream, start, permit));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(listener = %name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = sweep.tick(), if !waiting.is_empty() => waiting.sweep(),
            changed = stopped.changed() => {
                let drain = if changed.is_ok() { *stopped.borrow() } else { Some(Duration::ZERO) };
                if let Some(drain) = drain { break drain; }
            }
        }
        while connections.try_join_next().is_some() {}
    };
    drop(socket);
    waiting.close();
    let open = connections.len();
    if open > 0 {
        tracing::info!(listener = %name, connections = open, ?drain, "draining connections");
    }
    let finished = tokio::time::timeout(drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        tracing::warn!(listener = %name, left = connections.len(), "drain timeout; closing the rest");
        connections.abort_all();
    }
}

/// What a connection starts with.
struct Start {
    peer: SocketAddr,
    name: Arc<str>,
    state: Arc<State>,
    waiter: Waiter,
    bounds: Bounds,
}

/// A connection's task: its greeting (PROXY header, TLS, protocol sniff), then its HTTP
/// server, each a boxed future of its own. A task is as large as the largest state its
/// future can be in, for as long as it lives; held as two stages, an idle connection's task
/// holds a pointer, and its server only what serving needs.
struct Connection {
    stage: Stage,
    /// Its place among the listener's connections, held until it ends.
    _permit: Permit,
}

/// A boxed future that serves a connection to its end.
type Served = Pin<Box<dyn Future<Output = ()> + Send>>;

enum Stage {
    Greeting(Pin<Box<dyn Future<Output = Option<Served>> + Send>>),
    Serving(Served),
}

impl Connection {
    fn new(stream: TcpStream, start: Start, permit: Permit) -> Self {
        Connection {
            stage: Stage::Greeting(Box::pin(connection(stream, start))),
            _permit: permit,
        }
    }
}

impl Future for Connection {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        loop {
            match &mut self.stage {
                Stage::Greeting(greeting) => match std::task::ready!(greeting.as_mut().poll(cx)) {
                    Some(served) => self.stage = Stage::Serving(served),
                    None => return std::task::Poll::Ready(()),
                },
                Stage::Serving(served) => return served.as_mut().poll(cx),
            }
        }
    }
}

/// Greets a connection and returns its HTTP server, or `None` when it ended before HTTP.
async fn connection(stream: TcpStream, start: Start) -> Option<Served> {
    let Start {
        peer,
        name,
        state,
        waiter,
        bounds,
    } = start;
    let settings = state.snapshot().listeners.get(&*name).cloned()?;
    let _ = stream.set_nodelay(true);
    let local = stream
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    // One deadline for everything before HTTP.
    let deadline = Instant::now() + bounds.handshake_timeout;
    let (greeted, client) = greet(stream, peer, &name, &settings, deadline).await?;
    let downstream = Arc::new(Downstream {
        state,
        listener: name,
        client,
        tls: settings.tls.is_some(),
        local,
    });
    let conn = Conn {
        settings,
        downstream,
        bounds,
        waiter,
    };
    Some(match greeted {
        Greeted::Plain(io, wire) => conn.serve(io, wire),
        Greeted::Tls(tls, wire) => conn.serve(tls, wire),
    })
}

/// A connection past everything before HTTP, and the HTTP version it speaks.
enum Greeted {
    /// Clear text.
    Plain(ReadAhead<TcpStream>, Wire),
    /// TLS, boxed so a plain connection's task keeps no room for a TLS session.
    Tls(
        Box<tokio_rustls::server::TlsStream<ReadAhead<TcpStream>>>,
        Wire,
    ),
}

/// Everything before HTTP, within `deadline`: the PROXY header (which names the real
/// client; it comes before TLS), then the TLS handshake (ALPN picks the protocol) or, in
/// clear text, the first bytes (the HTTP/2 preface or not). The connection and the
/// client's address, or `None` when it was refused or closed (counted and logged here).
async fn greet(
    stream: TcpStream,
    peer: SocketAddr,
    name: &str,
    settings: &ListenerSettings,
    deadline: Instant,
) -> Option<(Greeted, SocketAddr)> {
    let mut io = ReadAhead::new(stream);
    let mut client = peer;
    if let Some(proxy) = &settings.proxy_protocol {
        let accepted =
            tokio::time::timeout_at(deadline, proxy_protocol::accept(&mut io, peer, proxy))
                .await
                .unwrap_or(Err(Refused::Silent));
        match accepted {
            Ok(source) => client = source.unwrap_or(peer),
            Err(refused) => {
                metrics::proxy_protocol_refused(name, refused.as_str());
                tracing::debug!(listener = %name, %peer, reason = %refused, "connection closed");
                return None;
            }
        }
    }
    let Some(acceptor) = &settings.tls else {
        return match tokio::time::timeout_at(deadline, sniff(&mut io)).await {
            Ok(Some(wire)) => Some((Greeted::Plain(io, wire), client)),
            Ok(None) => {
                metrics::downstream_connection_cut(name, "closed_early");
                tracing::debug!(listener = %name, %peer, "closed before its first bytes told what it speaks");
                None
            }
            Err(_) => {
                metrics::downstream_connection_cut(name, "handshake_timeout");
                tracing::debug!(listener = %name, %peer, "no HTTP within the handshake timeout");
                None
            }
        };
    };
    match tokio::time::timeout_at(deadline, acceptor.accept(io)).await {
        Ok(Ok(tls)) => {
            let wire = match tls.get_ref().1.alpn_protocol() {
                Some(b"h2") => Wire::Http2,
                _ => Wire::Http1,
            };
            Some((Greeted::Tls(Box::new(tls), wire), client))
        }
        Ok(Err(e)) => {
            metrics::tls_handshake_error(name);
            tracing::debug!(listener = %name, %peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            metrics::tls_handshake_error(name);
            metrics::downstream_connection_cut(name, "handshake_timeout");
            tracing::debug!(listener = %name, %peer, "TLS handshake timed out");
            None
        }
    }
}

/// One client connection of a gateway listener, ready for HTTP.
struct Conn {
    settings: Arc<ListenerSettings>,
    downstream: Arc<Downstream>,
    bounds: Bounds,
    waiter: Waiter,
}

impl Conn {
    /// The server for `io`, which serves HTTP until the client leaves or, after
    /// `closing`, the exchanges in flight finish. Each protocol has its own server, so an
    /// HTTP/1.1 connection carries no HTTP/2 state (and the reverse).
    fn serve<IO>(self, io: IO, wire: Wire) -> Served
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        match wire {
            Wire::Http1 => {
                let limits = http1::Limits {
                    max_head: self.settings.http1.max_header_bytes.max(8192),
                    header_read_timeout: self.bounds.header_read_timeout,
                    body_idle: self.bounds.request_body_idle_timeout,
                    send_timeout: self.bounds.send_timeout,
                };
                Box::pin(http1::serve(io, self.downstream, limits, self.waiter))
            }
            Wire::Http2 => {
                let h2 = &self.settings.http2;
                let settings = http2::Settings {
                    max_concurrent_streams: h2.max_concurrent_streams,
                    initial_stream_window_size: h2.initial_stream_window_size,
                    initial_connection_window_size: h2.initial_connection_window_size,
                    max_header_list_size: h2.max_header_list_size,
                    max_frame_size: MAX_FRAME_SIZE,
                    handshake_timeout: self.bounds.handshake_timeout,
                    idle_timeout: self.bounds.http2_idle_timeout,
                    keep_alive_interval: self.bounds.keep_alive_interval,
                    keep_alive_timeout: self.bounds.keep_alive_timeout,
                    body_idle: self.bounds.request_body_idle_timeout,
                    send_timeout: self.bounds.send_timeout,
                    max_cancelled_streams: h2.max_cancelled_streams,
                };
                Box::pin(http2::serve(io, self.downstream, settings, self.waiter))
            }
        }
    }
}

/// Closing an HTTP/2 connection that has nothing open.
struct IdleClose {
    streams: Arc<Streams>,
    after: Duration,
    /// How long the connection may take to close after its GOAWAY.
    grace: Duration,
}

/// How a connection ended without an error.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// The client or a graceful close ended it.
    Done,
    /// It was idle and was closed for it.
    Idle,
}

/// Runs a connection; once `closing` completes, asks it to finish gracefully (GOAWAY on
/// HTTP/2, close after the current response on HTTP/1.1) and waits for that. With `idle`,
/// an HTTP/2 connection that has had no open stream for its time is sent GOAWAY and given
/// `grace` to close (hyper closes an idle connection right after its GOAWAY; a client
/// that does not read is not waited for longer).
async fn drive<C>(
    conn: C,
    closing: impl Future<Output = ()>,
    idle: Option<&IdleClose>,
) -> Result<Ended, C::Error>
where
    C: GracefulConnection,
{
    tokio::pin!(conn);
    let idle_for = async {
        match idle {
            Some(idle) => idle::idle(&idle.streams, idle.after).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        result = conn.as_mut() => result.map(|()| Ended::Done),
        () = closing => {
            conn.as_mut().graceful_shutdown();
            conn.await.map(|()| Ended::Done)
        }
        () = idle_for => {
            conn.as_mut().graceful_shutdown();
            let grace = idle.map_or(Duration::ZERO, |i| i.grace);
            match tokio::time::timeout(grace, conn.as_mut()).await {
                Ok(result) => result.map(|()| Ended::Idle),
                Err(_) => Ok(Ended::Idle),
            }
        }
    }
}

/// Serves an internal server (the admin listener, `up`'s site) on `socket` within
/// `bounds` until `stop` completes: HTTP/1.1 and h2c on one port, with the same deadlines
/// as a gateway listener. Requests carry a [`BodyIdleTimeout`] for whoever reads a body.
pub async fn serve_internal<S, B>(
    socket: TcpListener,
    name: &'static str,
    bounds: Bounds,
    service: S,
    stop: impl Future<Output = ()>,
) where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: HttpBody + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let limit = ConnectionLimit::new(Arc::from(name), false);
    tokio::pin!(stop);
    loop {
        let stream = tokio::select! {
            accepted = socket.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(server = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => return,
        };
        let Some(permit) = limit.admit(bounds.max_connections) else {
            continue;
        };
        let (bounds, service) = (bounds.clone(), service.clone());
        tokio::spawn(async move {
            let _permit = permit;
            serve_internal_connection(stream, name, &bounds, service).await;
        });
    }
}

async fn serve_internal_connection<S, B>(
    stream: TcpStream,
    name: &'static str,
    bounds: &Bounds,
    service: S,
) where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: HttpBody + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let _ = stream.set_nodelay(true);
    let mut io = ReadAhead::new(stream);
    let wire = match tokio::time::timeout(bounds.handshake_timeout, sniff(&mut io)).await {
        Ok(Some(wire)) => wire,
        Ok(None) | Err(_) => return,
    };
    // An internal server's connections end with it; nothing drains them.
    let closing = std::future::pending;
    let listener: Arc<str> = Arc::from(name);
    let result = match wire {
        Wire::Http1 => {
            let service = Bounded::new(service, listener, bounds, None);
            let conn = bounds
                .http1(64 * 1024)
                .serve_connection(TokioIo::new(io), service);
            drive(conn, closing(), None).await.map(drop)
        }
        Wire::Http2 => {
            let streams = Streams::new();
            let service = Bounded::new(service, listener, bounds, Some(streams.clone()));
            let idle = bounds.http2_idle_timeout.map(|after| IdleClose {
                streams,
                after,
                grace: bounds.keep_alive_timeout,
            });
            let conn = bounds.http2().serve_connection(TokioIo::new(io), service);
            drive(conn, closing(), idle.as_ref()).await.map(drop)
        }
    };
    if let Err(e) = result {
        tracing::debug!(server = name, error = %e, "connection ended with an error");
    }
}

/// An internal server's service with its requests' bounds: a [`BodyIdleTimeout`] on each
/// request, each response tracked for it and for the connection's open streams.
#[derive(Clone)]
struct Bounded<S> {
    inner: S,
    listener: Arc<str>,
    body_idle: Option<Duration>,
    streams: Option<Arc<Streams>>,
}

impl<S> Bounded<S> {
    fn new(inner: S, listener: Arc<str>, bounds: &Bounds, streams: Option<Arc<Streams>>) -> Self {
        Bounded {
            inner,
            listener,
            body_idle: bounds.request_body_idle_timeout,
            streams,
        }
    }
}

impl<S, B> Service<Request<Incoming>> for Bounded<S>
where
    S: Service<Request<Incoming>, Response = Response<B>>,
    S::Future: Send + 'static,
    B: HttpBody,
{
    type Response = Response<Tracked<B>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        let stream = self.streams.as_ref().map(|s| s.opened());
        let progress = self
            .body_idle
            .filter(|_| !req.body().is_end_stream())
            .map(|after| BodyIdleTimeout::attach(req.extensions_mut(), after, &self.listener));
        let response = self.inner.call(req);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| Tracked::new(body, progress, stream)))
        })
    }
}
