//! gRPC through the gateway: all four call kinds, metadata and trailers, large messages.

mod support;

use std::net::SocketAddr;

use interop::grpc::{ECHO_INITIAL_HEADER, ECHO_TRAILING_HEADER};
use interop::pb::{
    EchoStatus, Empty, Payload, ResponseParameters, SimpleRequest, StreamingInputCallRequest,
    StreamingOutputCallRequest,
};
use support::*;
use tokio_stream::StreamExt;
use tonic::metadata::{BinaryMetadataValue, MetadataValue};

async fn gateway_to(grpc: SocketAddr) -> Running {
    start_gateway(&fill(
        r#"
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: grpc
    match: { grpc_service: grpc.testing.TestService }
    to: backend
clusters:
  - name: backend
    protocol: h2c
    endpoints: [{ address: "@grpc@" }]
"#,
        &[("grpc", grpc.to_string())],
    ))
    .await
}

fn payload(bytes: &[u8]) -> Option<Payload> {
    Some(Payload {
        r#type: 0,
        body: bytes.to_vec(),
    })
}

fn with_echo_metadata<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        ECHO_INITIAL_HEADER,
        MetadataValue::from_static("initial-value"),
    );
    request.metadata_mut().insert_bin(
        ECHO_TRAILING_HEADER,
        BinaryMetadataValue::from_bytes(&[0, 1, 2, 0xfe, 0xff]),
    );
    request
}

fn trailing_echo(metadata: &tonic::metadata::MetadataMap) -> Vec<u8> {
    metadata
        .get_bin(ECHO_TRAILING_HEADER)
        .expect("trailing metadata echoed")
        .to_bytes()
        .expect("binary metadata")
        .to_vec()
}

#[tokio::test]
async fn unary_and_empty_calls_carry_metadata_and_trailers() {
    let (grpc, _b) = grpc_backend("unary-backend").await;
    let gw = gateway_to(grpc).await;
    let mut client = grpc_client(gw.listener("plain")).await;

    client
        .empty_call(Empty {})
        .await
        .expect("EmptyCall through the gateway");

    let response = client
        .unary_call(with_echo_metadata(SimpleRequest {
            response_size: 7,
            payload: payload(b"xy"),
            fill_server_id: true,
            ..Default::default()
        }))
        .await
        .expect("UnaryCall through the gateway");
    let metadata = response.metadata().clone();
    let reply = response.into_inner();
    assert_eq!(reply.server_id, "unary-backend");
    assert_eq!(reply.payload.expect("payload").body, b"xyxyxyx".to_vec());
    assert_eq!(
        metadata.get(ECHO_INITIAL_HEADER).expect("initial metadata"),
        "initial-value"
    );
    assert_eq!(
        metadata.get("x-backend").expect("x-backend"),
        "unary-backend"
    );
    assert_eq!(trailing_echo(&metadata), vec![0, 1, 2, 0xfe, 0xff]);
}

#[tokio::test]
async fn error_status_and_message_from_the_backend_reach_the_client() {
    let (grpc, _b) = grpc_backend("status-backend").await;
    let gw = gateway_to(grpc).await;
    let mut client = grpc_client(gw.listener("plain")).await;

    let status = client
        .unary_call(with_echo_metadata(SimpleRequest {
            response_status: Some(EchoStatus {
                code: 5,
                message: "no such foot scan: ä".into(),
            }),
            ..Default::default()
        }))
        .await
        .expect_err("the backend fails the call");
    assert_eq!(status.code(), tonic::Code::NotFound);
    assert_eq!(status.message(), "no such foot scan: ä");
    assert_eq!(trailing_echo(status.metadata()), vec![0, 1, 2, 0xfe, 0xff]);
}

#[tokio::test]
async fn server_streaming_delivers_every_message_and_the_trailers() {
    let (grpc, _b) = grpc_backend("stream-backend").await;
    let gw = gateway_to(grpc).await;
    let mut client = grpc_client(gw.listener("plain")).await;

    let sizes = [1, 100, 10_000, 100_000, 0, 5];
    let response = client
        .streaming_output_call(with_echo_metadata(StreamingOutputCallRequest {
            response_parameters: sizes
                .iter()
                .map(|&size| ResponseParameters {
                    size,
                    interval_us: 2_000,
                })
                .collect(),
            payload: payload(b"abc"),
            ..Default::default()
        }))
        .await
        .expect("StreamingOutputCall through the gateway");
    assert_eq!(
        response
            .metadata()
            .get(ECHO_INITIAL_HEADER)
            .expect("initial metadata"),
        "initial-value"
    );
    let mut stream = response.into_inner();
    let mut got = Vec::new();
    while let Some(item) = stream.next().await {
        let body = item.expect("stream message").payload.expect("payload").body;
        assert!(body.iter().zip(b"abc".iter().cycle()).all(|(a, b)| a == b));
        got.push(body.len() as i32);
    }
    assert_eq!(got, sizes);
    let trailers = stream
        .trailers()
        .await
        .expect("stream ends with OK")
        .expect("trailers");
    assert_eq!(trailing_echo(&trailers), vec![0, 1, 2, 0xfe, 0xff]);
}

