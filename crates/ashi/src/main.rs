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
    /// How the log on stdout is written: `text` for people (coloured only on a terminal),
    /// `json` for log collectors (one JSON object per line).
    #[arg(
        long,
        global = true,
        env = "ASHI_LOG_FORMAT",
        value_enum,
        default_value_t
    )]
    log_format: LogFormat,
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
    #[command(flatten)]
    connections: ConnectionArgs,
}

/// Bounds on client connections, for each of the two servers (`ashi::config::ConnectionBounds`;
/// defaults are the gateway's edge defaults). Durations take units, e.g. 10s, 5m; `0s` turns
/// off a timeout that says so.
#[derive(Args)]
struct ConnectionArgs {
    /// Connections open at once per server; more are closed as soon as accepted.
    #[arg(long, env = "ASHI_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// Time from accept for a connection's first bytes (the HTTP/2 preface on the gRPC side).
    #[arg(long, env = "ASHI_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = positive_duration)]
    handshake_timeout: Duration,
    /// Time for each HTTP/1.1 request head on the HTTP side (0s: no limit).
    #[arg(long, env = "ASHI_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    header_read_timeout: Duration,
    /// A connection with no request in flight this long is closed, HTTP/2 with a GOAWAY
    /// (0s: never).
    #[arg(long, env = "ASHI_IDLE_TIMEOUT", default_value = "5m", value_parser = humantime::parse_duration)]
    idle_timeout: Duration,
    /// HTTP/2 PINGs this often, to notice a peer that vanished (0s: no PINGs).
    #[arg(long, env = "ASHI_KEEP_ALIVE_INTERVAL", default_value = "60s", value_parser = humantime::parse_duration)]
    keep_alive_interval: Duration,
    /// A PING unanswered this long closes the connection.
    #[arg(long, env = "ASHI_KEEP_ALIVE_TIMEOUT", default_value = "20s", value_parser = positive_duration)]
    keep_alive_timeout: Duration,
    /// An upload body silent this long is answered 408 and not stored (0s: no limit).
    #[arg(long, env = "ASHI_REQUEST_BODY_IDLE_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    request_body_idle_timeout: Duration,
}

impl ConnectionArgs {
    fn bounds(self) -> ashi::config::ConnectionBounds {
        ashi::config::ConnectionBounds {
            max_connections: self.max_connections as usize,
            handshake_timeout: self.handshake_timeout,
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            keep_alive_interval: self.keep_alive_interval,
            keep_alive_timeout: self.keep_alive_timeout,
            request_body_idle_timeout: self.request_body_idle_timeout,
        }
    }
}

fn positive_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("must be more than 0s".into()),
        Err(e) => Err(e.to_string()),
    }
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
        config.connections = self.connections.bounds();
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

/// The shape of the log. Containers and log shippers read JSON; people read text.
#[derive(Clone, Copy, Default, clap::ValueEnum)]
enum LogFormat {
    /// One line per event for people; ANSI colours only when stdout is a terminal and
    /// `NO_COLOR` is unset, so files and container logs stay plain.
    #[default]
    Text,
    /// One flat JSON object per line: `timestamp`, `level`, `target`, `message` and the
    /// event's fields at the top level.
    Json,
}

/// Installs the log on stdout, filtered by `ASHI_LOG` (default `info`).
fn init_log(format: LogFormat) {
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt().with_env_filter(
        tracing_subscriber::EnvFilter::try_from_env("ASHI_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
    );
    match format {
        LogFormat::Text => {
            let colour = std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            builder.with_ansi(colour).init()
        }
        LogFormat::Json => builder
            .json()
            .with_ansi(false)
            .flatten_event(true)
            .with_span_list(false)
            .init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_log(cli.log_format);
    let Command::Serve(args) = cli.command;
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
