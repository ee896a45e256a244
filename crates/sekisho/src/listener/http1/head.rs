//! A request head read from a client's bytes: the request line and header fields parsed,
//! then judged for how its body is framed and whether the connection lives on after it.
//!
//! Framing decides where the next request starts, so every ambiguity in it is refused
//! rather than resolved (RFC 9112 6.3 and 11.2): a `Transfer-Encoding` whose last coding
//! is not `chunked`, one on an HTTP/1.0 request, one beside a `Content-Length`, and
//! `Content-Length` values that disagree or are not plain digits. A request target with
//! a `#fragment` is parsed but marked, so the request path can refuse it with the rest
//! of the connection intact.

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Uri, Version};

/// Most header fields in one head (hyper's and Go's default; nginx has no count).
pub const MAX_HEADERS: usize = 100;

/// Fields the request path adds to a request on its way upstream, reserved up front.
const ADDED_FIELDS: usize = 8;

/// How a request's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
}

/// One request head, parsed and judged.
#[derive(Debug)]
pub struct Head {
    /// The request without its body.
    pub request: Request<()>,
    /// How its body is delimited.
    pub framing: Framing,
    /// Whether the client keeps the connection open after the response.
    pub keep_alive: bool,
    /// Whether the client waits for `100 Continue` before it sends the body.
    pub expects_continue: bool,
    /// Whether the client accepts trailer fields in a chunked response (`TE: trailers`).
    pub accepts_trailers: bool,
    /// Whether the target carried a `#fragment`, which no request target may (RFC 9110
    /// 7.1); the request path refuses it.
    pub fragment: bool,
    /// The request line as sent, for the log.
    pub line: Bytes,
}

/// Why a head was refused before it became a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not HTTP/1.x, or framing that could be read two ways: 400.
    Malformed(&'static str),
    /// The request line alone is longer than the head may be: 414.
    UriTooLong,
    /// The head is longer than `http1.max_header_bytes`, or has too many fields: 431.
    TooLarge,
}

impl Refusal {
    /// The status the client is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Malformed(_) => 400,
            Refusal::UriTooLong => 414,
            Refusal::TooLarge => 431,
        }
    }

    /// The `reason` label of `sekisho_downstream_requests_refused_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Malformed(_) => "malformed",
            Refusal::UriTooLong => "uri_too_long",
            Refusal::TooLarge => "head_too_large",
        }
    }

    /// Why, for the log.
    pub fn describe(&self) -> &'static str {
        match self {
            Refusal::Malformed(why) => why,
            Refusal::UriTooLong => "URI too long",
            Refusal::TooLarge => "request head too large",
        }
    }
}

/// A refused head, with its request line once the head was taken out of the buffer (the
/// caller still has it otherwise).
pub type Refused = (Refusal, Option<Bytes>);

/// Parses the head at the start of `buf`, taking its bytes out of `buf` when complete.
/// `Ok(None)`: not all of it has arrived, and what has is within `max_head` bytes.
/// `scan` carries what earlier calls learned of the same partial head (start with the
/// default): a head that trickles in is not scanned again from its start each time.
pub fn parse(
    buf: &mut BytesMut,
    max_head: usize,
    scan: &mut Scan,
) -> Result<Option<Head>, Refused> {
    // Blank lines before a request line are skipped (RFC 9112 2.2).
    let blank = buf
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    if blank > 0 {
        let _ = buf.split_to(blank);
        *scan = Scan::default();
    }
    let Some(len) = head_end(buf, &mut scan.from) else {
        over_limit(buf, max_head).map_err(|r| (r, None))?;
        // A request line that has ended is judged once, at once, not when the head
        // completes: a client that sent a broken one learns so now, not at the deadline.
        if !scan.line_checked {
            let judged = if scan.from < buf.len() {
                scan.line_checked = true;
                request_line_ok(buf)
            } else {
                // Not ended yet: its start can already be wrong ("hi=there" is no
                // method). A bounded prefix, so a trickled line is not parsed over and over.
                request_line_ok(&buf[..buf.len().min(LINE_PREFIX)])
            };
            judged.map_err(|r| (r, None))?;
        }
        return Ok(None);
    };
    if len > max_head {
        return Err((Refusal::TooLarge, None));
    }
    *scan = Scan::default();
    // The head becomes one `Bytes` its target and field values share (no copies).
    let head = buf.split_to(len).freeze();
    let line_end = head
        .iter()
        .position(|b| *b == b'\r' || *b == b'\n')
        .unwrap_or(head.len());
    let line = head.slice(..line_end);
    read(&head, &line)
        .map(Some)
        .map_err(|refusal| (refusal, Some(line)))
}

