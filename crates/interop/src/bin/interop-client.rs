//! Calls `grpc.testing.TestService` through a gateway: one unary call and one server
//! stream, printing what came back (and which backend answered).
//!
//! `interop-client --target https://localhost:8443 --ca examples/certs/localhost.crt`

use std::process::ExitCode;

use interop::pb::test_service_client::TestServiceClient;
use interop::pb::{Payload, ResponseParameters, SimpleRequest, StreamingOutputCallRequest};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

fn main() -> ExitCode {
    let mut target = String::from("http://127.0.0.1:8080");
    let mut ca = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--target", Some(value)) => target = value,
            ("--ca", Some(value)) => ca = Some(value),
            _ => {
                eprintln!("usage: interop-client [--target URL] [--ca PEM_FILE]");
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
    match runtime.block_on(call(target, ca)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn call(target: String, ca: Option<String>) -> Result<(), Box<dyn std::error::Error>> {
    let mut endpoint = Channel::from_shared(target.clone())?;
    if let Some(ca) = ca {
        let pem = std::fs::read(&ca).map_err(|e| format!("{ca}: {e}"))?;
        let host = http::Uri::try_from(target.as_str())?
            .host()
            .unwrap_or("localhost")
            .to_owned();
        endpoint = endpoint.tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(pem))
                .domain_name(host),
        )?;
    }
    let mut client = TestServiceClient::new(endpoint.connect().await?);

    let response = client
        .unary_call(SimpleRequest {
            response_size: 16,
            payload: Some(Payload {
                body: b"hello sekisho".to_vec(),
                ..Default::default()
            }),
            fill_server_id: true,
            ..Default::default()
        })
        .await?;
    let backend = response
        .metadata()
        .get(interop::BACKEND_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?")
        .to_owned();
    let reply = response.into_inner();
    println!(
        "UnaryCall: {} payload bytes from backend {backend:?} (server_id {:?})",
        reply.payload.map_or(0, |p| p.body.len()),
        reply.server_id
    );

    let mut stream = client
        .streaming_output_call(StreamingOutputCallRequest {
            response_parameters: (1..=3)
                .map(|i| ResponseParameters {
                    size: i * 10,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .await?
        .into_inner();
    while let Some(message) = stream.message().await? {
        println!(
            "StreamingOutputCall: message of {} bytes",
            message.payload.map_or(0, |p| p.body.len())
        );
    }
    Ok(())
}
