//! The request lines of an HTTP/1.1 connection, read from its bytes beside hyper's parser.
//!
//! Two things about a request are gone by the time hyper hands it over: a `#fragment` in
//! its target (the `http` crate drops it while parsing, so `GET /#x` arrives as `GET /`),
//! and, for a head hyper refuses, the head itself (hyper answers 400 and closes; the
//! service never sees a request). A request target never carries a fragment (RFC 9110
//! 7.1; RFC 9112 3.2 has no room for one), and a client that sends one is confused or
//! probing, so the gateway refuses it (400); a refused head should be logged with what it
//! asked for.
//!
//! So this module follows the connection's framing on its own: it reads each request line
//! and the headers that decide where the next head starts (`Content-Length`,
//! `Transfer-Encoding`), skips bodies (chunked ones by their chunk sizes), and notes each
//! head's request line in order. Its rules are hyper's; wherever it could disagree with
//! hyper (an upgrade, `CONNECT`, a framing hyper would refuse anyway, more notes than a
//! pipelining client sends, a note that does not match the request hyper produced) it
//! stops following the connection and says nothing more, so a disagreement can only ever
//! let a fragment through, never refuse a request that has none.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http::{Method, Uri};
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Heads noted and not yet matched with a request; a client pipelining more is not
/// followed further.
const MAX_NOTES: usize = 32;
/// Longest chunk-size line followed (hyper's limit on chunk extensions is 16 KiB).
const MAX_CHUNK_LINE: usize = 16 * 1024 + 64;
/// Longest request line kept for the log of a refused head.
const MAX_LOGGED_LINE: usize = 1024;

/// One request head as it arrived.
#[derive(Debug)]
pub struct Note {
    /// The request line, without its line ending.
    line: Box<[u8]>,
    /// When the head's first byte arrived.
    pub started: Instant,
}

impl Note {
    /// The request line, as sent.
    pub fn line(&self) -> &[u8] {
        &self.line
    }

    /// The method, as sent.
    pub fn method(&self) -> &[u8] {
        self.parts().0
    }

    /// The request target, as sent (fragment included).
    pub fn target(&self) -> &[u8] {
        self.parts().1
    }

    /// Whether the target carries a fragment.
    pub fn has_fragment(&self) -> bool {
        self.target().contains(&b'#')
    }

    fn parts(&self) -> (&[u8], &[u8]) {
        let mut parts = self.line.splitn(3, |b| *b == b' ');
        let method = parts.next().unwrap_or_default();
        let target = parts.next().unwrap_or_default();
        (method, target)
    }

    /// Whether hyper's reading of the head is this note's: the same method and the same
    /// target once the fragment is dropped, as the `http` crate drops it.
    fn matches(&self, method: &Method, uri: &Uri) -> bool {
        if self.method() != method.as_str().as_bytes() {
            return false;
        }
        let target = self.target();
        let target = &target[..target
            .iter()
            .position(|b| *b == b'#')
            .unwrap_or(target.len())];
        if target.is_empty() {
            return true;
        }
        if target.starts_with(b"/") {
            return uri.path_and_query().map(|pq| pq.as_str().as_bytes()) == Some(target);
        }
        uri.to_string().as_bytes().eq_ignore_ascii_case(target)
    }
}

/// What the notes say about the request hyper has just produced.
#[derive(Debug)]
pub enum Verdict {
    /// Its target had no fragment.
    Clean,
    /// Its target had a fragment: refuse it.
    Fragment(Note),
    /// The connection is not followed (any more): nothing is known.
    Unknown,
}

/// Where in the connection's framing the next byte falls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// A request head (or the empty lines allowed before one).
    Head,
    /// So many bytes of a body with a declared length.
    Body(u64),
    /// A chunk-size line.
    ChunkSize,
    /// So many bytes of a chunk's data.
    ChunkData(u64),
    /// The CRLF after a chunk's data; the number of its bytes seen.
    ChunkEnd(u8),
    /// Trailer lines after the last chunk, up to an empty one.
    Trailers,
    /// No longer followed.
    Off,
}

/// What one head says about the body after it.
#[derive(Default)]
struct Framing {
    http11: bool,
    length: Option<u64>,
    transfer_encoding: bool,
    chunked: bool,
    upgrade: bool,
}

/// The framing of one HTTP/1.1 connection, followed byte by byte.
pub struct Heads {
    state: State,
    /// The line being read (a head's line, a chunk-size line, a trailer).
    line: Vec<u8>,
    /// The request line of the head being read; empty before it.
    request_line: Vec<u8>,
    /// Bytes of the head (or trailers) read so far.
    head_bytes: usize,
    /// hyper's bound on a head; past it hyper refuses the request.
    max_head: usize,
    framing: Framing,
    started: Option<Instant>,
    notes: VecDeque<Note>,
}

