//! One port that serves both backends, as a real gRPC service with a REST face does:
//! requests with a gRPC content type go to `TestService`, everything else to the echo.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use http::HeaderValue;
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::service::{Service, service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::grpc::Frontend;
use crate::{ServerHandle, accept_loop};

type AnyBody = UnsyncBoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// Serves gRPC and the HTTP echo as `name` on `listener` (HTTP/1.1 and h2c).
pub fn serve_mixed_on(listener: TcpListener, name: &str) -> io::Result<(SocketAddr, ServerHandle)> {
    let addr = listener.local_addr()?;
    let frontend = Frontend::new(name)?;
    let name_header =
        HeaderValue::from_str(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let name = name.to_owned();
    let task = tokio::spawn(accept_loop(listener, move |stream| {
        let frontend = frontend.clone();
        let name = name.clone();
        let name_header = name_header.clone();
        let peer = stream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        async move {
            let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let frontend = frontend.clone();
                let name = name.clone();
                let name_header = name_header.clone();
                let peer = peer.clone();
                async move {
                    let grpc = request
                        .headers()
                        .get(http::header::CONTENT_TYPE)
                        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
                    let response: http::Response<AnyBody> = if grpc {
                        let response = frontend.call(request).await?;
                        response.map(|b| b.map_err(Into::into).boxed_unsync())
                    } else {
                        let response =
                            crate::http::answer(request, &name, &peer, name_header).await;
                        response.map(|b| b.map_err(|never| match never {}).boxed_unsync())
                    };
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
    }));
    Ok((addr, ServerHandle::new(addr, task)))
}
