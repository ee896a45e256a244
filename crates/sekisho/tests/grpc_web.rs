//! gRPC-Web through the gateway to a real tonic backend: binary and text modes, unary and
//! server-streaming calls, error trailers, CORS preflights and headers, over HTTP/1.1 and
//! HTTP/2 from the client.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use interop::pb::{
    EchoStatus, Payload, ResponseParameters, SimpleRequest, SimpleResponse,
    StreamingOutputCallRequest, StreamingOutputCallResponse,
};
use interop::prost::Message;
use support::*;

const ORIGIN: &str = "http://page.test:8000";
const UNARY: &str = "/grpc.testing.TestService/UnaryCall";
const STREAM: &str = "/grpc.testing.TestService/StreamingOutputCall";

async fn gateway_to(grpc: SocketAddr) -> Running {
    start_gateway(&fill(
        r#"
admin: { address: 127.0.0.1:0 }
access_log: { enabled: false }
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: web
    match: { grpc_service: grpc.testing.TestService }
    to: backend
    cors:
      allow_origins: ["@origin@"]
      allow_headers: [x-testbed-token]
      expose_headers: [x-backend]
      max_age: 10m
  - name: no-cors
    match: { path_prefix: /other/ }
    to: backend
clusters:
  - name: backend
    protocol: h2c
    endpoints: [{ address: "@grpc@" }]
"#,
        &[("grpc", grpc.to_string()), ("origin", ORIGIN.to_string())],
    ))
    .await
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Binary,
    Text,
}

impl Mode {
    fn content_type(self) -> &'static str {
        match self {
            Mode::Binary => "application/grpc-web+proto",
            Mode::Text => "application/grpc-web-text+proto",
        }
    }

    /// What the gateway answers with: the upstream's `application/grpc` in this mode.
    fn response_type(self) -> &'static str {
        match self {
            Mode::Binary => "application/grpc-web",
            Mode::Text => "application/grpc-web-text",
        }
    }
}

/// A gRPC-Web exchange as a browser's client library sees it.
#[derive(Debug)]
struct WebCall {
    status: StatusCode,
    headers: HeaderMap,
    messages: Vec<Bytes>,
    /// From the trailer frame in the body; empty for a trailers-only answer.
    trailers: Vec<(String, String)>,
}