impl Heads {
    /// Follows a connection whose heads hyper bounds to `max_head` bytes.
    pub fn new(max_head: usize) -> Self {
        Heads {
            state: State::Head,
            line: Vec::new(),
            request_line: Vec::new(),
            head_bytes: 0,
            max_head,
            framing: Framing::default(),
            started: None,
            notes: VecDeque::new(),
        }
    }

    /// Stops following the connection.
    fn off(&mut self) {
        self.state = State::Off;
        self.line = Vec::new();
        self.notes.clear();
    }

    /// Takes in the next bytes the connection delivered.
    pub fn feed(&mut self, mut input: &[u8]) {
        while !input.is_empty() {
            match self.state {
                State::Off => return,
                State::Body(left) | State::ChunkData(left) => {
                    let n = left.min(input.len() as u64);
                    input = &input[n as usize..];
                    self.state = match (self.state, left - n) {
                        (State::Body(_), 0) => State::Head,
                        (State::Body(_), left) => State::Body(left),
                        (_, 0) => State::ChunkEnd(0),
                        (_, left) => State::ChunkData(left),
                    };
                }
                State::ChunkEnd(seen) => {
                    if input[0] != b"\r\n"[usize::from(seen)] {
                        return self.off();
                    }
                    input = &input[1..];
                    self.state = if seen == 1 {
                        State::ChunkSize
                    } else {
                        State::ChunkEnd(1)
                    };
                }
                State::Head | State::ChunkSize | State::Trailers => {
                    if self.state == State::Head
                        && self.started.is_none()
                        && self.line.is_empty()
                        && self.request_line.is_empty()
                    {
                        self.started = Some(Instant::now());
                    }
                    let (part, complete) = match input.iter().position(|b| *b == b'\n') {
                        Some(i) => (&input[..=i], true),
                        None => (input, false),
                    };
                    input = &input[part.len()..];
                    let over = if self.state == State::ChunkSize {
                        self.line.len() + part.len() > MAX_CHUNK_LINE
                    } else {
                        self.head_bytes += part.len();
                        self.head_bytes > self.max_head
                    };
                    if over {
                        // hyper refuses this head (431) or body; earlier heads keep their
                        // notes, and a refused head's line is kept for the log.
                        if self.state == State::Head && self.request_line.is_empty() {
                            let keep = MAX_LOGGED_LINE.saturating_sub(self.line.len());
                            self.line.extend_from_slice(&part[..part.len().min(keep)]);
                            self.request_line = std::mem::take(&mut self.line);
                        }
                        self.state = State::Off;
                        self.line = Vec::new();
                        return;
                    }
                    self.line.extend_from_slice(part);
                    if complete {
                        let line = std::mem::take(&mut self.line);
                        self.on_line(&line);
                        // Keep the allocation for the next line.
                        self.line = line;
                        self.line.clear();
                    }
                }
            }
        }
    }

    fn on_line(&mut self, line: &[u8]) {
        match self.state {
            State::Head => self.on_head_line(line),
            State::ChunkSize => self.on_chunk_size(line),
            State::Trailers => match line.strip_suffix(b"\r\n") {
                Some([]) => self.next_head(),
                Some(_) => {}
                None => self.off(),
            },
            _ => {}
        }
    }