/// The length of the head at the start of `buf`, through the empty line that ends it
/// (CRLF or a bare LF), once it has all arrived.
fn head_end(buf: &[u8], scanned: &mut usize) -> Option<usize> {
    let mut from = *scanned;
    while let Some(at) = buf
        .get(from..)
        .and_then(|rest| rest.iter().position(|b| *b == b'\n'))
    {
        let lf = from + at;
        match (buf.get(lf + 1), buf.get(lf + 2)) {
            (Some(b'\n'), _) => return Some(lf + 2),
            (Some(b'\r'), Some(b'\n')) => return Some(lf + 3),
            // What follows this line's end has not all arrived: look again from here.
            (None, _) | (Some(b'\r'), None) => {
                *scanned = lf;
                return None;
            }
            _ => from = lf + 1,
        }
    }
    *scanned = buf.len();
    None
}

/// How much of a request line that has not ended is judged on each arrival.
const LINE_PREFIX: usize = 256;

/// What parsing learned of a head still arriving.
#[derive(Debug, Default)]
pub struct Scan {
    /// How far the search for the head's end got.
    from: usize,
    /// Whether the request line was judged.
    line_checked: bool,
}

/// Whether the request line at the start of `buf`, which has ended, is one a head could
/// start with (the fields after it are judged when the head is complete).
fn request_line_ok(buf: &[u8]) -> Result<(), Refusal> {
    // With no room for fields, a valid line parses as partial or stops at its first field.
    match httparse::Request::new(&mut []).parse(buf) {
        Ok(_) | Err(httparse::Error::TooManyHeaders) => Ok(()),
        Err(e) => Err(refusal_of(e)),
    }
}

/// The refusal for what httparse found wrong.
fn refusal_of(error: httparse::Error) -> Refusal {
    match error {
        httparse::Error::TooManyHeaders => Refusal::TooLarge,
        httparse::Error::Version => Refusal::Malformed("not an HTTP/1.x request"),
        httparse::Error::Token | httparse::Error::Status => {
            Refusal::Malformed("invalid token in the request line")
        }
        _ => Refusal::Malformed("invalid request head"),
    }
}

/// The request of a complete head: its target and field values as `Bytes` sharing the
/// head's memory, judged for framing.
fn read(head: &Bytes, line: &Bytes) -> Result<Head, Refusal> {
    let mut fields = [std::mem::MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    match parsed.parse_with_uninit_headers(head, &mut fields) {
        Ok(httparse::Status::Complete(len)) if len == head.len() => {}
        Ok(_) => return Err(Refusal::Malformed("invalid request head")),
        Err(e) => return Err(refusal_of(e)),
    }
    let method = Method::from_bytes(parsed.method.unwrap_or_default().as_bytes())
        .map_err(|_| Refusal::Malformed("invalid method"))?;
    let version = match parsed.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut target = head.slice_ref(parsed.path.unwrap_or_default().as_bytes());
    let fragment = target.contains(&b'#');
    if fragment {
        let at = target
            .iter()
            .position(|b| *b == b'#')
            .unwrap_or(target.len());
        target.truncate(at);
    }
    let uri = Uri::from_maybe_shared(target).map_err(|_| Refusal::Malformed("invalid URI"))?;
    // Room for the fields the request path adds (forwarding, request id): a map that
    // grows on the way rehashes every field.
    let mut headers = HeaderMap::with_capacity(parsed.headers.len() + ADDED_FIELDS);
    for field in parsed.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| Refusal::Malformed("invalid header name"))?;
        let value = HeaderValue::from_maybe_shared(head.slice_ref(field.value))
            .map_err(|_| Refusal::Malformed("invalid header value"))?;
        headers.append(name, value);
    }

    let framing = framing(&headers, version)?;
    let keep_alive = keep_alive(&headers, version);
    let expects_continue = version == Version::HTTP_11
        && framing != Framing::Empty
        && headers
            .get(header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let accepts_trailers = headers
        .get_all(header::TE)
        .iter()
        .any(|v| has_token(v, b"trailers"));

    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    Ok(Head {
        request,
        framing,
        keep_alive,
        expects_continue,
        accepts_trailers,
        fragment,
        line: line.clone(),
    })
}

/// Refuses a partial head that is already longer than a head may be: 414 while the
/// request line has not even ended, 431 after.
fn over_limit(buf: &[u8], max_head: usize) -> Result<(), Refusal> {
    if buf.len() <= max_head {
        Ok(())
    } else if !buf.contains(&b'\n') {
        Err(Refusal::UriTooLong)
    } else {
        Err(Refusal::TooLarge)
    }
}