impl WebCall {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn trailer(&self, name: &str) -> Option<&str> {
        self.trailers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn request_body(mode: Mode, message: &impl Message) -> Bytes {
    let encoded = message.encode_to_vec();
    let mut frame = BytesMut::with_capacity(encoded.len() + 5);
    frame.put_u8(0);
    frame.put_u32(u32::try_from(encoded.len()).expect("message fits a frame"));
    frame.put_slice(&encoded);
    match mode {
        Mode::Binary => frame.freeze(),
        Mode::Text => Bytes::from(STANDARD.encode(&frame)),
    }
}

/// Decodes base64 the way gRPC-Web text clients do: four characters at a time, so padding
/// between separately encoded chunks is fine.
fn decode_text(text: &[u8]) -> Vec<u8> {
    assert_eq!(text.len() % 4, 0, "text body is whole base64 quanta");
    let mut out = Vec::new();
    for quantum in text.chunks(4) {
        out.extend(STANDARD.decode(quantum).expect("base64 quantum"));
    }
    out
}

/// Splits a gRPC-Web response body into messages and the trailer frame.
fn parse_body(mode: Mode, body: &[u8]) -> (Vec<Bytes>, Vec<(String, String)>) {
    let mut data = Bytes::from(match mode {
        Mode::Binary => body.to_vec(),
        Mode::Text => decode_text(body),
    });
    let mut messages = Vec::new();
    let mut trailers = Vec::new();
    while !data.is_empty() {
        assert!(data.len() >= 5, "truncated frame header");
        let flag = data.get_u8();
        let len = data.get_u32() as usize;
        assert!(data.len() >= len, "truncated frame");
        let payload = data.split_to(len);
        if flag & 0x80 != 0 {
            assert!(data.is_empty(), "the trailer frame must be last");
            let text = std::str::from_utf8(&payload).expect("trailers are text");
            for line in text.split("\r\n").filter(|l| !l.is_empty()) {
                let (name, value) = line.split_once(':').expect("name: value");
                trailers.push((name.trim().to_string(), value.trim().to_string()));
            }
        } else {
            messages.push(payload);
        }
    }
    (messages, trailers)
}

fn web_request(
    version: Version,
    addr: SocketAddr,
    path: &str,
    mode: Mode,
    message: &impl Message,
) -> Request<Full<Bytes>> {
    let builder = if version == Version::HTTP_2 {
        Request::post(format!("http://{addr}{path}"))
    } else {
        Request::post(path).header("host", addr.to_string())
    };
    builder
        .header("content-type", mode.content_type())
        .header("accept", mode.content_type())
        .header("x-grpc-web", "1")
        .header("origin", ORIGIN)
        .body(Full::new(request_body(mode, message)))
        .expect("request")
}

async fn call(
    version: Version,
    addr: SocketAddr,
    path: &str,
    mode: Mode,
    message: &impl Message,
) -> WebCall {
    let request = web_request(version, addr, path, mode, message);
    let response = if version == Version::HTTP_2 {
        H2Conn::connect(addr).await.send(request).await
    } else {
        H1Conn::connect(addr).await.send(request).await
    };
    assert_eq!(response.version, version);
    let (messages, trailers) = parse_body(mode, &response.body);
    WebCall {
        status: response.status,
        headers: response.headers,
        messages,
        trailers,
    }
}

fn payload(bytes: &[u8]) -> Option<Payload> {
    Some(Payload {
        r#type: 0,
        body: bytes.to_vec(),
    })
}

fn stream_request(sizes: &[i32], status: Option<(i32, &str)>) -> StreamingOutputCallRequest {
    StreamingOutputCallRequest {
        response_parameters: sizes
            .iter()
            .map(|size| ResponseParameters {
                size: *size,
                interval_us: 0,
            })
            .collect(),
        payload: payload(b"ab"),
        response_status: status.map(|(code, message)| EchoStatus {
            code,
            message: message.into(),
        }),
        ..Default::default()
    }
}

const CASES: [(Version, Mode); 4] = [
    (Version::HTTP_11, Mode::Binary),
    (Version::HTTP_11, Mode::Text),
    (Version::HTTP_2, Mode::Binary),
    (Version::HTTP_2, Mode::Text),
];

#[tokio::test]
async fn unary_calls_in_both_modes_over_h1_and_h2() {
    let (grpc, _backend) = grpc_backend("web-backend").await;
    let gw = gateway_to(grpc).await;
    let addr = gw.listener("plain");
    for (version, mode) in CASES {
        let request = SimpleRequest {
            response_size: 5,
            payload: payload(b"xy"),
            fill_server_id: true,
            ..Default::default()
        };
        let call = call(version, addr, UNARY, mode, &request).await;
        let case = format!("{version:?} {mode:?}: {call:?}");
        assert_eq!(call.status, StatusCode::OK, "{case}");
        assert_eq!(
            call.header("content-type"),
            Some(mode.response_type()),
            "{case}"
        );
        assert_eq!(call.messages.len(), 1, "{case}");
        let response = SimpleResponse::decode(call.messages[0].clone()).expect("SimpleResponse");
        assert_eq!(response.server_id, "web-backend", "{case}");
        assert_eq!(response.payload.expect("payload").body, b"xyxyx", "{case}");
        assert_eq!(call.trailer("grpc-status"), Some("0"), "{case}");
        assert_eq!(
            call.header("access-control-allow-origin"),
            Some(ORIGIN),
            "{case}"
        );
    }
}

#[tokio::test]
async fn server_streams_in_both_modes_over_h1_and_h2() {
    let (grpc, _backend) = grpc_backend("web-backend").await;
    let gw = gateway_to(grpc).await;
    let addr = gw.listener("plain");
    for (version, mode) in CASES {
        let call = call(
            version,
            addr,
            STREAM,
            mode,
            &stream_request(&[1, 2, 3], None),
        )
        .await;
        let case = format!("{version:?} {mode:?}: {call:?}");
        let sizes: Vec<usize> = call
            .messages
            .iter()
            .map(|m| {
                let response = StreamingOutputCallResponse::decode(m.clone()).expect("message");
                response.payload.expect("payload").body.len()
            })
            .collect();
        assert_eq!(sizes, [1, 2, 3], "{case}");
        assert_eq!(call.trailer("grpc-status"), Some("0"), "{case}");
    }
}

#[tokio::test]
async fn a_server_stream_reaches_the_browser_message_by_message() {
    let (grpc, _backend) = grpc_backend("web-backend").await;
    let gw = gateway_to(grpc).await;
    let addr = gw.listener("plain");
    // The second message comes ten minutes after the first: a gateway that waited for the
    // whole response would deliver nothing within the test's patience.
    let request = StreamingOutputCallRequest {
        response_parameters: vec![
            ResponseParameters {
                size: 4,
                interval_us: 0,
            },
            ResponseParameters {
                size: 4,
                interval_us: 600_000_000,
            },
        ],
        ..Default::default()
    };
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP/1.1 handshake");
    tokio::spawn(conn);
    let request = web_request(Version::HTTP_11, addr, STREAM, Mode::Text, &request);
    let response = sender.send_request(request).await.expect("response head");
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut text = Vec::new();
    let first = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let frame = body.frame().await.expect("body open").expect("body frame");
            if let Ok(data) = frame.into_data() {
                text.extend_from_slice(&data);
            }
            let whole = text.len() / 4 * 4;
            let (messages, _) = parse_partial(&decode_text(&text[..whole]));
            if let Some(first) = messages.into_iter().next() {
                return first;
            }
        }
    })
    .await
    .expect("the first message arrives while the stream is still open");
    let response = StreamingOutputCallResponse::decode(first).expect("message");
    assert_eq!(response.payload.expect("payload").body.len(), 4);
}

