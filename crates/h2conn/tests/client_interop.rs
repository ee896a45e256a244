//! The client role against a real server: the `h2` crate's server over TCP,
//! driven by a minimal client loop (read into a `BytesMut`, `recv`, events,
//! write the output, `advance`).

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use h2conn::{Config, Connection, Event, StreamId};
use http::HeaderMap;
use tokio::net::{TcpListener, TcpStream};

/// Starts an `h2` server answering every request with its body echoed, then
/// `extra` bytes of `r` (`/echo/{extra}`), then trailers counting the
/// request's trailer fields and body bytes.
async fn h2_server(max_concurrent_streams: u32) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut conn = h2::server::Builder::new()
                    .max_concurrent_streams(max_concurrent_streams)
                    .handshake::<_, Bytes>(sock)
                    .await
                    .unwrap();
                while let Some(accepted) = conn.accept().await {
                    let Ok((request, respond)) = accepted else {
                        return;
                    };
                    tokio::spawn(answer(request, respond));
                }
            });
        }
    });
    addr
}

async fn answer(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
) {
    let (parts, mut body) = request.into_parts();
    let extra: usize = parts
        .uri
        .path()
        .strip_prefix("/echo/")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let mut got = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        body.flow_control().release_capacity(chunk.len()).unwrap();
        got.extend_from_slice(&chunk);
    }
    let trailers = body.trailers().await.unwrap();
    let response = http::Response::builder()
        .status(200)
        .header("x-authority", parts.uri.authority().unwrap().as_str())
        .body(())
        .unwrap();
    let mut send = respond.send_response(response, false).unwrap();
    let mut out = got.clone();
    out.extend(std::iter::repeat_n(b'r', extra));
    send.send_data(out.into(), false).unwrap();
    let mut end = HeaderMap::new();
    end.insert("x-body-len", got.len().into());
    end.insert("x-trailers-seen", trailers.map_or(0, |t| t.len()).into());
    send.send_trailers(end).unwrap();
}

/// One request the client sends and what came back.
#[derive(Default)]
struct Exchange {
    path: String,
    body: Vec<u8>,
    sent: usize,
    trailers: Option<HeaderMap>,
    status: Option<http::StatusCode>,
    authority: Option<String>,
    response: Vec<u8>,
    response_trailers: Option<HeaderMap>,
    done: bool,
}

