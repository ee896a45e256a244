//! The `grpc.testing.TestService` backend, served by tonic over h2c.
//!
//! Behaviour follows grpc's interop test server where it overlaps, plus what a gateway test needs:
//! - every response carries `x-backend: <name>`, and `SimpleResponse.server_id` is the name;
//! - `x-grpc-test-echo-initial` is echoed as a response header and
//!   `x-grpc-test-echo-trailing-bin` as a trailer (a header too in a trailers-only answer);
//! - `response_status` with a non-zero code ends the call with that status and message;
//! - `x-delay-ms: N` delays the response headers by N milliseconds;
//! - streaming responses follow their `ResponseParameters` (size, interval_us);
//! - response payloads repeat the request payload's bytes (zeros when it is empty), so a caller
//!   can check that the bytes survived the trip; messages up to [`MAX_MESSAGE_SIZE`] are accepted;
//! - `grpc.health.v1.Health` is served (tonic-health), switched with [`ServerHandle::set_serving`].

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::Service;
use tonic::{Request, Response, Status, Streaming};
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};

use crate::pb::test_service_server::{TestService, TestServiceServer};
use crate::pb::{
    EchoStatus, Empty, Payload, ResponseParameters, SimpleRequest, SimpleResponse,
    StreamingInputCallRequest, StreamingInputCallResponse, StreamingOutputCallRequest,
    StreamingOutputCallResponse,
};
use crate::{BACKEND_HEADER, ServerHandle, accept_loop, requested_delay};

/// Request metadata echoed back as a response header.
pub const ECHO_INITIAL_HEADER: &str = "x-grpc-test-echo-initial";

/// Request metadata (binary) echoed back as a trailer.
pub const ECHO_TRAILING_HEADER: &str = "x-grpc-test-echo-trailing-bin";

/// Largest message the backend decodes or encodes: well above the 8 MiB the gateway tests send.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

/// The stream type of the server-streaming and bidirectional calls.
pub type ResponseStream =
    Pin<Box<dyn Stream<Item = Result<StreamingOutputCallResponse, Status>> + Send + 'static>>;

/// A `TestService` that reports `name` as its server id.
#[derive(Clone, Debug)]
pub struct TestServiceImpl {
    name: Arc<str>,
}

impl TestServiceImpl {
    /// A service answering as `name`.
    pub fn new(name: &str) -> Self {
        TestServiceImpl {
            name: Arc::from(name),
        }
    }

    /// The tonic server for this service with message limits raised to [`MAX_MESSAGE_SIZE`].
    pub fn into_server(self) -> TestServiceServer<Self> {
        TestServiceServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE)
    }
}

/// The status a request asked for, when its code is not OK.
fn requested_status(echo: Option<&EchoStatus>) -> Option<Status> {
    let echo = echo?;
    if echo.code == 0 {
        return None;
    }
    Some(Status::new(
        tonic::Code::from(echo.code),
        echo.message.clone(),
    ))
}

