//! gRPC-Web from browsers to gRPC upstream and back.
//!
//! Browsers cannot read HTTP trailers, so gRPC-Web moves them into the response body as a
//! last frame whose flag byte has its top bit set, holding the trailers as an HTTP/1 header
//! block. Clients that can only read text send and receive the same frames in base64
//! (`application/grpc-web-text`). Everything else (paths, message frames, metadata) is gRPC
//! as it is, so the translation streams: each chunk is passed on as soon as it arrives, and
//! a server stream reaches the browser message by message.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, TE};
use http::{HeaderMap, request, response};
use http_body::{Body as HttpBody, Frame};
use pin_project_lite::pin_project;

use crate::body::{self, Body, BoxError};
use crate::proxy::headers::{GRPC_MESSAGE, GRPC_STATUS};

const GRPC: &str = "application/grpc";
const GRPC_WEB: &str = "application/grpc-web";
const GRPC_WEB_TEXT: &str = "application/grpc-web-text";

/// The flag byte of the frame that carries the trailers.
const TRAILER_FLAG: u8 = 0x80;

/// gRPC status INTERNAL, for an upstream response that ends without a status.
const INTERNAL: u16 = 13;

/// How a gRPC-Web body is written on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `application/grpc-web[+proto]`: gRPC frames as they are.
    Binary,
    /// `application/grpc-web-text[+proto]`: the same frames in base64, for clients that can
    /// only read a response as text.
    Text,
}

impl Mode {
    /// The mode a request's content type asks for; `None` when it is not gRPC-Web.
    pub fn of(headers: &HeaderMap) -> Option<Mode> {
        let content_type = headers.get(CONTENT_TYPE)?.to_str().ok()?;
        if content_type.starts_with(GRPC_WEB_TEXT) {
            Some(Mode::Text)
        } else if content_type.starts_with(GRPC_WEB) {
            Some(Mode::Binary)
        } else {
            None
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Mode::Binary => GRPC_WEB,
            Mode::Text => GRPC_WEB_TEXT,
        }
    }

    /// A chunk of gRPC frames as this mode writes it. Each chunk is encoded on its own, with
    /// padding, so nothing waits for the next chunk; decoders read base64 four characters
    /// at a time and so accept padding between chunks.
    fn encode(self, chunk: Bytes) -> Bytes {
        match self {
            Mode::Binary => chunk,
            Mode::Text => Bytes::from(STANDARD.encode(&chunk)),
        }
    }
}

/// Turns a gRPC-Web request into gRPC: the content type, `te: trailers` (which gRPC over
/// HTTP/2 requires), and in text mode a body decoded from base64 as it streams.
pub fn request(parts: &mut request::Parts, body: Body, mode: Mode) -> Body {
    let headers = &mut parts.headers;
    if let Some(grpc) = retype(headers, mode.prefix(), GRPC) {
        headers.insert(CONTENT_TYPE, grpc);
    }
    headers.insert(TE, HeaderValue::from_static("trailers"));
    match mode {
        Mode::Binary => body,
        Mode::Text => {
            // The decoded body is shorter than the one the browser declared.
            headers.remove(CONTENT_LENGTH);
            body::boxed(Decode {
                inner: body,
                pending: BytesMut::new(),
            })
        }
    }
}

/// Turns a gRPC response into gRPC-Web in `mode`: the content type, and the trailers as the
/// body's last frame. A trailers-only response (an error before any message) stays one: its
/// `grpc-status` and `grpc-message` are headers a browser can read.
pub fn response(parts: &mut response::Parts, body: Body, mode: Mode) -> Body {
    let headers = &mut parts.headers;
    if let Some(web) = retype(headers, GRPC, mode.prefix()) {
        headers.insert(CONTENT_TYPE, web);
    }
    if headers.contains_key(&GRPC_STATUS) {
        return body;
    }
    // The trailer frame makes the body longer than any length the upstream declared.
    headers.remove(CONTENT_LENGTH);
    body::boxed(Encode {
        inner: body,
        mode,
        done: false,
    })
}

