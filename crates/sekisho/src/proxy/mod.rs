//! The request path, top to bottom: classify, match a route, prepare the upstream
//! request, send it, and stream the response back while the exchange is recorded.

mod browser;
pub mod cors;
pub mod error;
mod exchange;
mod forward;
pub(crate) mod headers;
mod host;
mod media_type;
pub mod mirror;
mod path;
mod replay;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::header::{self, HeaderValue};
use http::request::Parts;
use http::uri::{self, PathAndQuery, Scheme};
use http::{Request, Response, Uri, Version};

use crate::adapt::grpc_web;
use crate::adapt::transcode::Plan;
use crate::body::{self, Body};
use crate::config::model::{PathPolicy, Protocol as Upstream};
use crate::policy::identity::Vouched;
use crate::policy::waf::{Guarded, Inspected, Messages};
use crate::route::{RequestFacts, Route};
use crate::state::State;
use crate::upstream::Cluster;
use browser::Browser;
use cors::Preflight;
pub use error::GatewayError;
use exchange::{Authority, Counted, Observed, Protocol, Record, grpc_status_of};
use headers::Forwarding;
use opentelemetry::KeyValue;

/// What every request on one client connection shares.
pub struct Downstream {
    /// The running gateway state.
    pub state: Arc<State>,
    /// Listener the connection arrived on.
    pub listener: Arc<str>,
    /// The client's address: the peer, or the source a PROXY protocol header gave.
    pub client: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The gateway's own address on the connection.
    pub local: SocketAddr,
}

