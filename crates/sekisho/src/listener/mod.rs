//! Accepting client connections and serving HTTP/1.1 and HTTP/2 on them.
//!
//! A clear-text listener serves both protocols on one port (HTTP/2 by prior knowledge,
//! told apart by the connection preface); a TLS listener lets ALPN decide. Each
//! connection reads its listener's settings from the current snapshot when it starts, so
//! a reloaded certificate is served to the next handshake.

pub mod proxy_protocol;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::observe::metrics;
use crate::proxy::{self, Downstream};
use crate::snapshot::ListenerSettings;
use crate::state::State;

/// Largest HTTP/2 frame a client may send: bigger than the 16 KiB default so a large
/// gRPC message crosses in fewer frames; memory stays bounded by the flow-control windows.
const MAX_FRAME_SIZE: u32 = 64 * 1024;

/// A client has this long to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
    let (close, closing) = watch::channel(false);
    let mut connections = JoinSet::new();
    let drain = loop {
        tokio::select! {
            accepted = socket.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(connection(stream, peer, name.clone(), state.clone(), closing.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(listener = %name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            changed = stopped.changed() => {
                let drain = if changed.is_ok() { *stopped.borrow() } else { Some(Duration::ZERO) };
                if let Some(drain) = drain { break drain; }
            }
        }
        while connections.try_join_next().is_some() {}
    };
    drop(socket);
    let _ = close.send(true);
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

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    name: Arc<str>,
    state: Arc<State>,
    closing: watch::Receiver<bool>,
) {
    let Some(settings) = state.snapshot().listeners.get(&*name).cloned() else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let local = stream
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    // A PROXY protocol header comes first, before TLS: it names the real client.
    let mut client = peer;
    if let Some(proxy) = &settings.proxy_protocol {
        match proxy_protocol::accept(&mut stream, peer, proxy, HANDSHAKE_TIMEOUT).await {
            Ok(source) => client = source.unwrap_or(peer),
            Err(refused) => {
                metrics::proxy_protocol_refused(&name, refused.as_str());
                tracing::debug!(listener = %name, %peer, reason = %refused, "connection closed");
                return;
            }
        }
    }
    metrics::downstream_connection_opened(&name);
    let downstream = Arc::new(Downstream {
        state,
        listener: name.clone(),
        client,
        tls: settings.tls.is_some(),
        local,
    });
    match &settings.tls {
        None => {
            if let Some(wire) = sniff(&stream).await {
                serve(stream, wire, &settings, downstream, closing).await;
            }
        }
        Some(acceptor) => {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let wire = match tls.get_ref().1.alpn_protocol() {
                        Some(b"h2") => Wire::Http2,
                        _ => Wire::Http1,
                    };
                    serve(tls, wire, &settings, downstream, closing).await;
                }
                Ok(Err(e)) => {
                    metrics::tls_handshake_error(&name);
                    tracing::debug!(listener = %name, %peer, error = %e, "TLS handshake failed");
                }
                Err(_) => {
                    metrics::tls_handshake_error(&name);
                    tracing::debug!(listener = %name, %peer, "TLS handshake timed out");
                }
            }
        }
    }
    metrics::downstream_connection_closed(&name);
}

/// The HTTP version a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wire {
    Http1,
    Http2,
}

/// What an HTTP/2 client with prior knowledge sends first (RFC 9113 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Tells HTTP/1.1 from HTTP/2 on a clear-text connection by its first bytes, without
/// consuming them. `None` when the client closes or stays silent.
async fn sniff(stream: &TcpStream) -> Option<Wire> {
    let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    let mut seen = [0u8; PREFACE.len()];
    loop {
        let n = tokio::time::timeout_at(deadline, stream.peek(&mut seen))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        if seen[..n] != PREFACE[..n] {
            return Some(Wire::Http1);
        }
        if n == PREFACE.len() {
            return Some(Wire::Http2);
        }
        // Part of the preface so far: peek returns at once while nothing new arrives, so
        // wait a little before looking again.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Serves HTTP on `io` until the client leaves or, after `closing`, the exchanges in
/// flight finish. Each protocol gets its own hyper connection type, so an HTTP/1.1
/// connection carries no HTTP/2 state (and the reverse).
async fn serve<IO>(
    io: IO,
    wire: Wire,
    settings: &ListenerSettings,
    downstream: Arc<Downstream>,
    closing: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Boxed: hyper spawns a task per HTTP/2 stream and moves the future in and out of it;
    // a pointer is cheaper to move than the whole request path's state.
    let service = service_fn(move |req| Box::pin(proxy::handle(downstream.clone(), req)));
    let io = TokioIo::new(io);
    match wire {
        Wire::Http1 => {
            let h1 = &settings.http1;
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .keep_alive(true)
                .max_buf_size(h1.max_header_bytes.max(8192));
            if let Some(timeout) = &h1.header_read_timeout {
                builder.header_read_timeout(timeout.get().0);
            }
            drive(builder.serve_connection(io, service), closing).await;
        }
        Wire::Http2 => {
            let h2 = &settings.http2;
            let mut builder = http2::Builder::new(TokioExecutor::new());
            builder
                .timer(TokioTimer::new())
                .max_concurrent_streams(h2.max_concurrent_streams)
                .initial_stream_window_size(h2.initial_stream_window_size)
                .initial_connection_window_size(h2.initial_connection_window_size)
                .max_header_list_size(h2.max_header_list_size)
                .max_frame_size(MAX_FRAME_SIZE);
            drive(builder.serve_connection(io, service), closing).await;
        }
    }
}

/// Runs a connection; once `closing` is set, asks it to finish gracefully (GOAWAY on
/// HTTP/2, close after the current response on HTTP/1.1) and waits for that.
async fn drive<C>(conn: C, mut closing: watch::Receiver<bool>)
where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = async { let _ = closing.wait_for(|closing| *closing).await; } => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "client connection ended with an error");
    }
}
