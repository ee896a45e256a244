//! A gRPC request body inspected message by message: each length-prefixed message is held
//! until it is whole, inspected, and only then sent on, so a refused message never reaches
//! the upstream and a stream is never buffered beyond one message.

use std::io::Read;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body as HttpBody, Frame};

use super::{Blocked, Inspection, protobuf};
use crate::body::{Body, BoxError};
use crate::config::model::{BodyLimitAction, WafMode};

/// The 5-byte prefix of a gRPC message: compressed flag and length.
const PREFIX: usize = 5;

/// How the caller compressed its messages (`grpc-encoding`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Encoding {
    Identity,
    Gzip,
    Deflate,
    /// Not decoded here: such messages pass uninspected (and are counted).
    Other,
}

impl Encoding {
    fn of(headers: &HeaderMap) -> Self {
        match headers.get("grpc-encoding").map(|v| v.as_bytes()) {
            None | Some(b"identity") => Encoding::Identity,
            Some(b"gzip") => Encoding::Gzip,
            Some(b"deflate") => Encoding::Deflate,
            Some(_) => Encoding::Other,
        }
    }
}

/// The request body of a gRPC call on its way upstream, inspected one message at a time.
pub struct Messages {
    inner: Body,
    inspection: Arc<Inspection>,
    encoding: Encoding,
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
            if policy.limit_action == BodyLimitAction::Reject && policy.mode == WafMode::Block {
                return Err(Blocked {
                    rule_id: 0,
                    status: http::StatusCode::PAYLOAD_TOO_LARGE,
                });
            }
            self.inspection.uninspected_message();
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
            Some(message.to_vec())
        };
        match decoded {
            Some(message) => {
                let args = protobuf::args(&message);
                if let Some(blocked) = self.inspection.message(&args, &message) {
                    return Err(blocked);
                }
            }
            None => self.inspection.uninspected_message(),
        }
        self.forwarded = true;
        Ok(Some(frame))
    }
}

/// A compressed message's bytes, when its encoding is one decoded here and it fits the
/// limit once inflated.
fn decompress(encoding: Encoding, message: &[u8], limit: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let read = match encoding {
        Encoding::Gzip => flate2::read::GzDecoder::new(message)
            .take(cap)
            .read_to_end(&mut out),
        Encoding::Deflate => flate2::read::ZlibDecoder::new(message)
            .take(cap)
            .read_to_end(&mut out),
        Encoding::Identity | Encoding::Other => return None,
    };
    (read.is_ok() && out.len() <= limit).then_some(out)
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
                        "request message refused by WAF rule {}",
                        blocked.rule_id
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
                            "request refused by WAF rule {}",
                            blocked.rule_id
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
        assert_eq!(decompress(Encoding::Gzip, &gz, 1024), Some(message.clone()));
        assert_eq!(
            decompress(Encoding::Gzip, &gz, 100),
            None,
            "inflates past the limit"
        );
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zlib.write_all(&message).expect("compress");
        let zlib = zlib.finish().expect("compress");
        assert_eq!(decompress(Encoding::Deflate, &zlib, 1024), Some(message));
        assert_eq!(decompress(Encoding::Other, &zlib, 1024), None);
    }
}
