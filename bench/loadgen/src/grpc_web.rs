//! gRPC-Web `UnaryCall` in binary mode, as a browser's client sends it: an HTTP/1.1 POST with
//! the message frame as the body, and the status in a trailer frame at the end of the
//! response body. One keep-alive connection per worker.

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{Request, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use interop::pb::{Payload, SimpleRequest};
use interop::prost::Message;

use crate::run::{Op, Outcome};
use crate::setup::Setup;

const PATH: &str = "/grpc.testing.TestService/UnaryCall";

type Sender = http1::SendRequest<Full<Bytes>>;

/// Keep-alive gRPC-Web calls on the worker's own connection, reopened after a failure.
pub struct Unary {
    setup: Arc<Setup>,
    sender: Option<Sender>,
    /// The framed request, the same for every call.
    body: Bytes,
}

impl Unary {
    pub fn new(setup: Arc<Setup>) -> Unary {
        let request = SimpleRequest {
            response_size: setup.response_size,
            payload: Some(Payload {
                body: vec![b'x'; setup.size],
                ..Default::default()
            }),
            ..Default::default()
        };
        let encoded = request.encode_to_vec();
        let mut body = BytesMut::with_capacity(5 + encoded.len());
        body.put_u8(0);
        body.put_u32(encoded.len() as u32);
        body.put_slice(&encoded);
        Unary {
            setup,
            sender: None,
            body: body.freeze(),
        }
    }

    async fn connect(&self) -> Result<Sender, String> {
        let stream = TokioIo::new(self.setup.connect_tcp().await?);
        let (sender, connection) = http1::handshake(stream)
            .await
            .map_err(|_| "handshake".to_owned())?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }
}

/// One call: OK when the trailer frame says `grpc-status: 0` and the response message
/// carries the payload asked for.
async fn once(setup: &Setup, body: &Bytes, sender: &mut Sender) -> Result<(), String> {
    sender.ready().await.map_err(|_| "transport".to_owned())?;
    let request = Request::post(PATH)
        .header(header::HOST, setup.host.clone())
        .header(header::CONTENT_TYPE, "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(Full::new(body.clone()))
        .map_err(|_| "request".to_owned())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|_| "transport".to_owned())?;
    let status = response.status();
    if let Some(grpc) = response.headers().get("grpc-status") {
        // A trailers-only answer: an error before any message.
        return Err(format!("grpc_{}", grpc.to_str().unwrap_or("?")));
    }
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|_| "transport".to_owned())?
        .to_bytes();
    if status.as_u16() >= 400 {
        return Err(format!("http_{}", status.as_u16()));
    }
    check(body, setup.size)
}

/// Reads the message and trailer frames of a gRPC-Web response body.
fn check(mut body: Bytes, expect: usize) -> Result<(), String> {
    let mut payload = None;
    while body.len() >= 5 {
        let flag = body.get_u8();
        let len = body.get_u32() as usize;
        if body.len() < len {
            break;
        }
        let frame = body.split_to(len);
        if flag & 0x80 == 0 {
            payload = Some(frame.len());
            continue;
        }
        let trailers = String::from_utf8_lossy(&frame);
        let status = trailers
            .lines()
            .find_map(|l| l.strip_prefix("grpc-status:"))
            .map(str::trim);
        return match (status, payload) {
            (Some("0"), Some(len)) if len >= expect => Ok(()),
            (Some("0"), _) => Err("short_payload".to_owned()),
            (Some(code), _) => Err(format!("grpc_{code}")),
            (None, _) => Err("no_status".to_owned()),
        };
    }
    Err("no_trailers".to_owned())
}

impl Op for Unary {
    async fn call(&mut self) -> Outcome {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.sender = Some(self.connect().await?);
        }
        let Some(sender) = self.sender.as_mut() else {
            return Err("connect".to_owned());
        };
        match once(&self.setup, &self.body, sender).await {
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
