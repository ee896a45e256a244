//! The record of one request from arrival to the last byte of its response, and the
//! body wrappers that fill it in. The record is logged and counted exactly once: when the
//! response ends, fails, or the client goes away.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::uri::{self, PathAndQuery};
use http::{HeaderMap, HeaderValue, Method};
use http_body::{Body as HttpBody, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::Sleep;

use super::error::{CLIENT_CLOSED, grpc_code, grpc_trailers};
use super::headers::GRPC_STATUS;
use super::media_type::{self, Family};
use crate::body::{BoxError, TooLong};
use crate::observe::access_log::{AccessLog, Entry, timestamp};
use crate::observe::metrics;
use crate::observe::trace::Trace;
use crate::policy::waf::Inspection;
use crate::upstream::{InFlight, Outcome, Slot};
use opentelemetry::KeyValue;

/// What kind of client sent the request; decides how errors are rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `application/grpc`.
    Grpc,
    /// `application/grpc-web*`.
    GrpcWeb,
    /// REST/JSON translated to gRPC by the route.
    Rest,
    /// Anything else.
    Http,
}

impl Protocol {
    /// Classifies a request by its content type, rewriting a gRPC one to its canonical
    /// form (see [`media_type`]); a lookalike of a gRPC type is refused.
    pub fn classify(headers: &mut HeaderMap) -> Result<Self, media_type::Unclear> {
        Ok(match media_type::classify(headers)? {
            Family::Grpc => Protocol::Grpc,
            Family::GrpcWeb => Protocol::GrpcWeb,
            Family::Other => Protocol::Http,
        })
    }

    /// The protocol of a head that was classified already (its content type is canonical),
    /// such as one an adapter rewrote.
    pub fn of(headers: &HeaderMap) -> Self {
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        if content_type.starts_with(b"application/grpc-web") {
            Protocol::GrpcWeb
        } else if content_type == b"application/grpc"
            || content_type.starts_with(b"application/grpc+")
        {
            Protocol::Grpc
        } else {
            Protocol::Http
        }
    }

    /// Whether the caller reads gRPC status codes.
    pub fn is_grpc(self) -> bool {
        matches!(self, Protocol::Grpc | Protocol::GrpcWeb)
    }

    fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::GrpcWeb => "grpc-web",
            Protocol::Rest => "rest",
            Protocol::Http => "http",
        }
    }
}

/// The host a client asked for, kept as the request carried it.
#[derive(Clone, Debug)]
pub enum Authority {
    /// `:authority` (HTTP/2) or an absolute-form request target.
    Uri(uri::Authority),
    /// The `Host` header (HTTP/1.1).
    Host(HeaderValue),
    /// Neither.
    Missing,
}

impl Authority {
    /// As text; empty when missing or not text.
    pub fn as_str(&self) -> &str {
        match self {
            Authority::Uri(authority) => authority.as_str(),
            Authority::Host(host) => host.to_str().unwrap_or_default(),
            Authority::Missing => "",
        }
    }
}

/// Everything known about one request so far.
pub struct Record {
    /// Where the entry goes; `None` when access logging is off.
    pub log: Option<AccessLog>,
    /// Arrival.
    pub started: Instant,
    /// Arrival, wall clock.
    pub arrived: SystemTime,
    /// The `x-request-id`.
    pub request_id: HeaderValue,
    /// The client's address, derived by the listener's policy.
    pub client: IpAddr,
    /// The connection's peer (or the PROXY protocol source).
    pub peer: SocketAddr,
    /// Listener name.
    pub listener: Arc<str>,
    /// `h1` or `h2`.
    pub http: &'static str,
    /// What the client speaks.
    pub protocol: Protocol,
    /// Request method.
    pub method: Method,
    /// Requested host.
    pub authority: Authority,
    /// Requested path and query (only the path is logged: queries may carry secrets).
    pub path: Option<PathAndQuery>,
    /// The matched route.
    pub route: Option<Arc<str>>,
    /// The chosen cluster.
    pub cluster: Option<Arc<str>>,
    /// The endpoint in use; held so the balancer counts the request until it ends.
    pub in_flight: Option<InFlight>,
    /// The request's place among the cluster's requests in flight.
    pub admitted: Option<Slot>,
    /// Attempts made upstream (more than one when retried).
    pub attempts: u32,
    /// The upstream's response broke off.
    pub upstream_failed: bool,
    /// Status sent to the client.
    pub status: u16,
    /// gRPC status sent to the client.
    pub grpc_status: Option<u16>,
    /// Request body bytes, counted as they stream.
    pub bytes_in: Arc<AtomicU64>,
    /// Response body bytes.
    pub bytes_out: u64,
    /// Why the gateway answered or the response ended early.
    pub error: Option<String>,
    /// The request's trace, when tracing is on; boxed, as it is several times the size
    /// of the rest of the record and most requests have none.
    pub trace: Option<Box<Trace>>,
    /// What the route's WAF saw, when the route has one.
    pub waf: Option<Arc<Inspection>>,
}

