//! Distributed tracing: W3C Trace Context (and B3 on request) in, a server span per
//! request and a client span per upstream attempt, `traceparent` out, spans exported over
//! OTLP/gRPC. Export never holds up a request: finished spans go into a bounded queue that
//! a background task drains; when the collector is slow or down the queue fills and further
//! spans are dropped and counted.

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    Sampler, SdkTracer, SdkTracerProvider, Span, SpanData, SpanExporter as _, SpanProcessor,
};
use tokio::sync::mpsc;

use crate::config::model;
use crate::observe::metrics;

/// Spans sent to the collector in one export.
const BATCH: usize = 512;
/// Longest wait before a partial batch is sent.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// The `traceparent` header.
pub const TRACEPARENT: &str = "traceparent";
/// The `tracestate` header.
pub const TRACESTATE: &str = "tracestate";

/// A running tracer and its exporter.
pub struct Tracing {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    b3: bool,
    /// The settings it was built from, to keep it across reloads that do not change them.
    settings: Settings,
}

/// The values a tracer is built from. Compared by value, not by their printed form: a
/// secret endpoint prints as `<redacted>` whatever it holds.
#[derive(Debug, PartialEq)]
struct Settings {
    endpoint: String,
    sampling: f64,
    b3: bool,
    service: String,
    timeout: Duration,
    max_queue: usize,
}

impl Settings {
    fn of(spec: &model::Tracing) -> Self {
        Settings {
            endpoint: spec.otlp_endpoint.to_string(),
            sampling: spec.sampling.clamp(0.0, 1.0),
            b3: spec.b3,
            service: spec.service_name.to_string(),
            timeout: spec
                .timeout
                .as_ref()
                .map_or(Duration::from_secs(3), |d| d.get().0),
            max_queue: spec.max_queue.max(1),
        }
    }
}

impl Tracing {
    /// Starts the exporter task and the tracer. Needs a Tokio runtime.
    pub fn start(spec: &model::Tracing) -> Result<Self, String> {
        let settings = Settings::of(spec);
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(settings.endpoint.clone())
            .with_timeout(settings.timeout)
            .build()
            .map_err(|e| format!("OTLP exporter: {e}"))?;
        let resource = Resource::builder()
            .with_service_name(settings.service.clone())
            .build();
        // The exporter writes the resource (`service.name`) into every export; the provider
        // hands it only to processors that pass it on, and `Bounded` owns the exporter.
        exporter.set_resource(&resource);
        let processor = Bounded::start(exporter, settings.max_queue);
        let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(settings.sampling)));
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_sampler(sampler)
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("sekisho");
        Ok(Tracing {
            provider,
            tracer,
            b3: settings.b3,
            settings,
        })
    }

    /// Whether this tracer was built from `spec` (a reload may keep it).
    pub fn built_from(&self, spec: &model::Tracing) -> bool {
        self.settings == Settings::of(spec)
    }

    /// Starts the server span of a request, continuing the caller's trace when it sent one.
    pub fn server_span(self: &Arc<Self>, name: String, headers: &HeaderMap) -> Trace {
        let parent = extract(headers, self.b3)
            .map(|remote| Context::new().with_remote_span_context(remote))
            .unwrap_or_default();
        let span = self
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Server)
            .start_with_context(&self.tracer, &parent);
        let cx = parent.with_remote_span_context(span.span_context().clone());
        Trace {
            tracing: self.clone(),
            server: span,
            cx,
        }
    }
}

impl Drop for Tracing {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

/// One request's trace: its server span, and the context attempts are children of.
pub struct Trace {
    tracing: Arc<Tracing>,
    server: Span,
    cx: Context,
}

impl Trace {
    /// The ids for the access log, when the trace is valid.
    pub fn ids(&self) -> Option<(String, String)> {
        let sc = self.server.span_context();
        sc.is_valid()
            .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
    }

    /// Adds attributes to the server span. They are made only when the span records: most
    /// requests are not sampled, and their attributes would be built to be thrown away.
    pub fn set<I: IntoIterator<Item = KeyValue>>(&mut self, attributes: impl FnOnce() -> I) {
        if self.server.is_recording() {
            self.server.set_attributes(attributes());
        }
    }

    /// Records which policy decided a request's fate.
    pub fn decision(&mut self, policy: &'static str, decision: String) {
        if self.server.is_recording() {
            self.server.add_event(
                "policy",
                vec![
                    KeyValue::new("sekisho.policy", policy),
                    KeyValue::new("sekisho.decision", decision),
                ],
            );
        }
    }

