//! An HTTP echo backend: HTTP/1.1 and h2c on one port, answering every request with JSON that
//! describes what arrived, so a test can see exactly what a gateway forwarded upstream.
//!
//! The JSON body is
//! `{"backend", "method", "path" (with query), "authority", "version", "headers": {name: value}, "body_len", "peer"}`
//! with header names lowercase and repeated headers joined by `", "`; `peer` is the client's
//! address, so a caller can tell whether a proxy reused its upstream connection. Every response carries
//! `x-backend: <name>` and `server: interop-echo`; `x-delay-ms: N` delays the answer by N ms and a
//! path `/status/NNN` answers with status NNN.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

use crate::{BACKEND_HEADER, ServerHandle, accept_loop, requested_delay};

/// Value of the `server` header on every echo response (lets tests check header removal).
pub const SERVER_NAME: &str = "interop-echo";

/// Binds `127.0.0.1:0` and serves the echo backend as `name` until the handle is dropped.
pub async fn serve_http(name: &str) -> io::Result<(SocketAddr, ServerHandle)> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    serve_http_on(listener, name)
}

/// Serves the echo backend as `name` on an already bound listener.
pub fn serve_http_on(listener: TcpListener, name: &str) -> io::Result<(SocketAddr, ServerHandle)> {
    let addr = listener.local_addr()?;
    let name_header =
        HeaderValue::from_str(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let name = name.to_string();
    let task = tokio::spawn(accept_loop(listener, move |stream| {
        let name = name.clone();
        let name_header = name_header.clone();
        let peer = stream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        async move {
            let service = service_fn(move |request| {
                let name = name.clone();
                let name_header = name_header.clone();
                let peer = peer.clone();
                async move { Ok::<_, Infallible>(answer(request, &name, &peer, name_header).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
    }));
    Ok((addr, ServerHandle::new(addr, task)))
}

/// Builds the echo answer for one request.
pub(crate) async fn answer(
    request: Request<Incoming>,
    name: &str,
    peer: &str,
    name_header: HeaderValue,
) -> Response<Full<Bytes>> {
    if let Some(delay) = requested_delay(request.headers()) {
        tokio::time::sleep(delay).await;
    }
    let (parts, body) = request.into_parts();
    let body_len = match body.collect().await {
        Ok(collected) => Some(collected.to_bytes().len()),
        Err(_) => None,
    };

    let mut headers = Map::new();
    for (header, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.get_mut(header.as_str()) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            _ => {
                headers.insert(header.as_str().to_string(), Value::String(value));
            }
        }
    }
    let path = parts.uri.path_and_query().map_or_else(
        || parts.uri.path().to_string(),
        |pq| pq.as_str().to_string(),
    );
    let authority = parts
        .uri
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            parts
                .headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        });
    let status = match body_len {
        None => StatusCode::BAD_REQUEST,
        Some(_) => requested_status(parts.uri.path()).unwrap_or(StatusCode::OK),
    };
    let description = json!({
        "backend": name,
        "method": parts.method.as_str(),
        "path": path,
        "authority": authority,
        "version": format!("{:?}", parts.version),
        "headers": headers,
        "body_len": body_len,
        "peer": peer,
    });

    let mut response = Response::new(Full::new(Bytes::from(description.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(BACKEND_HEADER, name_header);
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(http::header::SERVER, HeaderValue::from_static(SERVER_NAME));
    response
}

/// The status asked for by a `/status/NNN` path.
fn requested_status(path: &str) -> Option<StatusCode> {
    let code = path.strip_prefix("/status/")?;
    code.parse::<u16>()
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
}