impl Record {
    /// Logs and counts the request, by dropping it (see the `Drop` impl).
    fn finish(self) {
        drop(self);
    }

    /// Logs and counts the request; called once, when the record is dropped.
    fn log_and_count(&mut self) {
        let duration = self.started.elapsed();
        let waf = self.waf.take().map(|inspection| inspection.finish());
        if let Some(waf) = &waf {
            metrics::waf(self.route.as_deref().unwrap_or(""), waf.result, &waf.ids);
            if let Some(blocked) = waf.blocked {
                self.error
                    .get_or_insert_with(|| super::GatewayError::from(blocked).detail());
            }
            if let Some(trace) = &mut self.trace {
                let decision = match (waf.blocked, waf.ids.is_empty()) {
                    (Some(b), _) => format!("blocked: {}", b.cause),
                    (None, true) => "pass".to_owned(),
                    (None, false) => format!("detected rules {:?}", waf.ids),
                };
                trace.decision("waf", decision);
            }
        }
        if let Some(in_flight) = &self.in_flight {
            let outcome = if self.upstream_failed {
                metrics::upstream_failure(&in_flight.cluster().name, "response");
                Outcome::Failure
            } else {
                Outcome::of_response(self.status, self.grpc_status)
            };
            in_flight.report(outcome);
        }
        let upstream = self.in_flight.as_ref().map(|f| f.endpoint().addr);
        metrics::request_finished(
            metrics::RequestLabels {
                listener: self.listener.clone(),
                route: self.route.clone(),
                cluster: self.cluster.clone(),
                protocol: self.protocol.as_str(),
                status_class: metrics::RequestLabels::class_of(self.status),
                grpc_status: self.grpc_status,
            },
            duration,
        );
        let ids = self
            .log
            .as_ref()
            .and(self.trace.as_deref())
            .and_then(Trace::ids);
        if let Some(mut trace) = self.trace.take() {
            trace.set(|| {
                [
                    self.route
                        .as_deref()
                        .map(|r| KeyValue::new("sekisho.route", r.to_owned())),
                    self.cluster
                        .as_deref()
                        .map(|c| KeyValue::new("sekisho.cluster", c.to_owned())),
                    upstream.map(|u| KeyValue::new("network.peer.address", u.to_string())),
                    Some(KeyValue::new("client.address", self.client.to_string())),
                    Some(KeyValue::new(
                        "sekisho.request_id",
                        self.request_id.to_str().unwrap_or_default().to_owned(),
                    )),
                ]
                .into_iter()
                .flatten()
            });
            trace.finish(self.status, self.grpc_status, self.error.as_deref());
        }
        let route = self.route.as_deref();
        let cluster = self.cluster.as_deref();
        if let Some(log) = &self.log {
            log.write(&Entry {
                time: timestamp(self.arrived),
                request_id: self.request_id.to_str().unwrap_or_default(),
                client: self.client,
                peer: self.peer,
                listener: &self.listener,
                http: self.http,
                protocol: self.protocol.as_str(),
                method: self.method.as_str(),
                authority: self.authority.as_str(),
                path: self.path.as_ref().map_or("", PathAndQuery::path),
                route,
                cluster,
                upstream,
                status: self.status,
                grpc_status: self.grpc_status,
                bytes_in: self.bytes_in.load(Ordering::Relaxed),
                bytes_out: self.bytes_out,
                attempts: self.attempts,
                trace_id: ids.as_ref().map(|(t, _)| t.as_str()),
                span_id: ids.as_ref().map(|(_, s)| s.as_str()),
                duration_ms: duration.as_secs_f64() * 1000.0,
                error: self.error.as_deref(),
                waf: waf
                    .as_ref()
                    .map(|w| w.ids.as_slice())
                    .filter(|ids| !ids.is_empty()),
            });
        }
    }
}

/// A record is logged and counted exactly once, when it goes, however it goes. Most go
/// with their response body ([`Observed`]); but when a client resets its HTTP/2 stream, or
/// closes its connection, before the gateway has answered, hyper drops the request's
/// future, and the record with it, while the request still waits (for the upstream, or
/// for the client's own body). Logging on drop keeps those requests in the access log and
/// the metrics: they get nginx's 499, "client closed request".
impl Drop for Record {
    fn drop(&mut self) {
        if self.status == 0 {
            // No answer was decided: the request's future was dropped, which only hyper
            // does, when the client went away.
            self.status = CLIENT_CLOSED;
            if self.protocol.is_grpc() {
                self.grpc_status = Some(grpc_code::CANCELLED);
            }
            self.error
                .get_or_insert_with(|| "client went away before the gateway answered".into());
            metrics::client_closed(self.cluster.as_deref().unwrap_or(""), "request");
        }
        self.log_and_count();
    }
}

