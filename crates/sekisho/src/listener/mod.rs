//! Accepting client connections and serving HTTP/1.1 and HTTP/2 on them.
//!
//! A clear-text listener serves both protocols on one port (HTTP/2 by prior knowledge,
//! told apart by the connection preface); a TLS listener lets ALPN decide. Each
//! connection reads its listener's settings from the current snapshot when it starts, so
//! a reloaded certificate is served to the next handshake.

pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::observe::metrics;
use crate::proxy::{self, Downstream};
use crate::snapshot::ListenerSettings;
use crate::state::State;

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
    stream: TcpStream,
    peer: SocketAddr,
    name: Arc<str>,
    state: Arc<State>,
    closing: watch::Receiver<bool>,
) {
    let Some(settings) = state.snapshot().listeners.get(&*name).cloned() else {
        return;
    };
    let _ = stream.set_nodelay(true);
    metrics::downstream_connection_opened(&name);
    let downstream = Arc::new(Downstream {
        state,
        listener: name.clone(),
        client: peer,
        tls: settings.tls.is_some(),
    });
    match &settings.tls {
        None => serve(stream, builder(&settings), downstream, closing).await,
        Some(acceptor) => {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                    let builder = if h2 {
                        builder(&settings).http2_only()
                    } else {
                        builder(&settings).http1_only()
                    };
                    serve(tls, builder, downstream, closing).await;
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

fn builder(settings: &ListenerSettings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    let h1 = &settings.http1;
    let mut http1 = builder.http1();
    http1
        .timer(TokioTimer::new())
        .keep_alive(true)
        .max_buf_size(h1.max_header_bytes.max(8192));
    if let Some(timeout) = &h1.header_read_timeout {
        http1.header_read_timeout(timeout.get().0);
    }
    let h2 = &settings.http2;
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(h2.max_concurrent_streams)
        .initial_stream_window_size(h2.initial_stream_window_size)
        .initial_connection_window_size(h2.initial_connection_window_size)
        .max_header_list_size(h2.max_header_list_size);
    builder
}

async fn serve<IO>(
    io: IO,
    builder: auto::Builder<TokioExecutor>,
    downstream: Arc<Downstream>,
    mut closing: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| proxy::handle(downstream.clone(), req));
    let conn = builder.serve_connection(TokioIo::new(io), service);
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
