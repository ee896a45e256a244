//! Starting ashi on listeners the caller has bound.
//!
//! ashi uses two listeners: gRPC (h2c) for the API, and a plain HTTP/1.1 + h2c one for the
//! signed object URLs of the local store. Keeping them apart lets the gateway route the API and
//! leave the bulk uploads to go straight to the object side, exactly as they go straight to S3
//! when S3 is configured.

use crate::config::Config;
use crate::config::ConnectionBounds;
use crate::config::unless_zero;
use crate::objects::{self, Objects};
use crate::pb::catalog_service_server::CatalogServiceServer;
use crate::pb::measurement_service_server::MeasurementServiceServer;
use crate::pb::sizing_service_server::SizingServiceServer;
use crate::service::caller::{self, Identify};
use crate::service::catalog::Catalog;
use crate::service::measurement::Measurements;
use crate::service::sizing::Sizing;
use crate::service::{App, Shared};
use crate::{catalog_csv, store, trace};
use hyper::body::{Body, Frame, SizeHint};
use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulConnection;
use pin_project_lite::pin_project;
use rand::RngCore;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tower_layer::Layer as _;

/// The demo shoe catalog that `Config::demo_catalog` loads.
pub const DEMO_CATALOG_CSV: &str = include_str!("../data/demo-catalog.csv");

/// Why ashi could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Objects(#[from] objects::Error),
    #[error("demo catalog: {0}")]
    DemoCatalog(#[from] catalog_csv::CsvError),
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
    #[error("tracing: {0}")]
    Tracing(String),
    #[error("anonymous service name {0}")]
    AnonymousService(String),
}

