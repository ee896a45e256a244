//! Field validation (RFC 9113 sections 8.2 and 8.3): turns decoded HPACK fields
//! into a request head (server role), a response head (client role) or
//! trailers, or names the rule they break.
//!
//! A builder takes one field at a time and records the first fault instead of
//! stopping, because the rest of the block must still be decoded to keep the
//! HPACK table in step with the client.

use http::header::{HeaderName, HeaderValue};
use http::uri::{self, Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};

use crate::known::Known;

/// A fault in a field section: a stream error of type PROTOCOL_ERROR, except
/// [`TOO_LARGE`].
pub(crate) type Fault = &'static str;

/// The section is larger than our SETTINGS_MAX_HEADER_LIST_SIZE: a request is
/// answered with 431 (RFC 9113 section 10.5.1) rather than a bare reset; a
/// response has nobody to answer and is reset like any other fault.
pub(crate) const TOO_LARGE: Fault = "field section larger than SETTINGS_MAX_HEADER_LIST_SIZE";

/// Counts a section as SETTINGS_MAX_HEADER_LIST_SIZE does: name, value and 32
/// bytes per field.
#[derive(Debug, Default)]
struct SizeBudget {
    used: usize,
    limit: usize,
}

impl SizeBudget {
    fn new(limit: usize) -> Self {
        SizeBudget { used: 0, limit }
    }

    fn charge(&mut self, name: &[u8], value: &[u8]) -> Result<(), Fault> {
        self.used = self
            .used
            .saturating_add(name.len() + value.len() + hpack::ENTRY_OVERHEAD);
        if self.used > self.limit {
            Err(TOO_LARGE)
        } else {
            Ok(())
        }
    }
}

/// Fields that only mean something on a single HTTP/1.1 hop (section 8.2.2).
const CONNECTION_SPECIFIC: [&[u8]; 5] = [
    b"connection",
    b"proxy-connection",
    b"keep-alive",
    b"transfer-encoding",
    b"upgrade",
];

/// Checks a regular field and converts it, or names the broken rule.
pub(crate) fn regular(name: &[u8], value: &[u8]) -> Result<(HeaderName, HeaderValue), Fault> {
    if name.is_empty() {
        return Err("empty field name");
    }
    if name.iter().any(u8::is_ascii_uppercase) {
        return Err("uppercase field name");
    }
    if CONNECTION_SPECIFIC.contains(&name) {
        return Err("connection-specific field");
    }
    if name == b"te" && value != b"trailers" {
        return Err("te other than trailers");
    }
    if value
        .first()
        .into_iter()
        .chain(value.last())
        .any(|b| *b == b' ' || *b == b'\t')
    {
        return Err("field value with leading or trailing whitespace");
    }
    let name = HeaderName::from_bytes(name).map_err(|_| "invalid field name")?;
    let value = HeaderValue::from_bytes(value).map_err(|_| "invalid field value")?;
    Ok((name, value))
}

/// Parses one `content-length` value.
fn content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// What request and response sections share: the size budget, the regular fields with
/// the body length they declare, and the first fault. Pseudo-header fields, which differ,
/// are the caller's.
#[derive(Debug, Default)]
struct Section {
    budget: SizeBudget,
    headers: HeaderMap,
    content_length: Option<u64>,
    regular_seen: bool,
    fault: Option<Fault>,
}

impl Section {
    fn new(max_list_size: usize) -> Self {
        Section {
            budget: SizeBudget::new(max_list_size),
            ..Section::default()
        }
    }

    /// Takes one field, handing a pseudo-header's name (without the colon) and value to
    /// `pseudo`. The first fault is remembered, not returned, and nothing of a faulty
    /// section is held after it.
    fn field(
        &mut self,
        known: &mut Known,
        (name, value, sensitive): (&[u8], &[u8], bool),
        pseudo: impl FnOnce(&mut Known, &[u8], &[u8]) -> Result<(), Fault>,
    ) {
        if self.fault.is_some() {
            return;
        }
        let checked =
            self.budget
                .charge(name, value)
                .and_then(|()| match name.strip_prefix(b":") {
                    Some(_) if self.regular_seen => Err("pseudo-header after a regular field"),
                    Some(name) => pseudo(known, name, value),
                    None => self.regular(known, name, value, sensitive),
                });
        if let Err(fault) = checked {
            self.fault = Some(fault);
            self.headers = HeaderMap::new();
        }
    }

