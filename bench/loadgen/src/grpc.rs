//! gRPC over h2c with tonic's generated client on top of hyper's HTTP/2 client connection.
//!
//! tonic's own `Channel` balances over connections it opens by itself and queues calls in a
//! buffer task; the benchmark needs exactly `--connections` connections shared by the
//! workers and the least client overhead, so each connection is a hyper `SendRequest`
//! wrapped as the tower service tonic's client runs on. Status comes from the trailers:
//! tonic turns a non-OK `grpc-status` into an error `Status`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use interop::pb::test_service_client::TestServiceClient;
use interop::pb::{Empty, Payload, ResponseParameters, SimpleRequest, StreamingOutputCallRequest};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tonic::body::Body;

use crate::Error;
use crate::run::{Op, Outcome};
use crate::setup::Setup;

/// One HTTP/2 connection as the transport of a tonic client.
#[derive(Clone)]
pub struct H2(http2::SendRequest<Body>);

impl tower_service::Service<http::Request<Body>> for H2 {
    type Response = http::Response<Incoming>;
    type Error = hyper::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<http::Response<Incoming>, hyper::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), hyper::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        Box::pin(self.0.send_request(request))
    }
}

/// Opens an h2c connection (prior knowledge); the handle ends when the connection closes.
pub async fn connect(setup: &Setup) -> Result<(http2::SendRequest<Body>, JoinHandle<()>), String> {
    let stream = setup.connect_tcp().await?;
    let (sender, connection) = http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|_| "handshake".to_owned())?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok((sender, driver))
}

/// A tonic client on `sender` for `setup`'s origin.
pub fn client(setup: &Setup, sender: http2::SendRequest<Body>) -> TestServiceClient<H2> {
    TestServiceClient::with_origin(H2(sender), setup.origin.clone())
}

/// The kind of a failed call: `transport` when the connection failed, else the gRPC status
/// the server sent in its trailers, e.g. `grpc_unavailable`.
pub fn error_kind(status: &tonic::Status, sender: &http2::SendRequest<Body>) -> String {
    if sender.is_closed() || std::error::Error::source(status).is_some() {
        "transport".to_owned()
    } else {
        format!("grpc_{:?}", status.code()).to_lowercase()
    }
}

/// The HTTP/2 connections the workers share; worker `i` uses connection `i % n`. A closed
/// connection is replaced by the first worker that finds it closed.
pub struct Connections {
    setup: Arc<Setup>,
    slots: Vec<Mutex<Option<http2::SendRequest<Body>>>>,
}

impl Connections {
    /// Opens `n` connections.
    pub async fn open(setup: Arc<Setup>, n: usize) -> Result<Arc<Connections>, Error> {
        let mut slots = Vec::with_capacity(n);
        for _ in 0..n {
            let (sender, _driver) = connect(&setup).await.map_err(|kind| {
                format!("cannot open an h2c connection to {}: {kind}", setup.addr)
            })?;
            slots.push(Mutex::new(Some(sender)));
        }
        Ok(Arc::new(Connections { setup, slots }))
    }

    /// The live connection of slot `index`, reconnecting if it closed.
    async fn get(&self, index: usize) -> Result<http2::SendRequest<Body>, String> {
        let Some(slot) = self.slots.get(index % self.slots.len().max(1)) else {
            return Err("no connection".to_owned());
        };
        let mut slot = slot.lock().await;
        if let Some(sender) = slot.as_ref().filter(|s| !s.is_closed()) {
            return Ok(sender.clone());
        }
        *slot = None;
        let (sender, _driver) = connect(&self.setup).await?;
        *slot = Some(sender.clone());
        Ok(sender)
    }
}

/// A worker's client, fetched from the shared connections on first use and after an error.
pub struct Cached {
    connections: Arc<Connections>,
    index: usize,
    current: Option<(http2::SendRequest<Body>, TestServiceClient<H2>)>,
}

