//! A small tokio driver around `h2conn::Connection`, serving:
//!
//! - `/echo`: the request body back, released to the client only as it is sent
//!   on, so flow control is exercised in both directions;
//! - `/trailers`: like `/echo`, ending with trailers that count the request's
//!   trailer fields (`x-trailers-seen`), as a gRPC server ends with its status;
//! - `/bytes/N`: N bytes;
//! - `/shutdown`: `hello`, then a two-step graceful shutdown of the connection;
//! - anything else: `hello`.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::SocketAddr;

use bytes::{Buf, Bytes, BytesMut};
use h2conn::{Config, Connection, Event, StreamId};
use http::{HeaderMap, StatusCode};
use tokio::net::{TcpListener, TcpStream};

/// Binds a local port and serves every connection on it until the runtime ends.
pub async fn start(config: Config) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let config = config.clone();
            tokio::spawn(serve(sock, config));
        }
    });
    addr
}

/// What a stream still has to send.
#[derive(Default)]
struct Pending {
    body: BytesMut,
    /// Received bytes are released as they are echoed.
    echo: bool,
    /// The request body has ended, so the response may end once `body` is sent.
    done: bool,
    /// End with trailers carrying this count instead of END_STREAM on DATA.
    trailers: Option<usize>,
}

/// Serves one connection; returns when it is over.
pub async fn serve(sock: TcpStream, config: Config) {
    let mut conn = Connection::new(config);
    let mut input = BytesMut::new();
    let mut streams: HashMap<StreamId, Pending> = HashMap::new();
    let mut eof = false;
    loop {
        handle_events(&mut conn, &mut streams);
        pump(&mut conn, &mut streams);
        let want_write = !conn.output().is_empty();
        if !want_write && (conn.is_closed() || eof) {
            return;
        }
        if streams.is_empty() && conn.active_streams() == 0 {
            conn.shrink_idle();
        }
        let want_read = !eof && conn.wants_read();
        tokio::select! {
            ready = sock.readable(), if want_read => {
                if ready.is_err() {
                    return;
                }
                input.reserve(16 * 1024);
                match sock.try_read_buf(&mut input) {
                    Ok(0) => eof = true,
                    Ok(_) => {
                        if conn.recv(&mut input).is_err() {
                            eof = true;
                        }
                        if input.is_empty() {
                            // Nothing partial left: give the read buffer back.
                            input = BytesMut::new();
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
            ready = sock.writable(), if want_write => {
                if ready.is_err() {
                    return;
                }
                match sock.try_write(conn.output()) {
                    Ok(n) => conn.advance(n),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
            else => return,
        }
    }
}

fn handle_events(conn: &mut Connection, streams: &mut HashMap<StreamId, Pending>) {
    while let Some(event) = conn.poll_event() {
        match event {
            Event::Request {
                stream,
                head,
                end_stream,
            } => {
                let path = head.uri.path();
                let mut pending = Pending {
                    done: end_stream,
                    ..Pending::default()
                };
                if path == "/echo" {
                    pending.echo = true;
                } else if path == "/trailers" {
                    pending.echo = true;
                    pending.trailers = Some(0);
                } else if let Some(n) = path.strip_prefix("/bytes/") {
                    let n: usize = n.parse().unwrap_or(0);
                    pending.body = BytesMut::from(&vec![b'x'; n][..]);
                    pending.done = true;
                } else {
                    pending.body = BytesMut::from(&b"hello"[..]);
                    pending.done = true;
                }
                let mut headers = HeaderMap::new();
                headers.insert("content-type", "application/octet-stream".parse().unwrap());
                let shutdown = path == "/shutdown";
                if conn
                    .send_response(stream, StatusCode::OK, &headers, false)
                    .is_ok()
                {
                    streams.insert(stream, pending);
                }
                if shutdown {
                    conn.shutdown();
                }
            }
            Event::Data {
                stream,
                data,
                end_stream,
            } => match streams.get_mut(&stream) {
                Some(pending) if pending.echo => {
                    pending.body.extend_from_slice(&data);
                    pending.done |= end_stream;
                }
                Some(pending) => {
                    conn.release(stream, data.len());
                    pending.done |= end_stream;
                }
                None => conn.release(stream, data.len()),
            },
            Event::Trailers { stream, headers } => {
                if let Some(pending) = streams.get_mut(&stream) {
                    pending.done = true;
                    pending.trailers = pending.trailers.map(|_| headers.len());
                }
            }
            Event::Reset { stream, .. } => {
                streams.remove(&stream);
            }
            Event::WindowOpened { .. }
            | Event::GoAway { .. }
            | Event::PingAck { .. }
            | Event::Response { .. } => {}
        }
    }
}

fn pump(conn: &mut Connection, streams: &mut HashMap<StreamId, Pending>) {
    streams.retain(|&stream, pending| {
        if pending.body.is_empty() && !pending.done {
            return true;
        }
        let end_with_data = pending.done && pending.trailers.is_none();
        match conn.send_data(stream, &pending.body, end_with_data) {
            Ok(n) => {
                pending.body.advance(n);
                if pending.echo {
                    conn.release(stream, n);
                }
                let finished = pending.done && pending.body.is_empty();
                if let (true, Some(seen)) = (finished, pending.trailers) {
                    let mut trailers = HeaderMap::new();
                    trailers.insert("x-trailers-seen", seen.into());
                    let _ = conn.send_trailers(stream, &trailers);
                }
                !finished
            }
            Err(_) => false,
        }
    });
}

/// The bytes a `/bytes/N` or echo response is made of, for comparisons.
pub fn pattern(n: usize) -> Bytes {
    Bytes::from(vec![b'x'; n])
}
