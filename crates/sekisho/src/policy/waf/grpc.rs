//! A gRPC request body inspected message by message: each length-prefixed message is held
//! until it is whole, inspected, and only then sent on, so a refused message never reaches
//! the upstream and a stream is never buffered beyond one message.
//!
//! A message is never passed as inspected when it was not: one flagged compressed is
//! inflated (gzip or deflate, never past the body limit) or, when that is not possible
//! (an unknown `grpc-encoding`, a corrupt or oversized stream), refused in `block` mode.

use std::io::Read;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body as HttpBody, Frame};

use super::{Blocked, Inspection, Unread, protobuf};
use crate::body::{Body, BoxError};

/// The 5-byte prefix of a gRPC message: compressed flag and length.
const PREFIX: usize = 5;

/// How the caller compressed its messages (`grpc-encoding`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Encoding {
    Identity,
    Gzip,
    Deflate,
    /// Not decoded here: such messages cannot be inspected.
    Other,
}

impl Encoding {
    fn of(headers: &HeaderMap) -> Self {
        headers
            .get(GRPC_ENCODING)
            .map_or(Encoding::Identity, |v| Encoding::named(v.as_bytes()))
    }

    /// Content codings are case-insensitive (RFC 9110 8.4.1): `GZIP` is gzip, and a
    /// backend that reads it so gets nothing the WAF did not read.
    fn named(value: &[u8]) -> Self {
        if value.eq_ignore_ascii_case(b"identity") {
            Encoding::Identity
        } else if value.eq_ignore_ascii_case(b"gzip") {
            Encoding::Gzip
        } else if value.eq_ignore_ascii_case(b"deflate") {
            Encoding::Deflate
        } else {
            Encoding::Other
        }
    }
}

const GRPC_ENCODING: &str = "grpc-encoding";

/// The `grpc-encoding` of a gRPC or gRPC-Web request whose messages the WAF could not
/// decode, if it names one.
pub(super) fn undecodable_encoding(headers: &HeaderMap) -> Option<&[u8]> {
    // Content types were put in their canonical form when the request was classified.
    let grpc = headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/grpc"));
    let value = headers.get(GRPC_ENCODING)?.as_bytes();
    (grpc && Encoding::named(value) == Encoding::Other).then_some(value)
}

/// The request body of a gRPC call on its way upstream, inspected one message at a time.
pub struct Messages {
    inner: Body,
    inspection: Arc<Inspection>,
    encoding: Encoding,
    /// The `grpc-encoding` as sent, to name it in a refusal.
    encoding_name: Bytes,
    /// Bytes of the message being assembled (prefix included).
    pending: BytesMut,
    /// Bytes of an oversized message still to pass through uninspected.
    passing: usize,
    /// Whether a message went on; until then the end of the body must be polled, so the
    /// inspection of a body without messages runs.
    forwarded: bool,
    ended: bool,
}

impl Messages {
    /// Wraps the body of a gRPC request whose head is `headers`.
    pub fn new(inner: Body, headers: &HeaderMap, inspection: Arc<Inspection>) -> Self {
        Messages {
            inner,
            inspection,
            encoding: Encoding::of(headers),
            encoding_name: headers
                .get(GRPC_ENCODING)
                .map(|v| Bytes::copy_from_slice(v.as_bytes()))
                .unwrap_or_default(),
            pending: BytesMut::new(),
            passing: 0,
            forwarded: false,
            ended: false,
        }
    }

    /// The next bytes that may go upstream, if any are ready.
    fn next_ready(&mut self) -> Result<Option<Bytes>, Blocked> {
        if self.passing > 0 {
            let n = self.passing.min(self.pending.len());
            if n == 0 {
                return Ok(None);
            }
            self.passing -= n;
            return Ok(Some(self.pending.split_to(n).freeze()));
        }
        if self.pending.len() < PREFIX {
            return Ok(None);
        }
        let compressed = self.pending[0] & 1 == 1;
        let len = u32::from_be_bytes([
            self.pending[1],
            self.pending[2],
            self.pending[3],
            self.pending[4],
        ]) as usize;
        let policy = &self.inspection.policy;
        if len > policy.body_limit {
            if let Some(blocked) = self.inspection.unread_message(Unread::TooLong, &[]) {
                return Err(blocked);
            }
            self.passing = PREFIX + len;
            return self.next_ready();
        }
        if self.pending.len() < PREFIX + len {
            return Ok(None);
        }
        let frame = self.pending.split_to(PREFIX + len).freeze();
        let message = frame.slice(PREFIX..);
        let decoded = if compressed {
            decompress(self.encoding, &message, policy.body_limit)
        } else {
            Ok(message.to_vec())
        };
        match decoded {
            Ok(message) => {
                let args = protobuf::args(&message, policy.arguments_limit);
                if let Some(blocked) = self.inspection.message(&args, &message) {
                    return Err(blocked);
                }
            }
            Err(why) => {
                if let Some(blocked) = self.inspection.unread_message(why, &self.encoding_name) {
                    return Err(blocked);
                }
            }
        }
        self.forwarded = true;
        Ok(Some(frame))
    }
}

