//! A request body read straight from the client's connection.
//!
//! While a request has a body, the body owns the connection's read side ([`Inbound`]):
//! whoever reads the body reads the socket, with no task or channel between them, and
//! nothing is read that nobody asked for. Once the body has ended (all of it read, or all
//! of it already in the buffer when the body is dropped unread) it hands the read side
//! back through its [`Home`] so the connection can read the next request; a body that
//! did not end keeps it, and the connection closes after the response.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::Notify;

use super::head::Framing;

/// Longest chunk-size line, extensions included (hyper allows 16 KiB of extensions).
const MAX_CHUNK_LINE: usize = 16 * 1024 + 64;
/// Most bytes of trailer fields after the last chunk.
const MAX_TRAILERS: usize = 16 * 1024;
/// Most bytes asked of the socket in one read while a body streams.
const MAX_READ: usize = 64 * 1024;
/// Fewest bytes asked for: small reads are as costly as large ones.
const MIN_READ: usize = 8 * 1024;

/// A connection's read side: the stream and the bytes read from it and not yet used.
pub struct Inbound {
    /// The stream.
    pub io: Box<dyn AsyncRead + Send + Unpin>,
    /// Read and not yet used; empty and unallocated while the connection is idle.
    pub buf: BytesMut,
}

impl Inbound {
    /// A read side with nothing behind it, left in place of one handed to a request.
    pub fn gone() -> Self {
        Inbound {
            io: Box::new(tokio::io::empty()),
            buf: BytesMut::new(),
        }
    }

    /// Reads at least one more byte into `buf` (asking for at least `want`); `Ok(0)` at
    /// the end of the stream.
    pub fn poll_fill(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<usize>> {
        let want = want.clamp(MIN_READ, MAX_READ);
        if self.buf.capacity() - self.buf.len() < want {
            self.buf.reserve(want);
        }
        // Straight into the buffer's spare room, which is not zeroed first.
        let read = self.io.read_buf(&mut self.buf);
        std::pin::pin!(read).poll(cx)
    }
}

/// Where a body returns the connection's read side once it has ended.
#[derive(Default)]
pub struct Home(Mutex<Option<Inbound>>);

impl Home {
    /// The read side, if the body has ended and returned it.
    pub fn take(&self) -> Option<Inbound> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }

    fn put(&self, inbound: Inbound) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(inbound);
        }
    }
}

/// A chunked body's reading position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunked {
    /// At a chunk-size line.
    Size,
    /// Inside a chunk, with this many bytes of it left.
    Data(u64),
    /// After a chunk's data, at its line ending.
    DataEnd,
    /// After the last chunk, at the trailer section.
    Trailers,
}

/// Where in the body the next byte belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decoder {
    /// This many bytes of a `Content-Length` body left.
    Length(u64),
    /// A chunked body.
    Chunked(Chunked),
    /// All of it read.
    Done,
}

/// How a request body's bytes broke the framing it declared.
#[derive(Debug)]
pub struct BadFraming(&'static str);

impl fmt::Display for BadFraming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed request body: {}", self.0)
    }
}

impl std::error::Error for BadFraming {}

/// What decoding the buffered bytes gave.
enum Step {
    /// A frame for the reader.
    Frame(Frame<Bytes>),
    /// The body ended.
    Done,
    /// More bytes are needed, at least this many.
    More(usize),
}

