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
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::identity::Identity;

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

/// Serves the site on `listener` until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    identity: Arc<Identity>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "demo site: accept failed");
                    continue;
                }
            },
            _ = stop.wait_for(|stop| *stop) => return,
        };
        let identity = identity.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let identity = identity.clone();
                async move { Ok::<_, Infallible>(answer(request, &identity).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
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
    let body = match Limited::new(request.into_body(), MAX_SIGN_IN_BYTES)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
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