    fn regular(
        &mut self,
        known: &mut Known,
        name: &[u8],
        value: &[u8],
        sensitive: bool,
    ) -> Result<(), Fault> {
        self.regular_seen = true;
        let (name, value) = known.regular(name, value, sensitive)?;
        if name == http::header::CONTENT_LENGTH {
            let len = content_length(value.as_bytes()).ok_or("invalid content-length")?;
            if self.content_length.is_some_and(|seen| seen != len) {
                return Err("conflicting content-length values");
            }
            self.content_length = Some(len);
        }
        if self.headers.capacity() == 0 {
            self.headers = crate::spare::map();
        }
        self.headers.append(name, value);
        Ok(())
    }
}

/// A validated request head and its declared body length.
#[derive(Debug)]
pub(crate) struct RequestHead {
    pub(crate) parts: http::request::Parts,
    pub(crate) content_length: Option<u64>,
}

/// Collects a request's fields. Pseudo-header fields are converted as they come:
/// the method and scheme are nearly always ones `http` knows without allocating, and
/// the authority is nearly always the one the connection saw last ([`Known`]).
#[derive(Debug, Default)]
pub(crate) struct RequestBuilder {
    section: Section,
    /// The pseudo-header fields seen, by [`Pseudo`] bit.
    seen: u8,
    method: Option<Method>,
    scheme: Option<Scheme>,
    /// `None` also when `:authority` was sent empty.
    authority: Option<Authority>,
    path: Option<PathAndQuery>,
}

/// A request's pseudo-header fields, as bits of [`RequestBuilder::seen`].
#[derive(Clone, Copy)]
enum Pseudo {
    Method = 1,
    Scheme = 2,
    Authority = 4,
    Path = 8,
}

impl RequestBuilder {
    /// A builder refusing sections above `max_list_size`.
    pub(crate) fn new(max_list_size: usize) -> Self {
        Self {
            section: Section::new(max_list_size),
            ..Self::default()
        }
    }

    /// Takes the next field; faults are remembered, not returned.
    pub(crate) fn field(&mut self, known: &mut Known, name: &[u8], value: &[u8], sensitive: bool) {
        let Self {
            section,
            seen,
            method,
            scheme,
            authority,
            path,
        } = self;
        section.field(known, (name, value, sensitive), |known, pseudo, value| {
            let which = match pseudo {
                b"method" => Pseudo::Method,
                b"scheme" => Pseudo::Scheme,
                b"authority" => Pseudo::Authority,
                b"path" => Pseudo::Path,
                _ => return Err("unknown or response pseudo-header"),
            };
            if *seen & which as u8 != 0 {
                return Err("repeated pseudo-header");
            }
            *seen |= which as u8;
            match which {
                Pseudo::Method => {
                    *method = Some(Method::from_bytes(value).map_err(|_| "invalid :method")?);
                }
                Pseudo::Scheme => {
                    *scheme = Some(Scheme::try_from(value).map_err(|_| "invalid :scheme")?);
                }
                Pseudo::Authority if value.is_empty() => {}
                Pseudo::Authority => *authority = Some(known.authority(value)?),
                Pseudo::Path if value.is_empty() => return Err("empty :path"),
                Pseudo::Path => *path = Some(known.path(value)?),
            }
            Ok(())
        });
    }

    /// The request, or the first rule the fields broke.
    pub(crate) fn finish(self, known: &mut Known) -> Result<RequestHead, Fault> {
        if let Some(fault) = self.section.fault {
            return Err(fault);
        }
        let method = self.method.ok_or("missing :method")?;
        let mut uri = uri::Parts::default();
        if method == Method::CONNECT {
            if self.scheme.is_some() || self.path.is_some() {
                return Err("CONNECT with :scheme or :path");
            }
            uri.authority = Some(self.authority.ok_or("CONNECT without :authority")?);
        } else {
            let scheme = self.scheme.ok_or("missing :scheme")?;
            let path = self.path.ok_or("missing :path")?;
            let asterisk = path.as_str() == "*";
            if asterisk && method != Method::OPTIONS {
                return Err(":path * outside OPTIONS");
            }
            if !asterisk && !path.as_str().starts_with('/') {
                return Err(":path neither absolute nor *");
            }
            // Without :authority, Host names the target (RFC 9113 section 8.3.1).
            let authority = match self.authority {
                Some(authority) => Some(authority),
                None if self.seen & Pseudo::Authority as u8 != 0 => None,
                None => match self.section.headers.get(http::header::HOST) {
                    Some(host) if !host.is_empty() => Some(known.authority(host.as_bytes())?),
                    _ => None,
                },
            };
            if let Some(authority) = authority.filter(|_| !asterisk) {
                uri.scheme = Some(scheme);
                uri.authority = Some(authority);
            }
            uri.path_and_query = Some(path);
        }
        let uri = Uri::from_parts(uri).map_err(|_| "invalid :scheme, :authority or :path")?;
        let mut request = Request::new(());
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.version_mut() = Version::HTTP_2;
        *request.headers_mut() = self.section.headers;
        let (parts, ()) = request.into_parts();
        Ok(RequestHead {
            parts,
            content_length: self.section.content_length,
        })
    }
}

