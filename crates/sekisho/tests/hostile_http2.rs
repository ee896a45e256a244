//! Hostile HTTP/2 clients: frames no ordinary client library sends, written by hand with
//! `h2frame` and `hpack` against the real gateway (h2c listener) and a real backend that
//! records every request it receives.
//!
//! The attacks, and what a user sees the gateway do about each:
//!
//! - Rapid reset (CVE-2023-44487): thousands of streams each opened and cancelled at once.
//!   The connection is sent GOAWAY(ENHANCE_YOUR_CALM) and closed long before the streams
//!   run out, and the backend sees a small fraction of them.
//! - Cancel after accept: streams opened, left until the backend has them, then reset,
//!   batch after batch, so each costs the backend a request while the client never waits
//!   for one. Once the client has cancelled far more streams than it let finish, the
//!   connection is sent GOAWAY(ENHANCE_YOUR_CALM), and the backend sees a bounded number.
//! - CONTINUATION flood (CVE-2024-27316 family): a header block that never ends. The
//!   connection is sent GOAWAY and closed within four times the listener's
//!   `max_header_list_size`, and nothing reaches the backend.
//! - HPACK bomb: a 4 KiB header put in the dynamic table, then referenced by its one-byte
//!   index. A block a little over the header-list bound gets 431; one that decodes to
//!   megabytes gets GOAWAY; neither reaches the backend.
//! - PING and SETTINGS floods from a client that never reads: the gateway counts the
//!   answers it owes and has not been able to write; with too many owed it stops reading
//!   the flooder (closing it when its keep-alive PING goes unanswered), and with more it
//!   sends GOAWAY(ENHANCE_YOUR_CALM) and closes at once. Either way the flood takes
//!   bounded memory.
//! - Protocol errors: a WINDOW_UPDATE of 0 on the connection gets GOAWAY(PROTOCOL_ERROR);
//!   DATA on a closed stream is refused with STREAM_CLOSED.
//! - DATA frames that carry (next to) nothing: a hundred thousand empty ones on one request
//!   get GOAWAY(ENHANCE_YOUR_CALM), while a few dozen are served; sixty thousand one-byte
//!   frames are cut off the same way or served whole, never hung or garbled.
//!
//! After every attack a separate, well-behaved client still gets 200.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use h2frame::{
    Decoded, ErrorCode, Frame, FrameType, MAX_MAX_FRAME_SIZE, PREFACE, Settings, StreamId, flags,
};
use hpack::Field;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// The header-list bound the listeners under attack are configured with.
const MAX_HEADER_LIST: usize = 16 * 1024;

/// The largest frame payload a peer must accept before SETTINGS say otherwise.
const FRAME: usize = 16 * 1024;

/// Every request a backend received: its path and body length.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(String, usize)>>>);

impl Received {
    /// How many requests arrived whose path starts with `prefix`.
    fn count(&self, prefix: &str) -> usize {
        self.0
            .lock()
            .expect("received lock")
            .iter()
            .filter(|(path, _)| path.starts_with(prefix))
            .count()
    }

    /// The body lengths of the requests for exactly `path`.
    fn bodies(&self, path: &str) -> Vec<usize> {
        self.0
            .lock()
            .expect("received lock")
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, len)| *len)
            .collect()
    }
}

/// An HTTP/1.1 backend that reads each request's body and records it, then answers 200;
/// a request for a path under `/slow/` is answered only after ten seconds, as a backend
/// doing real work would.
async fn recording_backend() -> (SocketAddr, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let received = Received::default();
    let log = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let log = log.clone();
                    async move {
                        let path = req.uri().path().to_owned();
                        let len = match req.into_body().collect().await {
                            Ok(body) => body.to_bytes().len(),
                            Err(_) => usize::MAX,
                        };
                        let slow = path.starts_with("/slow/");
                        log.0.lock().expect("received lock").push((path, len));
                        if slow {
                            tokio::time::sleep(Duration::from_secs(10)).await;
                        }
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, received)
}

/// A gateway with one listener `name` (its `http2` settings given inline) in front of a
/// recording backend.
async fn gateway(name: &str, http2: &str) -> (Running, Received) {
    gateway_with(name, http2, "").await
}

/// Same, with more of the listener's settings (`listener`, e.g. `send_timeout: 2s`).
async fn gateway_with(name: &str, http2: &str, listener: &str) -> (Running, Received) {
    let (backend, received) = recording_backend().await;
    let yaml = fill(
        r#"
admin: { address: 127.0.0.1:0 }
listeners:
  - name: @name@
    address: 127.0.0.1:0
    http2: { @http2@ }
    @listener@
routes:
  - name: all
    to: backend
clusters:
  - name: backend
    endpoints: [{ address: "@backend@" }]
"#,
        &[
            ("name", name.to_owned()),
            ("http2", http2.to_owned()),
            ("listener", listener.to_owned()),
            ("backend", backend.to_string()),
        ],
    );
    (start_gateway_in(TempDir::new(name), &yaml).await, received)
}