/// The body's framing, or a refusal where it could be read two ways.
fn framing(headers: &HeaderMap, version: Version) -> Result<Framing, Refusal> {
    let mut codings = headers.get_all(header::TRANSFER_ENCODING).iter().peekable();
    if codings.peek().is_some() {
        if version == Version::HTTP_10 {
            return Err(Refusal::Malformed(
                "Transfer-Encoding on an HTTP/1.0 request",
            ));
        }
        if headers.contains_key(header::CONTENT_LENGTH) {
            return Err(Refusal::Malformed(
                "both Transfer-Encoding and Content-Length",
            ));
        }
        let mut chunked = 0;
        let mut last_chunked = false;
        for value in codings {
            let text = value
                .to_str()
                .map_err(|_| Refusal::Malformed("invalid Transfer-Encoding"))?;
            for coding in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                last_chunked = coding.eq_ignore_ascii_case("chunked");
                chunked += usize::from(last_chunked);
            }
        }
        if chunked != 1 || !last_chunked {
            return Err(Refusal::Malformed(
                "Transfer-Encoding does not end in a single chunked",
            ));
        }
        return Ok(Framing::Chunked);
    }
    let mut length = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        for part in value.as_bytes().split(|b| *b == b',') {
            let part = part.trim_ascii();
            let n = parse_length(part).ok_or(Refusal::Malformed("invalid Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(Refusal::Malformed("Content-Length values disagree"));
            }
            length = Some(n);
        }
    }
    Ok(match length {
        None | Some(0) => Framing::Empty,
        Some(n) => Framing::Length(n),
    })
}

