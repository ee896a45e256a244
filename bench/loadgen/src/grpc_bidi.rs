//! gRPC bidirectional streaming as a ping-pong: `FullDuplexCall` with `--stream-messages`
//! requests of `--size` bytes, each sent only after the echo of the one before arrived, as a
//! chat or a live session does.
//!
//! This only works through a proxy that forwards each message as it comes. A proxy that holds
//! the request stream until it ends (to inspect the body whole, say) never delivers the first
//! echo while the client waits for it. When an echo does not come within `--echo-wait`, the
//! call closes its side of the stream and waits once more: an echo that arrives then was
//! held back by the proxy (`held_until_close`); one that never arrives was lost (`no_echo`).

use std::sync::Arc;
use std::time::Duration;

use interop::pb::test_service_client::TestServiceClient;
use interop::pb::{
    Payload, ResponseParameters, StreamingOutputCallRequest, StreamingOutputCallResponse,
};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

use crate::grpc::{Cached, Connections, H2};
use crate::run::{Op, Outcome};

/// One worker's ping-pong calls.
pub struct Bidi {
    cached: Cached,
    /// Each message asks for one echo of `--size` bytes.
    message: StreamingOutputCallRequest,
    messages: usize,
    echo_size: usize,
    echo_wait: Duration,
}

impl Bidi {
    pub fn new(connections: &Arc<Connections>, index: usize) -> Bidi {
        let cached = Cached::new(connections, index);
        let setup = cached.setup();
        let message = StreamingOutputCallRequest {
            response_parameters: vec![ResponseParameters {
                size: setup.response_size,
                interval_us: 0,
            }],
            payload: Some(Payload {
                body: vec![b'x'; setup.size],
                ..Default::default()
            }),
            ..Default::default()
        };
        Bidi {
            message,
            messages: setup.stream_messages,
            echo_size: setup.size,
            echo_wait: setup.echo_wait,
            cached,
        }
    }
}

/// Why a call failed: a gRPC status (mapped to a kind by the cached client, which also
/// notices a dead connection) or a kind of our own.
enum Failure {
    Status(tonic::Status),
    Kind(&'static str),
}

impl Op for Bidi {
    async fn call(&mut self) -> Outcome {
        let (_, client) = self.cached.client().await?;
        let call = PingPong {
            message: &self.message,
            messages: self.messages,
            echo_size: self.echo_size,
            echo_wait: self.echo_wait,
        };
        match call.run(client).await {
            Ok(echoes) => Ok(echoes),
            Err(Failure::Kind(kind)) => Err(kind.to_owned()),
            Err(Failure::Status(status)) => Err(self.cached.failed(&status)),
        }
    }
}

/// One call's plan.
struct PingPong<'a> {
    message: &'a StreamingOutputCallRequest,
    messages: usize,
    echo_size: usize,
    echo_wait: Duration,
}