/// Runs ashi until `shutdown` completes: gRPC on `grpc`, signed object URLs on `http`. Opens
/// (and migrates) the database and the object store first; requests that arrive meanwhile wait
/// in the listeners' backlog. In-flight requests finish before this returns.
pub async fn serve(
    config: Config,
    grpc: TcpListener,
    http: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    if let Some(name) = &config.anonymous_service {
        caller::check_identity(name).map_err(Error::AnonymousService)?;
        tracing::warn!(
            service = %name,
            "calls without an identity are served as the anonymous service"
        );
    }
    let public_url = match &config.public_url {
        Some(url) => url.clone(),
        None => format!("http://{}", http.local_addr()?),
    };
    let signing_key = config.signing_key.clone().unwrap_or_else(|| {
        let mut key = vec![0u8; 32];
        rand::rng().fill_bytes(&mut key);
        key
    });
    let (exporter, tracer) = match &config.tracing {
        Some(tracing) => {
            let (exporter, tracer) = trace::start(tracing).map_err(Error::Tracing)?;
            (Some(exporter), tracer)
        }
        None => (None, trace::Tracer::off()),
    };
    let store = store::Store::open(&config.database_url)
        .await?
        .traced(tracer.clone());
    let objects = Objects::open(&config.objects, &public_url, signing_key)?.traced(tracer.clone());
    if config.demo_catalog {
        let shoes = catalog_csv::parse(DEMO_CATALOG_CSV)?;
        store.upsert_shoes(&shoes).await?;
        tracing::info!(shoes = shoes.len(), "demo catalog loaded");
    }
    let app: Shared = Arc::new(App {
        store,
        objects,
        upload_expiry: config.upload_expiry,
        max_upload_bytes: config.max_upload_bytes,
        toe_tolerance_mm: config.toe_tolerance_mm,
    });

    // Either the caller's shutdown or one side failing stops both sides.
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let forward = {
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            shutdown.await;
            stop_tx.send_replace(true);
        })
    };

    let bounds = config.connections.clone();
    let http_task = {
        let (app, stop_tx, stop_rx) = (app.clone(), stop_tx.clone(), stop_rx.clone());
        let bounds = bounds.clone();
        tokio::spawn(async move {
            let result = serve_http(http, app, stop_rx, bounds).await;
            stop_tx.send_replace(true);
            result
        })
    };
    let identify = Identify::new(config.anonymous_service.as_deref());
    let grpc_result = serve_grpc(grpc, app.clone(), identify, tracer, stop_rx, bounds).await;
    stop_tx.send_replace(true);
    let http_result = http_task.await.map_err(std::io::Error::other)?;
    forward.abort();
    app.store.close().await;
    if let Some(exporter) = exporter {
        exporter.shutdown().await;
    }
    tracing::info!("ashi stopped");
    grpc_result?;
    http_result?;
    Ok(())
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    // An error means the sender is gone, which also means stop.
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn serve_grpc(
    listener: TcpListener,
    app: Shared,
    identify: Identify,
    tracer: trace::Tracer,
    stop: watch::Receiver<bool>,
    bounds: ConnectionBounds,
) -> Result<(), Error> {
    tracing::info!(addr = %listener.local_addr()?, "gRPC listening");
    let (primed, mut incoming) = mpsc::channel(64);
    let acceptor = tokio::spawn(accept(listener, "grpc", bounds.clone(), primed));
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<MeasurementServiceServer<Measurements>>()
        .await;
    health.set_serving::<SizingServiceServer<Sizing>>().await;
    health.set_serving::<CatalogServiceServer<Catalog>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let routes = tonic::service::Routes::new(health_service)
        .add_service(reflection)
        // Health and reflection answer anyone (probes send no identity); every ashi.v1 call
        // needs a caller.
        .add_service(MeasurementServiceServer::with_interceptor(
            Measurements(app.clone()),
            identify.clone(),
        ))
        .add_service(SizingServiceServer::with_interceptor(
            Sizing(app.clone()),
            identify.clone(),
        ))
        .add_service(CatalogServiceServer::with_interceptor(
            Catalog(app),
            identify,
        ))
        .prepare();
    let service = trace::RpcSpans::new(tracer).layer(routes);

    // hyper's HTTP/2 server rather than tonic's, which has no idle timeout: each connection
    // is driven here, like the HTTP side's.
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .keep_alive_interval(unless_zero(bounds.keep_alive_interval))
        .keep_alive_timeout(bounds.keep_alive_timeout);
    // Connections drain only after health says NOT_SERVING (below).
    let (drain_tx, drain) = watch::channel(false);
    let mut connections = JoinSet::new();
    loop {
        let primed = tokio::select! {
            primed = incoming.recv() => match primed {
                Some(primed) => primed,
                None => break,
            },
            () = stopped(stop.clone()) => break,
        };
        let in_flight = InFlight::new();
        let connect_info = primed.connect_info();
        let rpc = {
            let (service, in_flight) = (service.clone(), in_flight.clone());
            hyper::service::service_fn(move |req| {
                call_grpc(
                    service.clone(),
                    req,
                    connect_info.clone(),
                    in_flight.enter(),
                )
            })
        };
        let conn = builder.serve_connection(TokioIo::new(primed), rpc);
        connections.spawn(drive(conn, drain.clone(), in_flight, bounds.clone()));
        while connections.try_join_next().is_some() {}
    }
    // Health watchers (the gateway's checks) see the drain before the listener closes.
    health
        .set_not_serving::<MeasurementServiceServer<Measurements>>()
        .await;
    health
        .set_not_serving::<SizingServiceServer<Sizing>>()
        .await;
    health
        .set_not_serving::<CatalogServiceServer<Catalog>>()
        .await;
    acceptor.abort();
    drop(incoming);
    drain_tx.send_replace(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// One RPC on a connection of the gRPC side: what tonic's own server adds around the routes
/// (the peer's address for `Request::remote_addr`, the caller's `grpc-timeout`), and the
/// request counted as in flight until its response body is done.
async fn call_grpc<S>(
    mut service: S,
    mut req: http::Request<hyper::body::Incoming>,
    connect_info: TcpConnectInfo,
    request: Request,
) -> Result<http::Response<Counted<tonic::body::Body>>, Infallible>
where
    S: tower_service::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        >,
{
    req.extensions_mut().insert(connect_info);
    let deadline = grpc_timeout(req.headers());
    std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
    let call = service.call(req.map(tonic::body::Body::new));
    let response = match deadline {
        Some(deadline) => match tokio::time::timeout(deadline, call).await {
            Ok(response) => response?,
            Err(_) => {
                tonic::Status::deadline_exceeded("the call's grpc-timeout passed").into_http()
            }
        },
        None => call.await?,
    };
    Ok(response.map(|body| Counted::new(body, request)))
}

/// The deadline a gRPC caller sets in `grpc-timeout`: 1-8 digits and a unit (H, M, S, m, u
/// or n). `None` when absent or malformed, as tonic treats it.
fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

async fn serve_http(
    listener: TcpListener,
    app: Shared,
    stop: watch::Receiver<bool>,
    bounds: ConnectionBounds,
) -> Result<(), Error> {
    tracing::info!(addr = %listener.local_addr()?, "object URLs listening");
    let (primed, mut incoming) = mpsc::channel(64);
    let acceptor = tokio::spawn(accept(listener, "http", bounds.clone(), primed));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper enforces the head's deadline only with a timer.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(unless_zero(bounds.header_read_timeout));
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(unless_zero(bounds.keep_alive_interval))
        .keep_alive_timeout(bounds.keep_alive_timeout);
    let body_idle = unless_zero(bounds.request_body_idle_timeout);
    let mut connections = JoinSet::new();
    loop {
        let primed = tokio::select! {
            primed = incoming.recv() => match primed {
                Some(primed) => primed,
                None => break,
            },
            () = stopped(stop.clone()) => break,
        };
        let in_flight = InFlight::new();
        let service = {
            let (app, in_flight) = (app.clone(), in_flight.clone());
            hyper::service::service_fn(move |req| {
                let app = app.clone();
                let request = in_flight.enter();
                async move {
                    let response = objects::http::handle(&app.objects, req, body_idle).await;
                    Ok::<_, Infallible>(response.map(|body| Counted::new(body, request)))
                }
            })
        };
        let conn = builder
            .serve_connection(TokioIo::new(primed), service)
            .into_owned();
        connections.spawn(drive(conn, stop.clone(), in_flight, bounds.clone()));
        while connections.try_join_next().is_some() {}
    }
    acceptor.abort();
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Runs one connection until it ends, `stop` asks it to finish, or it has had no request in
/// flight for the idle timeout (it is then closed gracefully, HTTP/2 with a GOAWAY, and not
/// waited for longer than the keep-alive timeout: a peer that never answers is dropped).
async fn drive<C>(
    conn: C,
    stop: watch::Receiver<bool>,
    in_flight: Arc<InFlight>,
    bounds: ConnectionBounds,
) where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    tokio::pin!(conn);
    let idle = async {
        match unless_zero(bounds.idle_timeout) {
            Some(after) => in_flight.idle(after).await,
            None => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = stopped(stop) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
        () = idle => {
            tracing::debug!("closing an idle connection");
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(bounds.keep_alive_timeout, conn.as_mut()).await {
                Ok(result) => result,
                Err(_) => Ok(()),
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

pin_project! {
    /// A response body that keeps its request counted in its connection's [`InFlight`]
    /// until the body is done: a long answer (a health watch, a scan download) is activity,
    /// and the idle timeout must not cut it.
    struct Counted<B> {
        #[pin]
        body: B,
        request: Option<Request>,
    }
}

impl<B> Counted<B> {
    fn new(body: B, request: Request) -> Self {
        Counted {
            body,
            request: Some(request),
        }
    }
}

impl<B: Body> Body for Counted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let polled = this.body.poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            this.request.take();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Requests in flight on one connection, and since when there has been none.
struct InFlight {
    open: AtomicUsize,
    started: tokio::time::Instant,
    /// Milliseconds after `started` when the last request finished.
    idle_since: AtomicU64,
}

impl InFlight {
    fn new() -> Arc<Self> {
        Arc::new(InFlight {
            open: AtomicUsize::new(0),
            started: tokio::time::Instant::now(),
            idle_since: AtomicU64::new(0),
        })
    }

    fn enter(self: &Arc<Self>) -> Request {
        self.open.fetch_add(1, Ordering::AcqRel);
        Request(self.clone())
    }

    /// Completes once no request has been in flight for `after`.
    async fn idle(&self, after: Duration) {
        loop {
            let wake = if self.open.load(Ordering::Acquire) == 0 {
                let since =
                    self.started + Duration::from_millis(self.idle_since.load(Ordering::Relaxed));
                if since + after <= tokio::time::Instant::now() {
                    return;
                }
                since + after
            } else {
                tokio::time::Instant::now() + after
            };
            tokio::time::sleep_until(wake).await;
        }
    }
}

/// One request's place in its connection's [`InFlight`].
struct Request(Arc<InFlight>);

impl Drop for Request {
    fn drop(&mut self) {
        let millis = self
            .0
            .started
            .elapsed()
            .as_millis()
            .min(u128::from(u64::MAX)) as u64;
        self.0.idle_since.store(millis, Ordering::Relaxed);
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What an HTTP/2 client with prior knowledge sends first (RFC 9113 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Accepts connections on `listener` within `bounds` and hands each to `primed` once its
/// first bytes arrived: the whole HTTP/2 preface, or enough to see it is not one. Reads
/// (never peeks), so a client that sends part of a preface and falls silent, or closes,
/// is closed at the handshake timeout or at once; nothing waits on it for ever.
async fn accept(
    listener: TcpListener,
    name: &'static str,
    bounds: ConnectionBounds,
    primed: mpsc::Sender<Primed>,
) {
    let places = Places::new(name, bounds.max_connections);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(server = name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if primed.is_closed() {
            return;
        }
        let Some(place) = places.admit() else {
            continue;
        };
        let primed = primed.clone();
        let deadline = bounds.handshake_timeout;
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            match tokio::time::timeout(deadline, Primed::read(stream, place)).await {
                Ok(Some(conn)) => {
                    let _ = primed.send(conn).await;
                }
                Ok(None) => tracing::debug!(server = name, "closed before its first bytes"),
                Err(_) => tracing::debug!(server = name, "no first bytes in time; closed"),
            }
        });
    }
}

/// A connection whose first bytes were read to learn whether it speaks HTTP/2; they are
/// read again by the server. Holds the connection's place among the server's.
struct Primed {
    io: TcpStream,
    ahead: Vec<u8>,
    start: usize,
    _place: Place,
}

impl Primed {
    /// Reads until the preface is whole or the bytes differ from it; `None` when the peer
    /// closes (or fails) first.
    async fn read(mut io: TcpStream, place: Place) -> Option<Primed> {
        let mut ahead = Vec::with_capacity(PREFACE.len());
        loop {
            let n = ahead.len().min(PREFACE.len());
            if ahead[..n] != PREFACE[..n] || n == PREFACE.len() {
                return Some(Primed {
                    io,
                    ahead,
                    start: 0,
                    _place: place,
                });
            }
            let mut chunk = [0u8; PREFACE.len()];
            match io.read(&mut chunk[..PREFACE.len() - n]).await {
                Ok(0) | Err(_) => return None,
                Ok(read) => ahead.extend_from_slice(&chunk[..read]),
            }
        }
    }
}

impl AsyncRead for Primed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.start < this.ahead.len() {
            let n = (this.ahead.len() - this.start).min(buf.remaining());
            buf.put_slice(&this.ahead[this.start..this.start + n]);
            this.start += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Primed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl Connected for Primed {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.io.connect_info()
    }
}

/// How often a server at its connection bound may say so in the log.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The open connections of one server, at most `max`.
struct Places {
    name: &'static str,
    max: usize,
    open: AtomicUsize,
    refused: AtomicU64,
    warned: Mutex<Option<Instant>>,
}

impl Places {
    fn new(name: &'static str, max: usize) -> Arc<Self> {
        Arc::new(Places {
            name,
            max,
            open: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
            warned: Mutex::new(None),
        })
    }

    /// A place for one more connection, or `None` (the connection is closed; the log
    /// says so at most every 10 s, with how many were refused meanwhile).
    fn admit(self: &Arc<Self>) -> Option<Place> {
        let admitted = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.max).then_some(open + 1)
            })
            .is_ok();
        if admitted {
            return Some(Place(self.clone()));
        }
        let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        if let Ok(mut warned) = self.warned.lock()
            && warned.is_none_or(|at| at.elapsed() >= WARN_EVERY)
        {
            *warned = Some(Instant::now());
            self.refused.fetch_sub(refused, Ordering::Relaxed);
            tracing::warn!(
                server = self.name,
                max_connections = self.max,
                refused,
                "connection limit reached; new connections are closed at once"
            );
        }
        None
    }
}

/// One connection's place in [`Places`].
struct Place(Arc<Places>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeout_of(value: &'static str) -> Option<Duration> {
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-timeout", http::HeaderValue::from_static(value));
        grpc_timeout(&headers)
    }

    #[test]
    fn grpc_timeout_units() {
        assert_eq!(timeout_of("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(timeout_of("3M"), Some(Duration::from_secs(180)));
        assert_eq!(timeout_of("5S"), Some(Duration::from_secs(5)));
        assert_eq!(timeout_of("250m"), Some(Duration::from_millis(250)));
        assert_eq!(
            timeout_of("99999999u"),
            Some(Duration::from_micros(99_999_999))
        );
        assert_eq!(timeout_of("7n"), Some(Duration::from_nanos(7)));
    }

    #[test]
    fn malformed_grpc_timeout_is_no_deadline() {
        for value in ["", "S", "5", "5s", "123456789S", "-1S", "1.5S", "5 S"] {
            assert_eq!(timeout_of(value), None, "{value:?}");
        }
        assert_eq!(grpc_timeout(&http::HeaderMap::new()), None);
    }
}