    /// Starts the client span of one upstream attempt and writes its `traceparent` (and
    /// the caller's `tracestate`) into the upstream request's headers. An attempt of a
    /// request that is not sampled gets no span (the sampler follows the parent, so it
    /// would not record): the upstream continues the trace from the server span.
    pub fn attempt(
        &self,
        n: u32,
        endpoint: std::net::SocketAddr,
        headers: &mut HeaderMap,
    ) -> Attempt {
        if !self.server.is_recording() {
            inject(self.server.span_context(), headers);
            return Attempt { span: None };
        }
        let mut span = self
            .tracing
            .tracer
            .span_builder(format!("attempt {n}"))
            .with_kind(SpanKind::Client)
            .start_with_context(&self.tracing.tracer, &self.cx);
        span.set_attributes([
            KeyValue::new("server.address", endpoint.ip().to_string()),
            KeyValue::new("server.port", i64::from(endpoint.port())),
            KeyValue::new("sekisho.attempt", i64::from(n)),
        ]);
        inject(span.span_context(), headers);
        Attempt { span: Some(span) }
    }

    /// Ends the server span with the request's outcome.
    pub fn finish(mut self, status: u16, grpc_status: Option<u16>, error: Option<&str>) {
        if !self.server.is_recording() {
            return;
        }
        self.server.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
        if let Some(code) = grpc_status {
            self.server
                .set_attribute(KeyValue::new("rpc.grpc.status_code", i64::from(code)));
        }
        if status >= 500 || grpc_status.is_some_and(|c| c != 0) {
            let message = error.map_or(Cow::Borrowed(""), |e| Cow::Owned(e.to_owned()));
            self.server.set_status(Status::error(message));
        }
        self.server.end();
    }
}

/// One upstream attempt's client span (none when the request is not sampled).
pub struct Attempt {
    span: Option<Span>,
}

impl Attempt {
    /// Ends the span with the attempt's outcome: a status, or why it failed.
    pub fn finish(self, outcome: Result<(u16, Option<u16>), String>) {
        let Some(mut span) = self.span else {
            return;
        };
        match outcome {
            Ok((status, grpc)) => {
                span.set_attribute(KeyValue::new(
                    "http.response.status_code",
                    i64::from(status),
                ));
                if let Some(code) = grpc {
                    span.set_attribute(KeyValue::new("rpc.grpc.status_code", i64::from(code)));
                }
                if status >= 500 || grpc == Some(14) {
                    span.set_status(Status::error(""));
                }
            }
            Err(reason) => span.set_status(Status::error(reason)),
        }
        span.end();
    }
}

/// The caller's span context from `traceparent` (or B3 when enabled).
pub fn extract(headers: &HeaderMap, b3: bool) -> Option<SpanContext> {
    let state = headers
        .get(TRACESTATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| TraceState::from_str(v).ok())
        .unwrap_or_default();
    if let Some(parent) = headers.get(TRACEPARENT).and_then(|v| v.to_str().ok())
        && let Some((trace, span, flags)) = parse_traceparent(parent)
    {
        return Some(SpanContext::new(trace, span, flags, true, state));
    }
    if b3 {
        return parse_b3(headers)
            .map(|(t, s, f)| SpanContext::new(t, s, f, true, TraceState::default()));
    }
    None
}

/// `00-<32 hex>-<16 hex>-<2 hex>`; ids of all zeros and version `ff` are invalid. Later
/// versions are read by their first four fields, as the spec asks.
pub fn parse_traceparent(value: &str) -> Option<(TraceId, SpanId, TraceFlags)> {
    let mut parts = value.trim().split('-');
    let version = parts.next()?;
    let trace = parts.next()?;
    let span = parts.next()?;
    let flags = parts.next()?;
    if version.len() != 2 || version == "ff" || !is_hex(version) {
        return None;
    }
    if version == "00" && parts.next().is_some() {
        return None;
    }
    if trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
        return None;
    }
    if !is_hex(trace) || !is_hex(span) || !is_hex(flags) {
        return None;
    }
    let trace = TraceId::from_hex(trace).ok()?;
    let span = SpanId::from_hex(span).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    (trace != TraceId::INVALID && span != SpanId::INVALID).then_some((
        trace,
        span,
        TraceFlags::new(flags & 1),
    ))
}