    fn on_head_line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if self.request_line.is_empty() {
            if line.is_empty() {
                // Empty lines before a request line are skipped, as hyper skips them.
                self.head_bytes = 0;
                return;
            }
            self.request_line.extend_from_slice(line);
            let version = line.rsplit(|b| *b == b' ').next().unwrap_or_default();
            self.framing.http11 = version == b"HTTP/1.1";
            return;
        }
        if !line.is_empty() {
            return self.on_header(line);
        }
        // The end of the head: note it, then find where its body ends.
        if self.notes.len() >= MAX_NOTES {
            return self.off();
        }
        let note = Note {
            line: std::mem::take(&mut self.request_line).into_boxed_slice(),
            started: self.started.take().unwrap_or_else(Instant::now),
        };
        let connect = note.method() == b"CONNECT";
        self.notes.push_back(note);
        let framing = std::mem::take(&mut self.framing);
        self.head_bytes = 0;
        self.state = if framing.upgrade || connect {
            // What follows may not be HTTP at all.
            State::Off
        } else if framing.transfer_encoding {
            if framing.http11 && framing.chunked {
                State::ChunkSize
            } else {
                // hyper refuses it.
                State::Off
            }
        } else {
            match framing.length {
                Some(0) | None => State::Head,
                Some(n) => State::Body(n),
            }
        };
    }

    /// A header line: only those that decide the framing matter (hyper's rules: the last
    /// `Transfer-Encoding` decides whether the body is chunked, and once one was seen
    /// `Content-Length` is ignored; lengths must be digits and agree).
    fn on_header(&mut self, line: &[u8]) {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            return self.off();
        };
        let name = &line[..colon];
        let value = line[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            self.framing.transfer_encoding = true;
            self.framing.chunked = value
                .rsplit(|b| *b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"content-length") {
            if self.framing.transfer_encoding {
                return;
            }
            let length = (!value.is_empty() && value.len() <= 19)
                .then(|| std::str::from_utf8(value).ok())
                .flatten()
                .filter(|v| v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok());
            match (length, self.framing.length) {
                (Some(n), None) => self.framing.length = Some(n),
                (Some(n), Some(before)) if n == before => {}
                _ => self.off(),
            }
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            self.framing.upgrade = true;
        }
    }

    /// A chunk-size line as hyper reads it: hex digits, optional blanks, an optional
    /// `;extension`, CRLF, and no other CR or LF.
    fn on_chunk_size(&mut self, line: &[u8]) {
        let Some(line) = line.strip_suffix(b"\r\n") else {
            return self.off();
        };
        if line.contains(&b'\r') {
            return self.off();
        }
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        let rest = &line[digits..];
        let rest = &rest[rest
            .iter()
            .take_while(|b| **b == b' ' || **b == b'\t')
            .count()..];
        if digits == 0 || !(rest.is_empty() || rest.starts_with(b";")) {
            return self.off();
        }
        let size = std::str::from_utf8(&line[..digits])
            .ok()
            .and_then(|hex| u64::from_str_radix(hex, 16).ok());
        self.state = match size {
            None => State::Off,
            Some(0) => State::Trailers,
            Some(n) => State::ChunkData(n),
        };
    }

    fn next_head(&mut self) {
        self.state = State::Head;
        self.head_bytes = 0;
    }

    /// Matches the next noted head with the request hyper produced from it.
    pub fn verdict(&mut self, method: &Method, uri: &Uri) -> Verdict {
        let Some(note) = self.notes.pop_front() else {
            return Verdict::Unknown;
        };
        if !note.matches(method, uri) {
            self.off();
            return Verdict::Unknown;
        }
        if note.has_fragment() {
            Verdict::Fragment(note)
        } else {
            Verdict::Clean
        }
    }

    /// The request line of the head hyper refused (the oldest one not matched with a
    /// request, or the one still arriving), and when it started; for the log.
    pub fn refused(&self) -> Option<(Vec<u8>, Option<Instant>)> {
        if let Some(note) = self.notes.front() {
            return Some((bounded(&note.line), Some(note.started)));
        }
        let line = if self.request_line.is_empty() {
            self.line.strip_suffix(b"\n").unwrap_or(&self.line)
        } else {
            &self.request_line
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        (!line.is_empty()).then(|| (bounded(line), self.started))
    }
}

fn bounded(line: &[u8]) -> Vec<u8> {
    line[..line.len().min(MAX_LOGGED_LINE)].to_vec()
}

pin_project! {
    /// An HTTP/1.1 connection whose bytes are fed to its [`Heads`] as hyper reads them.
    pub struct Followed<IO> {
        #[pin]
        io: IO,
        heads: Arc<Mutex<Heads>>,
    }
}

impl<IO> Followed<IO> {
    /// Follows `io` into `heads`.
    pub fn new(io: IO, heads: Arc<Mutex<Heads>>) -> Self {
        Followed { io, heads }
    }
}

