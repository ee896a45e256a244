//! HTTP/1.1 GETs over hyper's client connection: one keep-alive connection per worker.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::rt::{Read, Write};
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;

use crate::run::{Op, Outcome};
use crate::setup::Setup;

pub type Sender = http1::SendRequest<Full<Bytes>>;

/// Starts HTTP/1.1 on an open stream; the handle ends when the connection closes.
pub async fn handshake<T>(io: T) -> Result<(Sender, JoinHandle<()>), String>
where
    T: Read + Write + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(io)
        .await
        .map_err(|_| "handshake".to_owned())?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok((sender, driver))
}

/// Opens a cleartext HTTP/1.1 connection.
pub async fn connect(setup: &Setup) -> Result<(Sender, JoinHandle<()>), String> {
    handshake(TokioIo::new(setup.connect_tcp().await?)).await
}

/// Sends one GET (or, for `rest-unary`, one POST) and reads the whole answer. `close` asks the server to close the
/// connection after it. HTTP statuses of 400 and above are errors (`http_503`).
pub async fn get(setup: &Setup, sender: &mut Sender, close: bool) -> Result<(), String> {
    sender.ready().await.map_err(|_| "transport".to_owned())?;
    let request = if setup.mode == crate::cli::Mode::RestUnary {
        Request::post(setup.path.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(setup.rest_body.clone()))
    } else {
        Request::get(setup.path.clone()).body(Full::new(Bytes::new()))
    };
    let mut request = request.map_err(|_| "request".to_owned())?;
    request
        .headers_mut()
        .insert(header::HOST, setup.host.clone());
    if close {
        request
            .headers_mut()
            .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
    }
    let response = sender
        .send_request(request)
        .await
        .map_err(|_| "transport".to_owned())?;
    let status = response.status();
    response
        .into_body()
        .collect()
        .await
        .map_err(|_| "transport".to_owned())?;
    if status.as_u16() >= 400 {
        return Err(format!("http_{}", status.as_u16()));
    }
    Ok(())
}

/// Keep-alive GETs on the worker's own connection, reopened after a failure.
pub struct Get {
    setup: Arc<Setup>,
    sender: Option<Sender>,
}

impl Get {
    pub fn new(setup: Arc<Setup>) -> Get {
        Get {
            setup,
            sender: None,
        }
    }
}

impl Op for Get {
    async fn call(&mut self) -> Outcome {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.sender = Some(connect(&self.setup).await?.0);
        }
        let Some(sender) = self.sender.as_mut() else {
            return Err("connect".to_owned());
        };
        match get(&self.setup, sender, false).await {
            Ok(()) => Ok(1),
            Err(kind) => {
                if kind == "transport" {
                    self.sender = None;
                }
                Err(kind)
            }
        }
    }
}
