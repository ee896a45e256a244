//! Why the gateway answered a request itself, and how each kind of client is told.
//!
//! gRPC callers get a trailers-only response (HTTP 200 with `grpc-status` and
//! `grpc-message`); everyone else gets the mapped HTTP status with a JSON
//! `google.rpc.Status` body, the shape REST clients of gRPC services already parse.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};

use super::headers::{GRPC_MESSAGE, GRPC_STATUS};
use crate::body::{self, Body};
use crate::policy::waf::EncodingName;
use crate::upstream::Overload;

/// A request the gateway could not pass on.
#[derive(Debug)]
pub enum GatewayError {
    /// No route matched.
    NoRoute,
    /// The cluster has no endpoint in rotation.
    NoEndpoint { cluster: Arc<str> },
    /// No connection could be opened to the chosen endpoint.
    Connect { cluster: Arc<str>, reason: String },
    /// The upstream connection failed before response headers arrived.
    Reset { cluster: Arc<str>, reason: String },
    /// The upstream did not answer in time (route timeout or the caller's deadline).
    Timeout { cluster: Arc<str>, after: Duration },
    /// A cluster limit (circuit breaker) refused the request.
    Overloaded { cluster: Arc<str>, limit: Overload },
    /// The route needs a token from `realm` (a JWT provider) and got none, or a bad one.
    Unauthenticated {
        realm: Arc<str>,
        reason: String,
        token_given: bool,
    },
    /// The token is good but its claims do not meet the route's requirements.
    Forbidden { realm: Arc<str>, reason: String },
    /// The client's address is not allowed; `status` is what HTTP callers are told.
    IpRefused { client: IpAddr, status: StatusCode },
    /// The client sent more requests than the route's rate limit allows.
    RateLimited { retry_after: Duration },
    /// The request body is longer than the route allows.
    BodyTooLarge { limit: u64 },
    /// The request target is longer than the listener allows.
    UriTooLong { limit: usize },
    /// The route's WAF refused the request; `status` is what HTTP callers are told.
    WafBlocked {
        refusal: WafRefusal,
        status: StatusCode,
    },
    /// The caller compressed its gRPC messages with an encoding the route's WAF cannot
    /// decode, so cannot inspect (gRPC's answer to an unsupported `grpc-encoding`).
    UnsupportedEncoding { name: EncodingName },
    /// The client's request body broke off while the gateway read it, or was malformed
    /// (a bad chunk, a length that does not match) while it was sent upstream.
    RequestBody { reason: String },
    /// The client went away (closed or reset its connection, or reset its HTTP/2 stream)
    /// while its request was sent upstream. Logged as 499, nginx's "client closed request";
    /// nothing reaches the client. Not the upstream's fault.
    ClientClosed { reason: String },
    /// The upstream's time ran out while the gateway was still waiting for the client to
    /// send its request body: the client was too slow, not the upstream (408).
    RequestTimeout { after: Duration },
    /// A content type that starts like gRPC's but is not one cleanly (RFC 9110 8.3,
    /// gRPC over HTTP/2: 415 so no HTTP client reads the refusal as a success).
    UnsupportedMediaType { reason: &'static str },
    /// A request whose host or path the gateway will not guess at.
    BadRequest { reason: &'static str },
    /// The request's header block is larger than the listener allows.
    HeadersTooLarge { limit: usize },
}

impl From<crate::body::ClientFailure> for GatewayError {
    /// A request body that failed on the client's side, as the client is told (400, 408,
    /// 413) or logged (499 for a client that went away).
    fn from(failure: crate::body::ClientFailure) -> Self {
        use crate::body::Fault;
        let reason = failure.reason;
        match failure.fault {
            Fault::Closed => GatewayError::ClientClosed { reason },
            Fault::Malformed => GatewayError::RequestBody { reason },
            Fault::TooLong { limit } => GatewayError::BodyTooLarge { limit },
            Fault::Idle { after } => GatewayError::RequestTimeout { after },
        }
    }
}

/// What made the WAF refuse a request outright.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WafRefusal {
    /// A rule with a disruptive action. Its id is for operators: it tells an attacker what
    /// to get around.
    Rule(u32),
    /// The request holds more than the engine inspects.
    Limit(waf::Limit),
}

impl fmt::Display for WafRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = match self {
            WafRefusal::Rule(id) => return write!(f, "rule {id}"),
            WafRefusal::Limit(limit) => limit,
        };
        f.write_str(match limit {
            waf::Limit::RequestBody => "request body longer than the WAF inspects",
            waf::Limit::Arguments => "more arguments than the WAF inspects",
            waf::Limit::ArgumentBytes => "arguments larger in all than the WAF inspects",
            waf::Limit::JsonDepth => "JSON nested deeper than the WAF inspects",
            waf::Limit::XmlDepth => "XML nested deeper than the WAF inspects",
            waf::Limit::ResponseBody => "response body longer than the WAF inspects",
            _ => "more than the WAF inspects",
        })
    }
}