/// Handles one request from a client. Never fails: every problem becomes a response.
pub async fn handle(
    downstream: Arc<Downstream>,
    req: Request<body::ClientBody>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let snapshot = downstream.state.snapshot();
    let (mut parts, mut incoming) = req.into_parts();
    let listener = snapshot.listeners.get(&*downstream.listener);

    // Classify, find the client, and record.
    let classified = Protocol::classify(&mut parts.headers);
    let protocol = classified.unwrap_or(Protocol::Http);
    snapshot.internal_headers.strip(&mut parts.headers);
    // The target every later stage sees: one clean host, a normalized path.
    let authority = host::authority(&parts);
    let paths = listener.map_or_else(PathPolicy::default, |l| l.paths);
    let normalized = path::normalize_uri(&mut parts.uri, &paths);
    let preflight = Preflight::of(&parts.method, &parts.headers);
    let peer = downstream.client.ip();
    let client = listener.map_or(peer, |l| l.client_ip.derive(peer, &parts.headers));
    let forwarding = Forwarding {
        peer,
        client,
        keep_chain: listener.is_some_and(|l| l.client_ip.trusts(peer)),
        tls: downstream.tls,
    };
    // Boxed once: it goes from the request path into the response body and is logged
    // when that ends, and each move by value would copy all of it.
    let mut record = Box::new(Record {
        log: snapshot.access_log.clone(),
        started,
        arrived: SystemTime::now(),
        request_id: headers::request_id(&parts.headers),
        client,
        peer: downstream.client,
        listener: downstream.listener.clone(),
        http: if parts.version == Version::HTTP_2 {
            "h2"
        } else {
            "h1"
        },
        protocol,
        method: parts.method.clone(),
        authority: authority.clone().unwrap_or(Authority::Missing),
        path: parts.uri.path_and_query().cloned(),
        route: None,
        cluster: None,
        in_flight: None,
        admitted: None,
        attempts: 0,
        upstream_failed: false,
        status: 0,
        grpc_status: None,
        bytes_in: Arc::default(),
        bytes_out: 0,
        error: None,
        trace: None,
        waf: None,
    });
    if let Some(tracing) = &snapshot.tracing {
        let name = match protocol {
            Protocol::Grpc | Protocol::GrpcWeb => {
                parts.uri.path().trim_start_matches('/').to_owned()
            }
            _ => parts.method.as_str().to_owned(),
        };
        let mut trace = tracing.server_span(name, &parts.headers);
        trace.set(|| {
            [
                KeyValue::new("http.request.method", parts.method.as_str().to_owned()),
                KeyValue::new("url.path", parts.uri.path().to_owned()),
                KeyValue::new("sekisho.listener", downstream.listener.to_string()),
            ]
        });
        if let Some((service, method)) = protocol
            .is_grpc()
            .then(|| grpc_call(parts.uri.path()))
            .flatten()
        {
            trace.set(|| {
                [
                    KeyValue::new("rpc.system", "grpc"),
                    KeyValue::new("rpc.service", service.to_owned()),
                    KeyValue::new("rpc.method", method.to_owned()),
                ]
            });
        }
        record.trace = Some(Box::new(trace));
    }

    if let Err(media_type::Unclear(reason)) = classified {
        return Ok(answer(
            GatewayError::UnsupportedMediaType { reason },
            record,
        ));
    }
    if let Err(host::BadHost(reason)) = authority {
        return Ok(answer(GatewayError::BadRequest { reason }, record));
    }
    if parts.method == http::Method::CONNECT {
        // A reverse proxy opens no tunnels: no route may turn it into one.
        let reason = "CONNECT is not served here (a reverse proxy opens no tunnels)";
        return Ok(answer(GatewayError::BadRequest { reason }, record));
    }
    let sent_uri = match normalized {
        Ok(sent) => sent,
        Err(path::BadPath(reason)) => {
            return Ok(answer(GatewayError::BadRequest { reason }, record));
        }
    };

    // The listener's own limits and allow list.
    if let Some(listener) = listener {
        // hyper bounds its read buffer, not a head that arrives whole in one read.
        let limit = listener.http1.max_header_bytes;
        if parts.version != Version::HTTP_2 && headers::head_bytes(&parts.headers) > limit {
            return Ok(answer(GatewayError::HeadersTooLarge { limit }, record));
        }
        if parts.uri.path_and_query().map_or(0, |pq| pq.as_str().len()) > listener.max_uri_bytes {
            let limit = listener.max_uri_bytes;
            return Ok(answer(GatewayError::UriTooLong { limit }, record));
        }
        if let Some(acl) = &listener.ip_acl
            && !acl.allows(client)
        {
            let status = acl.status;
            return Ok(answer(GatewayError::IpRefused { client, status }, record));
        }
    }

    // Match a route (a preflight matches the route of the request it asks about).
    let host = host::for_matching(record.authority.as_str());
    let facts = RequestFacts {
        host: &host,
        path: parts.uri.path(),
        method: preflight.as_ref().map_or(&parts.method, |p| &p.method),
        headers: &parts.headers,
        grpc: (protocol.is_grpc() || preflight.is_some())
            .then(|| grpc_call(parts.uri.path()))
            .flatten(),
    };
    let Some(route) = snapshot.routes.find(&facts) else {
        return Ok(answer(GatewayError::NoRoute, record));
    };
    record.route = Some(route.name.clone());

    // Browsers: a CORS preflight is answered here; other calls are fitted on the way.
    if let Some(preflight) = preflight {
        let response = cors::answer_preflight(route.cors.as_ref(), &preflight, &parts.headers);
        if response.status() == http::StatusCode::FORBIDDEN {
            record.error = Some("preflight from an origin the route's cors does not allow".into());
        }
        return Ok(own(response, None, record));
    }
    let browser = Browser::of(route, protocol, &parts.headers);

    let Some(cluster) = route.cluster() else {
        return Ok(browser.response(answer(GatewayError::NoRoute, record)));
    };
    record.cluster = Some(cluster.name.clone());
    // A body silent for the listener's `request_body_idle_timeout` fails with `BodyIdle`.
    let idle = incoming.take_idle_timeout();
    let incoming = crate::listener::idle::limit(incoming, idle);
    let counted = Counted::new(incoming, record.bytes_in.clone(), route.max_body_bytes);
    let mut body = body::boxed(counted);

    // The route's policies, in a fixed order.
    if let Some(acl) = &route.ip_acl
        && !acl.allows(client)
    {
        let status = acl.status;
        let err = GatewayError::IpRefused { client, status };
        return Ok(browser.response(answer(err, record)));
    }
    let mut waf = None;
    if let Some(policy) = &route.waf {
        // The WAF reads the target as the client sent it: attack signatures are written for
        // that form (`//`, `..`, escapes), and the route already guards the normalized one.
        let routed_uri = sent_uri.map(|sent| std::mem::replace(&mut parts.uri, sent));
        let inspection = policy.begin(&parts, client, downstream.client, downstream.local);
        if let Some(routed) = routed_uri {
            parts.uri = routed;
        }
        record.waf = Some(inspection.clone());
        if let Some(blocked) = inspection.blocked() {
            return Ok(browser.response(answer(blocked.into(), record)));
        }
        // gRPC messages are inspected one by one as they stream (below); other bodies
        // are read up to the WAF's limit and inspected whole here.
        if !protocol.is_grpc() {
            body = match inspection.request_body(body).await {
                Ok(body) => body,
                Err(Inspected::Blocked(blocked)) => {
                    return Ok(browser.response(answer(blocked.into(), record)));
                }
                Err(Inspected::Read(e)) => {
                    // The client's doing, whatever it was: too long, too slow, malformed,
                    // or gone (499).
                    let read = record.bytes_in.load(std::sync::atomic::Ordering::Relaxed);
                    let err = match route.max_body_bytes {
                        Some(limit) if read > limit => GatewayError::BodyTooLarge { limit },
                        _ => crate::body::ClientFailure::of(&*e).into(),
                    };
                    return Ok(browser.response(answer(err, record)));
                }
            };
        }
        waf = Some(inspection);
    }
    // The policies that may wait (for a key set, for a shared counter) are boxed while they
    // do: their state is larger than the rest of the request's, and routes without them
    // should not carry room for it.
    let mut claims = None;
    let mut vouched = Vouched::default();
    if let Some(jwt) = &route.jwt {
        match Box::pin(jwt.check(&mut parts)).await {
            Ok(verified) => {
                claims = Some(verified.claims);
                vouched = verified.vouched;
            }
            Err(denial) => return Ok(browser.response(answer(denial.into(), record))),
        }
    }
    if let Some(limit) = &route.rate_limit
        && let Err(retry_after) =
            Box::pin(limit.check(client, &parts.headers, claims.as_ref())).await
    {
        let err = GatewayError::RateLimited { retry_after };
        return Ok(browser.response(answer(err, record)));
    }
    if let Some(limit) = route.max_body_bytes
        && headers::content_length(&parts.headers).is_some_and(|length| length > limit)
    {
        let err = GatewayError::BodyTooLarge { limit };
        return Ok(browser.response(answer(err, record)));
    }

    // Hold a place among the cluster's requests in flight.
    match cluster.admit() {
        Ok(slot) => record.admitted = Some(slot),
        Err(limit) => {
            let cluster = cluster.name.clone();
            let err = GatewayError::Overloaded { cluster, limit };
            return Ok(browser.response(answer(err, record)));
        }
    }

    let grpc_deadline = headers::grpc_timeout(&parts.headers).filter(|_| protocol.is_grpc());
    let deadline = [grpc_deadline, route.max_duration]
        .into_iter()
        .flatten()
        .min();
    let wait = [route.timeout, deadline].into_iter().flatten().min();

    // A REST caller of a transcoding route: translate the request into a gRPC call.
    let mut transcoded = None;
    if protocol == Protocol::Http
        && let Some(transcoding) = &route.transcode
    {
        record.protocol = Protocol::Rest;
        let call = match transcoding.plan(&parts) {
            Plan::Answer(answer) => {
                record.error = answer.refusal;
                return Ok(browser.response(own(answer.response, Some(answer.code), record)));
            }
            Plan::Call(call) => call,
        };
        body = match transcoding.request(&call, &mut parts, body).await {
            Ok(body) => body,
            Err(response) => return Ok(browser.response(own(response, None, record))),
        };
        transcoded = Some((transcoding, call));
    }

    // A gRPC-Web caller: the same call in gRPC.
    body = browser.request(&mut parts, body);
    if let Some(inspection) = &waf
        && Protocol::of(&parts.headers) == Protocol::Grpc
    {
        body = body::boxed(Messages::new(body, &parts.headers, inspection.clone()));
    }

    // Prepare the upstream request, and its copy for a shadow cluster.
    if let Some(mirror) = route.mirror.as_ref().filter(|m| m.sample()) {
        let mut shadow = copy_head(&parts);
        let authority = shadow_authority(&record.authority);
        prepare(
            &mut shadow,
            route,
            &mirror.cluster,
            Vouching {
                forwarding,
                request_id: &record.request_id,
                vouched: &vouched,
            },
            &authority,
        );
        let (original, copy) = mirror::split(body);
        body = original;
        let req = Request::from_parts(shadow, copy);
        mirror::send(mirror.cluster.clone(), req, wait);
    }
    prepare(
        &mut parts,
        route,
        cluster,
        Vouching {
            forwarding,
            request_id: &record.request_id,
            vouched: &vouched,
        },
        &record.authority,
    );

    // Send it, within the route's timeout and the caller's deadline, retrying as the
    // route says.
    let sent = forward::forward(
        forward::Route {
            cluster,
            retry: route.retry.as_ref(),
            limit: wait,
        },
        parts,
        body,
        record.trace.as_deref(),
        &mut record.attempts,
    )
    .await;
    let response = match sent {
        Ok(sent) => {
            record.in_flight = Some(sent.in_flight);
            sent.response
        }
        Err(err) => {
            // A request the WAF refused mid-body had its upstream stream reset.
            let err = waf
                .as_ref()
                .and_then(|w| w.blocked())
                .map_or(err, GatewayError::from);
            return Ok(browser.response(answer(err, record)));
        }
    };

    // A transcoded call's gRPC answer goes back as JSON.
    if let Some((transcoding, call)) = transcoded {
        let (mut response, code) = transcoding.response(&call, response).await;
        if let Some(inspection) = waf.as_ref().filter(|_| route.waf_inspects_responses()) {
            response = match inspection.response(response).await {
                Ok(response) => response,
                Err(blocked) => return Ok(browser.response(answer(blocked.into(), record))),
            };
        }
        let (mut parts, body) = response.into_parts();
        route.response_headers.apply(&mut parts.headers);
        record.status = parts.status.as_u16();
        record.grpc_status = Some(code);
        let body = body::boxed(Observed::new(body, record, None));
        return Ok(browser.response(Response::from_parts(parts, body)));
    }

    // The WAF's response phases: headers always, bodies of non-gRPC responses.
    let remaining = deadline.map(|d| d.saturating_sub(started.elapsed()));
    let Some(inspection) = &waf else {
        return Ok(browser.response(stream_back(response, route, record, remaining)));
    };
    let mut response = response.map(body::boxed);
    if route.waf_inspects_responses() {
        let inspected = if protocol.is_grpc() {
            match inspection.response_head(response.status(), response.headers()) {
                Some(blocked) => Err(blocked),
                None => Ok(response),
            }
        } else {
            inspection.response(response).await
        };
        response = match inspected {
            Ok(response) => response,
            Err(blocked) => return Ok(browser.response(answer(blocked.into(), record))),
        };
    }
    if protocol.is_grpc() {
        response = response.map(|b| body::boxed(Guarded::new(b, inspection.clone())));
    }

    Ok(browser.response(stream_back(response, route, record, remaining)))
}