fn is_hex(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// B3, single header (`b3: trace-span-sampled`) or multi (`x-b3-traceid` ...).
fn parse_b3(headers: &HeaderMap) -> Option<(TraceId, SpanId, TraceFlags)> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (trace, span, sampled) = match text("b3") {
        Some(single) => {
            let mut parts = single.split('-');
            (parts.next()?, parts.next()?, parts.next())
        }
        None => (
            text("x-b3-traceid")?,
            text("x-b3-spanid")?,
            text("x-b3-sampled"),
        ),
    };
    if !(trace.len() == 16 || trace.len() == 32)
        || span.len() != 16
        || !is_hex(trace)
        || !is_hex(span)
    {
        return None;
    }
    let trace = TraceId::from_hex(&format!("{trace:0>32}")).ok()?;
    let span = SpanId::from_hex(span).ok()?;
    let flags = match sampled {
        Some("1") | Some("d") | Some("true") => TraceFlags::SAMPLED,
        _ => TraceFlags::default(),
    };
    (trace != TraceId::INVALID && span != SpanId::INVALID).then_some((trace, span, flags))
}

/// Writes `traceparent` for `span` and keeps the caller's `tracestate`.
fn inject(span: &SpanContext, headers: &mut HeaderMap) {
    if !span.is_valid() {
        return;
    }
    let value = format!(
        "00-{}-{}-{:02x}",
        span.trace_id(),
        span.span_id(),
        span.trace_flags().to_u8()
    );
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(TRACEPARENT, value);
    }
    for name in [
        "b3",
        "x-b3-traceid",
        "x-b3-spanid",
        "x-b3-sampled",
        "x-b3-parentspanid",
    ] {
        headers.remove(name);
    }
}

/// A span processor with a bounded queue: ending a span never waits for the collector.
#[derive(Debug)]
struct Bounded {
    queue: mpsc::Sender<SpanData>,
}

impl Bounded {
    fn start(exporter: opentelemetry_otlp::SpanExporter, capacity: usize) -> Self {
        let (queue, mut spans) = mpsc::channel::<SpanData>(capacity);
        // The batch being gathered counts against the bound too.
        let batch_size = capacity.min(BATCH);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(batch_size);
            loop {
                let wait = tokio::time::timeout(FLUSH_EVERY, spans.recv()).await;
                match wait {
                    Ok(Some(span)) => {
                        batch.push(span);
                        if batch.len() < batch_size {
                            continue;
                        }
                    }
                    Ok(None) => {
                        if !batch.is_empty() {
                            export(&exporter, std::mem::take(&mut batch)).await;
                        }
                        return;
                    }
                    Err(_) if batch.is_empty() => continue,
                    Err(_) => {}
                }
                export(&exporter, std::mem::take(&mut batch)).await;
            }
        });
        Bounded { queue }
    }
}

async fn export(exporter: &opentelemetry_otlp::SpanExporter, batch: Vec<SpanData>) {
    let n = batch.len();
    match exporter.export(batch).await {
        Ok(()) => metrics::trace_spans("exported", n),
        Err(e) => {
            metrics::trace_spans("failed", n);
            tracing::debug!(error = %e, spans = n, "span export failed");
        }
    }
}

impl SpanProcessor for Bounded {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        if self.queue.try_send(span).is_err() {
            metrics::trace_spans("dropped", 1);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_read_strictly() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let (trace, span, flags) = parse_traceparent(good).expect("valid");
        assert_eq!(trace.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(span.to_string(), "00f067aa0ba902b7");
        assert!(flags.is_sampled());
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "garbage",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
        // A later version may carry more fields.
        assert!(
            parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-more")
                .is_some()
        );
    }

    #[test]
    fn b3_single_and_multi_are_read() {
        let mut h = HeaderMap::new();
        h.insert(
            "b3",
            HeaderValue::from_static("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"),
        );
        let (trace, span, flags) = parse_b3(&h).expect("single");
        assert_eq!(trace.to_string(), "80f198ee56343ba864fe8b2a57d3eff7");
        assert_eq!(span.to_string(), "e457b5a2e4d86bd1");
        assert!(flags.is_sampled());
        let mut h = HeaderMap::new();
        h.insert("x-b3-traceid", HeaderValue::from_static("64fe8b2a57d3eff7"));
        h.insert("x-b3-spanid", HeaderValue::from_static("e457b5a2e4d86bd1"));
        let (trace, _, flags) = parse_b3(&h).expect("multi");
        assert_eq!(trace.to_string(), "000000000000000064fe8b2a57d3eff7");
        assert!(!flags.is_sampled());
    }
}
