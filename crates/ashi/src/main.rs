//! `ashi`: runs the foot-measurement platform.

use ashi::config::{ObjectsConfig, S3Config};
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The foot-measurement platform: scans, measurements, JIS S 5037 sizing and shoe
/// recommendations over gRPC. Every setting of `ashi serve` is a flag and an `ASHI_*`
/// environment variable (see `ashi serve --help`); `ASHI_LOG` sets the log filter (default
/// `info`).
#[derive(Parser)]
#[command(name = "ashi", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gRPC API and the signed object URLs until SIGINT or SIGTERM.
    Serve(ServeArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Address of the gRPC (h2c) listener.
    #[arg(long, env = "ASHI_GRPC_LISTEN", default_value = "127.0.0.1:50051")]
    grpc_listen: SocketAddr,
    /// Address of the HTTP listener serving signed object URLs of the local store.
    #[arg(long, env = "ASHI_HTTP_LISTEN", default_value = "127.0.0.1:50052")]
    http_listen: SocketAddr,
    /// Directory for the SQLite database and local scans.
    #[arg(long, env = "ASHI_DATA_DIR", default_value = ".ashi")]
    data_dir: PathBuf,
    /// Database URL; `postgres://user:pass@host/db` for PostgreSQL. Default: SQLite in the
    /// data directory.
    #[arg(long, env = "ASHI_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Base URL clients reach the HTTP listener at, for local signed URLs. Default:
    /// http://<http-listen>.
    #[arg(long, env = "ASHI_PUBLIC_URL")]
    public_url: Option<String>,
    /// Key for signing local object URLs. Default: a random key per start.
    #[arg(long, env = "ASHI_SIGNING_KEY", hide_env_values = true)]
    signing_key: Option<String>,
    /// How long upload URLs stay valid, e.g. 15m, 1h.
    #[arg(long, env = "ASHI_UPLOAD_EXPIRY", default_value = "15m", value_parser = humantime::parse_duration)]
    upload_expiry: Duration,
    /// Largest scan an upload URL is issued for, bytes.
    #[arg(long, env = "ASHI_MAX_UPLOAD_BYTES", default_value_t = ashi::config::DEFAULT_MAX_UPLOAD_BYTES)]
    max_upload_bytes: u64,
    /// Toe tips within this distance count as level (toe shape), mm.
    #[arg(long, env = "ASHI_TOE_TOLERANCE_MM", default_value_t = ashi::sizing::toe::DEFAULT_TOLERANCE_MM)]
    toe_tolerance_mm: f64,
    /// Load the demo shoe catalog on start.
    #[arg(long, env = "ASHI_DEMO")]
    demo: bool,
    /// Serve calls that carry no caller identity (neither x-user-id nor x-ashi-service) as
    /// this service, with access to every user's data. Only for in-cluster callers that cannot
    /// go through the gateway: anyone reaching the gRPC port gets that access. Default: such
    /// calls are refused.
    #[arg(long, env = "ASHI_ANONYMOUS_SERVICE", value_parser = identity)]
    anonymous_service: Option<String>,
    #[command(flatten)]
    s3: S3Args,
    #[command(flatten)]
    trace: TraceArgs,
}

/// Export spans of each RPC and its database and object-store calls over OTLP/gRPC.
#[derive(Args)]
struct TraceArgs {
    /// OTLP/gRPC collector, e.g. http://127.0.0.1:4317. Tracing is off without it.
    #[arg(long, env = "ASHI_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    /// Share of new traces recorded, 0 to 1; a caller's sampled flag is always followed.
    #[arg(long, env = "ASHI_TRACE_SAMPLING", default_value_t = 1.0, value_parser = sampling)]
    trace_sampling: f64,
    /// `service.name` of the spans.
    #[arg(long, env = "ASHI_TRACE_SERVICE_NAME", default_value = ashi::trace::DEFAULT_SERVICE_NAME)]
    trace_service_name: String,
}

fn identity(text: &str) -> Result<String, String> {
    ashi::service::caller::check_identity(text)
        .map(|()| text.to_owned())
        .map_err(|problem| format!("the name {problem}"))
}

fn sampling(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        _ => Err(format!("{text:?} is not a number from 0 to 1")),
    }
}

/// Keep scans in an S3-compatible bucket instead of the data directory.
#[derive(Args)]
struct S3Args {
    /// S3 endpoint, e.g. http://127.0.0.1:9000. Setting it switches scans to S3.
    #[arg(long, env = "ASHI_S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    #[arg(long, env = "ASHI_S3_BUCKET", default_value = "ashi-scans")]
    s3_bucket: String,
    #[arg(long, env = "ASHI_S3_REGION", default_value = "us-east-1")]
    s3_region: String,
    #[arg(long, env = "ASHI_S3_ACCESS_KEY", default_value = "")]
    s3_access_key: String,
    #[arg(
        long,
        env = "ASHI_S3_SECRET_KEY",
        default_value = "",
        hide_env_values = true
    )]
    s3_secret_key: String,
}

impl ServeArgs {
    fn config(self) -> ashi::Config {
        let mut config = ashi::Config::local(&self.data_dir);
        if let Some(url) = self.database_url {
            config.database_url = url;
        }
        if let Some(endpoint) = self.s3.s3_endpoint {
            config.objects = ObjectsConfig::S3(S3Config {
                endpoint,
                bucket: self.s3.s3_bucket,
                region: self.s3.s3_region,
                access_key_id: self.s3.s3_access_key,
                secret_access_key: self.s3.s3_secret_key,
            });
        }
        config.public_url = self.public_url;
        config.signing_key = self.signing_key.map(String::into_bytes);
        config.upload_expiry = self.upload_expiry;
        config.max_upload_bytes = self.max_upload_bytes;
        config.toe_tolerance_mm = self.toe_tolerance_mm;
        config.demo_catalog = self.demo;
        config.anonymous_service = self.anonymous_service;
        config.tracing = self.trace.otlp_endpoint.map(|endpoint| ashi::TraceConfig {
            sampling: self.trace.trace_sampling,
            service_name: self.trace.trace_service_name,
            ..ashi::TraceConfig::new(endpoint)
        });
        config
    }
}

/// Installs the SIGINT and SIGTERM handlers now, before anything is served, so that a signal
/// arriving at any moment after start is a graceful shutdown; the returned future completes on
/// the first of them.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ASHI_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let Command::Serve(args) = Cli::parse().command;
    let (grpc_addr, http_addr) = (args.grpc_listen, args.http_listen);
    let config = args.config();
    let bind = |addr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))
    };
    let result = async {
        let grpc = bind(grpc_addr).await?;
        let http = bind(http_addr).await?;
        let shutdown = shutdown_signal().map_err(|e| format!("signal handlers: {e}"))?;
        ashi::serve(config, grpc, http, shutdown)
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ashi: {e}");
            ExitCode::FAILURE
        }
    }
}
