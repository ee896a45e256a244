//! The demo site behind the gateway: the browser page from `web/` (compiled into the
//! binary, so `up` needs no Node) and the demo account's sign-in, which answers with a token
//! from the demo identity. The gateway routes `/` here; everything else the page does goes
//! to ashi over gRPC-Web.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::identity::Identity;
use crate::listener::Bounds;

/// The demo account the page signs in with.
pub const DEMO_USER: &str = "demo";
/// Its password; the sign-in page shows it, since it guards nothing.
pub const DEMO_PASSWORD: &str = "demo";

/// One file of the page.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../../../../web/index.html"),
    },
    Asset {
        path: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../../web/app.js"),
    },
    Asset {
        path: "/grpc-web.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../../web/grpc-web.js"),
    },
    Asset {
        path: "/feet.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../../web/feet.js"),
    },
    Asset {
        path: "/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../../../web/style.css"),
    },
];

/// The page's scripts and styles come from this origin only.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'";

/// Largest sign-in body read.
const MAX_SIGN_IN_BYTES: usize = 4096;

#[derive(Deserialize)]
struct SignIn {
    username: String,
    password: String,
}

/// Serves the site on `listener` until `stop` turns true, its connections bounded as the
/// gateway's own are (`listener::Bounds::internal`).
pub async fn serve(listener: TcpListener, identity: Arc<Identity>, stop: watch::Receiver<bool>) {
    serve_within(listener, identity, stop, Bounds::internal()).await;
}

/// [`serve`] within other bounds (tests use short ones).
async fn serve_within(
    listener: TcpListener,
    identity: Arc<Identity>,
    mut stop: watch::Receiver<bool>,
    bounds: Bounds,
) {
    let service = service_fn(move |request| {
        let identity = identity.clone();
        async move { Ok::<_, Infallible>(answer(request, &identity).await) }
    });
    let stopped = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    crate::listener::serve_internal(listener, "site", bounds, service, stopped).await;
}

async fn answer(request: Request<Incoming>, identity: &Identity) -> Response<Full<Bytes>> {
    match (request.method(), request.uri().path()) {
        (&Method::POST, "/auth/sign-in") => sign_in(request, identity).await,
        (&Method::GET | &Method::HEAD, path) => match ASSETS.iter().find(|a| a.path == path) {
            Some(asset) => Response::builder()
                .header(header::CONTENT_TYPE, asset.content_type)
                .header(header::CACHE_CONTROL, "no-cache")
                .header(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY)
                .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
                .body(Full::new(Bytes::from_static(asset.body.as_bytes())))
                .unwrap_or_default(),
            None => json(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "not found"}),
            ),
        },
        _ => json(
            StatusCode::METHOD_NOT_ALLOWED,
            serde_json::json!({"error": "method not allowed"}),
        ),
    }
}

/// Checks the demo account's password and answers with a token for it.
async fn sign_in(request: Request<Incoming>, identity: &Identity) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    // A sign-in that stops sending its body is cut off by the request body idle timeout.
    let body = crate::listener::idle::limit(
        body,
        crate::listener::idle::BodyIdleTimeout::of(&parts.extensions),
    );
    let body = match Limited::new(body, MAX_SIGN_IN_BYTES).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) if crate::listener::idle::BodyIdle::find(&*e).is_some() => {
            return json(
                StatusCode::REQUEST_TIMEOUT,
                serde_json::json!({"error": "sign-in body not received in time"}),
            );
        }
        Err(_) => {
            return json(
                StatusCode::PAYLOAD_TOO_LARGE,
                serde_json::json!({"error": "sign-in body too large"}),
            );
        }
    };
    let Ok(form) = serde_json::from_slice::<SignIn>(&body) else {
        return json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "expected {\"username\": ..., \"password\": ...}"}),
        );
    };
    if form.username != DEMO_USER || form.password != DEMO_PASSWORD {
        return json(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"error": "unknown user or wrong password"}),
        );
    }
    match identity.token(DEMO_USER, "Demo user") {
        Ok(token) => json(
            StatusCode::OK,
            serde_json::json!({"token": token, "user_id": DEMO_USER}),
        ),
        Err(e) => {
            tracing::error!(error = %e, "demo site: cannot sign a token");
            json(
                StatusCode::INTERNAL_SERVER_ERROR,
                serde_json::json!({"error": "cannot sign a token"}),
            )
        }
    }
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(Bytes::from(value.to_string())))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// A site with short bounds, and the directory its identity lives in.
    async fn site(bounds: Bounds) -> (std::net::SocketAddr, watch::Sender<bool>, PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "sekisho-site-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let identity = Arc::new(Identity::load_or_create(&dir).expect("identity"));
        let socket = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = socket.local_addr().expect("addr");
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(serve_within(socket, identity, stopped, bounds));
        (addr, stop, dir)
    }

    use std::path::PathBuf;

    /// Reads until the site closes the connection; what it sent, and how long it took.
    async fn until_closed(stream: &mut TcpStream) -> (String, Duration) {
        let started = Instant::now();
        let mut seen = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut seen)).await;
        (
            String::from_utf8_lossy(&seen).into_owned(),
            started.elapsed(),
        )
    }

    #[tokio::test]
    async fn a_slow_request_head_is_closed_after_the_header_read_timeout() {
        let bounds = Bounds {
            header_read_timeout: Some(Duration::from_millis(500)),
            ..Bounds::internal()
        };
        let (addr, _stop, dir) = site(bounds).await;
        let mut slow = TcpStream::connect(addr).await.expect("connect");
        slow.write_all(b"GET / HTTP/1.1\r\nhost: site\r\n")
            .await
            .expect("part of a head");
        let (_, waited) = until_closed(&mut slow).await;
        assert!(waited < Duration::from_secs(3), "closed after {waited:?}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_partial_preface_is_closed_after_the_handshake_timeout() {
        let bounds = Bounds {
            handshake_timeout: Duration::from_millis(500),
            ..Bounds::internal()
        };
        let (addr, _stop, dir) = site(bounds).await;
        let mut silent = TcpStream::connect(addr).await.expect("connect");
        silent.write_all(b"PRI").await.expect("part of a preface");
        let (_, waited) = until_closed(&mut silent).await;
        assert!(waited < Duration::from_secs(3), "closed after {waited:?}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_sign_in_body_that_stops_is_answered_408() {
        let bounds = Bounds {
            request_body_idle_timeout: Some(Duration::from_millis(500)),
            ..Bounds::internal()
        };
        let (addr, _stop, dir) = site(bounds).await;
        let mut slow = TcpStream::connect(addr).await.expect("connect");
        slow.write_all(
            b"POST /auth/sign-in HTTP/1.1\r\nhost: site\r\ncontent-length: 40\r\n\r\n{\"user",
        )
        .await
        .expect("part of a body");
        let (answer, waited) = until_closed(&mut slow).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(waited < Duration::from_secs(3), "answered after {waited:?}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