/// A validated response head and its declared body length.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub(crate) parts: http::response::Parts,
    pub(crate) content_length: Option<u64>,
}

/// Collects a response's fields (the client role): exactly one `:status` of three
/// digits before the regular fields, which follow the request rules.
#[derive(Debug, Default)]
pub(crate) struct ResponseBuilder {
    section: Section,
    status: Option<StatusCode>,
}

impl ResponseBuilder {
    /// A builder refusing sections above `max_list_size`.
    pub(crate) fn new(max_list_size: usize) -> Self {
        Self {
            section: Section::new(max_list_size),
            ..Self::default()
        }
    }

    /// Takes the next field; faults are remembered, not returned.
    pub(crate) fn field(&mut self, known: &mut Known, name: &[u8], value: &[u8], sensitive: bool) {
        let Self { section, status } = self;
        section.field(known, (name, value, sensitive), |_, pseudo, value| {
            if pseudo != b"status" {
                return Err("request or unknown pseudo-header in a response");
            }
            if status.is_some() {
                return Err("repeated :status");
            }
            if value.len() != 3 || !value.iter().all(u8::is_ascii_digit) {
                return Err("invalid :status");
            }
            *status = Some(StatusCode::from_bytes(value).map_err(|_| "invalid :status")?);
            Ok(())
        });
    }

    /// The response, or the first rule the fields broke.
    pub(crate) fn finish(self) -> Result<ResponseHead, Fault> {
        if let Some(fault) = self.section.fault {
            return Err(fault);
        }
        let status = self.status.ok_or("missing :status")?;
        let mut response = Response::new(());
        *response.status_mut() = status;
        *response.version_mut() = Version::HTTP_2;
        *response.headers_mut() = self.section.headers;
        let (parts, ()) = response.into_parts();
        Ok(ResponseHead {
            parts,
            content_length: self.section.content_length,
        })
    }
}

/// Collects a trailer section: regular fields only.
#[derive(Debug, Default)]
pub(crate) struct TrailerBuilder {
    budget: SizeBudget,
    headers: HeaderMap,
    fault: Option<Fault>,
}

impl TrailerBuilder {
    /// A builder refusing sections above `max_list_size`.
    pub(crate) fn new(max_list_size: usize) -> Self {
        Self {
            budget: SizeBudget::new(max_list_size),
            ..Self::default()
        }
    }

    /// Takes the next field; faults are remembered, not returned.
    pub(crate) fn field(&mut self, known: &mut Known, name: &[u8], value: &[u8], sensitive: bool) {
        if self.fault.is_some() {
            return;
        }
        let result = if let Err(fault) = self.budget.charge(name, value) {
            Err(fault)
        } else if name.starts_with(b":") {
            Err("pseudo-header in trailers")
        } else {
            known.regular(name, value, sensitive)
        };
        match result {
            Ok((name, value)) => {
                self.headers.append(name, value);
            }
            Err(fault) => {
                self.fault = Some(fault);
                self.headers = HeaderMap::new();
            }
        }
    }

    /// The trailers, or the first rule they broke.
    pub(crate) fn finish(self) -> Result<HeaderMap, Fault> {
        match self.fault {
            Some(fault) => Err(fault),
            None => Ok(self.headers),
        }
    }
}