/// Types the gateway's own trailers-only answer (an error before any upstream response)
/// for a gRPC-Web caller, whose client checks the content type before the status.
pub fn answer_type(headers: &mut HeaderMap) {
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/grpc-web+proto"),
    );
}

/// The content type with its `from` prefix replaced by `to` (`application/grpc+proto` to
/// `application/grpc-web+proto`); `None` when it does not start with `from`.
fn retype(headers: &HeaderMap, from: &str, to: &str) -> Option<HeaderValue> {
    let content_type = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let suffix = content_type.strip_prefix(from)?;
    if !(suffix.is_empty() || suffix.starts_with(['+', ';'])) {
        return None;
    }
    HeaderValue::from_str(&format!("{to}{suffix}")).ok()
}

/// The gRPC-Web frame that carries `trailers`: flag, length, then `name: value\r\n` lines.
fn trailer_frame(trailers: &HeaderMap) -> Bytes {
    let mut block = BytesMut::new();
    for (name, value) in trailers {
        block.put_slice(name.as_str().as_bytes());
        block.put_slice(b": ");
        block.put_slice(value.as_bytes());
        block.put_slice(b"\r\n");
    }
    let mut frame = BytesMut::with_capacity(5 + block.len());
    frame.put_u8(TRAILER_FLAG);
    frame.put_u32(u32::try_from(block.len()).unwrap_or(u32::MAX));
    frame.put_slice(&block);
    frame.freeze()
}

pin_project! {
    /// An upstream gRPC response body written as gRPC-Web.
    struct Encode {
        #[pin]
        inner: Body,
        mode: Mode,
        done: bool,
    }
}

impl HttpBody for Encode {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        while !*this.done {
            let Some(frame) = ready!(this.inner.as_mut().poll_frame(cx)) else {
                // A gRPC response always ends with a status; say so if this one did not.
                *this.done = true;
                let mut trailers = HeaderMap::new();
                trailers.insert(GRPC_STATUS.clone(), HeaderValue::from(INTERNAL));
                trailers.insert(
                    GRPC_MESSAGE.clone(),
                    HeaderValue::from_static("upstream response ended without a status"),
                );
                let frame = this.mode.encode(trailer_frame(&trailers));
                return Poll::Ready(Some(Ok(Frame::data(frame))));
            };
            let frame = match frame {
                Ok(frame) => frame,
                Err(e) => return Poll::Ready(Some(Err(e))),
            };
            match frame.into_data() {
                Ok(data) => return Poll::Ready(Some(Ok(Frame::data(this.mode.encode(data))))),
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        *this.done = true;
                        let frame = this.mode.encode(trailer_frame(&trailers));
                        return Poll::Ready(Some(Ok(Frame::data(frame))));
                    }
                }
            }
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

pin_project! {
    /// A gRPC-Web text request body, decoded from base64 as it streams.
    struct Decode {
        #[pin]
        inner: Body,
        // Characters of a base64 quantum not yet complete.
        pending: BytesMut,
    }
}

impl HttpBody for Decode {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        loop {
            let Some(frame) = ready!(this.inner.as_mut().poll_frame(cx)) else {
                if this.pending.is_empty() {
                    return Poll::Ready(None);
                }
                let left = this.pending.len();
                this.pending.clear();
                let message = format!(
                    "gRPC-Web text body ends inside a base64 quantum ({left} characters left over)"
                );
                return Poll::Ready(Some(Err(message.into())));
            };
            let data = match frame.map(Frame::into_data) {
                Ok(Ok(data)) => data,
                Ok(Err(other)) => return Poll::Ready(Some(Ok(other))),
                Err(e) => return Poll::Ready(Some(Err(e))),
            };
            this.pending
                .extend(data.iter().filter(|b| !b.is_ascii_whitespace()));
            let whole = this.pending.len() / 4 * 4;
            if whole == 0 {
                continue;
            }
            let quanta = this.pending.split_to(whole);
            return Poll::Ready(Some(decode(&quanta).map(Frame::data)));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_empty() && self.inner.is_end_stream()
    }
}

