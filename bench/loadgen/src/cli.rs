//! Command-line arguments.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Load generator and report writer for sekisho's benchmarks.
#[derive(Parser)]
#[command(name = "loadgen", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Drive load at a target and print one JSON object of results on stdout.
    Run(RunArgs),
    /// Wait until the target answers one request of the mode, then exit 0 (1 on timeout).
    Probe(ProbeArgs),
    /// Wait until the machine is quiet (other work would disturb a measurement); exit 0 once
    /// it is, 1 if it stays busy.
    Quiet(QuietArgs),
    /// Turn the JSON lines of a benchmark run into Markdown tables and a PNG chart.
    Report(ReportArgs),
    /// Receive OTLP/gRPC span exports, count the spans and drop them, until SIGTERM.
    OtlpSink(SinkArgs),
}

/// What kind of traffic to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// gRPC `UnaryCall` with a `--size` byte payload each way.
    GrpcUnary,
    /// gRPC `StreamingOutputCall`: `--stream-messages` responses of `--size` bytes per call.
    GrpcStream,
    /// gRPC `FullDuplexCall` as a ping-pong: `--stream-messages` requests of `--size` bytes
    /// per call, each sent only after the echo of the one before arrived.
    GrpcBidi,
    /// gRPC-Web `UnaryCall` (binary) with a `--size` byte payload each way, over HTTP/1.1
    /// keep-alive; one connection per worker.
    GrpcWebUnary,
    /// HTTP/1.1 keep-alive GET of `--path`; one connection per worker.
    H1Get,
    /// The `grpc-unary` call as REST: an HTTP/1.1 keep-alive POST of its JSON form to
    /// `--path` (a route that transcodes to `UnaryCall`); one connection per worker.
    RestUnary,
    /// A new TLS connection per request carrying one HTTP/1.1 GET.
    TlsHandshake,
    /// Open `--idle-connections`, one request each, then hold them idle for `--hold`.
    Idle,
}

impl Mode {
    /// The name used on the command line and in the JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Mode::GrpcUnary => "grpc-unary",
            Mode::GrpcStream => "grpc-stream",
            Mode::GrpcBidi => "grpc-bidi",
            Mode::GrpcWebUnary => "grpc-web-unary",
            Mode::H1Get => "h1-get",
            Mode::RestUnary => "rest-unary",
            Mode::TlsHandshake => "tls-handshake",
            Mode::Idle => "idle",
        }
    }
}

/// The protocol of the idle connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum IdleProto {
    /// HTTP/1.1 keep-alive, one GET each.
    H1,
    /// HTTP/2 prior knowledge (h2c), one gRPC `EmptyCall` each.
    H2,
}

/// Where and what to send; shared by `run` and `probe`.
#[derive(Args, Clone)]
pub struct TargetArgs {
    /// Traffic to send.
    #[arg(long, value_enum)]
    pub mode: Mode,
    /// `http://HOST:PORT` (h2c or HTTP/1.1) or `https://HOST:PORT` for tls-handshake.
    #[arg(long)]
    pub target: String,
    /// PEM file of the CA to trust for tls-handshake.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// TLS server name (SNI and certificate check); defaults to the target's host.
    #[arg(long)]
    pub server_name: Option<String>,
    /// Path of HTTP GETs.
    #[arg(long, default_value = "/bench")]
    pub path: String,
    /// Payload bytes per gRPC message (request and response).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Responses per server-streaming call; messages each way per grpc-bidi call.
    #[arg(long, default_value_t = 100)]
    pub stream_messages: usize,
    /// How long a grpc-bidi call waits for each echo before it closes its side to tell a
    /// proxy that holds messages back from one that loses them.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    pub echo_wait: Duration,
    /// Protocol of idle connections.
    #[arg(long, value_enum, default_value = "h2")]
    pub idle_proto: IdleProto,
    /// Give up on one request (or one stream) after this long; counted as a `timeout` error.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub timeout: Duration,
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Measured time, after the warm-up.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub duration: Duration,
    /// Time under load before measuring starts (connections and pools warm up).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub warmup: Duration,
    /// HTTP/2 connections shared by the gRPC workers (HTTP/1.1 uses one per worker).
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Workers; each has at most one request in flight. For idle: connections opened at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Requests per second for an open-loop run; without it each worker sends back to back.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Connections the idle mode opens.
    #[arg(long, default_value_t = 10_000)]
    pub idle_connections: usize,
    /// How long the idle mode holds its connections open.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub hold: Duration,
    /// Process whose CPU time and memory (with all its descendants) are reported; repeatable.
    #[arg(long)]
    pub watch_pid: Vec<u32>,
    /// The backend's processes (the backend, and an OTLP sink beside it), whose CPU time is
    /// reported beside the generator's own: with both on one CPU, their sum shows whether
    /// that CPU, not the proxy, was the limit. Repeatable.
    #[arg(long)]
    pub backend_pid: Vec<u32>,
    /// Exit with status 3 (after printing the results) when other processes used more than
    /// this share of one CPU during the measured window, so a script can measure again.
    #[arg(long)]
    pub max_other: Option<f64>,
    /// `KEY=VALUE` copied into the output's `tags`, to label runs for the report; repeatable.
    #[arg(long)]
    pub tag: Vec<String>,
}

#[derive(Args)]
pub struct QuietArgs {
    /// Busy share of one CPU, summed over the whole machine, that counts as quiet.
    #[arg(long, default_value_t = 0.15)]
    pub below: f64,
    /// How long to wait for a quiet second.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub wait: Duration,
}

#[derive(Args)]
pub struct SinkArgs {
    /// Address to receive exports on.
    #[arg(long, default_value = "127.0.0.1:4317")]
    pub listen: std::net::SocketAddr,
}

#[derive(Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// How long to keep trying.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "15s")]
    pub wait: Duration,
}

#[derive(Args)]
pub struct ReportArgs {
    /// JSON lines written by `loadgen run`.
    #[arg(long)]
    pub input: PathBuf,
    /// Markdown file to write; repeatable.
    #[arg(long)]
    pub markdown: Vec<PathBuf>,
    /// PNG chart to write.
    #[arg(long)]
    pub png: Option<PathBuf>,
    /// TrueType font for the chart's text.
    #[arg(
        long,
        default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    )]
    pub font: PathBuf,
    /// `KEY=VALUE` lines for the report's header (versions, pinning, date); repeatable.
    #[arg(long)]
    pub meta: Vec<String>,
}

/// Splits `KEY=VALUE`.
pub fn key_value(pair: &str) -> Result<(&str, &str), String> {
    pair.split_once('=')
        .filter(|(key, _)| !key.is_empty())
        .ok_or_else(|| format!("expected KEY=VALUE, got {pair:?}"))
}
