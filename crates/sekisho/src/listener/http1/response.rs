//! Writing a response to an HTTP/1.x client: the status line and fields, then the body
//! framed by what is known of its length.
//!
//! The framing is the gateway's to choose, never the response's: a `Content-Length` the
//! response carries (or an exact size its body knows) is used as is, an unknown length is
//! chunked for HTTP/1.1 and delimited by closing the connection for HTTP/1.0, and any
//! `Transfer-Encoding`, `Connection` or `Keep-Alive` field the response brought is dropped
//! for the gateway's own. Small bodies leave in the same write as their head.

use std::io::{self, Write as _};

use bytes::{Buf, Bytes};
use http::header::{self, HeaderMap};
use http::{Response, StatusCode};
use http_body::{Body as HttpBody, Frame};
use http_body_util::BodyExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::listener::date;
use crate::proxy::headers::KEEP_ALIVE;

/// Bytes gathered before a write: a head and small frames leave together.
const GATHER: usize = 16 * 1024;

/// What the request decided about its response.
#[derive(Clone, Copy, Debug)]
pub struct Reply {
    /// The request was HTTP/1.0: the response says so, and cannot be chunked.
    pub http10: bool,
    /// A HEAD request: the head says what a GET would send, and no body follows.
    pub head_only: bool,
    /// The connection may carry another request after this response.
    pub keep_alive: bool,
    /// The client accepts trailer fields in a chunked response.
    pub trailers: bool,
}

/// How the body leaves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body (HEAD, 1xx, 204, 304).
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked.
    Chunked,
    /// Until the connection closes.
    Close,
}

/// Writes `response` to `io`; `Ok(true)` when the connection may carry another request.
/// An error means the connection is unusable: the client went away, or the body broke
/// and the client was told so by a response cut short. While the body has nothing to
/// send, `gone` is polled too: ready when the client has left, which ends the response.
pub async fn write<W, B>(
    io: &mut W,
    response: Response<B>,
    reply: Reply,
    mut gone: impl FnMut(&mut std::task::Context<'_>) -> std::task::Poll<()>,
) -> io::Result<bool>
where
    W: AsyncWrite + Unpin,
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, mut body) = response.into_parts();
    let status = parts.status;
    let mut headers = parts.headers;
    let framing = framing(status, &mut headers, &body, reply);
    let keep_alive = reply.keep_alive && framing != Framing::Close;
    let mut out = Vec::with_capacity(256 + 32 * headers.len());
    head(&mut out, status, &headers, reply.http10, keep_alive);
    if framing == Framing::None {
        io.write_all(&out).await?;
        io.flush().await?;
        return Ok(keep_alive);
    }
    let mut left = match framing {
        Framing::Length(n) => Some(n),
        _ => None,
    };
    loop {
        // Whatever is ready leaves with what was gathered; a wait flushes it first.
        let frame = match std::future::poll_fn(|cx| {
            std::task::Poll::Ready(std::pin::Pin::new(&mut body).poll_frame(cx))
        })
        .await
        {
            std::task::Poll::Ready(frame) => frame,
            std::task::Poll::Pending => {
                if !out.is_empty() {
                    io.write_all(&out).await?;
                    out.clear();
                }
                io.flush().await?;
                tokio::select! {
                    frame = body.frame() => frame,
                    () = std::future::poll_fn(&mut gone) => {
                        return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "the client went away"));
                    }
                }
            }
        };
        match frame {
            None => break,
            Some(Ok(frame)) => {
                let frame: Frame<Bytes> = frame;
                match frame.into_data() {
                    Ok(mut data) => {
                        if let Some(left) = left.as_mut() {
                            let len = data.len() as u64;
                            if len > *left {
                                return Err(io::Error::other(
                                    "response body longer than its Content-Length",
                                ));
                            }
                            *left -= len;
                        }
                        if data.is_empty() {
                            continue;
                        }
                        let chunked = framing == Framing::Chunked;
                        if chunked {
                            let _ = write!(out, "{:x}\r\n", data.len());
                        }
                        if out.len() + data.len() <= GATHER {
                            out.extend_from_slice(&data);
                        } else {
                            io.write_all(&out).await?;
                            out.clear();
                            while data.has_remaining() {
                                let n = io.write(data.chunk()).await?;
                                if n == 0 {
                                    return Err(io::ErrorKind::WriteZero.into());
                                }
                                data.advance(n);
                            }
                        }
                        if chunked {
                            out.extend_from_slice(b"\r\n");
                        }
                    }
                    Err(frame) => {
                        if framing == Framing::Chunked
                            && reply.trailers
                            && let Ok(trailers) = frame.into_trailers()
                        {
                            out.extend_from_slice(b"0\r\n");
                            fields(&mut out, &trailers);
                            out.extend_from_slice(b"\r\n");
                            io.write_all(&out).await?;
                            io.flush().await?;
                            return Ok(keep_alive);
                        }
                    }
                }
            }
            Some(Err(e)) => {
                // Sent so far is all the client gets; a cut connection tells it the body
                // broke (no final chunk, fewer bytes than declared).
                let _ = io.write_all(&out).await;
                let _ = io.flush().await;
                return Err(io::Error::other(e.into()));
            }
        }
    }
    match framing {
        Framing::Chunked => out.extend_from_slice(b"0\r\n\r\n"),
        Framing::Length(_) if left != Some(0) => {
            let _ = io.write_all(&out).await;
            let _ = io.flush().await;
            return Err(io::Error::other(
                "response body shorter than its Content-Length",
            ));
        }
        _ => {}
    }
    io.write_all(&out).await?;
    io.flush().await?;
    Ok(keep_alive)
}