/// A legitimate request from a separate client is still served.
async fn still_serves(addr: SocketAddr, path: &str) {
    let mut conn = H2Conn::connect(addr).await;
    let response = conn
        .send(
            get_h2(&addr.to_string(), path)
                .body(empty())
                .expect("request"),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
}

/// Waits for the backend to settle (requests the gateway forwarded before it cut the
/// connection may still be arriving), then counts.
async fn settled_count(received: &Received, prefix: &str) -> usize {
    let mut last = received.count(prefix);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = received.count(prefix);
        if now == last {
            return now;
        }
        last = now;
    }
}

/// A frame the gateway sent, reduced to what the tests look at.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Got {
    Headers {
        stream: u32,
        status: Option<u16>,
        end_stream: bool,
    },
    Data {
        stream: u32,
        len: usize,
        end_stream: bool,
    },
    Reset {
        stream: u32,
        code: ErrorCode,
    },
    GoAway {
        last_stream: u32,
        code: ErrorCode,
        debug: String,
    },
    Ping {
        ack: bool,
    },
    Settings {
        ack: bool,
    },
    Other(FrameType),
}

/// How a flood of writes ended.
#[derive(Debug, PartialEq, Eq)]
enum Flood {
    /// Everything was written.
    All,
    /// A write made no progress for the stall time; the connection was still open.
    Stalled { written: usize },
    /// The gateway closed the connection.
    Closed { written: usize },
}

/// A hand-driven HTTP/2 client: it writes whatever bytes a test builds and decodes
/// what the gateway sends only when asked, answering nothing.
struct Raw {
    stream: TcpStream,
    authority: String,
    encoder: hpack::Encoder,
    decoder: hpack::Decoder,
    inbox: Vec<u8>,
    /// A header block the gateway has not finished: stream, END_STREAM, fragments.
    partial: Option<(u32, bool, Vec<u8>)>,
    frames: Vec<Got>,
    closed: bool,
}

