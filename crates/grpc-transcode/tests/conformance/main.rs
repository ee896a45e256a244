//! The conformance table: each case is an HTTP request, the gRPC request the backend must
//! receive, a canned backend answer, and the HTTP response the client must get. The runner
//! drives the library the way the gateway does and reports every failing case by name.

#[path = "../common/mod.rs"]
mod common;

/// A backend that answers one message and OK.
macro_rules! ok {
    ($message:expr) => {
        $crate::Backend::Reply {
            messages: &[$message],
            code: 0,
            message: "",
        }
    };
}

/// A backend that fails without sending a message.
macro_rules! fail {
    ($code:expr, $message:expr) => {
        $crate::Backend::Reply {
            messages: &[],
            code: $code,
            message: $message,
        }
    };
}

mod cases;

use base64::Engine as _;
use bytes::Bytes;
use grpc_transcode::prost_reflect::{DynamicMessage, SerializeOptions};
use grpc_transcode::{Call, FrameDecoder, HeaderRules, Options, Reply, Status, Transcoder, frame};
use prost::Message as _;
use serde_json::Value;

/// Which descriptor set a case runs against.
#[derive(Debug, Clone, Copy)]
pub enum Proto {
    Bookstore,
    Messaging,
}

/// What the backend answers.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    /// Messages (as proto3 JSON of the response type), then `grpc-status` and `grpc-message`.
    Reply {
        messages: &'static [&'static str],
        code: i32,
        message: &'static str,
    },
    /// An error with one detail in `grpc-status-details-bin`: (type name, JSON of it).
    Detailed {
        code: i32,
        message: &'static str,
        detail: (&'static str, &'static str),
    },
    /// Trailers without `grpc-status`.
    NoStatus,
    /// One frame that is not a valid message, then OK.
    Garbage,
    /// The call is never made.
    NotCalled,
}

pub struct Case {
    pub name: &'static str,
    pub proto: Proto,
    pub configure: fn(&mut Options),
    pub request: &'static str,
    pub content_type: Option<&'static str>,
    /// Request headers besides `content-type`.
    pub headers: &'static [(&'static str, &'static str)],
    pub body: &'static str,
    /// The gRPC method the request resolves to; empty when no rule matches or the URL is refused.
    pub grpc: &'static str,
    /// Expected request messages, as proto3 JSON with `.proto` field names.
    pub sent: &'static [&'static str],
    /// Expected metadata sent to the backend, from the request headers.
    pub metadata: &'static [(&'static str, &'static str)],
    pub backend: Backend,
    /// Response metadata (headers) from the backend.
    pub backend_metadata: &'static [(&'static str, &'static str)],
    pub status: u16,
    /// Expected `content-type`; empty for "no route".
    pub response_type: &'static str,
    /// Expected response headers besides `content-type`.
    pub response_headers: &'static [(&'static str, &'static str)],
    /// Expected body: JSON compared as JSON, NDJSON line by line, anything else byte for byte.
    pub response: &'static str,
}

pub fn defaults(_: &mut Options) {}

pub const CASE: Case = Case {
    name: "",
    proto: Proto::Bookstore,
    configure: defaults,
    request: "GET /",
    content_type: None,
    headers: &[],
    body: "",
    grpc: "",
    sent: &[],
    metadata: &[],
    backend: Backend::NotCalled,
    backend_metadata: &[],
    status: 200,
    response_type: "application/json",
    response_headers: &[],
    response: "",
};

