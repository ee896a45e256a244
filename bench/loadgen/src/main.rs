//! `loadgen`: the load generator of sekisho's benchmarks.
//!
//! `loadgen run` drives gRPC (unary, server streaming, bidirectional ping-pong), gRPC-Web unary, HTTP/1.1 keep-alive GETs, TLS
//! handshakes or idle connections at a proxy, or straight at a backend, and prints one JSON
//! object with throughput, latency percentiles, errors by kind and the watched proxy's CPU time
//! and memory. `loadgen probe` waits until a target answers, for start-up scripts.
//! `loadgen otlp-sink` receives and counts exported spans, for the tracing benchmark.
//! `loadgen report` turns the JSON lines of a whole run into Markdown tables and a PNG chart.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod grpc;
mod grpc_bidi;
mod grpc_web;
mod h1;
mod idle;
mod otlp_sink;
mod procfs;
mod report;
mod run;
mod setup;
mod stats;
mod tls;

/// Errors that end a command; each is printed once, on stderr.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Run(args) => on_runtime(run::run(args)),
        cli::Command::Probe(args) => on_runtime(run::probe(args)),
        cli::Command::Quiet(args) => run::quiet(&args),
        cli::Command::Report(args) => report::write(&args),
        cli::Command::OtlpSink(args) => on_runtime(otlp_sink::serve(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<run::Disturbed>() => {
            eprintln!("loadgen: {e}");
            ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `work` on a multi-threaded runtime sized by the CPUs this process may use, so a
/// generator pinned with `taskset` to one CPU runs one worker thread.
fn on_runtime(work: impl std::future::Future<Output = Result<(), Error>>) -> Result<(), Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(work)
}
