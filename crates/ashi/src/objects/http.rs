//! ashi's HTTP side: serves the signed object URLs of the local store, so a client uploads to
//! a local ashi exactly as it would to S3.

use super::Objects;
use super::local::{PATH_PREFIX, Refusal};
use bytes::{Bytes, BytesMut};
use http::{Method, Request, Response, StatusCode, Version, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use std::time::{Duration, SystemTime};

/// Handles one request of the HTTP side. An upload body silent for `body_idle` (`None`: no
/// limit) is answered 408, and an HTTP/1.1 connection is then closed: the rest of that body
/// may still be on its way, so the connection cannot carry another request.
pub async fn handle(
    objects: &Objects,
    req: Request<Incoming>,
    body_idle: Option<Duration>,
) -> Response<Full<Bytes>> {
    let version = req.version();
    match route(objects, req, body_idle).await {
        Ok(response) => response,
        Err((status, message)) => {
            let mut response = text(status, message);
            if status == StatusCode::REQUEST_TIMEOUT && version <= Version::HTTP_11 {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
            }
            response
        }
    }
}

type Failure = (StatusCode, String);

/// Most memory reserved for an upload before its bytes arrive; the signed length may be far
/// more than a client ends up sending.
const FIRST_RESERVE: usize = 1024 * 1024;

/// Reads an upload body of at most `limit` bytes, each wait for more bytes bounded by `idle`.
/// Only a whole body is returned; nothing is stored before that.
async fn read_body(body: Incoming, limit: usize, idle: Option<Duration>) -> Result<Bytes, Failure> {
    let mut body = Limited::new(body, limit);
    let mut read = BytesMut::with_capacity(limit.min(FIRST_RESERVE));
    loop {
        let frame = match idle {
            Some(idle) => tokio::time::timeout(idle, body.frame())
                .await
                .map_err(|_| {
                    (
                        StatusCode::REQUEST_TIMEOUT,
                        format!(
                            "no body bytes arrived for {}; the upload was not stored",
                            humantime::format_duration(idle)
                        ),
                    )
                })?,
            None => body.frame().await,
        };
        match frame {
            None => return Ok(read.freeze()),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    read.extend_from_slice(&data);
                }
            }
            Some(Err(e)) => {
                return Err((StatusCode::BAD_REQUEST, format!("reading the body: {e}")));
            }
        }
    }
}

async fn route(
    objects: &Objects,
    req: Request<Incoming>,
    body_idle: Option<Duration>,
) -> Result<Response<Full<Bytes>>, Failure> {
    let Some(signer) = objects.local_signer() else {
        return Err((StatusCode::NOT_FOUND, "objects are kept in S3".into()));
    };
    let path = req.uri().path();
    let Some(key) = path.strip_prefix(PATH_PREFIX) else {
        return Err((StatusCode::NOT_FOUND, format!("no such path {path}")));
    };
    if !is_plain_key(key) {
        return Err((StatusCode::BAD_REQUEST, "malformed object key".into()));
    }
    let key = key.to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let header = |name: header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let refused = |r: Refusal| (StatusCode::FORBIDDEN, r.to_string());
    let now = SystemTime::now();
    match *req.method() {
        Method::PUT => {
            let content_type = header(header::CONTENT_TYPE);
            let content_length = header(header::CONTENT_LENGTH);
            signer
                .verify("PUT", &key, &query, &content_type, &content_length, now)
                .map_err(refused)?;
            let expected: usize = content_length.parse().map_err(|_| {
                (
                    StatusCode::LENGTH_REQUIRED,
                    "content-length required".into(),
                )
            })?;
            let body = read_body(req.into_body(), expected, body_idle).await?;
            if body.len() != expected {
                return Err((
                    StatusCode::BAD_REQUEST,
                    format!(
                        "body has {} bytes, content-length says {expected}",
                        body.len()
                    ),
                ));
            }
            objects
                .store()
                .put(
                    &ObjectPath::from(key.as_str()),
                    PutPayload::from_bytes(body),
                )
                .await
                .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            Ok(text(StatusCode::OK, String::new()))
        }
        Method::GET => {
            signer
                .verify("GET", &key, &query, "", "", now)
                .map_err(refused)?;
            let got = objects
                .store()
                .get(&ObjectPath::from(key.as_str()))
                .await
                .map_err(|e| match e {
                    object_store::Error::NotFound { .. } => {
                        (StatusCode::NOT_FOUND, format!("no object {key}"))
                    }
                    e => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                })?;
            let bytes = got
                .bytes()
                .await
                .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            Ok(Response::new(Full::new(bytes)))
        }
        _ => Err((
            StatusCode::METHOD_NOT_ALLOWED,
            "objects take PUT and GET".into(),
        )),
    }
}

/// Keys ashi makes hold only these characters; anything else (`..`, `%`, `\`) is refused
/// before it reaches the file system.
fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
        && key
            .split('/')
            .all(|seg| !seg.is_empty() && !seg.starts_with('.'))
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    response
}