impl PingPong<'_> {
    /// Runs the call; returns the number of echoes, all of which came before the next
    /// message was sent.
    async fn run(&self, client: &mut TestServiceClient<H2>) -> Result<u64, Failure> {
        let (outbound, requests) = mpsc::channel(1);
        // The first message waits in the channel, so it leaves right behind the headers.
        outbound
            .try_send(self.message.clone())
            .map_err(|_| Failure::Kind("request"))?;
        let response = client.full_duplex_call(ReceiverStream::new(requests));
        let mut response = std::pin::pin!(response);
        let mut inbound = match timeout(self.echo_wait, &mut response).await {
            Ok(answer) => answer.map_err(Failure::Status)?.into_inner(),
            Err(_) => {
                // Not even the response headers while our side is open: close it and see.
                drop(outbound);
                return Err(match timeout(self.echo_wait, response).await {
                    Ok(Ok(answer)) => self.after_close(answer.into_inner()).await,
                    Ok(Err(status)) => Failure::Status(status),
                    Err(_) => Failure::Kind("no_echo"),
                });
            }
        };
        for sent in 1..=self.messages {
            if sent > 1 && outbound.send(self.message.clone()).await.is_err() {
                // The request stream is gone: the call ended; its status tells why.
                return match inbound.message().await {
                    Err(status) => Err(Failure::Status(status)),
                    Ok(_) => Err(Failure::Kind("short_stream")),
                };
            }
            match timeout(self.echo_wait, inbound.message()).await {
                Ok(echo) => self.check(echo)?,
                Err(_) => {
                    drop(outbound);
                    return Err(self.after_close(inbound).await);
                }
            }
        }
        drop(outbound);
        match inbound.message().await {
            Ok(None) => Ok(u64::try_from(self.messages).unwrap_or(u64::MAX)),
            Ok(Some(_)) => Err(Failure::Kind("extra_message")),
            Err(status) => Err(Failure::Status(status)),
        }
    }

    /// One echo: present, and of the size asked for.
    fn check(
        &self,
        echo: Result<Option<StreamingOutputCallResponse>, tonic::Status>,
    ) -> Result<(), Failure> {
        match echo {
            Ok(Some(echo))
                if echo.payload.as_ref().map_or(0, |p| p.body.len()) == self.echo_size =>
            {
                Ok(())
            }
            Ok(Some(_)) => Err(Failure::Kind("short_payload")),
            Ok(None) => Err(Failure::Kind("short_stream")),
            Err(status) => Err(Failure::Status(status)),
        }
    }

    /// After our side closed without an echo: did the echo come now (held back) or not at
    /// all (lost)?
    async fn after_close(&self, mut inbound: Streaming<StreamingOutputCallResponse>) -> Failure {
        match timeout(self.echo_wait, inbound.message()).await {
            Ok(Ok(Some(_))) => Failure::Kind("held_until_close"),
            Ok(Ok(None)) => Failure::Kind("short_stream"),
            Ok(Err(status)) => Failure::Status(status),
            Err(_) => Failure::Kind("no_echo"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper::body::Incoming;
    use hyper::client::conn::http2 as client;
    use hyper::server::conn::http2 as server;
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    use super::*;
    use crate::cli::{IdleProto, Mode, TargetArgs};
    use crate::setup::Setup;

    async fn bidi_to(addr: SocketAddr) -> Bidi {
        let args = TargetArgs {
            mode: Mode::GrpcBidi,
            target: format!("http://{addr}"),
            ca: None,
            server_name: None,
            path: "/".to_owned(),
            size: 64,
            stream_messages: 5,
            echo_wait: Duration::from_millis(300),
            idle_proto: IdleProto::H2,
            timeout: Duration::from_secs(10),
        };
        let setup = Setup::resolve(&args).await.unwrap();
        let connections = Connections::open(setup, 1).await.unwrap();
        Bidi::new(&connections, 0)
    }

    /// A relay in front of `backend` that reads each request body whole before it forwards
    /// the request, as a proxy that inspects bodies whole does.
    async fn holding_relay(backend: SocketAddr) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let service = service_fn(move |request: http::Request<Incoming>| async move {
                    let (parts, body) = request.into_parts();
                    let whole = body.collect().await?.to_bytes();
                    let upstream = tokio::net::TcpStream::connect(backend).await.unwrap();
                    let (mut sender, connection) = client::Builder::new(TokioExecutor::new())
                        .handshake::<_, Full<Bytes>>(TokioIo::new(upstream))
                        .await?;
                    tokio::spawn(connection);
                    sender
                        .send_request(http::Request::from_parts(parts, Full::new(whole)))
                        .await
                });
                tokio::spawn(
                    server::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        addr
    }

    #[tokio::test]
    async fn every_echo_arrives_before_the_next_message_on_a_streaming_path() {
        let (backend, _handle) = interop::grpc::serve_grpc("backend").await.unwrap();
        let mut bidi = bidi_to(backend).await;
        assert_eq!(bidi.call().await, Ok(5));
        assert_eq!(bidi.call().await, Ok(5));
    }

    #[tokio::test]
    async fn a_path_that_holds_the_stream_until_it_ends_is_named() {
        let (backend, _handle) = interop::grpc::serve_grpc("backend").await.unwrap();
        let relay = holding_relay(backend).await;
        let mut bidi = bidi_to(relay).await;
        assert_eq!(bidi.call().await, Err("held_until_close".to_owned()));
    }
}