/// Reads `grpc-status` from a header block.
pub fn grpc_status_of(headers: &HeaderMap) -> Option<u16> {
    headers.get(&GRPC_STATUS)?.to_str().ok()?.parse().ok()
}

pin_project! {
    /// The response body on its way to the client: counts bytes, notes the gRPC status in
    /// the trailers, ends the call when the caller's deadline passes, and finishes the
    /// record at the end.
    pub struct Observed<B>
    where
        B: HttpBody,
    {
        #[pin]
        inner: B,
        record: Option<Box<Record>>,
        deadline: Option<Pin<Box<Sleep>>>,
    }

    impl<B> PinnedDrop for Observed<B>
    where
        B: HttpBody,
    {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(mut record) = this.record.take() {
                // An answer that already says what went wrong (the gateway's own, such as
                // a 499 for a client already gone) keeps its error and is not counted twice.
                if !this.inner.is_end_stream() && record.error.is_none() {
                    // Cut by the listener (the client took nothing of it), or dropped
                    // because the client left.
                    match crate::listener::stall::cut_for() {
                        Some(stalled) => record.error = Some(stalled.to_string()),
                        None => {
                            record.error =
                                Some("client went away before the response ended".into());
                            let cluster = record.cluster.as_deref().unwrap_or("");
                            metrics::client_closed(cluster, "response");
                        }
                    }
                }
                record.finish();
            }
        }
    }
}

impl<B: HttpBody> Observed<B> {
    /// Wraps `inner`; `deadline` ends a gRPC call with DEADLINE_EXCEEDED when it passes.
    pub fn new(inner: B, record: Box<Record>, deadline: Option<Pin<Box<Sleep>>>) -> Self {
        Observed {
            inner,
            record: Some(record),
            deadline,
        }
    }
}

impl<B> HttpBody for Observed<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        if this.record.is_none() {
            return Poll::Ready(None);
        }
        if let Some(deadline) = this.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(deadline_passed(this.record));
        }
        let frame = ready!(this.inner.as_mut().poll_frame(cx)).map(|f| f.map_err(Into::into));
        let Some(record) = this.record.as_mut() else {
            return Poll::Ready(None);
        };
        match &frame {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    record.bytes_out += data.len() as u64;
                } else if let Some(trailers) = frame.trailers_ref() {
                    record.grpc_status = grpc_status_of(trailers).or(record.grpc_status);
                }
            }
            Some(Err(e)) => {
                // An upstream response cut off because the client's request body failed
                // (the gateway reset the upstream stream or closed its connection) is the
                // client's doing, not the endpoint's.
                match record
                    .in_flight
                    .as_ref()
                    .and_then(InFlight::request_body_failure)
                {
                    Some(client) => {
                        record.error = Some(format!(
                            "client's request body failed ({}); the response was cut off",
                            client.reason
                        ));
                    }
                    None => {
                        record.error = Some(format!("upstream response failed: {e}"));
                        record.upstream_failed = true;
                    }
                }
                if let Some(record) = this.record.take() {
                    record.finish();
                }
            }
            None => {
                if let Some(record) = this.record.take() {
                    record.finish();
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.record.is_none() || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Ends a gRPC call whose deadline passed with DEADLINE_EXCEEDED trailers, or breaks off
/// a plain HTTP response.
fn deadline_passed(slot: &mut Option<Box<Record>>) -> Option<Result<Frame<Bytes>, BoxError>> {
    let mut record = slot.take()?;
    record.error = Some("caller's deadline passed while the response streamed".into());
    if record.protocol.is_grpc() {
        record.grpc_status = Some(grpc_code::DEADLINE_EXCEEDED);
        record.finish();
        Some(Ok(Frame::trailers(grpc_trailers(
            grpc_code::DEADLINE_EXCEEDED,
            "deadline exceeded",
        ))))
    } else {
        record.finish();
        Some(Err("deadline exceeded".into()))
    }
}

pin_project! {
    /// The request body on its way upstream, counted for the log and cut off past the
    /// route's limit (for bodies that did not declare their length).
    pub struct Counted<B> {
        #[pin]
        inner: B,
        bytes: Arc<AtomicU64>,
        limit: Option<u64>,
    }
}

impl<B> Counted<B> {
    /// Counts into `bytes`; fails the body once more than `limit` bytes arrived.
    pub fn new(inner: B, bytes: Arc<AtomicU64>, limit: Option<u64>) -> Self {
        Counted {
            inner,
            bytes,
            limit,
        }
    }
}

impl<B> HttpBody for Counted<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx)).map(|f| f.map_err(Into::into));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
        {
            let total =
                this.bytes.fetch_add(data.len() as u64, Ordering::Relaxed) + data.len() as u64;
            if let Some(limit) = *this.limit
                && total > limit
            {
                return Poll::Ready(Some(Err(Box::new(TooLong { limit }))));
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