/// Streams an upstream response back to the client, within what is left of the deadline.
fn stream_back<B>(
    response: Response<B>,
    route: &Route,
    mut record: Box<Record>,
    remaining: Option<std::time::Duration>,
) -> Response<Body>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<body::BoxError>,
{
    let (mut parts, incoming) = response.into_parts();
    if parts.version != Version::HTTP_2 {
        // HTTP/2 forbids connection-specific headers; the h2 codec already rejects them.
        headers::strip_hop_by_hop(&mut parts.headers);
    }
    route.response_headers.apply(&mut parts.headers);
    parts.version = Version::default();
    record.status = parts.status.as_u16();
    record.grpc_status = grpc_status_of(&parts.headers);
    let timer = remaining.map(|d| Box::pin(tokio::time::sleep(d)));
    let body = Observed::new(incoming, record, timer);
    Response::from_parts(parts, body::boxed(body))
}

/// The headers the gateway itself vouches for on an upstream request.
struct Vouching<'a> {
    forwarding: Forwarding,
    request_id: &'a HeaderValue,
    /// What the route's policies earned (forwarded claims).
    vouched: &'a Vouched,
}

/// Turns the client's request head into the upstream's. Headers the gateway vouches for
/// are written after hop-by-hop stripping, so a `Connection` header cannot remove them,
/// and after every adapter rebuilt the head; forwarded claims come last of all, so not
/// even the route's own `request_headers` can change the identity they carry.
fn prepare(
    parts: &mut Parts,
    route: &Route,
    cluster: &Cluster,
    vouching: Vouching<'_>,
    authority: &Authority,
) {
    let headers = &mut parts.headers;
    if parts.version != Version::HTTP_2 {
        // HTTP/2 forbids connection-specific headers; the h2 codec already rejects them.
        headers::strip_hop_by_hop(headers);
    }
    headers::set_forwarded(headers, vouching.forwarding);
    // Never indexed by HPACK: a fresh value per request would only churn the table.
    let mut request_id = vouching.request_id.clone();
    request_id.set_sensitive(true);
    headers.insert(headers::X_REQUEST_ID.clone(), request_id);
    route.request_headers.apply(headers);
    vouching.vouched.apply(headers);

    let path_and_query = match (&route.rewrite, parts.uri.path_and_query()) {
        (Some(_), Some(pq)) => {
            let path = route.rewrite_path(pq.path());
            let rewritten = match pq.query() {
                Some(query) => format!("{path}?{query}"),
                None => path.into_owned(),
            };
            PathAndQuery::try_from(rewritten).ok()
        }
        (_, pq) => pq.cloned(),
    };
    let path_and_query = path_and_query.unwrap_or_else(|| PathAndQuery::from_static("/"));
    let mut uri = uri::Parts::default();
    uri.path_and_query = Some(path_and_query);
    match cluster.protocol {
        Upstream::Http1 => {
            parts.version = Version::HTTP_11;
            match authority {
                Authority::Uri(authority) => {
                    if let Ok(host) = HeaderValue::from_str(authority.as_str()) {
                        parts.headers.insert(header::HOST, host);
                    }
                }
                Authority::Host(host) => {
                    parts.headers.insert(header::HOST, host.clone());
                }
                Authority::Missing => {}
            }
        }
        Upstream::H2c | Upstream::H2 => {
            parts.version = Version::HTTP_2;
            parts.headers.remove(header::HOST);
            uri.scheme = Some(if cluster.protocol == Upstream::H2 {
                Scheme::HTTPS
            } else {
                Scheme::HTTP
            });
            uri.authority = Some(match authority {
                Authority::Uri(authority) => authority.clone(),
                Authority::Host(host) => uri::Authority::try_from(host.as_bytes())
                    .unwrap_or_else(|_| uri::Authority::from_static("localhost")),
                Authority::Missing => uri::Authority::from_static("localhost"),
            });
        }
    }
    if let Ok(uri) = Uri::from_parts(uri) {
        parts.uri = uri;
    }
}

