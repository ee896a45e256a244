//! Hostile HTTP/2 backends: an endpoint that breaks the protocol, written by hand with
//! `h2frame` and `hpack`, behind the real gateway, asked by a real HTTP/1.1 client.
//!
//! A backend is trusted with requests, not with the gateway: whatever it answers, the
//! client gets a clear 502, the backend is told what it broke (RST_STREAM or GOAWAY with
//! the RFC 9113 code), a header block that never ends is cut within a bound, and the
//! gateway goes on serving other routes.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use h2frame::{Decoded, ErrorCode, Frame, FrameType, PREFACE, Settings, StreamId};
use hpack::Field;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the backend answers a request.
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// Response headers without `:status`.
    NoStatus,
    /// Bytes that are no frame at all.
    Garbage,
    /// A PUSH_PROMISE, which the gateway's SETTINGS (ENABLE_PUSH 0) forbid.
    Push,
    /// A header block continued without end.
    HeaderFlood,
}

/// What the backend saw of the gateway's answer, and how much it wrote.
#[derive(Default)]
struct Seen {
    resets: Vec<ErrorCode>,
    goaways: Vec<ErrorCode>,
    flood_bytes: usize,
}

type Log = Arc<Mutex<Seen>>;

/// More than any bound the gateway could keep: a flood that gets this far was not cut.
const FLOOD_LIMIT: usize = 64 * 1024 * 1024;

async fn hostile_backend(answer: Answer) -> (SocketAddr, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let log = Log::default();
    let seen = log.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(socket, answer, seen.clone()));
        }
    });
    (addr, log)
}

/// One connection: SETTINGS both ways, then each request answered as `answer` says, and
/// every RST_STREAM and GOAWAY the gateway sends noted until it closes.
async fn serve(mut socket: TcpStream, answer: Answer, log: Log) {
    let mut out = BytesMut::new();
    h2frame::write_settings(&mut out, &Settings::default());
    if socket.write_all(&out).await.is_err() {
        return;
    }
    let mut input = BytesMut::new();
    let mut preface = false;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        input.extend_from_slice(&buf[..n]);
        if !preface {
            if input.len() < PREFACE.len() {
                continue;
            }
            assert_eq!(&input[..PREFACE.len()], PREFACE, "the gateway's preface");
            let _ = input.split_to(PREFACE.len());
            preface = true;
        }
        let mut replies = BytesMut::new();
        let mut requests = Vec::new();
        loop {
            let (len, stream) = match h2frame::decode(&input, h2frame::MAX_MAX_FRAME_SIZE) {
                Ok(Decoded::Frame(frame, len)) => {
                    let stream = match frame {
                        Frame::Settings { ack: false, .. } => {
                            h2frame::write_settings_ack(&mut replies);
                            None
                        }
                        Frame::Headers { stream, .. } => Some(stream),
                        Frame::RstStream { code, .. } => {
                            log.lock().expect("log").resets.push(code);
                            None
                        }
                        Frame::GoAway { code, .. } => {
                            log.lock().expect("log").goaways.push(code);
                            None
                        }
                        _ => None,
                    };
                    (len, stream)
                }
                Ok(Decoded::Incomplete { .. }) => break,
                Err(e) => panic!("the gateway sent a bad frame: {e:?}"),
            };
            let _ = input.split_to(len);
            requests.extend(stream);
        }
        if socket.write_all(&replies).await.is_err() {
            return;
        }
        for stream in requests {
            if !answer_with(&mut socket, stream, answer, &log).await {
                // The flood ended with the socket: read what the gateway said last.
                drain(&mut socket, &mut input, &log).await;
                return;
            }
        }
    }
}

/// Writes the answer; `false` once the socket stopped taking it.
async fn answer_with(socket: &mut TcpStream, stream: StreamId, answer: Answer, log: &Log) -> bool {
    let mut out = BytesMut::new();
    let mut encoder = hpack::Encoder::new();
    let mut block = Vec::new();
    match answer {
        Answer::NoStatus => {
            encoder.encode([Field::new(b"content-type", b"text/plain")], &mut block);
            h2frame::write_headers(&mut out, stream, true, None, &block, 16_384);
        }
        Answer::Garbage => out.extend_from_slice(&[0xff; 64]),
        Answer::Push => {
            encoder.encode(
                [
                    Field::new(b":method", b"GET"),
                    Field::new(b":scheme", b"http"),
                    Field::new(b":authority", b"backend"),
                    Field::new(b":path", b"/pushed"),
                ],
                &mut block,
            );
            h2frame::write_push_promise(&mut out, stream, StreamId::new(2), &block, 16_384);
        }
        Answer::HeaderFlood => {
            encoder.encode([Field::new(b":status", b"200")], &mut block);
            h2frame::write_frame(&mut out, FrameType::HEADERS, 0, stream, &block);
            if socket.write_all(&out).await.is_err() {
                return false;
            }
            let junk = vec![b'a'; 16 * 1024];
            let mut frame = BytesMut::new();
            h2frame::write_frame(&mut frame, FrameType::CONTINUATION, 0, stream, &junk);
            loop {
                if socket.write_all(&frame).await.is_err() {
                    return false;
                }
                let mut seen = log.lock().expect("log");
                seen.flood_bytes += frame.len();
                if seen.flood_bytes > FLOOD_LIMIT {
                    return false;
                }
            }
        }
    }
    socket.write_all(&out).await.is_ok()
}

