//! REST/JSON callers of gRPC services. A route with `transcode` turns a matching HTTP request
//! into a gRPC call by the `google.api.http` rules of its descriptors, and the gRPC answer
//! back into JSON. The mapping itself is the `grpc-transcode` crate; this module does the
//! I/O around it: reading the body, the upstream request head, streaming the answer.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use grpc_transcode::{
    Call, Code, FrameDecoder, HeaderRules, Options, PrintOptions, Reply, RequestStream, Status,
    StreamEncoder, Transcoder, frame,
};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, TE};
use http::request::Parts;
use http::{HeaderMap, Method, Response, StatusCode, Uri};
use http_body::{Body as HttpBody, Frame};
use http_body_util::{BodyExt, Limited};

use crate::body::{self, Body, BoxError};
use crate::proxy::headers::{GRPC_MESSAGE, GRPC_STATUS, GRPC_STATUS_DETAILS};
use crate::upstream::UpstreamBody;

use crate::config::model;

/// A route's transcoder, compiled from its descriptors.
pub struct Transcoding {
    transcoder: Transcoder,
    openapi_path: Option<String>,
    openapi: Bytes,
    max_body: usize,
    files: Vec<PathBuf>,
}

/// What a route does with one REST request.
pub enum Plan {
    /// A gRPC call to make.
    Call(Call),
    /// An answer the gateway gives itself (the OpenAPI document, or a request the rules
    /// refuse).
    Answer(Answer),
}

/// An answer of the transcoder's own.
pub struct Answer {
    /// What the caller gets.
    pub response: Response<Body>,
    /// The gRPC code it stands for.
    pub code: u16,
    /// Why the request was refused, for the access log; `None` for a success.
    pub refusal: Option<String>,
}

impl Answer {
    fn refused(response: Response<Body>, status: &Status) -> Plan {
        Plan::Answer(Answer {
            response,
            code: code_of(status),
            refusal: Some(status.message.clone()),
        })
    }
}

impl Transcoding {
    /// Loads the descriptors (a binary set, or `.proto` files compiled here) and checks
    /// every rule; `route` names the OpenAPI document.
    pub fn compile(route: &str, spec: &model::Transcode) -> Result<Self, String> {
        let mut files = Vec::new();
        let set = match (&spec.descriptors, spec.protos.is_empty()) {
            (Some(path), true) => {
                let path = PathBuf::from(&*path.value);
                let bytes = std::fs::read(&path)
                    .map_err(|e| format!("cannot read descriptors {}: {e}", path.display()))?;
                files.push(path);
                bytes
            }
            (None, false) => {
                let protos: Vec<PathBuf> = spec
                    .protos
                    .iter()
                    .map(|p| PathBuf::from(&*p.value))
                    .collect();
                let includes: Vec<PathBuf> = if spec.includes.is_empty() {
                    vec![PathBuf::from(".")]
                } else {
                    spec.includes.iter().map(|i| PathBuf::from(&**i)).collect()
                };
                let compiled = protox::Compiler::new(&includes)
                    .map_err(|e| format!("proto include paths: {e}"))?
                    .include_imports(true)
                    .open_files(&protos)
                    .map_err(|e| format!("compiling protos: {e}"))?
                    .encode_file_descriptor_set();
                files.extend(protos);
                compiled
            }
            _ => return Err("give either `descriptors` or `protos`".into()),
        };
        let headers = HeaderRules::new(spec.headers.iter().map(|h| &**h))
            .map_err(|e| format!("transcode.headers: {e}"))?;
        let options = Options {
            services: (!spec.services.is_empty())
                .then(|| spec.services.iter().map(|s| s.to_string()).collect()),
            methods: (!spec.methods.is_empty())
                .then(|| spec.methods.iter().map(|m| m.to_string()).collect()),
            ignore_unknown_query: spec.ignore_unknown_query,
            print: PrintOptions {
                emit_defaults: spec.emit_defaults,
                original_names: spec.original_names,
                enums_as_ints: spec.enums_as_ints,
            },
            stream_as_array: spec.stream_as_array,
            headers,
            ..Options::default()
        };
        let transcoder = Transcoder::new(&set, &options).map_err(|e| e.to_string())?;
        let openapi = serde_json::to_vec_pretty(&transcoder.openapi(route, "1"))
            .map_err(|e| format!("OpenAPI document: {e}"))?;
        Ok(Transcoding {
            transcoder,
            openapi_path: spec.openapi.as_ref().map(|p| p.to_string()),
            openapi: Bytes::from(openapi),
            max_body: spec.max_body_bytes,
            files,
        })
    }