impl<IO: AsyncRead> AsyncRead for Followed<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        ready!(this.io.poll_read(cx, buf))?;
        let read = &buf.filled()[before..];
        if !read.is_empty()
            && let Ok(mut heads) = this.heads.lock()
        {
            heads.feed(read);
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite> AsyncWrite for Followed<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().io.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().io.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn uri(s: &str) -> Uri {
        s.parse().expect("uri")
    }

    /// Feeds `bytes` in pieces of `step` and returns the request lines noted.
    fn lines(bytes: &[u8], step: usize) -> Vec<String> {
        let mut heads = Heads::new(64 * 1024);
        for piece in bytes.chunks(step.max(1)) {
            heads.feed(piece);
        }
        heads
            .notes
            .iter()
            .map(|n| String::from_utf8_lossy(&n.line).into_owned())
            .collect()
    }

    const PIPELINE: &[u8] = b"\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n\
        POST /b HTTP/1.1\r\nhost: x\r\ncontent-length: 11\r\n\r\nGET /c#no\r\n\
        PUT /d#f HTTP/1.1\nHost: x\nTransfer-Encoding: gzip, chunked\n\n\
        5;ext=1\r\nGET /\r\n3\r\nxyz\r\n0\r\nx-trailer: GET /t\r\n\r\n\
        DELETE /e HTTP/1.1\r\nHost: x\r\n\r\n";

    #[test]
    fn heads_are_found_past_bodies_of_every_framing() {
        let expected = [
            "GET /a HTTP/1.1",
            "POST /b HTTP/1.1",
            "PUT /d#f HTTP/1.1",
            "DELETE /e HTTP/1.1",
        ];
        for step in [1, 2, 3, 7, 64, PIPELINE.len()] {
            assert_eq!(lines(PIPELINE, step), expected, "in pieces of {step}");
        }
    }

    #[test]
    fn verdicts_follow_requests_in_order() {
        let mut heads = Heads::new(64 * 1024);
        heads.feed(PIPELINE);
        let get = Method::GET;
        assert!(matches!(heads.verdict(&get, &uri("/a")), Verdict::Clean));
        assert!(matches!(
            heads.verdict(&Method::POST, &uri("/b")),
            Verdict::Clean
        ));
        let Verdict::Fragment(note) = heads.verdict(&Method::PUT, &uri("/d")) else {
            panic!("the fragment is seen");
        };
        assert_eq!(note.target(), b"/d#f");
        assert!(matches!(
            heads.verdict(&Method::DELETE, &uri("/e")),
            Verdict::Clean
        ));
    }

    #[test]
    fn a_request_hyper_read_differently_stops_the_following() {
        let mut heads = Heads::new(64 * 1024);
        heads.feed(b"GET /a#x HTTP/1.1\r\n\r\nGET /b#y HTTP/1.1\r\n\r\n");
        assert!(matches!(
            heads.verdict(&Method::GET, &uri("/other")),
            Verdict::Unknown
        ));
        assert!(matches!(
            heads.verdict(&Method::GET, &uri("/b")),
            Verdict::Unknown
        ));
    }

    #[test]
    fn upgrades_connect_and_refused_framings_are_not_followed() {
        for head in [
            &b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"[..],
            b"CONNECT x:443 HTTP/1.1\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
        ] {
            let mut heads = Heads::new(64 * 1024);
            heads.feed(head);
            heads.feed(b"GET /#x HTTP/1.1\r\n\r\n");
            assert!(
                heads.notes.iter().all(|n| !n.has_fragment()),
                "{}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn chunk_framing_hyper_refuses_is_not_followed() {
        for body in [
            &b"5\nhello\r\n0\r\n\r\n"[..],
            b"5\r\nhello\n0\r\n\r\n",
            b" 5\r\nhello\r\n0\r\n\r\n",
            b"5 x\r\nhello\r\n0\r\n\r\n",
            b"5;a\rb\r\nhello\r\n0\r\n\r\n",
            b"ffffffffffffffffff\r\n",
        ] {
            let mut heads = Heads::new(64 * 1024);
            heads.feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
            heads.feed(body);
            heads.feed(b"GET /#x HTTP/1.1\r\n\r\n");
            assert!(
                heads.notes.iter().all(|n| !n.has_fragment()),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn the_refused_head_is_there_for_the_log() {
        let mut heads = Heads::new(64 * 1024);
        heads.feed(b"GET /a<b HTTP/1.1\r\nHost: x\r\n\r\n");
        let (line, started) = heads.refused().expect("a head");
        assert_eq!(line, b"GET /a<b HTTP/1.1");
        assert!(started.is_some());
        let mut partial = Heads::new(64 * 1024);
        partial.feed(b"GET /slow HTTP/1.1\r\nHost:");
        assert_eq!(
            partial.refused().map(|(line, _)| line),
            Some(b"GET /slow HTTP/1.1".to_vec())
        );
        let mut huge = Heads::new(100);
        huge.feed(&[b'a'; 3000]);
        let (line, _) = huge.refused().expect("a head");
        assert!(line.starts_with(b"aaa") && line.len() <= MAX_LOGGED_LINE);
    }

    proptest! {
        // However a client splits its bytes, and whatever it sends, following never panics
        // and finds the same heads.
        #[test]
        fn any_bytes_in_any_pieces(bytes in proptest::collection::vec(any::<u8>(), 0..600), step in 1usize..50) {
            let whole = lines(&bytes, bytes.len().max(1));
            prop_assert_eq!(lines(&bytes, step), whole);
        }

        #[test]
        fn pipelines_split_anywhere(step in 1usize..200) {
            prop_assert_eq!(lines(PIPELINE, step).len(), 4);
        }
    }
}