#[tokio::test]
async fn server_stream_ending_with_an_error_status_passes_it_on() {
    let (grpc, _b) = grpc_backend("stream-error").await;
    let gw = gateway_to(grpc).await;
    let mut client = grpc_client(gw.listener("plain")).await;

    let mut stream = client
        .streaming_output_call(StreamingOutputCallRequest {
            response_parameters: vec![ResponseParameters {
                size: 10,
                interval_us: 0,
            }],
            response_status: Some(EchoStatus {
                code: 8,
                message: "quota spent".into(),
            }),
            ..Default::default()
        })
        .await
        .expect("stream starts")
        .into_inner();
    let first = stream
        .next()
        .await
        .expect("a message")
        .expect("first message is fine");
    assert_eq!(first.payload.expect("payload").body.len(), 10);
    let status = stream
        .next()
        .await
        .expect("the stream ends with a status")
        .expect_err("the status is an error");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert_eq!(status.message(), "quota spent");
}

#[tokio::test]
async fn client_streaming_counts_every_byte_sent() {
    let (grpc, _b) = grpc_backend("upload-backend").await;
    let gw = gateway_to(grpc).await;
    let mut client = grpc_client(gw.listener("plain")).await;

    let chunks: Vec<_> = (1..=20)
        .map(|i| StreamingInputCallRequest {
            payload: Some(Payload {
                r#type: 0,
                body: vec![i as u8; i * 3_000],
            }),
        })
        .collect();
    let expected: usize = (1..=20).map(|i| i * 3_000).sum();
    let response = client
        .streaming_input_call(with_echo_metadata(tokio_stream::iter(chunks)))
        .await
        .expect("StreamingInputCall through the gateway");
    assert_eq!(
        trailing_echo(response.metadata()),
        vec![0, 1, 2, 0xfe, 0xff]
    );
    assert_eq!(
        response.into_inner().aggregated_payload_size as usize,
        expected
    );
}

#[tokio::test]
async fn bidirectional_stream_answers_each_message_before_the_next_is_sent() {
    let (grpc, _b) = grpc_backend("duplex-backend").await;
    let gw = gateway_to(grpc).await;
    let mut client = grpc_client(gw.listener("plain")).await;

    // Ping-pong: the next request is only sent after the previous answer arrived, so this
    // only finishes if the gateway streams both ways instead of buffering.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let response = client
        .full_duplex_call(with_echo_metadata(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
        .await
        .expect("FullDuplexCall through the gateway");
    let mut inbound = response.into_inner();
    for size in [1, 31, 1000, 65_537] {
        tx.send(StreamingOutputCallRequest {
            response_parameters: vec![ResponseParameters {
                size,
                interval_us: 0,
            }],
            payload: payload(b"q"),
            ..Default::default()
        })
        .await
        .expect("send request");
        let answer = tokio::time::timeout(std::time::Duration::from_secs(10), inbound.next())
            .await
            .expect("an answer before the next request is sent")
            .expect("stream still open")
            .expect("answer is fine");
        assert_eq!(answer.payload.expect("payload").body.len() as i32, size);
    }
    drop(tx);
    assert!(
        inbound.next().await.is_none(),
        "stream ends after the client closes"
    );
    let trailers = inbound
        .trailers()
        .await
        .expect("OK status")
        .expect("trailers");
    assert_eq!(trailing_echo(&trailers), vec![0, 1, 2, 0xfe, 0xff]);
}

#[tokio::test]
async fn eight_mebibyte_messages_pass_both_ways() {
    let (grpc, _b) = grpc_backend("large-backend").await;
    let gw = gateway_to(grpc).await;
    let mut client = grpc_client(gw.listener("plain")).await;

    let size = 8 << 20;
    let pattern: Vec<u8> = (0..=250u8).collect();
    let body: Vec<u8> = pattern.iter().copied().cycle().take(size).collect();
    let reply = client
        .unary_call(SimpleRequest {
            response_size: size as i32,
            payload: Some(Payload {
                r#type: 0,
                body: body.clone(),
            }),
            ..Default::default()
        })
        .await
        .expect("8 MiB unary call through the gateway")
        .into_inner();
    let echoed = reply.payload.expect("payload").body;
    assert_eq!(echoed.len(), size);
    assert!(echoed == body, "the 8 MiB payload came back changed");

    let mut stream = client
        .streaming_output_call(StreamingOutputCallRequest {
            response_parameters: vec![
                ResponseParameters {
                    size: size as i32,
                    interval_us: 0,
                };
                2
            ],
            ..Default::default()
        })
        .await
        .expect("large server stream")
        .into_inner();
    let mut count = 0;
    while let Some(item) = stream.next().await {
        assert_eq!(
            item.expect("message").payload.expect("payload").body.len(),
            size
        );
        count += 1;
    }
    assert_eq!(count, 2);
}