impl Decoder {
    /// Decodes the next frame from `buf`, taking its bytes out.
    fn step(&mut self, buf: &mut BytesMut) -> Result<Step, BadFraming> {
        loop {
            match *self {
                Decoder::Done => return Ok(Step::Done),
                Decoder::Length(0) => *self = Decoder::Done,
                Decoder::Length(left) => {
                    if buf.is_empty() {
                        return Ok(Step::More(usize::try_from(left).unwrap_or(MAX_READ)));
                    }
                    let take = take_len(left, buf.len());
                    let left = left - take as u64;
                    // Ended with its last frame, so a reader sees the end without asking.
                    *self = if left == 0 {
                        Decoder::Done
                    } else {
                        Decoder::Length(left)
                    };
                    return Ok(Step::Frame(Frame::data(buf.split_to(take).freeze())));
                }
                Decoder::Chunked(Chunked::Size) => {
                    let Some(end) = buf.iter().position(|b| *b == b'\n') else {
                        if buf.len() > MAX_CHUNK_LINE {
                            return Err(BadFraming("chunk-size line too long"));
                        }
                        return Ok(Step::More(1));
                    };
                    let size = chunk_size(&buf[..end])?;
                    buf.advance(end + 1);
                    *self = Decoder::Chunked(if size == 0 {
                        Chunked::Trailers
                    } else {
                        Chunked::Data(size)
                    });
                }
                Decoder::Chunked(Chunked::Data(left)) => {
                    if buf.is_empty() {
                        return Ok(Step::More(usize::try_from(left).unwrap_or(MAX_READ)));
                    }
                    let take = take_len(left, buf.len());
                    let left = left - take as u64;
                    *self = Decoder::Chunked(if left == 0 {
                        Chunked::DataEnd
                    } else {
                        Chunked::Data(left)
                    });
                    return Ok(Step::Frame(Frame::data(buf.split_to(take).freeze())));
                }
                Decoder::Chunked(Chunked::DataEnd) => match buf.first() {
                    None => return Ok(Step::More(2)),
                    Some(b'\n') => {
                        buf.advance(1);
                        *self = Decoder::Chunked(Chunked::Size);
                    }
                    Some(b'\r') if buf.len() < 2 => return Ok(Step::More(1)),
                    Some(b'\r') if buf[1] == b'\n' => {
                        buf.advance(2);
                        *self = Decoder::Chunked(Chunked::Size);
                    }
                    Some(_) => return Err(BadFraming("chunk data longer than its size")),
                },
                Decoder::Chunked(Chunked::Trailers) => {
                    let Some(end) = trailer_end(buf) else {
                        if buf.len() > MAX_TRAILERS {
                            return Err(BadFraming("trailer section too long"));
                        }
                        return Ok(Step::More(1));
                    };
                    let section = buf.split_to(end).freeze();
                    *self = Decoder::Done;
                    let trailers = trailers(&section)?;
                    if !trailers.is_empty() {
                        return Ok(Step::Frame(Frame::trailers(trailers)));
                    }
                }
            }
        }
    }
}

/// How much of `buffered` bytes a body with `left` bytes to go takes.
fn take_len(left: u64, buffered: usize) -> usize {
    usize::try_from(left).map_or(buffered, |left| left.min(buffered))
}

/// A chunk-size line's size (extensions ignored, as RFC 9112 7.1.1 allows).
fn chunk_size(line: &[u8]) -> Result<u64, BadFraming> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits = line
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii_end();
    if digits.is_empty() || digits.len() > 16 {
        return Err(BadFraming("invalid chunk size"));
    }
    digits.iter().try_fold(0u64, |n, d| {
        let digit = (*d as char)
            .to_digit(16)
            .ok_or(BadFraming("invalid chunk size"))?;
        Ok((n << 4) | u64::from(digit))
    })
}

/// The length of a trailer section at the start of `buf`, its final empty line included.
fn trailer_end(buf: &[u8]) -> Option<usize> {
    let mut start = 0;
    while let Some(at) = buf[start..].iter().position(|b| *b == b'\n') {
        let line = &buf[start..start + at];
        start += at + 1;
        if line.is_empty() || line == b"\r" {
            return Some(start);
        }
    }
    None
}

/// The fields of a trailer section.
fn trailers(section: &Bytes) -> Result<HeaderMap, BadFraming> {
    let mut fields = HeaderMap::new();
    for line in section.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let colon = line
            .iter()
            .position(|b| *b == b':')
            .ok_or(BadFraming("invalid trailer field"))?;
        let name = HeaderName::from_bytes(&line[..colon])
            .map_err(|_| BadFraming("invalid trailer field name"))?;
        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii())
            .map_err(|_| BadFraming("invalid trailer field value"))?;
        fields.append(name, value);
    }
    Ok(fields)
}

/// A request body read from the connection; see the module's comment.
pub struct RequestBody {
    /// The read side, while the body has it.
    inbound: Option<Inbound>,
    decoder: Decoder,
    home: Arc<Home>,
    /// Told when the body is first read, for a client that waits for `100 Continue`.
    wants_continue: Option<Arc<Notify>>,
    /// The declared length, for the size hint.
    length: Option<u64>,
}

impl RequestBody {
    /// The body framed by `framing`, read through `inbound`, returned to `home` once it
    /// has ended.
    pub fn new(
        inbound: Inbound,
        framing: Framing,
        home: Arc<Home>,
        wants_continue: Option<Arc<Notify>>,
    ) -> Self {
        let (decoder, length) = match framing {
            Framing::Empty => (Decoder::Done, Some(0)),
            Framing::Length(n) => (Decoder::Length(n), Some(n)),
            Framing::Chunked => (Decoder::Chunked(Chunked::Size), None),
        };
        let mut body = RequestBody {
            inbound: Some(inbound),
            decoder,
            home,
            wants_continue,
            length,
        };
        body.return_if_done();
        body
    }

