//! The server span of each `ashi.v1` call, as a tower layer on the gRPC server: it reads the
//! caller's `traceparent`/`tracestate`, starts a span that is its child, and polls the call
//! with that span as the current context so the call's own spans nest under it. Health checks
//! and reflection are not traced: they are the gateway's probes, not work.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use opentelemetry::context::{FutureExt as _, WithContext};
use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use percent_encoding::percent_decode_str;
use pin_project_lite::pin_project;

use super::Tracer;

/// Only calls to the services of this package get spans.
const TRACED_PACKAGE: &str = "ashi.v1.";

/// The layer: one per server.
#[derive(Clone, Debug)]
pub struct RpcSpans {
    tracer: Tracer,
}

impl RpcSpans {
    /// Spans from `tracer`; with tracing off, calls pass straight through.
    pub fn new(tracer: Tracer) -> Self {
        RpcSpans { tracer }
    }
}

impl<S> tower_layer::Layer<S> for RpcSpans {
    type Service = TracedRpc<S>;

    fn layer(&self, inner: S) -> TracedRpc<S> {
        TracedRpc {
            inner,
            tracer: self.tracer.clone(),
        }
    }
}

/// The gRPC server's services wrapped by [`RpcSpans`].
#[derive(Clone, Debug)]
pub struct TracedRpc<S> {
    inner: S,
    tracer: Tracer,
}

impl<S, B, R> tower_service::Service<http::Request<B>> for TracedRpc<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>>,
    S::Error: std::fmt::Display,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = RpcCall<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let Some(tracer) = self.tracer.sdk() else {
            return RpcCall::Plain {
                inner: self.inner.call(request),
            };
        };
        let Some((service, method)) = request
            .uri()
            .path()
            .strip_prefix('/')
            .filter(|path| path.starts_with(TRACED_PACKAGE))
            .and_then(|path| path.split_once('/'))
        else {
            return RpcCall::Plain {
                inner: self.inner.call(request),
            };
        };
        let parent = TraceContextPropagator::new().extract(&Headers(request.headers()));
        let span = tracer
            .span_builder(format!("{service}/{method}"))
            .with_kind(SpanKind::Server)
            .with_attributes([
                KeyValue::new("rpc.system", "grpc"),
                KeyValue::new("rpc.service", service.to_owned()),
                KeyValue::new("rpc.method", method.to_owned()),
            ])
            .start_with_context(tracer, &parent);
        let cx = parent.with_span(span);
        RpcCall::Traced {
            inner: self.inner.call(request).with_context(cx.clone()),
            cx,
        }
    }
}

pin_project! {
    /// A call in flight; a traced one ends its span when the response headers are ready.
    /// ashi's RPCs are unary, and tonic sends a failed unary call as a trailers-only
    /// response, so the status is known then.
    #[project = RpcCallProj]
    pub enum RpcCall<F> {
        Plain { #[pin] inner: F },
        Traced { #[pin] inner: WithContext<F>, cx: Context },
    }
}

impl<F, R, E> std::future::Future for RpcCall<F>
where
    F: std::future::Future<Output = Result<http::Response<R>, E>>,
    E: std::fmt::Display,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<F::Output> {
        match self.project() {
            RpcCallProj::Plain { inner } => inner.poll(task),
            RpcCallProj::Traced { inner, cx } => {
                let result = std::task::ready!(inner.poll(task));
                let span = cx.span();
                match &result {
                    Ok(response) => {
                        let headers = response.headers();
                        // No status in the headers: the call succeeded and the trailers
                        // will say OK.
                        let code = headers
                            .get("grpc-status")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse::<i64>().ok())
                            .unwrap_or(0);
                        span.set_attribute(KeyValue::new("rpc.grpc.status_code", code));
                        if code != 0 {
                            // Percent-encoded on the wire.
                            let message = headers
                                .get("grpc-message")
                                .and_then(|v| v.to_str().ok())
                                .map(|v| percent_decode_str(v).decode_utf8_lossy().into_owned())
                                .unwrap_or_default();
                            span.set_status(Status::error(message));
                        }
                    }
                    Err(e) => span.set_status(Status::error(e.to_string())),
                }
                span.end();
                Poll::Ready(result)
            }
        }
    }
}

/// Request headers as the propagator reads them.
struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}