/// Runs `exchanges` over one client connection to `addr` until every response
/// has ended, opening streams as the server's limit allows.
async fn run_client(
    addr: SocketAddr,
    config: Config,
    mut exchanges: Vec<Exchange>,
) -> Vec<Exchange> {
    let sock = TcpStream::connect(addr).await.unwrap();
    let mut conn = Connection::client(config);
    let mut input = BytesMut::new();
    let mut streams: HashMap<StreamId, usize> = HashMap::new();
    let mut next = 0;
    let mut most_open = 0;
    while exchanges.iter().any(|e| !e.done) {
        // Open what the server's stream limit allows (only once its SETTINGS
        // are known, so the limit is not overshot).
        while next < exchanges.len() && conn.peer_settings_received() && conn.can_open_stream() {
            let exchange = &exchanges[next];
            let (parts, ()) = http::Request::builder()
                .method("POST")
                .uri(format!("http://{addr}{}", exchange.path))
                .body(())
                .unwrap()
                .into_parts();
            let end_stream = exchange.body.is_empty() && exchange.trailers.is_none();
            let id = conn.send_request(&parts, end_stream).unwrap();
            streams.insert(id, next);
            next += 1;
        }
        most_open = most_open.max(conn.active_streams());
        assert!(most_open <= conn.max_send_streams());
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Response {
                    stream,
                    head,
                    end_stream,
                } => {
                    let e = &mut exchanges[streams[&stream]];
                    e.status = Some(head.status);
                    e.authority = head
                        .headers
                        .get("x-authority")
                        .map(|v| v.to_str().unwrap().to_owned());
                    e.done = end_stream;
                }
                Event::Data {
                    stream,
                    data,
                    end_stream,
                } => {
                    let e = &mut exchanges[streams[&stream]];
                    e.response.extend_from_slice(&data);
                    e.done = end_stream;
                    conn.release(stream, data.len());
                }
                Event::Trailers { stream, headers } => {
                    let e = &mut exchanges[streams[&stream]];
                    e.response_trailers = Some(headers);
                    e.done = true;
                }
                Event::Reset { stream, code, .. } => panic!("stream {stream:?} reset: {code}"),
                Event::GoAway { code, .. } => panic!("server went away: {code}"),
                Event::WindowOpened { .. } | Event::PingAck { .. } => {}
                Event::Request { .. } => unreachable!("a client gets no requests"),
            }
        }
        // Send what the windows allow of every request body.
        for (&id, &i) in &streams {
            let e = &mut exchanges[i];
            if e.sent == e.body.len() && (e.body.is_empty() || e.trailers.is_none()) {
                continue;
            }
            let n = conn
                .send_data(id, &e.body[e.sent..], e.trailers.is_none())
                .unwrap();
            e.sent += n;
            if e.sent == e.body.len()
                && let Some(trailers) = e.trailers.take()
            {
                conn.send_trailers(id, &trailers).unwrap();
            }
        }
        assert!(conn.error().is_none(), "{:?}", conn.error());
        let want_write = !conn.output().is_empty();
        tokio::select! {
            ready = sock.readable(), if conn.wants_read() => {
                ready.unwrap();
                input.reserve(16 * 1024);
                match sock.try_read_buf(&mut input) {
                    Ok(0) => panic!("server closed the connection"),
                    Ok(_) => conn.recv(&mut input).unwrap(),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => panic!("{e}"),
                }
            }
            ready = sock.writable(), if want_write => {
                ready.unwrap();
                match sock.try_write(conn.output()) {
                    Ok(n) => conn.advance(n),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => panic!("{e}"),
                }
            }
        }
    }
    assert!(most_open > 1, "requests were not concurrent");
    assert_eq!(conn.active_streams(), 0);
    conn.go_away(h2conn::ErrorCode::NO_ERROR);
    assert!(conn.is_closed());
    exchanges
}

fn exchanges() -> Vec<Exchange> {
    (0..8usize)
        .map(|i| {
            let body: Vec<u8> = if i == 0 {
                Vec::new()
            } else {
                (0..100_000 + i).map(|b| (b * 7 + i) as u8).collect()
            };
            let trailers = (i % 2 == 1).then(|| {
                let mut t = HeaderMap::new();
                t.insert("x-a", "1".parse().unwrap());
                t.insert("x-b", i.into());
                t
            });
            Exchange {
                path: format!("/echo/{}", 150_000 + 1_000 * i),
                body,
                trailers,
                ..Exchange::default()
            }
        })
        .collect()
}

async fn check(config: Config) {
    let addr = h2_server(3).await;
    let done = tokio::time::timeout(
        Duration::from_secs(30),
        run_client(addr, config, exchanges()),
    )
    .await
    .expect("exchanges did not finish");
    for (i, e) in done.iter().enumerate() {
        assert_eq!(e.status, Some(http::StatusCode::OK), "request {i}");
        assert_eq!(e.authority.as_deref(), Some(addr.to_string().as_str()));
        let extra = 150_000 + 1_000 * i;
        assert_eq!(e.response.len(), e.body.len() + extra, "request {i}");
        assert!(
            e.response[..e.body.len()] == e.body[..],
            "request {i} echo differs"
        );
        assert!(e.response[e.body.len()..].iter().all(|&b| b == b'r'));
        let trailers = e.response_trailers.as_ref().expect("response trailers");
        assert_eq!(trailers["x-body-len"], e.body.len().to_string().as_str());
        let seen = if i % 2 == 1 { "2" } else { "0" };
        assert_eq!(trailers["x-trailers-seen"], seen, "request {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_bodies_and_trailers_against_h2_server() {
    check(Config::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_client_windows_against_h2_server() {
    // Small windows on our side force many WINDOW_UPDATE rounds for the
    // responses; the server's 65,535 default does the same for the requests.
    check(Config {
        initial_stream_window: 20_000,
        connection_window: 70_000,
        max_buffered_output: 16 * 1024,
        ..Config::default()
    })
    .await;
}