/// A payload of `size` bytes repeating `seed` (zeros when `seed` is empty).
fn payload(size: i32, seed: &[u8]) -> Result<Payload, Status> {
    let size = usize::try_from(size)
        .map_err(|_| Status::invalid_argument("response size must not be negative"))?;
    if size > MAX_MESSAGE_SIZE {
        return Err(Status::invalid_argument(format!(
            "response size {size} is above the limit of {MAX_MESSAGE_SIZE} bytes"
        )));
    }
    let body = if seed.is_empty() {
        vec![0; size]
    } else {
        seed.iter().copied().cycle().take(size).collect()
    };
    Ok(Payload { r#type: 0, body })
}

/// Sends one response per parameter set, waiting `interval_us` before each. Returns false once
/// the caller has gone away.
async fn send_responses(
    tx: &mpsc::Sender<Result<StreamingOutputCallResponse, Status>>,
    parameters: &[ResponseParameters],
    seed: &[u8],
) -> bool {
    for parameter in parameters {
        if let Ok(interval) = u64::try_from(parameter.interval_us)
            && interval > 0
        {
            tokio::time::sleep(Duration::from_micros(interval)).await;
        }
        let item = payload(parameter.size, seed).map(|payload| StreamingOutputCallResponse {
            payload: Some(payload),
        });
        let failed = item.is_err();
        if tx.send(item).await.is_err() || failed {
            return false;
        }
    }
    true
}

#[tonic::async_trait]
impl TestService for TestServiceImpl {
    async fn empty_call(&self, _request: Request<Empty>) -> Result<Response<Empty>, Status> {
        Ok(Response::new(Empty {}))
    }

    async fn unary_call(
        &self,
        request: Request<SimpleRequest>,
    ) -> Result<Response<SimpleResponse>, Status> {
        let request = request.into_inner();
        if let Some(status) = requested_status(request.response_status.as_ref()) {
            return Err(status);
        }
        let seed = request.payload.map(|p| p.body).unwrap_or_default();
        Ok(Response::new(SimpleResponse {
            payload: Some(payload(request.response_size, &seed)?),
            server_id: self.name.to_string(),
            hostname: self.name.to_string(),
        }))
    }

    type StreamingOutputCallStream = ResponseStream;

    async fn streaming_output_call(
        &self,
        request: Request<StreamingOutputCallRequest>,
    ) -> Result<Response<Self::StreamingOutputCallStream>, Status> {
        let request = request.into_inner();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let seed = request.payload.map(|p| p.body).unwrap_or_default();
            if !send_responses(&tx, &request.response_parameters, &seed).await {
                return;
            }
            if let Some(status) = requested_status(request.response_status.as_ref()) {
                let _ = tx.send(Err(status)).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn streaming_input_call(
        &self,
        request: Request<Streaming<StreamingInputCallRequest>>,
    ) -> Result<Response<StreamingInputCallResponse>, Status> {
        let mut inbound = request.into_inner();
        let mut total: usize = 0;
        while let Some(message) = inbound.message().await? {
            total = total.saturating_add(message.payload.map_or(0, |p| p.body.len()));
        }
        Ok(Response::new(StreamingInputCallResponse {
            aggregated_payload_size: i32::try_from(total).unwrap_or(i32::MAX),
        }))
    }

    type FullDuplexCallStream = ResponseStream;

    async fn full_duplex_call(
        &self,
        request: Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<Response<Self::FullDuplexCallStream>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            loop {
                match inbound.message().await {
                    Ok(Some(message)) => {
                        let seed = message.payload.map(|p| p.body).unwrap_or_default();
                        if !send_responses(&tx, &message.response_parameters, &seed).await {
                            return;
                        }
                        if let Some(status) = requested_status(message.response_status.as_ref()) {
                            let _ = tx.send(Err(status)).await;
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// The HTTP layer around the tonic service: delay, backend name and metadata echo, which the
/// generated service cannot do by itself (it has no hook for trailers of a successful call).
#[derive(Clone)]
pub(crate) struct Frontend {
    name: http::HeaderValue,
    inner: TestServiceServer<TestServiceImpl>,
    health: HealthServer<HealthService>,
    pub(crate) reporter: HealthReporter,
}

impl hyper::service::Service<http::Request<Incoming>> for Frontend {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: http::Request<Incoming>) -> Self::Future {
        if request.uri().path().starts_with("/grpc.health.v1.Health/") {
            let mut health = self.health.clone();
            return Box::pin(async move { health.call(request).await });
        }
        let mut inner = self.inner.clone();
        let name = self.name.clone();
        Box::pin(async move {
            let delay = requested_delay(request.headers());
            let echo_initial = request.headers().get(ECHO_INITIAL_HEADER).cloned();
            let echo_trailing = request.headers().get(ECHO_TRAILING_HEADER).cloned();
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            std::future::poll_fn(|cx| {
                Service::<http::Request<Incoming>>::poll_ready(&mut inner, cx)
            })
            .await?;
            let response = inner.call(request).await?;
            let (mut parts, body) = response.into_parts();
            parts.headers.insert(BACKEND_HEADER, name);
            if let Some(value) = echo_initial {
                parts.headers.insert(ECHO_INITIAL_HEADER, value);
            }
            let body =
                match echo_trailing {
                    // A trailers-only answer: its headers are the trailers.
                    Some(value) if parts.headers.contains_key("grpc-status") => {
                        parts.headers.insert(ECHO_TRAILING_HEADER, value);
                        body
                    }
                    Some(value) => tonic::body::Body::new(body.map_frame(move |frame| {
                        match frame.into_trailers() {
                            Ok(mut trailers) => {
                                trailers.insert(ECHO_TRAILING_HEADER, value.clone());
                                Frame::trailers(trailers)
                            }
                            Err(frame) => frame,
                        }
                    })),
                    None => body,
                };
            Ok(http::Response::from_parts(parts, body))
        })
    }
}

/// Binds `127.0.0.1:0` and serves `TestService` as `name` over h2c until the handle is dropped.
pub async fn serve_grpc(name: &str) -> io::Result<(SocketAddr, ServerHandle)> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    serve_grpc_on(listener, name)
}

/// Serves `TestService` as `name` on an already bound listener (for a backend that must come
/// back on a known port).
pub fn serve_grpc_on(listener: TcpListener, name: &str) -> io::Result<(SocketAddr, ServerHandle)> {
    let addr = listener.local_addr()?;
    let frontend = Frontend::new(name)?;
    let reporter = frontend.reporter.clone();
    let task = tokio::spawn(accept_loop(listener, move |stream| {
        serve_h2(TokioIo::new(stream), frontend.clone())
    }));
    Ok((addr, ServerHandle::new(addr, task).with_health(reporter)))
}

/// Binds `127.0.0.1:0` and serves `TestService` as `name` over TLS (ALPN `h2`) with the given
/// PEM certificate chain and private key: an upstream for testing a gateway's `h2` clusters.
pub async fn serve_grpc_tls(
    name: &str,
    cert_pem: &str,
    key_pem: &str,
) -> io::Result<(SocketAddr, ServerHandle)> {
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(invalid_input)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(invalid_input)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(invalid_input)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(invalid_input)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let frontend = Frontend::new(name)?;
    let reporter = frontend.reporter.clone();
    let task = tokio::spawn(accept_loop(listener, move |stream| {
        let acceptor = acceptor.clone();
        let frontend = frontend.clone();
        async move {
            if let Ok(tls) = acceptor.accept(stream).await {
                serve_h2(TokioIo::new(tls), frontend).await;
            }
        }
    }));
    Ok((addr, ServerHandle::new(addr, task).with_health(reporter)))
}

fn invalid_input(error: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, error)
}

impl Frontend {
    pub(crate) fn new(name: &str) -> io::Result<Frontend> {
        let reporter = HealthReporter::new();
        let health = HealthServer::new(HealthService::from_health_reporter(reporter.clone()));
        Ok(Frontend {
            name: http::HeaderValue::from_str(name).map_err(invalid_input)?,
            inner: TestServiceImpl::new(name).into_server(),
            health,
            reporter,
        })
    }
}

/// Serves one connection with HTTP/2 only (gRPC needs nothing else).
async fn serve_h2<I>(io: I, frontend: Frontend)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        .adaptive_window(true)
        .max_concurrent_streams(1000);
    let _ = builder.http2_only().serve_connection(io, frontend).await;
}