    /// Files whose change should reload the config.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Decides what to do with a request: a call, or an answer of the gateway's own. One that
    /// no rule matches gets `NOT_FOUND` with its HTTP 404 here, not the gateway's generic "no
    /// route" answer, whose gRPC code (`UNIMPLEMENTED`, HTTP 501) would contradict the 404 it
    /// is sent with.
    pub fn plan(&self, parts: &Parts) -> Plan {
        let path = parts.uri.path();
        if parts.method == Method::GET && self.openapi_path.as_deref() == Some(path) {
            let mut response = Response::new(body::full(self.openapi.clone()));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            return Plan::Answer(Answer {
                response,
                code: 0,
                refusal: None,
            });
        }
        match self
            .transcoder
            .resolve(&parts.method, path, parts.uri.query())
        {
            Ok(Some(call)) => Plan::Call(call),
            Ok(None) => {
                let status = Status::no_rule();
                Answer::refused(self.error(&status), &status)
            }
            Err(status) => Answer::refused(self.error(&status), &status),
        }
    }

    /// The JSON `google.rpc.Status` answer for a failed call.
    pub fn error(&self, status: &Status) -> Response<Body> {
        reply(self.transcoder.error_reply(status))
    }

    /// Turns the REST request into the gRPC request for `call`: the head becomes a POST to
    /// the method's path with the allowed headers as metadata, the body one framed message
    /// (read whole, up to the route's limit) or, for client streaming, a stream of them.
    pub async fn request(
        &self,
        call: &Call,
        parts: &mut Parts,
        incoming: Body,
    ) -> Result<Body, Response<Body>> {
        let content_type = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut headers = HeaderMap::with_capacity(parts.headers.len() + 2);
        for (name, value) in &parts.headers {
            if self.transcoder.headers().forwards(name) || is_forwarding(name.as_str()) {
                headers.append(name.clone(), value.clone());
            }
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert(TE, HeaderValue::from_static("trailers"));
        parts.headers = headers;
        parts.method = Method::POST;
        parts.uri = Uri::try_from(call.grpc_path())
            .map_err(|e| self.error(&Status::new(Code::Internal, format!("method path: {e}"))))?;

        if call.client_streaming() {
            let stream = call.request_stream(content_type.as_deref());
            return Ok(body::boxed(ClientStream {
                inner: incoming,
                stream,
                queue: VecDeque::new(),
                ended: false,
            }));
        }
        let bytes = match read_limited(incoming, self.max_body).await {
            Ok(bytes) => bytes,
            Err(ReadError::TooLarge) => {
                let status = Status::new(
                    Code::InvalidArgument,
                    format!("request body is larger than {} bytes", self.max_body),
                );
                let mut response = self.error(&status);
                *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
                return Err(response);
            }
            Err(ReadError::Broken(e)) => {
                let status = Status::new(Code::Cancelled, format!("reading the request body: {e}"));
                return Err(self.error(&status));
            }
        };
        let message = call
            .request(content_type.as_deref(), &bytes)
            .map_err(|status| self.error(&status))?;
        let framed = frame(&message);
        parts
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from(framed.len()));
        Ok(body::full(framed))
    }

    /// Turns the backend's gRPC answer into the REST answer, with the gRPC status it
    /// carried. Unary answers are read whole; server streams flow through as they come.
    pub async fn response(
        &self,
        call: &Call,
        response: Response<UpstreamBody>,
    ) -> (Response<Body>, u16) {
        let (parts, incoming) = response.into_parts();
        let metadata = metadata_headers(&parts.headers);
        if parts.status != StatusCode::OK {
            let status = Status::new(
                Code::Unknown,
                format!("backend answered HTTP {} instead of gRPC", parts.status),
            );
            return (self.error(&status), code_of(&status));
        }
        let (mut response, code) = if call.server_streaming() {
            self.stream(call, &parts.headers, incoming).await
        } else {
            self.unary(call, &parts.headers, incoming).await
        };
        response.headers_mut().extend(metadata);
        (response, code)
    }