/// A copy of the client's request head, for a mirrored request.
fn copy_head(parts: &Parts) -> Parts {
    let (mut copy, ()) = Request::new(()).into_parts();
    copy.method = parts.method.clone();
    copy.uri = parts.uri.clone();
    copy.version = parts.version;
    copy.headers = parts.headers.clone();
    copy
}

/// The host a mirrored request names: the original's with `-shadow` added, so the
/// shadow's logs tell copies from real traffic.
fn shadow_authority(authority: &Authority) -> Authority {
    let text = authority.as_str();
    let (host, port) = match text.rfind(':') {
        Some(i) if !text[i..].contains(']') => text.split_at(i),
        _ => (text, ""),
    };
    HeaderValue::from_str(&format!("{host}-shadow{port}"))
        .map_or(Authority::Missing, Authority::Host)
}

/// The gateway's own answer, recorded like any response.
fn answer(err: GatewayError, mut record: Box<Record>) -> Response<Body> {
    if let Some(trace) = &mut record.trace {
        let policy = match &err {
            GatewayError::IpRefused { .. } => Some("ip_acl"),
            GatewayError::Unauthenticated { .. } | GatewayError::Forbidden { .. } => Some("jwt"),
            GatewayError::RateLimited { .. } => Some("rate_limit"),
            GatewayError::Overloaded { .. } => Some("limits"),
            GatewayError::BodyTooLarge { .. } | GatewayError::UriTooLong { .. } => {
                Some("request_limits")
            }
            _ => None,
        };
        if let Some(policy) = policy {
            trace.decision(policy, err.detail());
        }
    }
    let mut response = err.render(record.protocol.is_grpc());
    if record.protocol == Protocol::GrpcWeb {
        grpc_web::answer_type(response.headers_mut());
    }
    if let GatewayError::ClientClosed { .. } = err {
        crate::observe::metrics::client_closed(record.cluster.as_deref().unwrap_or(""), "request");
    }
    let grpc_status = (record.protocol != Protocol::Http).then(|| err.grpc_status());
    record.error = Some(err.detail());
    own(response, grpc_status, record)
}