/// The `grpc-encoding` values whose messages the WAF decodes, as `grpc-accept-encoding`
/// names them to a caller that used another.
pub const WAF_ENCODINGS: &str = "identity,deflate,gzip";

/// gRPC status codes the gateway produces.
pub mod grpc_code {
    /// The caller cancelled (or went away).
    pub const CANCELLED: u16 = 1;
    /// The deadline passed.
    pub const DEADLINE_EXCEEDED: u16 = 4;
    /// No such method here.
    pub const UNIMPLEMENTED: u16 = 12;
    /// No such thing here (for callers that are not gRPC: a path no route serves).
    pub const NOT_FOUND: u16 = 5;
    /// The caller may not do this.
    pub const PERMISSION_DENIED: u16 = 7;
    /// A limit was reached.
    pub const RESOURCE_EXHAUSTED: u16 = 8;
    /// The request is malformed.
    pub const INVALID_ARGUMENT: u16 = 3;
    /// The caller did not prove who it is.
    pub const UNAUTHENTICATED: u16 = 16;
    /// Try again later.
    pub const UNAVAILABLE: u16 = 14;
}

impl GatewayError {
    /// The gRPC status for gRPC callers.
    pub fn grpc_status(&self) -> u16 {
        match self {
            GatewayError::NoRoute => grpc_code::UNIMPLEMENTED,
            GatewayError::NoEndpoint { .. }
            | GatewayError::Connect { .. }
            | GatewayError::Reset { .. } => grpc_code::UNAVAILABLE,
            GatewayError::Timeout { .. } | GatewayError::RequestTimeout { .. } => {
                grpc_code::DEADLINE_EXCEEDED
            }
            GatewayError::ClientClosed { .. } => grpc_code::CANCELLED,
            GatewayError::Overloaded { .. } | GatewayError::RateLimited { .. } => {
                grpc_code::RESOURCE_EXHAUSTED
            }
            GatewayError::IpRefused { status, .. } if *status == StatusCode::NOT_FOUND => {
                grpc_code::UNIMPLEMENTED
            }
            GatewayError::IpRefused { .. } => grpc_code::PERMISSION_DENIED,
            GatewayError::BodyTooLarge { .. } => grpc_code::RESOURCE_EXHAUSTED,
            GatewayError::UriTooLong { .. } => grpc_code::INVALID_ARGUMENT,
            GatewayError::Unauthenticated { .. } => grpc_code::UNAUTHENTICATED,
            GatewayError::Forbidden { .. } => grpc_code::PERMISSION_DENIED,
            GatewayError::WafBlocked { .. } => grpc_code::PERMISSION_DENIED,
            GatewayError::UnsupportedEncoding { .. } => grpc_code::UNIMPLEMENTED,
            GatewayError::RequestBody { .. }
            | GatewayError::UnsupportedMediaType { .. }
            | GatewayError::BadRequest { .. } => grpc_code::INVALID_ARGUMENT,
            GatewayError::HeadersTooLarge { .. } => grpc_code::RESOURCE_EXHAUSTED,
        }
    }