/// Reads what is left on the socket, noting the GOAWAY it holds.
async fn drain(socket: &mut TcpStream, input: &mut BytesMut, log: &Log) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while let Ok(Decoded::Frame(frame, len)) =
            h2frame::decode(input, h2frame::MAX_MAX_FRAME_SIZE)
        {
            if let Frame::GoAway { code, .. } = frame {
                log.lock().expect("log").goaways.push(code);
            }
            let _ = input.split_to(len);
        }
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => input.extend_from_slice(&buf[..n]),
        }
    }
}

/// A gateway with `/evil/` to the hostile backend and everything else to a good one.
async fn gateway(answer: Answer) -> (Running, Log, interop::ServerHandle) {
    let (evil, log) = hostile_backend(answer).await;
    let (good, handle) = http_backend("good").await;
    let dir = TempDir::new("gw");
    let log_path = dir.path().join("access.log");
    let yaml = fill(
        r#"
access_log: { path: "@log@" }
listeners:
  - name: main
    address: 127.0.0.1:0
routes:
  - name: evil
    match: { path_prefix: /evil/ }
    to: evil
  - name: good
    to: good
clusters:
  - name: evil
    protocol: h2c
    endpoints: [{ address: "@evil@" }]
  - name: good
    endpoints: [{ address: "@good@" }]
"#,
        &[
            ("evil", evil.to_string()),
            ("good", good.to_string()),
            ("log", log_path.display().to_string()),
        ],
    );
    (start_gateway_in(dir, &yaml).await, log, handle)
}

/// The client gets 502, the access log names what the backend broke (`why`), and the
/// gateway still serves the good route.
async fn answered_502_and_still_serves(gw: &Running, why: &str) {
    let addr = gw.listener("main");
    let response = http1_get(addr, "/evil/x", &[]).await;
    assert_eq!(response.status, 502, "the client's answer: {response:?}");
    let good = http1_get(addr, "/fine", &[]).await;
    assert_eq!(good.status, 200, "another route after the attack");
    let logged = eventually(
        std::time::Duration::from_secs(5),
        "the access log line",
        || async {
            let text = std::fs::read_to_string(gw.dir.path().join("access.log")).ok()?;
            text.lines()
                .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                .find(|entry| entry["path"] == "/evil/x")
        },
    )
    .await;
    let error = logged["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(why),
        "logged error {error:?} does not say {why:?}"
    );
}

#[tokio::test]
async fn a_response_without_status_is_refused_on_its_stream() {
    let (gw, log, _good) = gateway(Answer::NoStatus).await;
    answered_502_and_still_serves(&gw, "stream reset by the gateway (PROTOCOL_ERROR)").await;
    eventually(std::time::Duration::from_secs(5), "the reset", || async {
        let seen = log.lock().expect("log");
        (seen.resets.contains(&ErrorCode::PROTOCOL_ERROR) && seen.goaways.is_empty()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn bytes_that_are_no_frame_end_the_connection_with_goaway() {
    let (gw, log, _good) = gateway(Answer::Garbage).await;
    answered_502_and_still_serves(
        &gw,
        "the upstream connection ended: frame longer than SETTINGS_MAX_FRAME_SIZE",
    )
    .await;
    eventually(std::time::Duration::from_secs(5), "the GOAWAY", || async {
        (!log.lock().expect("log").goaways.is_empty()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_push_promise_is_a_protocol_error() {
    let (gw, log, _good) = gateway(Answer::Push).await;
    let why = "the upstream connection ended: PUSH_PROMISE while push is disabled";
    answered_502_and_still_serves(&gw, why).await;
    eventually(std::time::Duration::from_secs(5), "the GOAWAY", || async {
        let seen = log.lock().expect("log");
        seen.goaways
            .contains(&ErrorCode::PROTOCOL_ERROR)
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_header_block_without_end_is_cut_within_a_bound() {
    let (gw, log, _good) = gateway(Answer::HeaderFlood).await;
    answered_502_and_still_serves(&gw, "the upstream connection ended: header block too large")
        .await;
    eventually(std::time::Duration::from_secs(10), "the GOAWAY", || async {
        let seen = log.lock().expect("log");
        seen.goaways
            .contains(&ErrorCode::ENHANCE_YOUR_CALM)
            .then_some(())
    })
    .await;
    let flood = log.lock().expect("log").flood_bytes;
    println!("the backend flooded {flood} bytes of CONTINUATION before the gateway cut it");
    assert!(
        flood < 16 * 1024 * 1024,
        "the flood went on for {flood} bytes"
    );
}
