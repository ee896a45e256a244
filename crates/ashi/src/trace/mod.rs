//! Distributed tracing of ashi's own work: a server span per RPC that continues the caller's
//! W3C trace (the gateway's upstream attempt), and child spans for each database statement
//! and object-store call, exported over OTLP/gRPC.
//!
//! ashi keeps its own tracer provider instead of a global one or a `tracing` subscriber
//! layer: it may run in-process beside the gateway, which has a provider (and a
//! `tracing` subscriber) of its own. The RPC span travels with the call's future as the
//! current OpenTelemetry context (`rpc.rs`), so the store and the object store find their
//! parent without it being threaded through every signature.

mod rpc;

pub use rpc::{RpcCall, RpcSpans, TracedRpc};

use std::future::Future;
use std::time::Duration;

use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider, Span,
};

/// Where ashi's spans go and how many traces it starts. Tracing is off without one.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceConfig {
    /// The OTLP/gRPC collector, e.g. `http://otel-collector:4317`.
    pub otlp_endpoint: String,
    /// Share of new traces recorded, 0 to 1. A caller's decision (the gateway's sampled
    /// flag) is always followed, so one trace is recorded whole or not at all.
    pub sampling: f64,
    /// `service.name` of the spans.
    pub service_name: String,
    /// Bound on one export, so a hung collector cannot hold spans forever.
    pub export_timeout: Duration,
    /// Finished spans waiting for export; beyond it spans are dropped, never waited for.
    pub max_queue: usize,
}

/// Default `service.name`.
pub const DEFAULT_SERVICE_NAME: &str = "ashi";

impl TraceConfig {
    /// Every new trace recorded, exported to `otlp_endpoint`.
    pub fn new(otlp_endpoint: impl Into<String>) -> Self {
        TraceConfig {
            otlp_endpoint: otlp_endpoint.into(),
            sampling: 1.0,
            service_name: DEFAULT_SERVICE_NAME.to_owned(),
            export_timeout: Duration::from_secs(3),
            max_queue: 4096,
        }
    }
}

/// The exporter of a running server; shut down (flushing what is queued) when ashi stops.
pub struct Exporter {
    provider: SdkTracerProvider,
}

impl Exporter {
    /// Sends what is still queued, within the export timeout. The SDK's shutdown blocks, so
    /// it runs off the async workers.
    pub async fn shutdown(self) {
        let provider = self.provider;
        let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(e)) = done {
            tracing::debug!(error = %e, "trace exporter shutdown");
        }
    }
}

/// Starts the exporter for `config` and returns the tracer the server's parts share. Needs a
/// Tokio runtime (the gRPC exporter's connection lives on it).
pub fn start(config: &TraceConfig) -> Result<(Exporter, Tracer), String> {
    if !(0.0..=1.0).contains(&config.sampling) {
        return Err(format!(
            "trace sampling {} is not between 0 and 1",
            config.sampling
        ));
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(config.otlp_endpoint.clone())
        .with_timeout(config.export_timeout)
        .build()
        .map_err(|e| format!("OTLP exporter for {}: {e}", config.otlp_endpoint))?;
    // A bounded queue drained by the processor's own thread: ending a span only tries to
    // enqueue it, so a slow or absent collector costs dropped spans, not request time.
    let batches = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(config.max_queue.max(1))
                .with_max_export_batch_size(512)
                .with_scheduled_delay(Duration::from_secs(1))
                .build(),
        )
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(batches)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            config.sampling,
        ))))
        .with_resource(
            Resource::builder()
                .with_service_name(config.service_name.clone())
                .build(),
        )
        .build();
    let tracer = Tracer(Some(provider.tracer("ashi")));
    Ok((Exporter { provider }, tracer))
}

/// ashi's tracer, or none when tracing is off: then every helper here is a plain pass-through.
#[derive(Clone, Debug, Default)]
pub struct Tracer(Option<SdkTracer>);

impl Tracer {
    /// Tracing off.
    pub fn off() -> Self {
        Tracer(None)
    }

    /// Starts a client span under the current context's span, when that span is recorded.
    /// `describe` (name and attributes) runs only then: work outside a recorded RPC (start-up,
    /// unsampled calls) gets no span and costs one context look-up.
    pub(crate) fn child(&self, describe: impl FnOnce() -> (String, Vec<KeyValue>)) -> Option<Span> {
        let tracer = self.0.as_ref()?;
        if !Context::map_current(|cx| cx.span().span_context().is_sampled()) {
            return None;
        }
        let (name, attributes) = describe();
        Some(
            tracer
                .span_builder(name)
                .with_kind(SpanKind::Client)
                .with_attributes(attributes)
                .start_with_context(tracer, &Context::current()),
        )
    }

    /// Runs `work` in a child span (see [`Tracer::child`]), marked as an error if it fails.
    pub(crate) async fn run<T, E: std::fmt::Display>(
        &self,
        describe: impl FnOnce() -> (String, Vec<KeyValue>),
        work: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let span = self.child(describe);
        let result = work.await;
        end(span, &result);
        result
    }

    fn sdk(&self) -> Option<&SdkTracer> {
        self.0.as_ref()
    }
}

/// Ends a span from [`Tracer::child`] with the outcome of its work.
pub(crate) fn end<T, E: std::fmt::Display>(span: Option<Span>, result: &Result<T, E>) {
    if let Some(mut span) = span {
        if let Err(e) = result {
            span.set_status(Status::error(e.to_string()));
        }
        span.end();
    }
}