    /// The HTTP status for everyone else.
    pub fn http_status(&self) -> StatusCode {
        match self {
            GatewayError::NoRoute => StatusCode::NOT_FOUND,
            GatewayError::NoEndpoint { .. }
            | GatewayError::Connect { .. }
            | GatewayError::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::Reset { .. } => StatusCode::BAD_GATEWAY,
            GatewayError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            GatewayError::ClientClosed { .. } => client_closed(),
            GatewayError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            GatewayError::Forbidden { .. } => StatusCode::FORBIDDEN,
            GatewayError::IpRefused { status, .. } => *status,
            GatewayError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::UriTooLong { .. } => StatusCode::URI_TOO_LONG,
            GatewayError::WafBlocked { status, .. } => *status,
            // RFC 9110 15.5.16: a content coding the server does not accept.
            GatewayError::UnsupportedEncoding { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            GatewayError::RequestBody { .. } => StatusCode::BAD_REQUEST,
            GatewayError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            GatewayError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            GatewayError::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        }
    }

    /// The message with what only operators should see (addresses, OS errors), for logs.
    pub fn detail(&self) -> String {
        match self {
            GatewayError::Connect { reason, .. }
            | GatewayError::Reset { reason, .. }
            | GatewayError::ClientClosed { reason } => format!("{self}: {reason}"),
            GatewayError::WafBlocked { refusal, .. } => format!("{self}: {refusal}"),
            _ => self.to_string(),
        }
    }

    /// The response for a caller that speaks gRPC (`grpc`) or not. It names the cluster
    /// but not upstream addresses, which are the operator's business.
    pub fn render(&self, grpc: bool) -> Response<Body> {
        let mut response = self.render_body(grpc);
        match self {
            GatewayError::ClientClosed { .. } => {
                // Never delivered; the status is for the log and the metrics, which then
                // read 499 for gRPC callers too (with grpc-status CANCELLED).
                *response.status_mut() = client_closed();
            }
            GatewayError::Overloaded { .. } => {
                // Lets clients and load balancers tell shedding from a failing backend.
                response
                    .headers_mut()
                    .insert("x-sekisho-overloaded", HeaderValue::from_static("true"));
            }
            GatewayError::UnsupportedEncoding { .. } => {
                // What the caller may use instead (gRPC over HTTP/2, "Compression").
                response.headers_mut().insert(
                    "grpc-accept-encoding",
                    HeaderValue::from_static(WAF_ENCODINGS),
                );
            }
            GatewayError::RateLimited { retry_after } => {
                let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                response
                    .headers_mut()
                    .insert(http::header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            }
            _ => {}
        }
        if !grpc && let Some(challenge) = self.bearer_challenge() {
            response
                .headers_mut()
                .insert(http::header::WWW_AUTHENTICATE, challenge);
        }
        response
    }

    /// The trailers that end a gRPC call refused mid-stream for this reason.
    pub fn grpc_trailers(&self) -> http::HeaderMap {
        let mut trailers = grpc_trailers(self.grpc_status(), &self.to_string());
        if let GatewayError::UnsupportedEncoding { .. } = self {
            trailers.insert(
                "grpc-accept-encoding",
                HeaderValue::from_static(WAF_ENCODINGS),
            );
        }
        trailers
    }

    /// The RFC 6750 challenge of a refused JWT: the realm, and an error code when a token
    /// was sent (none for a missing token, as the RFC asks).
    fn bearer_challenge(&self) -> Option<HeaderValue> {
        let (realm, error) = match self {
            GatewayError::Unauthenticated {
                realm, token_given, ..
            } => (realm, token_given.then_some("invalid_token")),
            GatewayError::Forbidden { realm, .. } => (realm, Some("insufficient_scope")),
            _ => return None,
        };
        let realm = realm.replace(['"', '\\'], "");
        let challenge = match error {
            Some(error) => format!("Bearer realm=\"{realm}\", error=\"{error}\""),
            None => format!("Bearer realm=\"{realm}\""),
        };
        HeaderValue::from_str(&challenge).ok()
    }

    /// The code in the JSON `google.rpc.Status` of a caller that is not gRPC: one whose
    /// HTTP mapping is the status sent. Such a caller's unknown path is a 404, NOT_FOUND;
    /// gRPC's UNIMPLEMENTED would read as 501.
    fn json_code(&self) -> u16 {
        match self.grpc_status() {
            grpc_code::UNIMPLEMENTED if self.http_status() == StatusCode::NOT_FOUND => {
                grpc_code::NOT_FOUND
            }
            code => code,
        }
    }

    fn render_body(&self, grpc: bool) -> Response<Body> {
        let message = self.to_string();
        if grpc {
            let mut response = Response::new(body::empty());
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
            headers.insert(GRPC_STATUS.clone(), HeaderValue::from(self.grpc_status()));
            if let Ok(value) = HeaderValue::from_str(&percent_encode(&message)) {
                headers.insert(GRPC_MESSAGE.clone(), value);
            }
            return response;
        }
        let json = serde_json::json!({
            "code": self.json_code(),
            "message": message,
            "details": [],
        });
        let mut response = Response::new(body::full(json.to_string()));
        *response.status_mut() = self.http_status();
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GatewayError::NoRoute => f.write_str("no route matches this request"),
            GatewayError::NoEndpoint { cluster } => {
                write!(f, "cluster {cluster:?} has no endpoint available")
            }
            GatewayError::Connect { cluster, .. } => {
                write!(f, "upstream connect error in cluster {cluster:?}")
            }
            GatewayError::Reset { cluster, .. } => write!(
                f,
                "upstream in cluster {cluster:?} reset the request before responding"
            ),
            GatewayError::Timeout { cluster, after } => write!(
                f,
                "upstream in cluster {cluster:?} did not respond within {}",
                humantime::format_duration(*after)
            ),
            GatewayError::Overloaded { cluster, limit } => {
                write!(f, "cluster {cluster:?} is overloaded: {limit}")
            }
            GatewayError::Unauthenticated { reason, .. } => {
                write!(f, "unauthenticated: {reason}")
            }
            GatewayError::Forbidden { reason, .. } => write!(f, "permission denied: {reason}"),
            // A hidden endpoint answers as if it did not exist.
            GatewayError::IpRefused { status, .. } if *status == StatusCode::NOT_FOUND => {
                f.write_str("no route matches this request")
            }
            GatewayError::IpRefused { client, .. } => {
                write!(f, "client address {client} is not allowed here")
            }
            GatewayError::RateLimited { .. } => f.write_str("rate limit exceeded; retry later"),
            GatewayError::BodyTooLarge { limit } => {
                write!(f, "request body is longer than {limit} bytes")
            }
            GatewayError::UriTooLong { limit } => {
                write!(f, "request target is longer than {limit} bytes")
            }
            GatewayError::WafBlocked { .. } => {
                f.write_str("request refused by the web application firewall")
            }
            GatewayError::UnsupportedEncoding { name } => write!(
                f,
                "grpc-encoding \"{name}\" is not one the web application firewall can \
                 inspect ({WAF_ENCODINGS})"
            ),
            GatewayError::RequestBody { reason } => {
                write!(f, "request body could not be read: {reason}")
            }
            GatewayError::ClientClosed { .. } => {
                f.write_str("client closed the request before it was answered")
            }
            GatewayError::RequestTimeout { after } => write!(
                f,
                "request body did not arrive within {}",
                humantime::format_duration(*after)
            ),
            GatewayError::UnsupportedMediaType { reason } => {
                write!(f, "unsupported media type: {reason}")
            }
            GatewayError::BadRequest { reason } => write!(f, "bad request: {reason}"),
            GatewayError::HeadersTooLarge { limit } => {
                write!(f, "request headers are larger than {limit} bytes")
            }
        }
    }
}

impl std::error::Error for GatewayError {}

/// 499, nginx's "client closed request": the status logged for a request whose client
/// went away before it was answered (never sent: the client is gone).
pub const CLIENT_CLOSED: u16 = 499;

fn client_closed() -> StatusCode {
    StatusCode::from_u16(CLIENT_CLOSED).unwrap_or(StatusCode::BAD_REQUEST)
}

/// The trailers that end a gRPC call the gateway cuts short mid-stream: `grpc-status` and
/// the percent-encoded `grpc-message`.
pub fn grpc_trailers(code: u16, message: &str) -> http::HeaderMap {
    let mut trailers = http::HeaderMap::new();
    trailers.insert(GRPC_STATUS.clone(), HeaderValue::from(code));
    if let Ok(message) = HeaderValue::from_str(&percent_encode(message)) {
        trailers.insert(GRPC_MESSAGE.clone(), message);
    }
    trailers
}

/// `grpc-message` encoding: bytes outside printable ASCII, and `%`, as `%XX`.
pub fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for byte in message.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_message_is_percent_encoded() {
        assert_eq!(percent_encode("50% off\n"), "50%25 off%0A");
        assert_eq!(percent_encode("café"), "caf%C3%A9");
    }

    #[test]
    fn grpc_callers_get_a_trailers_only_answer() {
        let err = GatewayError::Timeout {
            cluster: "ashi".into(),
            after: Duration::from_millis(1500),
        };
        let response = err.render(true);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["grpc-status"], "4");
        let message = response.headers()["grpc-message"].to_str().expect("ascii");
        assert!(message.contains("ashi"), "{message}");
    }

    #[test]
    fn rest_callers_get_status_and_json() {
        let err = GatewayError::Connect {
            cluster: "ashi".into(),
            reason: "refused".into(),
        };
        let response = err.render(false);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
    }
}