/// Chooses the body's framing and sets the fields that say it.
fn framing<B: HttpBody>(
    status: StatusCode,
    headers: &mut HeaderMap,
    body: &B,
    reply: Reply,
) -> Framing {
    // One pass over the names, as a response seldom has any of these to remove.
    let framed_by_upstream = headers.keys().any(|name| {
        matches!(
            name.as_str(),
            "transfer-encoding" | "connection" | "keep-alive"
        )
    });
    if framed_by_upstream {
        headers.remove(header::TRANSFER_ENCODING);
        headers.remove(header::CONNECTION);
        headers.remove(&KEEP_ALIVE);
    }
    if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        if status != StatusCode::NOT_MODIFIED {
            headers.remove(header::CONTENT_LENGTH);
        }
        return Framing::None;
    }
    let length = headers.get(header::CONTENT_LENGTH);
    let has_length = length.is_some();
    let declared = length
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if reply.head_only {
        return Framing::None;
    }
    if let Some(n) = declared {
        return Framing::Length(n);
    }
    if has_length {
        headers.remove(header::CONTENT_LENGTH);
    }
    if let Some(n) = body.size_hint().exact() {
        headers.insert(header::CONTENT_LENGTH, n.into());
        return Framing::Length(n);
    }
    if reply.http10 {
        Framing::Close
    } else {
        headers.insert(
            header::TRANSFER_ENCODING,
            http::HeaderValue::from_static("chunked"),
        );
        Framing::Chunked
    }
}