/// A compressed message's bytes, when its encoding is one decoded here and it fits the
/// limit once inflated. Inflation stops one byte past the limit, so a small message that
/// inflates to gigabytes costs no more than the limit.
fn decompress(encoding: Encoding, message: &[u8], limit: usize) -> Result<Vec<u8>, Unread> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let read = match encoding {
        Encoding::Gzip => flate2::read::GzDecoder::new(message)
            .take(cap)
            .read_to_end(&mut out),
        Encoding::Deflate => flate2::read::ZlibDecoder::new(message)
            .take(cap)
            .read_to_end(&mut out),
        // Flagged compressed without a compression named: the caller breaks the protocol.
        Encoding::Identity => return Err(Unread::Undecodable),
        Encoding::Other => return Err(Unread::Encoding),
    };
    if out.len() > limit {
        return Err(Unread::TooLong);
    }
    read.map(|_| out).map_err(|_| Unread::Undecodable)
}

impl HttpBody for Messages {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            match self.next_ready() {
                Ok(Some(bytes)) => return Poll::Ready(Some(Ok(Frame::data(bytes)))),
                Ok(None) => {}
                Err(blocked) => {
                    self.ended = true;
                    // The upstream's stream is reset; the caller is told by `Guarded`.
                    return Poll::Ready(Some(Err(format!(
                        "request message refused by the WAF: {}",
                        blocked.cause
                    )
                    .into())));
                }
            }
            if self.ended {
                return Poll::Ready(None);
            }
            match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        if self.pending.is_empty() && self.passing >= data.len() {
                            self.passing -= data.len();
                            return Poll::Ready(Some(Ok(Frame::data(data))));
                        }
                        self.pending.extend_from_slice(&data);
                    }
                    Err(other) => return Poll::Ready(Some(Ok(other))),
                },
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => {
                    self.ended = true;
                    if let Some(blocked) = self.inspection.no_messages() {
                        return Poll::Ready(Some(Err(format!(
                            "request refused by the WAF: {}",
                            blocked.cause
                        )
                        .into())));
                    }
                    // A torn last message goes on as it is: the upstream refuses it.
                    if !self.pending.is_empty() {
                        let rest = self.pending.split().freeze();
                        return Poll::Ready(Some(Ok(Frame::data(rest))));
                    }
                    return Poll::Ready(None);
                }
            }
        }
    }

    /// Also true once the caller's body ended behind the last message sent, so that message
    /// goes upstream with END_STREAM as the caller sent it: a separate empty end frame after
    /// every small message counts against the upstream's budget of small DATA frames (h2
    /// answers a flood of them with GOAWAY ENHANCE_YOUR_CALM, failing every call in flight).
    fn is_end_stream(&self) -> bool {
        self.pending.is_empty()
            && (self.ended || (self.forwarded && self.passing == 0 && self.inner.is_end_stream()))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn gzip_and_deflate_messages_are_read_within_the_limit() {
        let message = b"\x0a\x05hello".repeat(20);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&message).expect("compress");
        let gz = gz.finish().expect("compress");
        assert_eq!(decompress(Encoding::Gzip, &gz, 1024), Ok(message.clone()));
        assert_eq!(
            decompress(Encoding::Gzip, &gz, 100),
            Err(Unread::TooLong),
            "inflates past the limit"
        );
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zlib.write_all(&message).expect("compress");
        let zlib = zlib.finish().expect("compress");
        assert_eq!(decompress(Encoding::Deflate, &zlib, 1024), Ok(message));
        assert_eq!(
            decompress(Encoding::Other, &zlib, 1024),
            Err(Unread::Encoding)
        );
        assert_eq!(
            decompress(Encoding::Identity, &zlib, 1024),
            Err(Unread::Undecodable)
        );
        assert_eq!(
            decompress(Encoding::Gzip, &zlib, 1024),
            Err(Unread::Undecodable)
        );
    }

    #[test]
    fn a_gzip_bomb_stops_inflating_at_the_limit() {
        // 64 MiB of zeros compress to about 64 KiB; inflation stops one byte past 1 MiB.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        for _ in 0..64 {
            gz.write_all(&[0u8; 1 << 20]).expect("compress");
        }
        let gz = gz.finish().expect("compress");
        assert!(gz.len() < 1 << 17);
        assert_eq!(
            decompress(Encoding::Gzip, &gz, 1 << 20),
            Err(Unread::TooLong)
        );
    }

    #[test]
    fn encodings_are_named_in_any_case() {
        assert_eq!(Encoding::named(b"GZIP"), Encoding::Gzip);
        assert_eq!(Encoding::named(b"Deflate"), Encoding::Deflate);
        assert_eq!(Encoding::named(b"Identity"), Encoding::Identity);
        assert_eq!(Encoding::named(b"br"), Encoding::Other);
        assert_eq!(Encoding::named(b"gzip, br"), Encoding::Other);
        let mut headers = HeaderMap::new();
        headers.insert(GRPC_ENCODING, http::HeaderValue::from_static("snappy"));
        assert_eq!(undecodable_encoding(&headers), None, "not gRPC");
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/grpc"),
        );
        assert_eq!(undecodable_encoding(&headers), Some(&b"snappy"[..]));
        headers.insert(GRPC_ENCODING, http::HeaderValue::from_static("GZIP"));
        assert_eq!(undecodable_encoding(&headers), None);
    }
}
