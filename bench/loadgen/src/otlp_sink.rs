//! `loadgen otlp-sink`: an OTLP/gRPC trace receiver that decodes each export, counts its spans
//! and drops them, so a benchmark can measure what exporting spans costs the proxy without
//! a real collector's own work on the machine.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};

use crate::Error;
use crate::cli::SinkArgs;

#[derive(Clone, Default)]
struct Counter {
    spans: Arc<AtomicU64>,
    exports: Arc<AtomicU64>,
}

#[tonic::async_trait]
impl TraceService for Counter {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans: usize = request
            .into_inner()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.spans.fetch_add(spans as u64, Ordering::Relaxed);
        self.exports.fetch_add(1, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// Serves until SIGTERM or SIGINT, then prints the totals on stderr.
pub async fn serve(args: SinkArgs) -> Result<(), Error> {
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr: SocketAddr = listener.local_addr()?;
    eprintln!("loadgen: OTLP sink on {addr}");
    let counter = Counter::default();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let stop = async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(counter.clone()))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            stop,
        )
        .await?;
    eprintln!(
        "loadgen: OTLP sink received {} spans in {} exports",
        counter.spans.load(Ordering::Relaxed),
        counter.exports.load(Ordering::Relaxed)
    );
    Ok(())
}