/// Writes the status line and fields, with `Date` and the connection's own field.
fn head(out: &mut Vec<u8>, status: StatusCode, headers: &HeaderMap, http10: bool, keep: bool) {
    out.extend_from_slice(if http10 { b"HTTP/1.0 " } else { b"HTTP/1.1 " });
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    fields(out, headers);
    if !headers.contains_key(header::DATE) {
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(date::now().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match (keep, http10) {
        (false, _) => out.extend_from_slice(b"connection: close\r\n"),
        (true, true) => out.extend_from_slice(b"connection: keep-alive\r\n"),
        (true, false) => {}
    }
    out.extend_from_slice(b"\r\n");
}

fn fields(out: &mut Vec<u8>, headers: &HeaderMap) {
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// A response for a head refused before it became a request; the connection closes.
pub fn refusal(status: u16, http10: bool) -> Vec<u8> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_LENGTH, 0.into());
    let mut out = Vec::with_capacity(128);
    head(&mut out, status, &headers, http10, false);
    out
}

/// The interim response a client that sent `Expect: 100-continue` waits for.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{Full, StreamBody};

    async fn written<B>(response: Response<B>, reply: Reply) -> (String, io::Result<bool>)
    where
        B: HttpBody<Data = Bytes> + Unpin,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut out = Vec::new();
        let result = write(&mut out, response, reply, |_| std::task::Poll::Pending).await;
        (String::from_utf8_lossy(&out).into_owned(), result)
    }

    const KEEP: Reply = Reply {
        http10: false,
        head_only: false,
        keep_alive: true,
        trailers: false,
    };

    #[tokio::test]
    async fn a_known_length_is_declared_and_an_unknown_one_chunked() {
        let (text, keep) = written(Response::new(Full::new(Bytes::from("hello"))), KEEP).await;
        assert!(
            text.starts_with("HTTP/1.1 200 OK\r\ncontent-length: 5\r\ndate: "),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\nhello"), "{text}");
        assert!(keep.expect("written"));

        let frames = futures_frames(vec![
            Frame::data(Bytes::from("ab")),
            Frame::data(Bytes::from("c")),
        ]);
        let (text, _) = written(Response::new(frames), KEEP).await;
        assert!(text.contains("transfer-encoding: chunked\r\n"), "{text}");
        assert!(
            text.ends_with("\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn http10_gets_a_closed_connection_for_an_unknown_length() {
        let frames = futures_frames(vec![Frame::data(Bytes::from("ab"))]);
        let reply = Reply {
            http10: true,
            ..KEEP
        };
        let (text, keep) = written(Response::new(frames), reply).await;
        assert!(text.starts_with("HTTP/1.0 200 OK\r\n"), "{text}");
        assert!(text.contains("connection: close\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nab"), "{text}");
        assert!(!keep.expect("written"));
    }

    #[tokio::test]
    async fn a_body_longer_than_declared_is_an_error() {
        let mut response = Response::new(Full::new(Bytes::from("toolong")));
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, 3.into());
        let (_, result) = written(response, KEEP).await;
        assert!(result.is_err());
    }

    #[tokio::test]
    async fn no_body_follows_head_or_204() {
        let reply = Reply {
            head_only: true,
            ..KEEP
        };
        let mut response = Response::new(Full::new(Bytes::from("hello")));
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, 5.into());
        let (text, _) = written(response, reply).await;
        assert!(
            text.ends_with("\r\n\r\n") && text.contains("content-length: 5"),
            "{text}"
        );
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::NO_CONTENT;
        let (text, _) = written(response, KEEP).await;
        assert!(!text.contains("content-length"), "{text}");
    }

    #[tokio::test]
    async fn the_upstreams_framing_fields_give_way_to_the_gateways() {
        let mut response = Response::new(Full::new(Bytes::from("hello")));
        let headers = response.headers_mut();
        headers.insert(header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        headers.insert(header::CONNECTION, "close".parse().unwrap());
        headers.insert(KEEP_ALIVE.clone(), "timeout=5".parse().unwrap());
        headers.insert(header::CONTENT_LENGTH, "five".parse().unwrap());
        let (text, keep) = written(response, KEEP).await;
        assert!(text.contains("content-length: 5\r\n"), "{text}");
        for gone in [
            "transfer-encoding",
            "connection: close",
            "keep-alive",
            "five",
        ] {
            assert!(!text.contains(gone), "{gone} in {text}");
        }
        assert!(text.ends_with("\r\n\r\nhello"), "{text}");
        assert!(keep.expect("written"));
    }

    type Frames =
        StreamBody<tokio_stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, io::Error>>>>;

    fn futures_frames(frames: Vec<Frame<Bytes>>) -> Frames {
        StreamBody::new(tokio_stream::iter(
            frames.into_iter().map(Ok).collect::<Vec<_>>(),
        ))
    }
}