/// Complete message frames at the start of `data`.
fn parse_partial(mut data: &[u8]) -> (Vec<Bytes>, usize) {
    let mut messages = Vec::new();
    let mut used = 0;
    while data.len() >= 5 {
        let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
        if data.len() < 5 + len {
            break;
        }
        messages.push(Bytes::copy_from_slice(&data[5..5 + len]));
        data = &data[5 + len..];
        used += 5 + len;
    }
    (messages, used)
}

#[tokio::test]
async fn an_error_before_any_message_is_a_trailers_only_answer() {
    let (grpc, _backend) = grpc_backend("web-backend").await;
    let gw = gateway_to(grpc).await;
    let addr = gw.listener("plain");
    for (version, mode) in CASES {
        let request = SimpleRequest {
            response_status: Some(EchoStatus {
                code: 5,
                message: "no such shoe".into(),
            }),
            ..Default::default()
        };
        let call = call(version, addr, UNARY, mode, &request).await;
        let case = format!("{version:?} {mode:?}: {call:?}");
        assert_eq!(call.status, StatusCode::OK, "{case}");
        assert_eq!(call.header("grpc-status"), Some("5"), "{case}");
        assert_eq!(
            call.header("grpc-message"),
            Some("no%20such%20shoe"),
            "{case}"
        );
        assert!(
            call.messages.is_empty() && call.trailers.is_empty(),
            "{case}"
        );
        assert!(
            call.header("content-type")
                .is_some_and(|t| t.starts_with("application/grpc-web")),
            "{case}"
        );
        let exposed = call.header("access-control-expose-headers").unwrap_or("");
        for name in [
            "grpc-status",
            "grpc-message",
            "grpc-status-details-bin",
            "x-backend",
        ] {
            assert!(exposed.contains(name), "{name} not exposed: {case}");
        }
    }
}

#[tokio::test]
async fn an_error_after_messages_ends_the_stream_in_the_trailer_frame() {
    let (grpc, _backend) = grpc_backend("web-backend").await;
    let gw = gateway_to(grpc).await;
    let addr = gw.listener("plain");
    for (version, mode) in CASES {
        let request = stream_request(&[3, 3], Some((9, "stock ran out")));
        let call = call(version, addr, STREAM, mode, &request).await;
        let case = format!("{version:?} {mode:?}: {call:?}");
        assert_eq!(call.messages.len(), 2, "{case}");
        assert_eq!(call.trailer("grpc-status"), Some("9"), "{case}");
        assert_eq!(
            call.trailer("grpc-message"),
            Some("stock%20ran%20out"),
            "{case}"
        );
        assert_eq!(call.header("grpc-status"), None, "{case}");
    }
}