impl Cached {
    /// Worker `index`'s client on `connections`, connected on first use.
    pub fn new(connections: &Arc<Connections>, index: usize) -> Cached {
        Cached {
            connections: connections.clone(),
            index,
            current: None,
        }
    }

    /// The run's shared setup.
    pub fn setup(&self) -> &Setup {
        &self.connections.setup
    }

    pub async fn client(
        &mut self,
    ) -> Result<&mut (http2::SendRequest<Body>, TestServiceClient<H2>), String> {
        if self.current.is_none() {
            let sender = self.connections.get(self.index).await?;
            let client = client(&self.connections.setup, sender.clone());
            self.current = Some((sender, client));
        }
        self.current
            .as_mut()
            .ok_or_else(|| "no connection".to_owned())
    }

    /// The error kind of a failed call; drops the client when its connection failed.
    pub fn failed(&mut self, status: &tonic::Status) -> String {
        match self.current.take() {
            Some((sender, client)) => {
                let kind = error_kind(status, &sender);
                if kind != "transport" {
                    self.current = Some((sender, client));
                }
                kind
            }
            None => "transport".to_owned(),
        }
    }
}

/// `UnaryCall` with `--size` bytes each way.
pub struct Unary {
    cached: Cached,
    request: SimpleRequest,
    expect: usize,
}

impl Unary {
    pub fn new(connections: &Arc<Connections>, index: usize) -> Unary {
        let setup = &connections.setup;
        Unary {
            cached: Cached::new(connections, index),
            request: SimpleRequest {
                response_size: setup.response_size,
                payload: Some(Payload {
                    body: vec![b'x'; setup.size],
                    ..Default::default()
                }),
                ..Default::default()
            },
            expect: setup.size,
        }
    }
}

impl Op for Unary {
    async fn call(&mut self) -> Outcome {
        let request = self.request.clone();
        let (_, client) = self.cached.client().await?;
        match client.unary_call(request).await {
            Ok(response) => {
                let got = response
                    .get_ref()
                    .payload
                    .as_ref()
                    .map_or(0, |p| p.body.len());
                if got == self.expect {
                    Ok(1)
                } else {
                    Err("short_payload".to_owned())
                }
            }
            Err(status) => Err(self.cached.failed(&status)),
        }
    }
}

/// `StreamingOutputCall`: `--stream-messages` responses of `--size` bytes; a call succeeds
/// when every message arrived and the trailers say OK.
pub struct Stream {
    cached: Cached,
    request: StreamingOutputCallRequest,
    expect: u64,
}

impl Stream {
    pub fn new(connections: &Arc<Connections>, index: usize) -> Stream {
        let setup = &connections.setup;
        let parameters = ResponseParameters {
            size: setup.response_size,
            interval_us: 0,
        };
        Stream {
            cached: Cached::new(connections, index),
            request: StreamingOutputCallRequest {
                response_parameters: vec![parameters; setup.stream_messages],
                ..Default::default()
            },
            expect: u64::try_from(setup.stream_messages).unwrap_or(u64::MAX),
        }
    }
}

impl Op for Stream {
    async fn call(&mut self) -> Outcome {
        let request = self.request.clone();
        let (_, client) = self.cached.client().await?;
        let mut stream = match client.streaming_output_call(request).await {
            Ok(response) => response.into_inner(),
            Err(status) => return Err(self.cached.failed(&status)),
        };
        let mut messages = 0u64;
        loop {
            match stream.message().await {
                Ok(Some(_)) => messages += 1,
                Ok(None) if messages == self.expect => return Ok(messages),
                Ok(None) => return Err("short_stream".to_owned()),
                Err(status) => return Err(self.cached.failed(&status)),
            }
        }
    }
}

/// One `EmptyCall` on `sender`, for idle connections.
pub async fn empty_call(setup: &Setup, sender: &http2::SendRequest<Body>) -> Result<(), String> {
    match client(setup, sender.clone()).empty_call(Empty {}).await {
        Ok(_) => Ok(()),
        Err(status) => Err(error_kind(&status, sender)),
    }
}