/// Whether a field must be left out of HTTP/2 (section 8.2.2): a gateway relaying
/// an HTTP/1.1 peer's message drops them silently.
///
/// Asked of every field of every message a gateway relays, so it compares names as
/// `HeaderName`s: a name `http` knows is a tag, and any other is told apart by its
/// length before its bytes, where spelling each name out costs a table lookup and five
/// compares.
pub fn is_connection_specific(name: &HeaderName) -> bool {
    const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
    const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
    *name == http::header::CONNECTION
        || *name == http::header::TRANSFER_ENCODING
        || *name == http::header::UPGRADE
        || *name == KEEP_ALIVE
        || *name == PROXY_CONNECTION
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(fields: &[(&str, &str)]) -> Result<RequestHead, Fault> {
        let mut known = Known::default();
        let mut b = RequestBuilder::new(16 * 1024);
        for (n, v) in fields {
            b.field(&mut known, n.as_bytes(), v.as_bytes(), false);
        }
        b.finish(&mut known)
    }

    const BASE: [(&str, &str); 4] = [
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "example.com"),
        (":path", "/a?b"),
    ];

    #[test]
    fn valid_request() {
        let mut fields = BASE.to_vec();
        fields.push(("content-length", "5"));
        fields.push(("te", "trailers"));
        let head = request(&fields).unwrap();
        assert_eq!(head.parts.method, Method::GET);
        assert_eq!(head.parts.uri, "http://example.com/a?b");
        assert_eq!(head.content_length, Some(5));
        assert_eq!(head.parts.headers["te"], "trailers");
    }

    #[test]
    fn faults() {
        let cases: [&[(&str, &str)]; 16] = [
            &[(":method", "GET"), (":scheme", "http")],
            &[(":method", "GET"), (":path", "/")],
            &[(":scheme", "http"), (":path", "/")],
            &[BASE[0], BASE[1], BASE[2], BASE[3], (":method", "GET")],
            &[BASE[0], BASE[1], ("a", "b"), BASE[3]],
            &[BASE[0], BASE[1], BASE[3], (":status", "200")],
            &[BASE[0], BASE[1], BASE[3], ("Upper", "x")],
            &[BASE[0], BASE[1], BASE[3], ("connection", "close")],
            &[BASE[0], BASE[1], BASE[3], ("te", "gzip")],
            &[BASE[0], BASE[1], BASE[3], ("content-length", "x")],
            &[BASE[0], BASE[1], BASE[3], ("x", " padded")],
            &[
                (":method", "CONNECT"),
                (":authority", "a:1"),
                (":path", "/"),
            ],
            &[(":method", "GET"), (":scheme", "http"), (":path", "")],
            &[BASE[0], BASE[1], (":authority", "bad host"), BASE[3]],
            &[BASE[0], BASE[1], BASE[2], (":path", "/a b")],
            &[BASE[0], (":scheme", "ht tp"), BASE[2], BASE[3]],
        ];
        for case in cases {
            assert!(request(case).is_err(), "{case:?}");
        }
    }

    #[test]
    fn host_stands_in_for_a_missing_authority() {
        let head = request(&[BASE[0], BASE[1], BASE[3], ("host", "h.example:8080")]).unwrap();
        assert_eq!(head.parts.uri, "http://h.example:8080/a?b");
        let head = request(&[(":method", "OPTIONS"), BASE[1], (":path", "*")]).unwrap();
        assert_eq!(head.parts.uri, "*");
        assert!(request(&[BASE[0], BASE[1], (":path", "*")]).is_err());
        assert!(request(&[BASE[0], BASE[1], (":path", "relative")]).is_err());
    }

    #[test]
    fn connect_needs_only_authority() {
        let head = request(&[(":method", "CONNECT"), (":authority", "db:5432")]).unwrap();
        assert_eq!(head.parts.uri.authority().unwrap(), "db:5432");
    }

    #[test]
    fn sections_above_the_list_size_are_too_large() {
        let mut b = RequestBuilder::new(100);
        for (n, v) in BASE {
            b.field(&mut Known::default(), n.as_bytes(), v.as_bytes(), false);
        }
        assert_eq!(b.finish(&mut Known::default()).unwrap_err(), TOO_LARGE);
        let mut b = TrailerBuilder::new(40);
        b.field(&mut Known::default(), b"grpc-status", b"0", false);
        assert_eq!(b.finish().unwrap_err(), TOO_LARGE);
    }

    fn response(fields: &[(&str, &str)]) -> Result<ResponseHead, Fault> {
        let mut b = ResponseBuilder::new(16 * 1024);
        for (n, v) in fields {
            b.field(&mut Known::default(), n.as_bytes(), v.as_bytes(), false);
        }
        b.finish()
    }

    #[test]
    fn valid_response() {
        let head = response(&[(":status", "204"), ("content-length", "0")]).unwrap();
        assert_eq!(head.parts.status, StatusCode::NO_CONTENT);
        assert_eq!(head.content_length, Some(0));
    }

    #[test]
    fn response_faults() {
        let cases: [&[(&str, &str)]; 9] = [
            &[],
            &[("server", "x")],
            &[(":status", "200"), (":status", "200")],
            &[(":status", "2000")],
            &[(":status", "20x")],
            &[(":status", "200"), (":path", "/")],
            &[("server", "x"), (":status", "200")],
            &[(":status", "200"), ("transfer-encoding", "chunked")],
            &[
                (":status", "200"),
                ("content-length", "1"),
                ("content-length", "2"),
            ],
        ];
        for case in cases {
            assert!(response(case).is_err(), "{case:?}");
        }
    }

    #[test]
    fn trailers_refuse_pseudo_headers() {
        let mut b = TrailerBuilder::new(1024);
        b.field(&mut Known::default(), b"grpc-status", b"0", false);
        assert_eq!(b.finish().unwrap()["grpc-status"], "0");
        let mut b = TrailerBuilder::new(1024);
        b.field(&mut Known::default(), b":path", b"/", false);
        assert!(b.finish().is_err());
    }
}