    async fn unary(
        &self,
        call: &Call,
        head: &HeaderMap,
        incoming: UpstreamBody,
    ) -> (Response<Body>, u16) {
        let collected = match Limited::new(incoming, self.max_body).collect().await {
            Ok(collected) => collected,
            Err(e) => {
                let status =
                    Status::new(Code::Internal, format!("reading the backend's answer: {e}"));
                return (self.error(&status), code_of(&status));
            }
        };
        let status = status_of(collected.trailers().unwrap_or(head));
        let trailing = collected.trailers().map(metadata_headers);
        let bytes = collected.to_bytes();
        let mut decoder = FrameDecoder::new(self.max_body);
        decoder.push(&bytes);
        let (message, status) = match decoder.next_message() {
            Ok(message) => (message, status),
            Err(problem) => (None, problem),
        };
        let code = code_of(&status);
        let mut response = reply(call.unary_reply(message.as_deref(), &status));
        if let Some(trailing) = trailing {
            // Trailing metadata too: a REST answer has no trailers to carry it.
            response.headers_mut().extend(trailing);
        }
        (response, code)
    }

    async fn stream(
        &self,
        call: &Call,
        head: &HeaderMap,
        incoming: UpstreamBody,
    ) -> (Response<Body>, u16) {
        let mut stream = ServerStream {
            inner: incoming,
            decoder: FrameDecoder::new(self.max_body),
            encoder: call.stream_encoder(),
            head_status: head.get(&GRPC_STATUS).is_some().then(|| status_of(head)),
            pending: VecDeque::new(),
            state: StreamState::Open,
            status: None,
        };
        // Until the first message is out, a failure can still be an HTTP error status.
        match stream.first().await {
            First::Failed(status) => (self.error(&status), code_of(&status)),
            First::Flowing => {
                let content_type = HeaderValue::from_str(stream.encoder.content_type())
                    .unwrap_or(HeaderValue::from_static("application/x-ndjson"));
                let mut response = Response::new(body::boxed(stream));
                response.headers_mut().insert(CONTENT_TYPE, content_type);
                // The final status is in the stream's trailers; 0 until they come.
                (response, 0)
            }
        }
    }
}

enum ReadError {
    TooLarge,
    Broken(BoxError),
}

/// Reads a whole body, refusing one longer than `max` bytes as soon as it is.
async fn read_limited(mut body: Body, max: usize) -> Result<Bytes, ReadError> {
    let mut buffer = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(ReadError::Broken)?;
        if let Ok(data) = frame.into_data() {
            if buffer.len() + data.len() > max {
                return Err(ReadError::TooLarge);
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok(buffer.freeze())
}

/// Headers that carry where the request came from, which the gateway sets or passes on.
fn is_forwarding(name: &str) -> bool {
    matches!(
        name,
        "x-forwarded-for"
            | "x-forwarded-proto"
            | "x-forwarded-host"
            | "x-real-ip"
            | "traceparent"
            | "tracestate"
    )
}

/// The backend's response metadata as `grpc-metadata-*` headers.
fn metadata_headers(head: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in head {
        if let Some(header) = HeaderRules::response_header(name.as_str()) {
            out.append(header, value.clone());
        }
    }
    out
}

fn status_of(block: &HeaderMap) -> Status {
    Status::from_trailers(
        block.get(&GRPC_STATUS).map(HeaderValue::as_bytes),
        block.get(&GRPC_MESSAGE).map(HeaderValue::as_bytes),
        block.get(&GRPC_STATUS_DETAILS).map(HeaderValue::as_bytes),
    )
}

fn code_of(status: &Status) -> u16 {
    status.code as u16
}

fn reply(reply: Reply) -> Response<Body> {
    let mut response = Response::new(body::full(reply.body));
    *response.status_mut() = reply.status;
    if let Ok(value) = HeaderValue::from_str(&reply.content_type) {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}

/// A client-streaming request body: JSON messages (NDJSON or an array) in, gRPC frames out.
struct ClientStream {
    inner: Body,
    stream: RequestStream,
    queue: VecDeque<Bytes>,
    ended: bool,
}

impl HttpBody for ClientStream {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            if let Some(message) = self.queue.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(frame(&message)))));
            }
            if self.ended {
                return Poll::Ready(None);
            }
            let this = &mut *self;
            let messages = match std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(chunk)) => match chunk.into_data() {
                    Ok(data) => this.stream.push(&data),
                    Err(_) => Ok(Vec::new()),
                },
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => {
                    this.ended = true;
                    this.stream.finish()
                }
            };
            match messages {
                Ok(messages) => this.queue.extend(messages),
                Err(status) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(status.message.into())));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.queue.is_empty()
    }
}

