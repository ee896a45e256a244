//! The backends behave as the gateway tests rely on: checked with real tonic and hyper clients.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use interop::grpc::{ECHO_INITIAL_HEADER, ECHO_TRAILING_HEADER};
use interop::pb::test_service_client::TestServiceClient;
use interop::pb::{
    EchoStatus, Payload, ResponseParameters, SimpleRequest, StreamingInputCallRequest,
    StreamingOutputCallRequest,
};
use tokio_stream::StreamExt;
use tonic::metadata::{BinaryMetadataValue, MetadataValue};

async fn grpc_client(addr: std::net::SocketAddr) -> TestServiceClient<tonic::transport::Channel> {
    TestServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect to grpc backend")
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20)
}

#[tokio::test]
async fn grpc_unary_names_backend_and_echoes_metadata() {
    let (addr, _server) = interop::grpc::serve_grpc("alpha").await.expect("serve");
    let mut client = grpc_client(addr).await;

    let mut request = tonic::Request::new(SimpleRequest {
        response_size: 10,
        payload: Some(Payload {
            r#type: 0,
            body: b"abc".to_vec(),
        }),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert(ECHO_INITIAL_HEADER, MetadataValue::from_static("hello"));
    request.metadata_mut().insert_bin(
        ECHO_TRAILING_HEADER,
        BinaryMetadataValue::from_bytes(&[0xab, 0xcd]),
    );
    let response = client.unary_call(request).await.expect("unary call");
    let metadata = response.metadata().clone();
    let message = response.into_inner();

    assert_eq!(message.server_id, "alpha");
    assert_eq!(
        message.payload.expect("payload").body,
        b"abcabcabca".to_vec()
    );
    assert_eq!(metadata.get("x-backend").expect("x-backend"), "alpha");
    assert_eq!(
        metadata.get(ECHO_INITIAL_HEADER).expect("echo initial"),
        "hello"
    );
    let trailing = metadata
        .get_bin(ECHO_TRAILING_HEADER)
        .expect("echo trailing")
        .to_bytes()
        .expect("binary value");
    assert_eq!(trailing.as_ref(), &[0xab, 0xcd]);
}

#[tokio::test]
async fn grpc_requested_status_and_delay() {
    let (addr, _server) = interop::grpc::serve_grpc("beta").await.expect("serve");
    let mut client = grpc_client(addr).await;

    let status = client
        .unary_call(SimpleRequest {
            response_status: Some(EchoStatus {
                code: 9,
                message: "not now".into(),
            }),
            ..Default::default()
        })
        .await
        .expect_err("the call must fail");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert_eq!(status.message(), "not now");

    let mut slow = tonic::Request::new(SimpleRequest::default());
    slow.metadata_mut()
        .insert("x-delay-ms", MetadataValue::from_static("3000"));
    slow.set_timeout(Duration::from_millis(100));
    let status = client.unary_call(slow).await.expect_err("must time out");
    assert_eq!(status.code(), tonic::Code::Cancelled, "{status:?}");
}

#[tokio::test]
async fn grpc_streams_follow_parameters() {
    let (addr, _server) = interop::grpc::serve_grpc("gamma").await.expect("serve");
    let mut client = grpc_client(addr).await;

    let sizes = [1, 10, 100, 1000];
    let request = StreamingOutputCallRequest {
        response_parameters: sizes
            .iter()
            .map(|&size| ResponseParameters {
                size,
                interval_us: 1000,
            })
            .collect(),
        ..Default::default()
    };
    let mut stream = client
        .streaming_output_call(request)
        .await
        .expect("server stream")
        .into_inner();
    let mut got = Vec::new();
    while let Some(item) = stream.next().await {
        got.push(
            item.expect("stream item")
                .payload
                .expect("payload")
                .body
                .len() as i32,
        );
    }
    assert_eq!(got, sizes);

    let uploads = (0..5).map(|i| StreamingInputCallRequest {
        payload: Some(Payload {
            r#type: 0,
            body: vec![1; 1000 * (i + 1)],
        }),
    });
    let total = client
        .streaming_input_call(tokio_stream::iter(uploads))
        .await
        .expect("client stream")
        .into_inner();
    assert_eq!(total.aggregated_payload_size, 15_000);

    let pings = (1..=3).map(|size| StreamingOutputCallRequest {
        response_parameters: vec![ResponseParameters {
            size,
            interval_us: 0,
        }],
        ..Default::default()
    });
    let mut duplex = client
        .full_duplex_call(tokio_stream::iter(pings))
        .await
        .expect("duplex")
        .into_inner();
    let mut got = Vec::new();
    while let Some(item) = duplex.next().await {
        got.push(
            item.expect("duplex item")
                .payload
                .expect("payload")
                .body
                .len(),
        );
    }
    assert_eq!(got, vec![1, 2, 3]);
}

#[tokio::test]
async fn grpc_carries_sixteen_mebibytes() {
    let (addr, _server) = interop::grpc::serve_grpc("big").await.expect("serve");
    let mut client = grpc_client(addr).await;
    let size = 16 << 20;
    let response = client
        .unary_call(SimpleRequest {
            response_size: size,
            payload: Some(Payload {
                r#type: 0,
                body: vec![7; size as usize],
            }),
            ..Default::default()
        })
        .await
        .expect("16 MiB round trip")
        .into_inner();
    let body = response.payload.expect("payload").body;
    assert_eq!(body.len(), size as usize);
    assert!(body.iter().all(|&b| b == 7));
}

async fn get_h1(
    addr: std::net::SocketAddr,
    path: &str,
) -> (http::StatusCode, http::HeaderMap, serde_json::Value) {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("h1 handshake");
    tokio::spawn(conn);
    let request = http::Request::get(path)
        .header("host", "echo.test")
        .header("x-custom", "one")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("h1 response");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    (
        parts.status,
        parts.headers,
        serde_json::from_slice(&body).expect("json"),
    )
}

#[tokio::test]
async fn http_echo_describes_request_over_h1_and_h2c() {
    let (addr, server) = interop::http::serve_http("web").await.expect("serve");

    let (status, headers, echo) = get_h1(addr, "/some/path?q=1").await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-backend"], "web");
    assert_eq!(echo["backend"], "web");
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["path"], "/some/path?q=1");
    assert_eq!(echo["version"], "HTTP/1.1");
    assert_eq!(echo["headers"]["x-custom"], "one");
    assert_eq!(echo["body_len"], 0);

    let (status, _, _) = get_h1(addr, "/status/418").await;
    assert_eq!(status, 418);

    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2c handshake");
    tokio::spawn(conn);
    let request = http::Request::post(format!("http://{addr}/upload"))
        .body(http_body_util::Full::new(Bytes::from(vec![0u8; 12345])))
        .expect("request");
    let response = sender.send_request(request).await.expect("h2 response");
    assert_eq!(response.headers()["x-backend"], "web");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let echo: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(echo["version"], "HTTP/2.0");
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["body_len"], 12345);

    server.stop().await;
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert!(
        refused.is_err(),
        "a stopped backend must refuse connections"
    );
}