/// A response the gateway made itself, recorded like any response.
fn own(
    response: Response<Body>,
    grpc_status: Option<u16>,
    mut record: Box<Record>,
) -> Response<Body> {
    record.status = response.status().as_u16();
    record.grpc_status = grpc_status;
    let (mut parts, body) = response.into_parts();
    parts
        .headers
        .insert(headers::X_REQUEST_ID.clone(), record.request_id.clone());
    Response::from_parts(parts, body::boxed(Observed::new(body, record, None)))
}

/// `/package.Service/Method` split into service and method.
fn grpc_call(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_paths_split_into_service_and_method() {
        assert_eq!(
            grpc_call("/grpc.testing.TestService/UnaryCall"),
            Some(("grpc.testing.TestService", "UnaryCall"))
        );
        assert_eq!(grpc_call("/only"), None);
        assert_eq!(grpc_call("/a/b/c"), None);
    }
}

#[cfg(test)]
mod state_size {
    use super::*;

    /// The size of the future an `async fn` of two arguments returns, without calling it.
    fn future_size<A, B, F: Future>(_: impl Fn(A, B) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every request in flight holds the request path's state, for as long as it waits on
    /// its upstream: a client multiplexing 256 streams makes the gateway hold 256 of them,
    /// and what does not fit in the CPU's caches is fetched again on every request. Routes
    /// without a policy must not carry room for its state, nor the state of a layer that
    /// only passes the request on.
    #[test]
    fn a_request_in_flight_holds_under_three_and_a_half_kib() {
        let size = future_size(handle);
        assert!(size <= 3584, "the request path's state is {size} bytes");
    }
}
