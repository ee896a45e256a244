//! Cross-origin resource sharing for browsers calling a route from another site's page.
//!
//! A browser asks first with a preflight (`OPTIONS` with `Origin` and
//! `Access-Control-Request-Method`); the gateway answers it from the route's settings and
//! never sends it upstream, since a gRPC backend cannot answer one. The actual request's
//! response then names the origin and the headers the page may read.

use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode};

use crate::body::{self, Body};
use crate::config::model;

/// Request headers every gRPC-Web client sends.
const GRPC_WEB_REQUEST_HEADERS: [&str; 4] =
    ["content-type", "x-grpc-web", "x-user-agent", "grpc-timeout"];

/// Response headers a gRPC-Web client must read to learn a call's outcome.
const GRPC_WEB_RESPONSE_HEADERS: [&str; 3] =
    ["grpc-status", "grpc-message", "grpc-status-details-bin"];

/// Which pages may call a route, compiled from its `cors` settings.
pub struct Cors {
    origins: Origins,
    allow_headers: HeaderValue,
    expose_headers: HeaderValue,
    max_age: Option<HeaderValue>,
}

enum Origins {
    Any,
    /// Lower case, as browsers send them.
    List(Vec<String>),
}

/// A browser's CORS preflight: it asks whether it may send `method` to this path.
pub struct Preflight {
    /// The method of the request the browser means to send.
    pub method: Method,
}

impl Preflight {
    /// The preflight a request is, if it is one.
    pub fn of(method: &Method, headers: &HeaderMap) -> Option<Preflight> {
        if method != Method::OPTIONS || !headers.contains_key(header::ORIGIN) {
            return None;
        }
        let asked = headers.get(header::ACCESS_CONTROL_REQUEST_METHOD)?;
        let method = Method::from_bytes(asked.as_bytes()).ok()?;
        Some(Preflight { method })
    }
}

impl Cors {
    /// Compiles a route's `cors` settings (already validated).
    pub fn compile(spec: &model::Cors) -> Result<Cors, String> {
        let origins = if spec.allow_origins.iter().any(|o| &*o.value == "*") {
            Origins::Any
        } else {
            Origins::List(
                spec.allow_origins
                    .iter()
                    .map(|o| o.value.to_ascii_lowercase())
                    .collect(),
            )
        };
        let allow = GRPC_WEB_REQUEST_HEADERS
            .into_iter()
            .chain(spec.allow_headers.iter().map(|h| &*h.value));
        let expose = GRPC_WEB_RESPONSE_HEADERS
            .into_iter()
            .chain(spec.expose_headers.iter().map(|h| &*h.value));
        Ok(Cors {
            origins,
            allow_headers: header_list(allow)?,
            expose_headers: header_list(expose)?,
            max_age: spec
                .max_age
                .as_ref()
                .map(|d| HeaderValue::from(d.get().0.as_secs())),
        })
    }

    /// The request's origin when this route lets it in.
    fn allowed<'a>(&self, headers: &'a HeaderMap) -> Option<&'a HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        let allowed = match &self.origins {
            Origins::Any => true,
            Origins::List(list) => origin
                .to_str()
                .is_ok_and(|o| list.iter().any(|allowed| allowed.eq_ignore_ascii_case(o))),
        };
        allowed.then_some(origin)
    }

    /// The origin the response names: `*` when any will do (so caches can share it),
    /// else the caller's.
    fn allow_origin(&self, origin: &HeaderValue, headers: &mut HeaderMap) {
        match self.origins {
            Origins::Any => {
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                );
            }
            Origins::List(_) => {
                headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
                headers.append(header::VARY, HeaderValue::from_static("origin"));
            }
        }
    }
}

/// The gateway's answer to a preflight for a route: 204 with what the page may send when
/// the origin is allowed, else 403 without CORS headers (the browser then blocks the call).
pub fn answer_preflight(
    cors: Option<&Cors>,
    preflight: &Preflight,
    headers: &HeaderMap,
) -> Response<Body> {
    let mut response = Response::new(body::empty());
    let Some((cors, origin)) = cors.and_then(|c| Some((c, c.allowed(headers)?))) else {
        *response.status_mut() = StatusCode::FORBIDDEN;
        return response;
    };
    *response.status_mut() = StatusCode::NO_CONTENT;
    let out = response.headers_mut();
    cors.allow_origin(origin, out);
    out.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_str(preflight.method.as_str())
            .unwrap_or_else(|_| HeaderValue::from_static("POST")),
    );
    out.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        cors.allow_headers.clone(),
    );
    if let Some(max_age) = &cors.max_age {
        out.insert(header::ACCESS_CONTROL_MAX_AGE, max_age.clone());
    }
    response
}

/// What an actual request from an allowed origin adds to its response, whoever made it
/// (the upstream or the gateway's own error).
pub struct Allowed<'a> {
    cors: &'a Cors,
    origin: HeaderValue,
}

impl<'a> Allowed<'a> {
    /// The route's permission for this request; `None` when it has no `Origin` (not a
    /// cross-origin call) or the origin is not allowed.
    pub fn of(cors: Option<&'a Cors>, headers: &HeaderMap) -> Option<Allowed<'a>> {
        let cors = cors?;
        let origin = cors.allowed(headers)?.clone();
        Some(Allowed { cors, origin })
    }

    /// Adds the origin and the headers the page may read.
    pub fn apply(&self, headers: &mut HeaderMap) {
        self.cors.allow_origin(&self.origin, headers);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            self.cors.expose_headers.clone(),
        );
    }
}

/// Header names joined for a CORS list header.
fn header_list<'a>(names: impl Iterator<Item = &'a str>) -> Result<HeaderValue, String> {
    let mut joined: Vec<String> = Vec::new();
    for name in names {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("not a header name: {name:?}"))?;
        if !joined.iter().any(|n| n == name.as_str()) {
            joined.push(name.as_str().to_owned());
        }
    }
    HeaderValue::from_str(&joined.join(", ")).map_err(|e| e.to_string())
}