/// A Content-Length: one to nineteen ASCII digits (no sign, no spaces inside).
fn parse_length(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Whether the connection stays open after this request: HTTP/1.1 unless the client says
/// `close`, HTTP/1.0 only when it says `keep-alive`.
fn keep_alive(headers: &HeaderMap, version: Version) -> bool {
    let says = |token: &[u8]| {
        headers
            .get_all(header::CONNECTION)
            .iter()
            .any(|v| has_token(v, token))
    };
    if version == Version::HTTP_10 {
        says(b"keep-alive") && !says(b"close")
    } else {
        !says(b"close")
    }
}

/// Whether a comma-separated header value lists `token` (case-insensitive).
pub fn has_token(value: &HeaderValue, token: &[u8]) -> bool {
    value
        .as_bytes()
        .split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn head(text: &str) -> Result<Option<Head>, Refusal> {
        parse(
            &mut BytesMut::from(text.as_bytes()),
            8192,
            &mut Scan::default(),
        )
        .map_err(|(r, _)| r)
    }

    #[test]
    fn a_plain_get_is_parsed_and_leaves_the_next_request() {
        let mut buf = BytesMut::from(
            &b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nx-a: 2\r\n\r\nGET /next"[..],
        );
        let head = parse(&mut buf, 8192, &mut Scan::default())
            .expect("valid")
            .expect("complete");
        assert_eq!(head.request.method(), Method::GET);
        assert_eq!(head.request.uri(), "/a?b=1");
        assert_eq!(head.request.headers().get_all("x-a").iter().count(), 2);
        assert_eq!(head.framing, Framing::Empty);
        assert!(head.keep_alive);
        assert_eq!(&head.line[..], b"GET /a?b=1 HTTP/1.1");
        assert_eq!(&buf[..], b"GET /next");
    }

    #[test]
    fn framing_that_could_be_read_two_ways_is_refused() {
        for text in [
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        ] {
            assert!(matches!(head(text), Err(Refusal::Malformed(_))), "{text:?}");
        }
        let same = head("POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\n");
        assert_eq!(
            same.expect("valid").expect("complete").framing,
            Framing::Length(3)
        );
        let chunked = head("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n");
        assert_eq!(
            chunked.expect("valid").expect("complete").framing,
            Framing::Chunked
        );
    }

    #[test]
    fn keep_alive_follows_the_version_and_the_connection_header() {
        let ka = |text: &str| head(text).expect("valid").expect("complete").keep_alive;
        assert!(ka("GET / HTTP/1.1\r\n\r\n"));
        assert!(!ka("GET / HTTP/1.1\r\nConnection: upgrade, Close\r\n\r\n"));
        assert!(!ka("GET / HTTP/1.0\r\n\r\n"));
        assert!(ka("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    }

    #[test]
    fn a_fragment_is_marked_and_dropped_from_the_uri() {
        let head = head("GET /p?q#frag HTTP/1.1\r\n\r\n")
            .expect("valid")
            .expect("complete");
        assert!(head.fragment);
        assert_eq!(head.request.uri(), "/p?q");
    }

    #[test]
    fn oversized_heads_are_told_apart() {
        let long_line = format!("GET /{} HTTP/1.1\r\n", "a".repeat(200));
        assert_eq!(
            parse(
                &mut BytesMut::from(long_line.as_bytes()),
                100,
                &mut Scan::default()
            )
            .err()
            .map(|(r, _)| r),
            Some(Refusal::TooLarge)
        );
        let partial_line = format!("GET /{}", "a".repeat(200));
        assert_eq!(
            parse(
                &mut BytesMut::from(partial_line.as_bytes()),
                100,
                &mut Scan::default()
            )
            .err()
            .map(|(r, _)| r),
            Some(Refusal::UriTooLong)
        );
        let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: 1\r\n")).collect();
        let text = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(
            parse(
                &mut BytesMut::from(text.as_bytes()),
                1 << 20,
                &mut Scan::default()
            )
            .err()
            .map(|(r, _)| r),
            Some(Refusal::TooLarge)
        );
    }

    #[test]
    fn a_broken_request_line_is_refused_before_the_head_ends() {
        // Bytes left after a request, as a client that miscounted its body leaves them.
        assert!(matches!(head("hi=test\r\n"), Err(Refusal::Malformed(_))));
        assert!(matches!(head("hi=test"), Err(Refusal::Malformed(_))));
        assert!(matches!(
            head("GET / HTTP/9.9\r\nhost: x\r\n"),
            Err(Refusal::Malformed(_))
        ));
        // A valid line whose fields are still on their way waits for them.
        assert!(matches!(head("GET / HTTP/1.1\r\nhost: x\r\n"), Ok(None)));
        assert!(matches!(head("GET / HTTP/1.1\r\n"), Ok(None)));
        assert!(matches!(head("GET /pa"), Ok(None)));
    }

    #[test]
    fn a_head_trickled_one_byte_at_a_time_is_found_once_whole() {
        let text = b"\r\nPOST /t HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nok";
        let mut buf = BytesMut::new();
        let mut scanned = Scan::default();
        let mut found = None;
        for (i, byte) in text.iter().enumerate() {
            buf.extend_from_slice(&[*byte]);
            if let Some(head) = parse(&mut buf, 8192, &mut scanned).expect("valid so far") {
                found = Some((i, head));
                break;
            }
        }
        let (at, head) = found.expect("the head was found");
        assert_eq!(
            at,
            text.len() - 3,
            "found at its blank line, not before or after"
        );
        assert_eq!(head.framing, Framing::Length(2));
        assert_eq!(head.request.uri(), "/t");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Arbitrary bytes never panic, never take more than the head, and a partial
        /// head is never allowed past the limit.
        #[test]
        fn arbitrary_bytes_are_parsed_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let mut buf = BytesMut::from(&bytes[..]);
            let before = buf.len();
            match parse(&mut buf, 512, &mut Scan::default()) {
                Ok(Some(_)) => prop_assert!(buf.len() < before),
                Ok(None) => prop_assert!(buf.len() <= 512),
                Err(_) => {}
            }
        }

        /// A head assembled from valid parts parses to the same method, target and
        /// fields, whatever the split of its bytes into arrivals.
        #[test]
        fn valid_heads_parse_whatever_the_arrival(
            path in "/[a-z0-9/._-]{0,40}",
            values in proptest::collection::vec("[ -~]{0,20}", 0..8),
            cut in 0usize..200,
        ) {
            let mut text = format!("GET {path} HTTP/1.1\r\n");
            for (i, v) in values.iter().enumerate() {
                text.push_str(&format!("x-{i}: {}\r\n", v.trim()));
            }
            text.push_str("\r\n");
            let cut = cut.min(text.len());
            let mut buf = BytesMut::from(&text.as_bytes()[..cut]);
            let mut scanned = Scan::default();
            let first = parse(&mut buf, 8192, &mut scanned).expect("a valid prefix");
            if cut < text.len() {
                prop_assert!(first.is_none());
                buf.extend_from_slice(&text.as_bytes()[cut..]);
            }
            let head = match first {
                Some(head) => head,
                None => parse(&mut buf, 8192, &mut scanned).expect("valid").expect("complete"),
            };
            prop_assert_eq!(head.request.uri().path(), path.as_str());
            prop_assert_eq!(head.request.headers().len(), values.len());
            prop_assert!(buf.is_empty());
        }
    }
}