#[test]
fn conformance() {
    let cases = cases::all();
    let mut failures = Vec::new();
    let mut names = std::collections::HashSet::new();
    for case in &cases {
        assert!(names.insert(case.name), "duplicate case name {}", case.name);
        if let Err(problem) = run(case) {
            failures.push(format!(
                "{}:\n    {}",
                case.name,
                problem.replace('\n', "\n    ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn run(case: &Case) -> Result<(), String> {
    let mut options = Options::default();
    (case.configure)(&mut options);
    let set = match case.proto {
        Proto::Bookstore => common::bookstore(),
        Proto::Messaging => common::messaging(),
    };
    let transcoder = Transcoder::new(set, &options).map_err(|e| format!("load: {e}"))?;
    let (method, target) = case.request.split_once(' ').ok_or("bad request line")?;
    let method = http::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let call = match transcoder.resolve(&method, path, query) {
        Ok(Some(call)) => call,
        Ok(None) if case.response_type.is_empty() => return Ok(()),
        Ok(None) => return Err("no rule matched".into()),
        Err(status) => {
            expect_eq("grpc method", case.grpc, "")?;
            return check_reply(case, transcoder.error_reply(&status));
        }
    };
    if case.response_type.is_empty() {
        return Err(format!("expected no route, got {}", call.grpc_path()));
    }
    expect_eq("grpc method", case.grpc, call.grpc_path())?;
    let (sent, refused) = request_messages(case, &call);
    let sent_json: Vec<Value> = sent.iter().map(|m| request_json(&call, m)).collect();
    let expected_sent: Vec<Value> = case.sent.iter().map(|s| parse_json(s)).collect();
    if sent_json != expected_sent {
        return Err(format!(
            "sent to the backend:\n  expected {}\n  got      {}",
            Value::Array(expected_sent),
            Value::Array(sent_json)
        ));
    }
    let metadata: Vec<(&str, &str)> = case
        .headers
        .iter()
        .filter(|(name, _)| {
            transcoder
                .headers()
                .forwards(&http::HeaderName::from_static(name))
        })
        .copied()
        .collect();
    if metadata != case.metadata {
        return Err(format!(
            "metadata: expected {:?}, got {metadata:?}",
            case.metadata
        ));
    }
    if let Some(status) = refused {
        return check_reply(case, transcoder.error_reply(&status));
    }
    let response_headers: Vec<(String, &str)> = case
        .backend_metadata
        .iter()
        .filter_map(|(key, value)| {
            HeaderRules::response_header(key).map(|h| (h.to_string(), *value))
        })
        .collect();
    let expected_headers: Vec<(String, &str)> = case
        .response_headers
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    if response_headers != expected_headers {
        return Err(format!(
            "response headers: expected {expected_headers:?}, got {response_headers:?}"
        ));
    }
    let (messages, status) = backend_answer(case, &call)?;
    let reply = if call.server_streaming() {
        let mut encoder = call.stream_encoder();
        let mut body = Vec::new();
        let mut failed = None;
        for message in &messages {
            match encoder.message(message) {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(error) => {
                    failed = Some(error);
                    break;
                }
            }
        }
        let status = failed.unwrap_or(status);
        if encoder.messages_sent() == 0 && !status.is_ok() {
            transcoder.error_reply(&status)
        } else {
            body.extend_from_slice(&encoder.finish(&status));
            Reply {
                status: http::StatusCode::OK,
                content_type: encoder.content_type().to_owned(),
                body: body.into(),
            }
        }
    } else {
        call.unary_reply(messages.first().map(|m| &m[..]), &status)
    };
    check_reply(case, reply)
}

/// Turns the HTTP body into request messages, as the gateway would; a refusal stops the call.
fn request_messages(case: &Case, call: &Call) -> (Vec<Bytes>, Option<Status>) {
    if !call.client_streaming() {
        return match call.request(case.content_type, case.body.as_bytes()) {
            Ok(message) => (vec![message], None),
            Err(status) => (Vec::new(), Some(status)),
        };
    }
    let mut stream = call.request_stream(case.content_type);
    let mut out = Vec::new();
    // Odd-sized chunks, so messages straddle chunk boundaries.
    for chunk in case.body.as_bytes().chunks(5) {
        match stream.push(chunk) {
            Ok(messages) => out.extend(messages),
            Err(status) => return (out, Some(status)),
        }
    }
    match stream.finish() {
        Ok(messages) => {
            out.extend(messages);
            (out, None)
        }
        Err(status) => (out, Some(status)),
    }
}

fn request_json(call: &Call, message: &[u8]) -> Value {
    let decoded = DynamicMessage::decode(call.input(), message).unwrap();
    let options = SerializeOptions::new().use_proto_field_name(true);
    let mut out = serde_json::Serializer::new(Vec::new());
    decoded.serialize_with_options(&mut out, &options).unwrap();
    serde_json::from_slice(&out.into_inner()).unwrap()
}

/// The canned backend answer, framed and unframed again in uneven chunks, plus its status.
fn backend_answer(case: &Case, call: &Call) -> Result<(Vec<Bytes>, Status), String> {
    let mut wire = Vec::new();
    let trailers: (Option<String>, Option<String>, Option<String>) = match case.backend {
        Backend::NotCalled => {
            return Err("the call was made but the case says it must not be".into());
        }
        Backend::NoStatus => (None, None, None),
        Backend::Garbage => {
            wire.extend_from_slice(&frame(&[0xff, 0xff, 0xff]));
            (Some("0".into()), None, None)
        }
        Backend::Reply {
            messages,
            code,
            message,
        } => {
            for json in messages {
                let decoded = DynamicMessage::deserialize(call.output(), parse_json(json))
                    .map_err(|e| e.to_string())?;
                wire.extend_from_slice(&frame(&decoded.encode_to_vec()));
            }
            (Some(code.to_string()), Some(message.to_owned()), None)
        }
        Backend::Detailed {
            code,
            message,
            detail: (type_name, json),
        } => {
            let desc = call
                .output()
                .parent_pool()
                .get_message_by_name(type_name)
                .ok_or("no detail type")?;
            let detail =
                DynamicMessage::deserialize(desc, parse_json(json)).map_err(|e| e.to_string())?;
            let status = grpc_status(code, message, type_name, detail.encode_to_vec());
            let bin = base64::engine::general_purpose::STANDARD_NO_PAD.encode(status);
            (Some(code.to_string()), Some(message.to_owned()), Some(bin))
        }
    };
    let mut decoder = FrameDecoder::new(1 << 20);
    let mut messages = Vec::new();
    for chunk in wire.chunks(3) {
        decoder.push(chunk);
        while let Some(message) = decoder.next_message().map_err(|e| e.to_string())? {
            messages.push(message);
        }
    }
    decoder.finish().map_err(|e| e.to_string())?;
    let status = Status::from_trailers(
        trailers.0.as_deref().map(str::as_bytes),
        trailers.1.as_deref().map(str::as_bytes),
        trailers.2.as_deref().map(str::as_bytes),
    );
    Ok((messages, status))
}

/// An encoded google.rpc.Status with one Any detail, written out field by field.
fn grpc_status(code: i32, message: &str, type_name: &str, value: Vec<u8>) -> Vec<u8> {
    #[derive(Clone, PartialEq, prost::Message)]
    struct Any {
        #[prost(string, tag = "1")]
        type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        value: Vec<u8>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct RpcStatus {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
        #[prost(message, repeated, tag = "3")]
        details: Vec<Any>,
    }
    RpcStatus {
        code,
        message: message.into(),
        details: vec![Any {
            type_url: format!("type.googleapis.com/{type_name}"),
            value,
        }],
    }
    .encode_to_vec()
}

fn check_reply(case: &Case, reply: Reply) -> Result<(), String> {
    let body = String::from_utf8_lossy(&reply.body).into_owned();
    let context = || {
        format!(
            "(got {} {} {body})",
            reply.status.as_u16(),
            reply.content_type
        )
    };
    if reply.status.as_u16() != case.status {
        return Err(format!(
            "status: expected {}, got {} {}",
            case.status,
            reply.status.as_u16(),
            context()
        ));
    }
    if reply.content_type != case.response_type {
        return Err(format!(
            "content-type: expected {}, got {}",
            case.response_type, reply.content_type
        ));
    }
    let same = match reply.content_type.as_str() {
        "application/json" => {
            serde_json::from_str::<Value>(&body).ok() == Some(parse_json(case.response))
        }
        "application/x-ndjson" => {
            body.ends_with('\n') != case.response.is_empty()
                && body
                    .lines()
                    .map(|l| serde_json::from_str::<Value>(l).ok())
                    .collect::<Vec<_>>()
                    == case
                        .response
                        .lines()
                        .map(|l| Some(parse_json(l)))
                        .collect::<Vec<_>>()
        }
        _ => body == case.response,
    };
    if same {
        Ok(())
    } else {
        Err(format!(
            "body:\n  expected {}\n  got      {body}",
            case.response
        ))
    }
}

fn expect_eq(what: &str, expected: &str, got: &str) -> Result<(), String> {
    if expected == got {
        Ok(())
    } else {
        Err(format!("{what}: expected {expected:?}, got {got:?}"))
    }
}

fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("bad JSON in the table: {e}: {text}"))
}