#[tokio::test]
async fn the_gateway_answers_preflights_itself() {
    let (grpc, _backend) = grpc_backend("web-backend").await;
    let gw = gateway_to(grpc).await;
    let addr = gw.listener("plain");
    let preflight = |path: &str, origin: &str| {
        Request::options(path)
            .header("host", addr.to_string())
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,x-grpc-web,x-testbed-token",
            )
            .body(empty())
            .expect("preflight")
    };

    let mut conn = H1Conn::connect(addr).await;
    let allowed = conn.send(preflight(UNARY, ORIGIN)).await;
    assert_eq!(allowed.status, StatusCode::NO_CONTENT, "{allowed:?}");
    assert_eq!(allowed.header("access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(allowed.header("access-control-allow-methods"), Some("POST"));
    assert_eq!(allowed.header("access-control-max-age"), Some("600"));
    assert_eq!(allowed.header("vary"), Some("origin"));
    let headers = allowed.header("access-control-allow-headers").unwrap_or("");
    for name in [
        "content-type",
        "x-grpc-web",
        "x-user-agent",
        "grpc-timeout",
        "x-testbed-token",
    ] {
        assert!(headers.contains(name), "{name} not allowed: {allowed:?}");
    }
    assert_eq!(
        allowed.backend(),
        None,
        "a preflight never reaches the backend"
    );

    let foreign = conn.send(preflight(UNARY, "http://evil.test")).await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN, "{foreign:?}");
    assert_eq!(foreign.header("access-control-allow-origin"), None);
    assert_eq!(foreign.backend(), None);

    let no_cors = conn.send(preflight("/other/thing", ORIGIN)).await;
    assert_eq!(no_cors.status, StatusCode::FORBIDDEN, "{no_cors:?}");
    assert_eq!(no_cors.backend(), None);
}

#[tokio::test]
async fn calls_from_other_origins_get_no_cors_headers() {
    let (grpc, _backend) = grpc_backend("web-backend").await;
    let gw = gateway_to(grpc).await;
    let addr = gw.listener("plain");
    let mut request = web_request(
        Version::HTTP_11,
        addr,
        UNARY,
        Mode::Binary,
        &SimpleRequest::default(),
    );
    request
        .headers_mut()
        .insert("origin", http::HeaderValue::from_static("http://evil.test"));
    let response = H1Conn::connect(addr).await.send(request).await;
    // The call itself goes through (CORS is the browser's check), but the browser will not
    // let the other site's page read it.
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.header("access-control-allow-origin"), None);
    assert_eq!(response.header("access-control-expose-headers"), None);
}

#[tokio::test]
async fn gateway_errors_reach_the_page_readable() {
    let down = closed_port().await;
    let gw = gateway_to(down).await;
    let addr = gw.listener("plain");
    for mode in [Mode::Binary, Mode::Text] {
        let call = call(
            Version::HTTP_11,
            addr,
            UNARY,
            mode,
            &SimpleRequest::default(),
        )
        .await;
        assert_eq!(call.status, StatusCode::OK, "{call:?}");
        assert_eq!(call.header("grpc-status"), Some("14"), "{call:?}");
        assert!(
            call.header("content-type")
                .is_some_and(|t| t.starts_with("application/grpc-web")),
            "{call:?}"
        );
        assert_eq!(call.header("access-control-allow-origin"), Some(ORIGIN));
    }
}