/// A server stream on its way out: gRPC frames in, JSON chunks out as each message comes,
/// then the closing chunk and the status as HTTP trailers.
struct ServerStream {
    inner: UpstreamBody,
    decoder: FrameDecoder,
    encoder: StreamEncoder,
    /// The status of a trailers-only answer.
    head_status: Option<Status>,
    pending: VecDeque<Frame<Bytes>>,
    state: StreamState,
    status: Option<Status>,
}

#[derive(PartialEq, Eq)]
enum StreamState {
    Open,
    Finished,
}

enum First {
    Failed(Status),
    Flowing,
}

impl ServerStream {
    /// Reads until the first chunk is ready, or the call ended without a message.
    async fn first(&mut self) -> First {
        if let Some(status) = self.head_status.take() {
            return if status.is_ok() {
                self.end(status);
                First::Flowing
            } else {
                First::Failed(status)
            };
        }
        loop {
            match self.decoder.next_message() {
                Ok(Some(message)) => {
                    return match self.encoder.message(&message) {
                        Ok(chunk) => {
                            self.pending.push_back(Frame::data(chunk));
                            First::Flowing
                        }
                        Err(status) => First::Failed(status),
                    };
                }
                Ok(None) => {}
                Err(status) => return First::Failed(status),
            }
            match self.inner.frame().await {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => self.decoder.push(&data),
                    Err(frame) => {
                        let status = frame.trailers_ref().map_or_else(missing_status, status_of);
                        if !status.is_ok() {
                            return First::Failed(status);
                        }
                        self.end(status);
                        return First::Flowing;
                    }
                },
                Some(Err(e)) => {
                    return First::Failed(Status::new(
                        Code::Unavailable,
                        format!("backend stream broke: {e}"),
                    ));
                }
                None => return First::Failed(missing_status()),
            }
        }
    }

    /// Queues the closing chunk and the trailers.
    fn end(&mut self, status: Status) {
        let last = self.encoder.finish(&status);
        if !last.is_empty() {
            self.pending.push_back(Frame::data(last));
        }
        self.pending
            .push_back(Frame::trailers(status.to_trailers()));
        self.status = Some(status);
        self.state = StreamState::Finished;
    }
}

fn missing_status() -> Status {
    Status::from_trailers(None, None, None)
}

impl HttpBody for ServerStream {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Poll::Ready(Some(Ok(frame)));
            }
            if self.state == StreamState::Finished {
                return Poll::Ready(None);
            }
            let this = &mut *self;
            match this.decoder.next_message() {
                Ok(Some(message)) => {
                    match this.encoder.message(&message) {
                        Ok(chunk) => this.pending.push_back(Frame::data(chunk)),
                        Err(status) => this.end(status),
                    }
                    continue;
                }
                Ok(None) => {}
                Err(status) => {
                    this.end(status);
                    continue;
                }
            }
            match std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => this.decoder.push(&data),
                    Err(frame) => {
                        let status = frame.trailers_ref().map_or_else(missing_status, status_of);
                        this.end(status);
                    }
                },
                Some(Err(e)) => this.end(Status::new(
                    Code::Unavailable,
                    format!("backend stream broke: {e}"),
                )),
                None => this.end(missing_status()),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.state == StreamState::Finished && self.pending.is_empty()
    }
}