    fn return_if_done(&mut self) {
        if self.decoder == Decoder::Done
            && let Some(inbound) = self.inbound.take()
        {
            self.home.put(inbound);
        }
    }
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        loop {
            let Some(inbound) = this.inbound.as_mut() else {
                return Poll::Ready(None);
            };
            let want = match this.decoder.step(&mut inbound.buf) {
                Ok(Step::Frame(frame)) => {
                    this.return_if_done();
                    return Poll::Ready(Some(Ok(frame)));
                }
                Ok(Step::Done) => {
                    this.return_if_done();
                    return Poll::Ready(None);
                }
                Ok(Step::More(want)) => want,
                Err(bad) => {
                    // The connection cannot be read past a broken body.
                    this.inbound = None;
                    return Poll::Ready(Some(Err(bad.into())));
                }
            };
            if let Some(notify) = this.wants_continue.take() {
                notify.notify_one();
            }
            match ready!(inbound.poll_fill(cx, want)) {
                Ok(0) => {
                    this.inbound = None;
                    let closed = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the client closed its connection before the end of the body",
                    );
                    return Poll::Ready(Some(Err(closed.into())));
                }
                Ok(_) => {}
                Err(e) => {
                    this.inbound = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.decoder == Decoder::Done
    }

    fn size_hint(&self) -> SizeHint {
        match (self.length, self.decoder) {
            (Some(_), Decoder::Length(left)) => SizeHint::with_exact(left),
            (_, Decoder::Done) => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

impl Drop for RequestBody {
    /// A body dropped unread whose rest is already buffered is skipped, so the connection
    /// can carry the next request: a small POST refused by a policy keeps its connection.
    fn drop(&mut self) {
        let Some(inbound) = self.inbound.as_mut() else {
            return;
        };
        while let Ok(Step::Frame(_)) = self.decoder.step(&mut inbound.buf) {}
        self.return_if_done();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Decodes `bytes` as a whole body: its data and trailers, or how it broke.
    fn decode(framing: Decoder, bytes: &[u8]) -> Result<(Vec<u8>, Option<HeaderMap>), String> {
        let mut decoder = framing;
        let mut buf = BytesMut::from(bytes);
        let (mut data, mut trailers) = (Vec::new(), None);
        loop {
            match decoder.step(&mut buf).map_err(|e| e.to_string())? {
                Step::Frame(frame) => match frame.into_data() {
                    Ok(d) => data.extend_from_slice(&d),
                    Err(frame) => trailers = frame.into_trailers().ok(),
                },
                Step::Done => return Ok((data, trailers)),
                Step::More(_) => return Err("incomplete".into()),
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_with_extensions_and_trailers() {
        let (data, trailers) = decode(
            Decoder::Chunked(Chunked::Size),
            b"3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nx-sum: 9\r\n\r\nGET",
        )
        .expect("valid");
        assert_eq!(data, b"abc0123456789");
        assert_eq!(trailers.expect("trailers")["x-sum"], "9");
        assert!(decode(Decoder::Chunked(Chunked::Size), b"3\r\nabcd\r\n0\r\n\r\n").is_err());
        assert!(decode(Decoder::Chunked(Chunked::Size), b"zz\r\n").is_err());
        assert!(
            decode(Decoder::Chunked(Chunked::Size), b"11111111111111111\r\n").is_err(),
            "a size past 64 bits is refused"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Any body chunked any way decodes to its bytes, whatever the arrival order.
        #[test]
        fn chunked_round_trips(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 0..8), cut in 0usize..4000) {
            let mut wire = Vec::new();
            for chunk in &chunks {
                wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                wire.extend_from_slice(chunk);
                wire.extend_from_slice(b"\r\n");
            }
            wire.extend_from_slice(b"0\r\n\r\n");
            let cut = cut.min(wire.len());
            let mut decoder = Decoder::Chunked(Chunked::Size);
            let mut buf = BytesMut::from(&wire[..cut]);
            let mut data = Vec::new();
            let mut fed = false;
            loop {
                match decoder.step(&mut buf).expect("valid") {
                    Step::Frame(frame) => data.extend_from_slice(&frame.into_data().expect("data")),
                    Step::Done => break,
                    Step::More(_) => {
                        prop_assert!(!fed, "stalled with everything fed");
                        buf.extend_from_slice(&wire[cut..]);
                        fed = true;
                    }
                }
            }
            prop_assert_eq!(data, chunks.concat());
        }

        /// Arbitrary bytes end, break or ask for more, and never hold more than a bounded
        /// line unparsed.
        #[test]
        fn arbitrary_bytes_are_bounded(bytes in proptest::collection::vec(any::<u8>(), 0..40_000)) {
            let mut decoder = Decoder::Chunked(Chunked::Size);
            let mut buf = BytesMut::from(&bytes[..]);
            loop {
                match decoder.step(&mut buf) {
                    Ok(Step::Frame(_)) => {}
                    Ok(Step::Done) | Err(_) => break,
                    Ok(Step::More(_)) => {
                        prop_assert!(buf.len() <= MAX_CHUNK_LINE.max(MAX_TRAILERS) + 2);
                        break;
                    }
                }
            }
        }
    }
}