#[tokio::test]
async fn grpc_web_calls_are_counted_as_grpc_web() {
    let (grpc, _backend) = grpc_backend("web-backend").await;
    let gw = gateway_to(grpc).await;
    let addr = gw.listener("plain");
    let call = call(
        Version::HTTP_11,
        addr,
        UNARY,
        Mode::Binary,
        &SimpleRequest::default(),
    )
    .await;
    assert_eq!(call.trailer("grpc-status"), Some("0"));
    let metrics = http1_get(gw.admin(), "/metrics", &[]).await.text();
    let counted = metrics.lines().any(|line| {
        line.starts_with("sekisho_requests_total{")
            && line.contains(r#"route="web""#)
            && line.contains(r#"protocol="grpc-web""#)
            && line.contains(r#"grpc_status="0""#)
    });
    assert!(counted, "no grpc-web request counted:\n{metrics}");
}

#[tokio::test]
async fn routes_to_http1_clusters_pass_grpc_web_through_untouched() {
    let (http, _backend) = http_backend("web-echo").await;
    let gw = start_gateway(&fill(
        r#"
access_log: { enabled: false }
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: echo
    to: echo
clusters:
  - name: echo
    endpoints: [{ address: "@http@" }]
"#,
        &[("http", http.to_string())],
    ))
    .await;
    let addr = gw.listener("plain");
    let request = web_request(
        Version::HTTP_11,
        addr,
        UNARY,
        Mode::Text,
        &SimpleRequest::default(),
    );
    let sent = request
        .body()
        .clone()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let response = H1Conn::connect(addr).await.send(request).await;
    let seen = response.json();
    assert_eq!(seen["headers"]["content-type"], Mode::Text.content_type());
    assert_eq!(seen["body_len"], sent.len());
}

#[test]
fn config_errors_name_the_setting() {
    let dir = TempDir::new("grpc-web-config");
    let path = dir.write(
        "gateway.yaml",
        r#"listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: web
    to: rest
    grpc_web: {}
    cors:
      allow_origins: ["https://app.example.com/", "*"]
      allow_headers: ["bad header"]
clusters:
  - name: rest
    endpoints: [{ address: "127.0.0.1:1" }]
"#,
    );
    let err = sekisho::config::load(&path)
        .expect_err("config must be refused")
        .to_string();
    for expected in [
        "routes[0].grpc_web: gRPC-Web is translated to gRPC, which needs HTTP/2",
        ":9:23: routes[0].cors.allow_origins[0]: expected scheme://host[:port]",
        ":9:51: routes[0].cors.allow_origins[1]: \"*\" must be the only origin",
        ":10:23: routes[0].cors.allow_headers[0]: not a header name",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}

#[tokio::test]
async fn route_policies_apply_to_grpc_web_as_to_grpc() {
    let (grpc, _backend) = grpc_backend("web-backend").await;
    let gw = start_gateway(&fill(
        r#"
access_log: { enabled: false }
listeners:
  - name: plain
    address: 127.0.0.1:0
routes:
  - name: web
    match: { grpc_service: grpc.testing.TestService }
    to: backend
    ip_acl: { deny: [127.0.0.1] }
    cors: { allow_origins: ["@origin@"] }
clusters:
  - name: backend
    protocol: h2c
    endpoints: [{ address: "@grpc@" }]
"#,
        &[("grpc", grpc.to_string()), ("origin", ORIGIN.to_string())],
    ))
    .await;
    let addr = gw.listener("plain");

    let native = raw_grpc(addr, UNARY, &SimpleRequest::default(), &[]).await;
    assert_eq!(native.grpc_status(), Some(7), "{native:?}");

    for mode in [Mode::Binary, Mode::Text] {
        let call = call(
            Version::HTTP_11,
            addr,
            UNARY,
            mode,
            &SimpleRequest::default(),
        )
        .await;
        assert_eq!(call.header("grpc-status"), Some("7"), "{call:?}");
        assert_eq!(
            call.header("x-backend"),
            None,
            "refused before the backend: {call:?}"
        );
        assert!(
            call.header("content-type")
                .is_some_and(|t| t.starts_with("application/grpc-web")),
            "{call:?}"
        );
        // The page can read why it was refused.
        assert_eq!(call.header("access-control-allow-origin"), Some(ORIGIN));
    }
}

#[tokio::test]
async fn a_page_without_a_token_reads_why_it_was_refused() {
    let (grpc, _backend) = grpc_backend("web-backend").await;
    let dir = TempDir::new("grpc-web-jwt");
    // A public key only: no token can be minted here, and none is needed to be refused.
    let jwks = dir.write(
        "jwks.json",
        r#"{"keys": [{"kty": "EC", "crv": "P-256", "x": "Z2NNd-lEMRPkZ-DPYdM-sPY7flBC3Ul-NVJg-7y0Tgk", "y": "KMZwYZBp2K8HovixDHdnL6jrRzSZYhxc1oRUS5163TU", "kid": "web", "alg": "ES256", "use": "sig"}]}"#,
    );
    let gw = start_gateway_in(
        dir,
        &fill(
            r#"
listeners:
  - name: plain
    address: 127.0.0.1:0
jwt_providers:
  - name: app-users
    keys: { jwks_file: "@jwks@" }
routes:
  - name: web
    match: { grpc_service: grpc.testing.TestService }
    jwt: { provider: app-users }
    cors: { allow_origins: ["@origin@"] }
    to: backend
clusters:
  - name: backend
    protocol: h2c
    endpoints: [{ address: "@grpc@" }]
"#,
            &[
                ("jwks", jwks.display().to_string()),
                ("grpc", grpc.to_string()),
                ("origin", ORIGIN.to_string()),
            ],
        ),
    )
    .await;
    let call = call(
        Version::HTTP_11,
        gw.listener("plain"),
        UNARY,
        Mode::Binary,
        &SimpleRequest::default(),
    )
    .await;
    assert_eq!(call.header("grpc-status"), Some("16"), "{call:?}");
    assert_eq!(
        call.header("x-backend"),
        None,
        "refused before the backend: {call:?}"
    );
    assert_eq!(call.header("access-control-allow-origin"), Some(ORIGIN));
}
