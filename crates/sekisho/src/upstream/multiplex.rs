//! The HTTP/2 connections to one endpoint ([`h2client`](super::h2client) drives each).
//!
//! An endpoint gets as many connections as its stream limit asks for. A request takes
//! the first connection with a stream free under the peer's
//! `SETTINGS_MAX_CONCURRENT_STREAMS`; when every connection is full, the pool opens
//! another (within the cluster's `max_connections`), so no request waits on a full
//! connection while another could be opened or has room. Extra connections that stay
//! unused for [`IDLE_TIMEOUT`] are closed; the first one stays.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use h2conn::is_connection_specific;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response};
use http_body::Body as HttpBody;

pub use super::h2client::{Connection, RecvBody, StreamError, handshake};
use crate::body::Body;

/// An extra connection (not the first) with no stream open for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(50);

/// Headers that mean something only to one HTTP/1.1 connection and must not appear in
/// HTTP/2 (RFC 9113 §8.2.2). The proxy strips hop-by-hop headers before this; this is the
/// last guard, which also takes the fields a `Connection` header names.
///
/// The names to remove once one is found; finding them is `h2conn::is_connection_specific`
/// (which compares `HeaderName`s written in line: a `const` array of them, built and dropped
/// at each use, and a `static` one scanned by `contains` both cost more).
const CONNECTION_SPECIFIC: [&str; 5] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];
/// The endpoint's HTTP/2 connections.
pub struct Multiplex {
    connections: Mutex<Vec<Arc<Connection>>>,
    /// One opener at a time, so a burst opens the connections it needs, not one each.
    pub opening: tokio::sync::Mutex<()>,
    /// Start of this pool's clock for [`Connection::last_used`].
    epoch: Instant,
}

impl Multiplex {
    /// A pool with no connection yet.
    pub fn new() -> Self {
        Multiplex {
            connections: Mutex::new(Vec::new()),
            opening: tokio::sync::Mutex::new(()),
            epoch: Instant::now(),
        }
    }

    /// The first live connection with a stream free, dropping closed connections and
    /// extra ones idle too long on the way.
    pub fn with_room(&self) -> Option<Arc<Connection>> {
        let mut list = self.connections.lock().ok()?;
        let now = self.now();
        let idle_after = IDLE_TIMEOUT.as_millis() as u64;
        let mut first = true;
        list.retain(|c| {
            let keep = !c.is_closed()
                && (first
                    || c.open.load(Ordering::Acquire) > 0
                    || now.saturating_sub(c.last_used.load(Ordering::Relaxed)) < idle_after);
            first &= !keep;
            keep
        });
        list.iter().find(|c| c.has_room()).cloned()
    }

    /// The live connection with the fewest open streams: where a request queues when
    /// every connection is full and no other may be opened.
    pub fn least_busy(&self) -> Option<Arc<Connection>> {
        let list = self.connections.lock().ok()?;
        list.iter()
            .filter(|c| !c.is_closed())
            .min_by_key(|c| c.open.load(Ordering::Acquire))
            .cloned()
    }

    /// Adds a connection opened by [`handshake`].
    pub fn add(&self, connection: Arc<Connection>) {
        connection.last_used.store(self.now(), Ordering::Relaxed);
        if let Ok(mut list) = self.connections.lock() {
            list.push(connection);
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Sends `req` on `connection`; the response's body keeps the stream counted until it
    /// ends or is dropped. The head is fitted for HTTP/2 here, before the stream's future
    /// starts, so that future is the only one holding the request.
    pub fn send(
        &self,
        connection: &Arc<Connection>,
        req: Request<Body>,
    ) -> impl Future<Output = Result<Response<RecvBody>, StreamError>> {
        let (mut parts, body) = req.into_parts();
        strip_connection_specific(&mut parts.headers);
        if let Some(len) = body.size_hint().exact()
            && (len != 0 || has_payload_semantics(&parts.method))
            && !parts.headers.contains_key(header::CONTENT_LENGTH)
        {
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        }
        super::h2client::send(connection, Request::from_parts(parts, body), self.now())
    }
}

/// Removes the fields that describe one hop's connection, which HTTP/2 forbids (RFC 9113,
/// section 8.2.2), with those `Connection` names.
pub(crate) fn strip_connection_specific(headers: &mut HeaderMap) {
    // One pass over the few headers a request has, instead of a lookup per name: nearly
    // every request has none of these.
    let found = headers.iter().any(|(name, value)| {
        is_connection_specific(name) || (name == header::TE && value != "trailers")
    });
    if !found {
        return;
    }
    if let Some(nominated) = headers.remove(header::CONNECTION)
        && let Ok(names) = nominated.to_str()
    {
        for name in names.split(',') {
            headers.remove(name.trim());
        }
    }
    for name in &CONNECTION_SPECIFIC[1..] {
        headers.remove(*name);
    }
    if headers.get(header::TE).is_some_and(|te| te != "trailers") {
        headers.remove(header::TE);
    }
}

/// Methods whose request body has a meaning, so an empty one still says `content-length: 0`.
fn has_payload_semantics(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::DELETE | Method::CONNECT
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::HeaderName;

    #[test]
    fn only_the_listed_names_are_connection_specific() {
        for name in CONNECTION_SPECIFIC {
            assert!(
                is_connection_specific(&HeaderName::from_static(name)),
                "{name}"
            );
        }
        for name in [header::TE, header::CONTENT_TYPE, header::HOST] {
            assert!(!is_connection_specific(&name), "{name}");
        }
        let lookalike = HeaderName::from_static("connection-x");
        assert!(!is_connection_specific(&lookalike));
        // As read off the wire, in any case: the same answers.
        for name in CONNECTION_SPECIFIC {
            let read =
                HeaderName::from_bytes(name.to_ascii_uppercase().as_bytes()).expect("a name");
            assert!(is_connection_specific(&read), "{name}");
        }
        for name in [
            "keep-alives",
            "upgrade-insecure-requests",
            "proxy-connectio",
            "te",
        ] {
            let read = HeaderName::from_bytes(name.as_bytes()).expect("a name");
            assert!(!is_connection_specific(&read), "{name}");
        }
    }

    #[test]
    fn connection_specific_fields_and_those_connection_names_leave() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "x-hop, close"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("te", "gzip"),
            ("content-type", "text/plain"),
        ] {
            headers.append(
                HeaderName::from_static(name),
                http::HeaderValue::from_static(value),
            );
        }
        strip_connection_specific(&mut headers);
        let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["content-type"]);

        let mut trailers_only = HeaderMap::new();
        trailers_only.insert(header::TE, http::HeaderValue::from_static("trailers"));
        strip_connection_specific(&mut trailers_only);
        assert_eq!(trailers_only[header::TE], "trailers");
    }
}