/// Decodes whole base64 quanta, where padding may end any quantum: clients encode each
/// message on its own.
fn decode(quanta: &[u8]) -> Result<Bytes, BoxError> {
    let mut out = Vec::with_capacity(quanta.len() / 4 * 3);
    let mut start = 0;
    for (i, quantum) in quanta.chunks(4).enumerate() {
        let end = (i + 1) * 4;
        if quantum.contains(&b'=') || end == quanta.len() {
            STANDARD
                .decode_vec(&quanta[start..end], &mut out)
                .map_err(|e| format!("gRPC-Web text body is not base64: {e}"))?;
            start = end;
        }
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn headers(content_type: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers
    }

    #[test]
    fn modes_come_from_the_content_type() {
        assert_eq!(
            Mode::of(&headers("application/grpc-web")),
            Some(Mode::Binary)
        );
        assert_eq!(
            Mode::of(&headers("application/grpc-web+proto")),
            Some(Mode::Binary)
        );
        assert_eq!(
            Mode::of(&headers("application/grpc-web-text+proto")),
            Some(Mode::Text)
        );
        assert_eq!(Mode::of(&headers("application/grpc")), None);
    }

    #[test]
    fn content_types_map_both_ways_keeping_the_suffix() {
        let web = headers("application/grpc-web-text+proto");
        assert_eq!(
            retype(&web, GRPC_WEB_TEXT, GRPC)
                .as_ref()
                .map(HeaderValue::as_bytes),
            Some(&b"application/grpc+proto"[..])
        );
        let grpc = headers("application/grpc");
        assert_eq!(
            retype(&grpc, GRPC, GRPC_WEB)
                .as_ref()
                .map(HeaderValue::as_bytes),
            Some(&b"application/grpc-web"[..])
        );
        assert_eq!(retype(&headers("application/grpcx"), GRPC, GRPC_WEB), None);
    }

    #[test]
    fn trailers_become_a_flagged_header_block() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        trailers.insert("grpc-message", HeaderValue::from_static("ok"));
        let frame = trailer_frame(&trailers);
        assert_eq!(frame[0], 0x80);
        let block = &frame[5..];
        assert_eq!(
            u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]) as usize,
            block.len()
        );
        assert_eq!(block, b"grpc-status: 0\r\ngrpc-message: ok\r\n");
    }

    #[test]
    fn padding_may_end_any_quantum() {
        let text = format!("{}{}", STANDARD.encode(b"ab"), STANDARD.encode(b"cdef"));
        assert_eq!(&decode(text.as_bytes()).expect("decodes")[..], b"abcdef");
        assert!(decode(b"ab!d").is_err());
    }

    #[tokio::test]
    async fn text_requests_decode_across_chunk_boundaries() {
        let encoded = STANDARD.encode(b"\x00\x00\x00\x00\x03abc");
        let (first, second) = encoded.split_at(5);
        let chunks = chunks_body(&[first.as_bytes(), second.as_bytes()]);
        let decoded = Decode {
            inner: chunks,
            pending: BytesMut::new(),
        };
        let bytes = decoded.collect().await.expect("decodes").to_bytes();
        assert_eq!(&bytes[..], b"\x00\x00\x00\x00\x03abc");
    }

    #[tokio::test]
    async fn a_text_body_cut_inside_a_quantum_is_an_error() {
        let decoded = Decode {
            inner: chunks_body(&[b"AAAAA"]),
            pending: BytesMut::new(),
        };
        assert!(decoded.collect().await.is_err());
    }

    /// A body made of the given chunks, one frame each, as a client might split it.
    fn chunks_body(chunks: &[&[u8]]) -> Body {
        let chunks = chunks.iter().map(|c| Bytes::copy_from_slice(c)).collect();
        body::boxed(Chunks(chunks))
    }

    struct Chunks(std::collections::VecDeque<Bytes>);

    impl HttpBody for Chunks {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            Poll::Ready(self.0.pop_front().map(|c| Ok(Frame::data(c))))
        }
    }
}
