//! A test backend on a fixed address: gRPC `grpc.testing.TestService` and an HTTP echo on
//! one port (HTTP/1.1 and h2c), for trying the gateway out by hand and for benchmarks.
//!
//! `interop-backend --listen 127.0.0.1:10000 --name backend`

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut listen = String::from("127.0.0.1:10000");
    let mut name = String::from("backend");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--listen", Some(value)) => listen = value,
            ("--name", Some(value)) => name = value,
            _ => {
                eprintln!("usage: interop-backend [--listen ADDR] [--name NAME]");
                return ExitCode::from(2);
            }
        }
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(&listen).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("cannot listen on {listen}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let (addr, _handle) = match interop::serve_mixed_on(listener, &name) {
            Ok(served) => served,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        eprintln!("backend {name:?} serving gRPC and HTTP on {addr}");
        let _ = tokio::signal::ctrl_c().await;
        ExitCode::SUCCESS
    })
}