impl Raw {
    /// Connects and sends the preface and an empty SETTINGS frame.
    async fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).await.expect("connect");
        Raw::start(stream, addr).await
    }

    /// Same, with small socket buffers, so that what the gateway writes and the client
    /// does not read backs up into the gateway quickly.
    async fn connect_with_small_buffers(addr: SocketAddr) -> Raw {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        socket.set_send_buffer_size(4096).expect("SO_SNDBUF");
        let stream = socket.connect(addr).await.expect("connect");
        Raw::start(stream, addr).await
    }

    async fn start(mut stream: TcpStream, addr: SocketAddr) -> Raw {
        let mut hello = PREFACE.to_vec();
        h2frame::write_settings(&mut hello, &Settings::default());
        stream.write_all(&hello).await.expect("preface");
        Raw {
            stream,
            authority: addr.to_string(),
            encoder: hpack::Encoder::new(),
            decoder: hpack::Decoder::new(hpack::DEFAULT_TABLE_SIZE),
            inbox: Vec::new(),
            partial: None,
            frames: Vec::new(),
            closed: false,
        }
    }

    /// An HPACK block for a request to `path`, from this connection's encoder.
    fn request_block(&mut self, method: &str, path: &str) -> Vec<u8> {
        let mut block = Vec::new();
        let fields = [
            Field::new(b":method", method.as_bytes()),
            Field::new(b":scheme", b"http"),
            Field::new(b":authority", self.authority.as_bytes()),
            Field::new(b":path", path.as_bytes()),
        ];
        self.encoder.encode(fields, &mut block);
        block
    }

    /// Writes `bytes`; `Stalled` if a write makes no progress for `stall`.
    async fn send(&mut self, bytes: &[u8], stall: Duration) -> Flood {
        self.flood(bytes, bytes.len(), stall).await
    }

    /// Writes `chunk` over and over until `total` bytes are out, the writes stall for
    /// `stall`, or the gateway closes the connection.
    async fn flood(&mut self, chunk: &[u8], total: usize, stall: Duration) -> Flood {
        let mut written = 0;
        while written < total {
            match tokio::time::timeout(stall, self.stream.write_all(chunk)).await {
                Err(_) => return Flood::Stalled { written },
                Ok(Err(_)) => return Flood::Closed { written },
                Ok(Ok(())) => written += chunk.len(),
            }
        }
        Flood::All
    }

    /// Reads until `done` holds for the frames seen so far, the gateway closes the
    /// connection, or `limit` passes; whether `done` held.
    async fn read_until(&mut self, limit: Duration, done: impl Fn(&[Got]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            self.parse();
            if done(&self.frames) {
                return true;
            }
            if self.closed {
                return false;
            }
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Err(_) => return false,
                Ok(Ok(0) | Err(_)) => self.closed = true,
                Ok(Ok(n)) => self.inbox.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// Reads (and decodes) until the gateway closes the connection; whether it did
    /// within `limit`.
    async fn read_until_closed(&mut self, limit: Duration) -> bool {
        self.read_until(limit, |_| false).await;
        self.closed
    }

    /// The GOAWAY the gateway sent, if any.
    fn goaway(&self) -> Option<(ErrorCode, u32, String)> {
        self.frames.iter().find_map(|got| match got {
            Got::GoAway {
                code,
                last_stream,
                debug,
            } => Some((*code, *last_stream, debug.clone())),
            _ => None,
        })
    }

    /// Decodes the whole frames in the inbox.
    fn parse(&mut self) {
        let inbox = std::mem::take(&mut self.inbox);
        let mut at = 0;
        while let Some(rest) = inbox.get(at..) {
            match h2frame::decode(rest, MAX_MAX_FRAME_SIZE) {
                Ok(Decoded::Frame(frame, used)) => {
                    at += used;
                    if let Some(got) = self.note(frame) {
                        self.frames.push(got);
                    }
                }
                Ok(Decoded::Incomplete { .. }) => break,
                Err(e) => panic!("the gateway sent a malformed frame: {e:?}"),
            }
        }
        self.inbox = inbox.get(at..).unwrap_or_default().to_vec();
    }

    fn note(&mut self, frame: Frame<'_>) -> Option<Got> {
        Some(match frame {
            Frame::Headers {
                stream,
                end_stream,
                end_headers,
                fragment,
                ..
            } => {
                self.partial = Some((stream.get(), end_stream, fragment.to_vec()));
                if !end_headers {
                    return None;
                }
                self.finish_headers()
            }
            Frame::Continuation {
                end_headers,
                fragment,
                ..
            } => {
                let (_, _, block) = self.partial.as_mut().expect("CONTINUATION after HEADERS");
                block.extend_from_slice(fragment);
                if !end_headers {
                    return None;
                }
                self.finish_headers()
            }
            Frame::Data {
                stream,
                end_stream,
                data,
                ..
            } => Got::Data {
                stream: stream.get(),
                len: data.len(),
                end_stream,
            },
            Frame::RstStream { stream, code } => Got::Reset {
                stream: stream.get(),
                code,
            },
            Frame::GoAway {
                last_stream,
                code,
                debug,
            } => Got::GoAway {
                last_stream: last_stream.get(),
                code,
                debug: String::from_utf8_lossy(debug).into_owned(),
            },
            Frame::Ping { ack, .. } => Got::Ping { ack },
            Frame::Settings { ack, .. } => Got::Settings { ack },
            Frame::WindowUpdate { .. } => Got::Other(FrameType::WINDOW_UPDATE),
            Frame::Priority { .. } => Got::Other(FrameType::PRIORITY),
            Frame::PushPromise { .. } => Got::Other(FrameType::PUSH_PROMISE),
            Frame::Unknown { kind, .. } => Got::Other(kind),
        })
    }

    fn finish_headers(&mut self) -> Got {
        let (stream, end_stream, block) = self.partial.take().expect("a header block");
        let fields = self
            .decoder
            .decode_to_vec(&block)
            .expect("the gateway's header block decodes");
        let status = fields
            .iter()
            .find(|h| h.name == b":status")
            .and_then(|h| std::str::from_utf8(&h.value).ok()?.parse().ok());
        Got::Headers {
            stream,
            status,
            end_stream,
        }
    }
}

/// Whether the frames hold a response to `stream` that has ended.
fn response_ended(frames: &[Got], stream: u32) -> bool {
    frames.iter().any(|got| match got {
        Got::Headers {
            stream: s,
            end_stream: true,
            ..
        }
        | Got::Data {
            stream: s,
            end_stream: true,
            ..
        } => *s == stream,
        Got::Reset { stream: s, .. } => *s == stream,
        _ => false,
    })
}

/// The response status the gateway sent on `stream`.
fn status(frames: &[Got], stream: u32) -> Option<u16> {
    frames.iter().find_map(|got| match got {
        Got::Headers {
            stream: s, status, ..
        } if *s == stream => *status,
        _ => None,
    })
}

fn id(n: u32) -> StreamId {
    StreamId::new(n)
}

#[tokio::test]
async fn rapid_reset_is_cut_off_with_enhance_your_calm() {
    let (gw, received) = gateway("rapid", "max_concurrent_streams: 100").await;
    let addr = gw.listener("rapid");

    // Ten thousand streams, each opened (HEADERS with END_STREAM) and cancelled in the
    // same breath, written without reading a byte.
    const STREAMS: u32 = 10_000;
    let mut raw = Raw::connect(addr).await;
    let mut attack = Vec::new();
    for n in 0..STREAMS {
        let stream = id(2 * n + 1);
        let block = raw.request_block("GET", &format!("/rapid/{n}"));
        h2frame::write_headers(&mut attack, stream, true, None, &block, FRAME as u32);
        h2frame::write_rst_stream(&mut attack, stream, ErrorCode::CANCEL);
    }
    let sent = raw.send(&attack, Duration::from_secs(5)).await;
    let closed = raw.read_until_closed(Duration::from_secs(10)).await;
    assert!(
        closed,
        "still open after the attack; sent {sent:?}, got {:?}",
        raw.frames
    );
    let (code, last_stream, debug) = raw.goaway().expect("a GOAWAY before the close");
    assert_eq!(code, ErrorCode::ENHANCE_YOUR_CALM, "GOAWAY {debug:?}");
    assert!(
        last_stream < 2 * STREAMS / 10,
        "cut off after stream {last_stream} of {}",
        2 * STREAMS - 1
    );

    let reached = settled_count(&received, "/rapid/").await;
    assert!(
        reached < STREAMS as usize / 10,
        "{reached} of {STREAMS} cancelled requests reached the backend"
    );
    println!(
        "rapid reset: GOAWAY {code:?} ({debug:?}) last stream {last_stream}, {reached} of {STREAMS} at the backend, write {sent:?}"
    );

    still_serves(addr, "/after-rapid-reset").await;
}

#[tokio::test]
async fn cancelling_streams_once_the_backend_has_them_is_cut_off() {
    let (gw, received) = gateway("cancels", "max_concurrent_streams: 100").await;
    let addr = gw.listener("cancels");

    // Batches of 100 requests to a backend that takes ten seconds each: each batch is
    // left until the backend has all of it, then cancelled, which frees the streams for
    // the next batch at once. h2's rapid-reset guard counts only streams reset before
    // the gateway took them, so it never sees these.
    const BATCH: u32 = 100;
    const BATCHES: u32 = 40;
    let mut raw = Raw::connect(addr).await;
    let mut next = 1;
    let mut sent = 0;
    for batch in 0..BATCHES {
        let streams: Vec<u32> = (0..BATCH).map(|i| next + 2 * i).collect();
        next += 2 * BATCH;
        let mut frames = Vec::new();
        for &stream in &streams {
            let block = raw.request_block("GET", &format!("/slow/{batch}/{stream}"));
            h2frame::write_headers(&mut frames, id(stream), true, None, &block, FRAME as u32);
        }
        if raw.send(&frames, Duration::from_secs(5)).await != Flood::All {
            break;
        }
        sent += BATCH;
        // The client cannot see the backend, but it can wait as long as a request takes
        // to get there; the test waits for exactly that.
        let arrived = |received: &Received| received.count(&format!("/slow/{batch}/")) as u32;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while arrived(&received) < BATCH && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut resets = Vec::new();
        for &stream in &streams {
            h2frame::write_rst_stream(&mut resets, id(stream), ErrorCode::CANCEL);
        }
        if raw.send(&resets, Duration::from_secs(5)).await != Flood::All {
            break;
        }
        if raw
            .read_until(Duration::from_millis(1), |frames| {
                frames.iter().any(|f| matches!(f, Got::GoAway { .. }))
            })
            .await
        {
            break;
        }
    }
    let closed = raw.read_until_closed(Duration::from_secs(10)).await;
    let reached = settled_count(&received, "/slow/").await;
    println!(
        "cancel after accept: {sent} streams sent, {reached} at the backend, GOAWAY {:?}",
        raw.goaway()
    );
    assert!(
        closed,
        "still open after {sent} cancelled streams; {reached} reached the backend"
    );
    let (code, _, debug) = raw.goaway().expect("a GOAWAY before the close");
    assert_eq!(code, ErrorCode::ENHANCE_YOUR_CALM, "GOAWAY {debug:?}");
    assert!(
        reached <= 400,
        "{reached} cancelled requests reached the backend before the cut"
    );
    let cut = metric(
        gw.admin(),
        "sekisho_downstream_connections_cut_total",
        &[("listener", "cancels"), ("reason", "cancelled_streams")],
    )
    .await;
    assert_eq!(cut, 1.0, "the cut is counted in the metrics");

    still_serves(addr, "/after-cancels").await;
}

/// A header block that never ends: HEADERS without END_HEADERS, then CONTINUATION frames,
/// each with `fields_per_frame` new 1 KiB literal headers, until `budget` bytes of frames.
fn endless_header_block(
    raw: &mut Raw,
    path: &str,
    fields_per_frame: usize,
    budget: usize,
) -> Vec<u8> {
    let value = vec![b'v'; 1000];
    let mut block = raw.request_block("GET", path);
    let mut out = Vec::new();
    let mut kind = FrameType::HEADERS;
    let mut flags = flags::END_STREAM;
    let mut next = 0;
    while out.len() < budget {
        for _ in 0..fields_per_frame {
            let name = format!("x-flood-{next}");
            next += 1;
            raw.encoder
                .encode([Field::new(name.as_bytes(), &value)], &mut block);
        }
        h2frame::write_frame(&mut out, kind, flags, id(1), &block);
        block.clear();
        kind = FrameType::CONTINUATION;
        flags = 0;
    }
    out
}

#[tokio::test]
async fn a_continuation_flood_is_cut_off_within_four_header_list_bounds() {
    let (gw, received) = gateway(
        "continuation",
        &format!("max_header_list_size: {MAX_HEADER_LIST}"),
    )
    .await;
    let addr = gw.listener("continuation");

    // The gateway gives up on a block by the time it decodes to four times the header-list
    // bound (keeping none of what is over the bound), or sooner when it runs to more
    // CONTINUATION frames than the bound needs. Four bounds and a frame is all the attacker
    // sends, so a gateway still waiting for the rest of the block has let the flood through.
    let budget = 4 * MAX_HEADER_LIST + FRAME;
    // Small frames (one 1 KiB header each, so many frames) and full frames (15 headers).
    for (name, fields_per_frame) in [("small", 1), ("full", 15)] {
        let mut raw = Raw::connect(addr).await;
        let attack = endless_header_block(
            &mut raw,
            &format!("/flood-{name}"),
            fields_per_frame,
            budget,
        );
        let sent = raw.send(&attack, Duration::from_secs(5)).await;
        let closed = raw.read_until_closed(Duration::from_secs(10)).await;
        assert!(
            closed,
            "{name} frames: still open after {} bytes of a block that never ends; sent {sent:?}, got {:?}",
            attack.len(),
            raw.frames
        );
        let (code, _, debug) = raw.goaway().unwrap_or_else(|| {
            panic!(
                "{name} frames: a GOAWAY before the close, got {:?}",
                raw.frames
            )
        });
        assert!(
            [
                ErrorCode::ENHANCE_YOUR_CALM,
                ErrorCode::COMPRESSION_ERROR,
                ErrorCode::PROTOCOL_ERROR
            ]
            .contains(&code),
            "{name} frames: GOAWAY {code:?} {debug:?}"
        );
        println!(
            "CONTINUATION flood ({name} frames, {} bytes sent): GOAWAY {code:?} {debug:?}, write {sent:?}",
            attack.len()
        );
    }
    assert_eq!(
        settled_count(&received, "/flood").await,
        0,
        "nothing reached the backend"
    );

    still_serves(addr, "/after-continuation-flood").await;
}

/// Appends an HPACK string literal, not Huffman-coded (RFC 7541 section 5.2).
fn hpack_string(s: &[u8], dst: &mut Vec<u8>) {
    hpack::integer::encode(s.len(), 7, 0, dst);
    dst.extend_from_slice(s);
}

/// A GET block that leaves the dynamic table alone: static-table indices for :method and
/// :scheme, literals without indexing for :authority and :path.
fn unindexed_request(authority: &str, path: &str) -> Vec<u8> {
    // :method GET is static index 2, :scheme http index 6.
    let mut block = vec![0x82, 0x86];
    // Literal without indexing, names by static index: :authority 1, :path 4.
    hpack::integer::encode(1, 4, 0, &mut block);
    hpack_string(authority.as_bytes(), &mut block);
    hpack::integer::encode(4, 4, 0, &mut block);
    hpack_string(path.as_bytes(), &mut block);
    block
}

#[tokio::test]
async fn an_hpack_bomb_is_refused_and_never_reaches_the_backend() {
    let (gw, received) = gateway("bomb", &format!("max_header_list_size: {MAX_HEADER_LIST}")).await;
    let addr = gw.listener("bomb");
    let authority = addr.to_string();
    let mut raw = Raw::connect(addr).await;

    // A legitimate request that puts one ~4 KiB header into the gateway's dynamic table
    // (literal with incremental indexing): it becomes index 62, the first dynamic entry.
    let bomb_value = vec![b'b'; 4000];
    let entry_size = b"x-bomb".len() + bomb_value.len() + hpack::ENTRY_OVERHEAD;
    assert!(entry_size <= hpack::DEFAULT_TABLE_SIZE);
    let mut seed = unindexed_request(&authority, "/bomb-seed");
    seed.push(0x40);
    hpack_string(b"x-bomb", &mut seed);
    hpack_string(&bomb_value, &mut seed);
    let mut frames = Vec::new();
    h2frame::write_headers(&mut frames, id(1), true, None, &seed, FRAME as u32);
    assert_eq!(raw.send(&frames, Duration::from_secs(5)).await, Flood::All);
    assert!(
        raw.read_until(Duration::from_secs(10), |f| response_ended(f, 1))
            .await,
        "the seeding request was answered: {:?}",
        raw.frames
    );
    assert_eq!(status(&raw.frames, 1), Some(200), "{:?}", raw.frames);

    // A little over the bound: five one-byte references decode to five times 4 KiB.
    let refs = MAX_HEADER_LIST / entry_size + 1;
    let mut over = unindexed_request(&authority, "/bomb-over");
    over.extend(std::iter::repeat_n(0x80 | 62, refs));
    let mut frames = Vec::new();
    h2frame::write_headers(&mut frames, id(3), true, None, &over, FRAME as u32);
    assert_eq!(raw.send(&frames, Duration::from_secs(5)).await, Flood::All);
    raw.read_until(Duration::from_secs(10), |f| {
        response_ended(f, 3) || f.iter().any(|g| matches!(g, Got::GoAway { .. }))
    })
    .await;
    let refused = raw
        .frames
        .iter()
        .any(|g| matches!(g, Got::Reset { stream: 3, .. }) || matches!(g, Got::GoAway { .. }))
        || status(&raw.frames, 3) == Some(431);
    assert!(
        refused,
        "{refs} references ({} bytes of block) were refused: {:?}",
        over.len(),
        raw.frames
    );
    println!("HPACK bomb, {refs} references: {:?}", &raw.frames[2..]);

    // Far over: five thousand references, a block of 5 KiB that decodes to 20 MB.
    if raw.goaway().is_none() {
        let mut bomb = unindexed_request(&authority, "/bomb");
        bomb.extend(std::iter::repeat_n(0x80 | 62, 5000));
        let mut frames = Vec::new();
        h2frame::write_headers(&mut frames, id(5), true, None, &bomb, FRAME as u32);
        let sent = raw.send(&frames, Duration::from_secs(5)).await;
        let closed = raw.read_until_closed(Duration::from_secs(10)).await;
        assert!(
            closed,
            "the bombing connection is still open; sent {sent:?}, got {:?}",
            raw.frames
        );
        let (code, _, debug) = raw.goaway().expect("a GOAWAY before the close");
        assert!(
            [ErrorCode::ENHANCE_YOUR_CALM, ErrorCode::COMPRESSION_ERROR].contains(&code),
            "GOAWAY {code:?} {debug:?}"
        );
        println!("HPACK bomb, 5000 references: GOAWAY {code:?} {debug:?}");
    }

    assert_eq!(received.count("/bomb-seed"), 1);
    assert_eq!(
        settled_count(&received, "/bomb-over").await,
        0,
        "the over-size block reached the backend"
    );
    assert!(
        received.bodies("/bomb").is_empty(),
        "the bomb reached the backend"
    );

    still_serves(addr, "/after-hpack-bomb").await;
}

/// Writes `frame` over and over (never reading) on a connection with small buffers until
/// the gateway stops reading, closes the connection, or `cap` bytes are out.
async fn flood_without_reading(addr: SocketAddr, frame: &[u8], cap: usize) -> (Raw, Flood) {
    let chunk = frame.repeat(4096);
    let mut raw = Raw::connect_with_small_buffers(addr).await;
    let flood = raw.flood(&chunk, cap, Duration::from_secs(2)).await;
    (raw, flood)
}

/// Reads and discards what the gateway sends until it closes the connection; whether it
/// did within `limit`.
async fn drain_until_closed(raw: &mut Raw, limit: Duration) -> bool {
    let mut buf = vec![0u8; 64 * 1024];
    tokio::time::timeout(limit, async {
        loop {
            match raw.stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// Floods `frame` without reading (see [`flood_without_reading`]) and checks that the
/// gateway stops the flooder: it owes an answer for each frame, and once too many are owed
/// and unread it either cuts the connection at once or stops reading it, serves everyone
/// else meanwhile, and closes it when its keep-alive PING goes unanswered.
async fn flood_is_cut_off(addr: SocketAddr, what: &str, frame: Vec<u8>) {
    // Far more than every socket buffer between the two ends can hold: a gateway that
    // kept reading (and queueing answers) would take all of it.
    const CAP: usize = 64 << 20;
    let started = std::time::Instant::now();
    let (mut raw, flood) = flood_without_reading(addr, &frame, CAP).await;
    match flood {
        Flood::Closed { written } => println!(
            "{what} flood: cut after {written} bytes ({} frames), {:?} after the flood began",
            written / frame.len(),
            started.elapsed()
        ),
        Flood::Stalled { written } => {
            println!(
                "{what} flood: the gateway stopped reading after {written} bytes ({} frames)",
                written / frame.len(),
            );
            still_serves(addr, &format!("/during-{what}-flood")).await;
            assert!(
                drain_until_closed(&mut raw, Duration::from_secs(20)).await,
                "the {what} flooder was not closed"
            );
            println!(
                "{what} flood: closed {:?} after it began",
                started.elapsed()
            );
        }
        Flood::All => panic!("a {what} flood that never reads took all {CAP} bytes"),
    }
}

#[tokio::test]
async fn ping_and_settings_floods_that_never_read_are_cut_off() {
    // The keep-alive PING goes out 8 s into a connection, well after a flood has been
    // cut or throttled (within a second), so it cannot be what stops the flood.
    let (gw, _received) = gateway(
        "floods",
        "keep_alive_interval: 8s, keep_alive_timeout: 2s, idle_timeout: 60s",
    )
    .await;
    let addr = gw.listener("floods");

    let mut ping = Vec::new();
    h2frame::write_ping(&mut ping, false, *b"floodPNG");
    let mut settings = Vec::new();
    h2frame::write_settings(
        &mut settings,
        &Settings {
            initial_window_size: Some(65_535),
            ..Settings::default()
        },
    );
    tokio::join!(
        flood_is_cut_off(addr, "PING", ping),
        flood_is_cut_off(addr, "SETTINGS", settings),
    );
    let mut cut = 0.0;
    // A flooder never acknowledges the gateway's SETTINGS either, so the handshake
    // timeout may be what closes a throttled one.
    for reason in ["control_frames", "keep_alive", "handshake_timeout"] {
        cut += metric(
            gw.admin(),
            "sekisho_downstream_connections_cut_total",
            &[("listener", "floods"), ("reason", reason)],
        )
        .await;
    }
    let text = http1_get(gw.admin(), "/metrics", &[]).await.text();
    let cuts: Vec<&str> = text.lines().filter(|l| l.contains("_cut_total{")).collect();
    assert_eq!(cut, 2.0, "both cuts are counted in the metrics: {cuts:?}");

    still_serves(addr, "/after-floods").await;
}

#[tokio::test]
async fn a_flooder_that_acknowledged_settings_is_closed_after_the_send_timeout() {
    // The flooder acknowledges the gateway's SETTINGS, so the handshake timeout does not
    // close it, and the keep-alive PING is a minute away: only the gateway noticing that
    // it has stopped reading a client that takes none of its answers can close it soon.
    let (gw, _received) = gateway_with(
        "stalled",
        "keep_alive_interval: 60s, keep_alive_timeout: 20s",
        "send_timeout: 2s",
    )
    .await;
    let addr = gw.listener("stalled");

    let mut ack = Vec::new();
    h2frame::write_settings_ack(&mut ack);
    let mut raw = Raw::connect_with_small_buffers(addr).await;
    assert_eq!(raw.send(&ack, Duration::from_secs(2)).await, Flood::All);
    let mut ping = Vec::new();
    h2frame::write_ping(&mut ping, false, *b"floodPNG");
    let started = std::time::Instant::now();
    let flood = raw
        .flood(&ping.repeat(4096), 64 << 20, Duration::from_secs(1))
        .await;
    assert!(
        matches!(flood, Flood::Stalled { .. } | Flood::Closed { .. }),
        "the flood was neither throttled nor cut: {flood:?}"
    );
    // Still reading nothing for longer than the send timeout; only then read, which would
    // let a gateway that had not closed the connection catch up and keep it.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        drain_until_closed(&mut raw, Duration::from_secs(3)).await,
        "the flooder was still open {:?} after it began",
        started.elapsed()
    );
    println!(
        "stalled flooder: closed {:?} after the flood began",
        started.elapsed()
    );
    let mut cut = 0.0;
    for reason in ["send_timeout", "control_frames"] {
        cut += metric(
            gw.admin(),
            "sekisho_downstream_connections_cut_total",
            &[("listener", "stalled"), ("reason", reason)],
        )
        .await;
    }
    assert_eq!(cut, 1.0, "the cut is counted");

    still_serves(addr, "/after-stalled-flood").await;
}

#[tokio::test]
async fn protocol_errors_get_the_error_codes_the_rfc_names() {
    let (gw, received) = gateway("protocol", "max_concurrent_streams: 100").await;
    let addr = gw.listener("protocol");

    // DATA on a stream whose request and response are both over: STREAM_CLOSED.
    let mut raw = Raw::connect(addr).await;
    let block = raw.request_block("GET", "/closed");
    let mut frames = Vec::new();
    h2frame::write_headers(&mut frames, id(1), true, None, &block, FRAME as u32);
    assert_eq!(raw.send(&frames, Duration::from_secs(5)).await, Flood::All);
    assert!(
        raw.read_until(Duration::from_secs(10), |f| response_ended(f, 1))
            .await,
        "{:?}",
        raw.frames
    );
    assert_eq!(status(&raw.frames, 1), Some(200));
    let mut late = Vec::new();
    h2frame::write_data(&mut late, id(1), true, b"late body");
    assert_eq!(raw.send(&late, Duration::from_secs(5)).await, Flood::All);
    let refused = |f: &[Got]| {
        f.iter()
            .any(|g| matches!(g, Got::Reset { stream: 1, .. } | Got::GoAway { .. }))
    };
    assert!(
        raw.read_until(Duration::from_secs(10), refused).await,
        "the late DATA was refused: {:?}",
        raw.frames
    );
    let code = raw.frames.iter().find_map(|g| match g {
        Got::Reset { stream: 1, code } | Got::GoAway { code, .. } => Some(*code),
        _ => None,
    });
    assert_eq!(code, Some(ErrorCode::STREAM_CLOSED), "{:?}", raw.frames);
    println!("DATA on a closed stream: {:?}", raw.frames.last());
    assert_eq!(
        received.bodies("/closed"),
        [0],
        "the late DATA reached the backend"
    );

    // A stream error leaves the connection serving.
    if raw.goaway().is_none() {
        let block = raw.request_block("GET", "/after-closed");
        let mut frames = Vec::new();
        h2frame::write_headers(&mut frames, id(3), true, None, &block, FRAME as u32);
        assert_eq!(raw.send(&frames, Duration::from_secs(5)).await, Flood::All);
        assert!(
            raw.read_until(Duration::from_secs(10), |f| response_ended(f, 3))
                .await,
            "{:?}",
            raw.frames
        );
        assert_eq!(status(&raw.frames, 3), Some(200));
    }

    // A WINDOW_UPDATE of 0 on the connection: GOAWAY(PROTOCOL_ERROR), then closed.
    let mut raw = Raw::connect(addr).await;
    let mut zero = Vec::new();
    h2frame::write_frame(
        &mut zero,
        FrameType::WINDOW_UPDATE,
        0,
        StreamId::ZERO,
        &0u32.to_be_bytes(),
    );
    assert_eq!(raw.send(&zero, Duration::from_secs(5)).await, Flood::All);
    assert!(
        raw.read_until_closed(Duration::from_secs(10)).await,
        "{:?}",
        raw.frames
    );
    let (code, _, debug) = raw.goaway().expect("a GOAWAY before the close");
    assert_eq!(code, ErrorCode::PROTOCOL_ERROR, "{debug:?}");

    still_serves(addr, "/after-protocol-errors").await;
}

/// Sends a POST to `path` on stream 1 with `frames` DATA frames of `payload` each, then
/// "done" with END_STREAM; the frames the gateway sent back by the time it answered the
/// stream or closed the connection.
async fn post_in_pieces(addr: SocketAddr, path: &str, frames: usize, payload: &[u8]) -> Raw {
    let mut raw = Raw::connect(addr).await;
    let block = raw.request_block("POST", path);
    let mut out = Vec::new();
    h2frame::write_headers(&mut out, id(1), false, None, &block, FRAME as u32);
    for _ in 0..frames {
        h2frame::write_data(&mut out, id(1), false, payload);
    }
    h2frame::write_data(&mut out, id(1), true, b"done");
    let sent = raw.send(&out, Duration::from_secs(10)).await;
    assert!(
        !matches!(sent, Flood::Stalled { .. }),
        "{path}: the gateway stopped reading: {sent:?}"
    );
    raw.read_until(Duration::from_secs(20), |f| {
        response_ended(f, 1) || f.iter().any(|g| matches!(g, Got::GoAway { .. }))
    })
    .await;
    raw
}

#[tokio::test]
async fn floods_of_empty_and_tiny_data_frames_are_cut_off_or_served_whole() {
    let (gw, received) = gateway("data", "max_concurrent_streams: 100").await;
    let addr = gw.listener("data");

    // A few empty DATA frames, as some clients send: the request is served whole.
    let raw = post_in_pieces(addr, "/few-empty", 50, &[]).await;
    assert_eq!(status(&raw.frames, 1), Some(200), "{:?}", raw.frames);
    assert_eq!(received.bodies("/few-empty"), [4]);

    // A hundred thousand empty DATA frames (900 KB of headers and nothing else): each is
    // free under flow control, so they are counted, and the connection is cut off.
    const EMPTY: usize = 100_000;
    let mut raw = post_in_pieces(addr, "/empty-flood", EMPTY, &[]).await;
    assert!(
        raw.read_until_closed(Duration::from_secs(10)).await,
        "{:?}",
        raw.frames
    );
    let (code, _, debug) = raw
        .goaway()
        .unwrap_or_else(|| panic!("a GOAWAY: {:?}", raw.frames));
    assert_eq!(code, ErrorCode::ENHANCE_YOUR_CALM, "{debug:?}");
    assert_eq!(status(&raw.frames, 1), None, "{:?}", raw.frames);
    settled_count(&received, "/empty-flood").await;
    assert!(
        !received.bodies("/empty-flood").contains(&4),
        "the backend saw the flooded request complete"
    );
    println!("{EMPTY} empty DATA frames: GOAWAY {code:?} {debug:?}");

    // Sixty thousand one-byte DATA frames (within the stream's window): cut off the same
    // way when they pile up faster than the backend takes them, or else served whole;
    // never answered with a body the client did not send.
    const TINY: usize = 60_000;
    let mut raw = post_in_pieces(addr, "/tiny-flood", TINY, b"x").await;
    match raw.goaway() {
        Some((code, _, debug)) => {
            assert_eq!(code, ErrorCode::ENHANCE_YOUR_CALM, "{debug:?}");
            assert!(raw.read_until_closed(Duration::from_secs(10)).await);
            settled_count(&received, "/tiny-flood").await;
            assert!(!received.bodies("/tiny-flood").contains(&(TINY + 4)));
            println!("{TINY} one-byte DATA frames: GOAWAY {code:?} {debug:?}");
        }
        None => {
            assert_eq!(status(&raw.frames, 1), Some(200), "{:?}", raw.frames);
            assert_eq!(received.bodies("/tiny-flood"), [TINY + 4]);
            println!("{TINY} one-byte DATA frames: served whole");
        }
    }

    still_serves(addr, "/after-data-floods").await;
}
