//! The response side: backend messages become JSON (or raw bytes for `google.api.HttpBody`),
//! one whole body for unary calls, chunk by chunk for streams.

use bytes::{Bytes, BytesMut};
use http::StatusCode;
use prost_reflect::{DynamicMessage, Value};
use serde_json::json;

use crate::call::Call;
use crate::status::{Code, Status};

const JSON: &str = "application/json";
const NDJSON: &str = "application/x-ndjson";
const OCTETS: &str = "application/octet-stream";

/// A complete HTTP response: what the gateway sends for a unary call or an error.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The HTTP status.
    pub status: StatusCode,
    /// The `content-type` header.
    pub content_type: String,
    /// The whole body.
    pub body: Bytes,
}

/// One response message rendered for HTTP.
enum Rendered {
    Json(Vec<u8>),
    Raw { content_type: String, data: Bytes },
}

impl Call {
    /// The HTTP response for a call with a single response message (unary or client
    /// streaming), once the backend has finished: its message, if any, and its final status.
    pub fn unary_reply(&self, message: Option<&[u8]>, status: &Status) -> Reply {
        if !status.is_ok() {
            return self.settings.error_reply(status);
        }
        let Some(message) = message else {
            return self.settings.error_reply(&Status::new(
                Code::Internal,
                "the backend ended the call with OK but sent no response message",
            ));
        };
        match self.render(message) {
            Ok(Rendered::Json(body)) => Reply {
                status: StatusCode::OK,
                content_type: JSON.into(),
                body: body.into(),
            },
            Ok(Rendered::Raw { content_type, data }) => Reply {
                status: StatusCode::OK,
                content_type,
                body: data,
            },
            Err(error) => self.settings.error_reply(&error),
        }
    }

    /// An encoder for a server-streaming response.
    pub fn stream_encoder(&self) -> StreamEncoder {
        let raw = self.binding.raw_response;
        let content_type = if raw {
            OCTETS
        } else if self.settings.stream_as_array {
            JSON
        } else {
            NDJSON
        };
        StreamEncoder {
            call: self.clone(),
            content_type: content_type.into(),
            raw,
            sent: 0,
        }
    }

    fn render(&self, encoded: &[u8]) -> Result<Rendered, Status> {
        let output = self.output();
        let message = DynamicMessage::decode(output.clone(), encoded).map_err(|e| {
            Status::new(
                Code::Internal,
                format!(
                    "the backend's response does not decode as `{}`: {e}",
                    output.full_name()
                ),
            )
        })?;
        let message = match &self.binding.response_body {
            None => message,
            Some(field) => match message.get_field(field).into_owned() {
                Value::Message(inner) if !field.is_list() => inner,
                _ => return self.render_field(&message, field),
            },
        };
        if self.binding.raw_response {
            return Ok(raw_body(&message));
        }
        let mut out = serde_json::Serializer::new(Vec::with_capacity(encoded.len() * 2));
        message
            .serialize_with_options(&mut out, &self.settings.print)
            .map_err(|e| Status::new(Code::Internal, format!("cannot render the response: {e}")))?;
        Ok(Rendered::Json(out.into_inner()))
    }

    /// `response_body` naming a scalar, repeated or map field: render the message holding just
    /// that field, then take its value, so the JSON mapping rules stay the library's.
    fn render_field(
        &self,
        message: &DynamicMessage,
        field: &prost_reflect::FieldDescriptor,
    ) -> Result<Rendered, Status> {
        let mut only = DynamicMessage::new(self.output());
        only.set_field(field, message.get_field(field).into_owned());
        let options = self.settings.print.clone().skip_default_fields(false);
        let mut out = serde_json::Serializer::new(Vec::new());
        only.serialize_with_options(&mut out, &options)
            .map_err(|e| Status::new(Code::Internal, format!("cannot render the response: {e}")))?;
        let rendered: serde_json::Value = serde_json::from_slice(&out.into_inner())
            .map_err(|e| Status::new(Code::Internal, format!("cannot render the response: {e}")))?;
        let value = rendered
            .get(field.name())
            .or_else(|| rendered.get(field.json_name()))
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        Ok(Rendered::Json(value.to_string().into_bytes()))
    }
}

fn raw_body(message: &DynamicMessage) -> Rendered {
    let content_type = message
        .get_field_by_name("content_type")
        .and_then(|v| v.as_str().map(str::to_owned))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| OCTETS.into());
    let data = message
        .get_field_by_name("data")
        .and_then(|v| v.as_bytes().cloned())
        .unwrap_or_default();
    Rendered::Raw { content_type, data }
}

/// Turns a stream of backend messages into HTTP body chunks: newline-delimited JSON by
/// default, one JSON array when the route asks for it, raw bytes for `HttpBody` streams.
#[derive(Debug)]
pub struct StreamEncoder {
    call: Call,
    content_type: String,
    raw: bool,
    sent: usize,
}

impl StreamEncoder {
    /// The response `content-type`. For `HttpBody` streams it is taken from the first message,
    /// so read it after the first [`StreamEncoder::message`].
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// How many messages were turned into chunks. While zero, a failed call can still be
    /// answered with a plain error response ([`crate::Transcoder::error_reply`]).
    pub fn messages_sent(&self) -> usize {
        self.sent
    }

    /// The body chunk for one backend message.
    pub fn message(&mut self, encoded: &[u8]) -> Result<Bytes, Status> {
        let rendered = self.call.render(encoded)?;
        let first = self.sent == 0;
        self.sent += 1;
        Ok(match rendered {
            Rendered::Raw { content_type, data } => {
                if first {
                    self.content_type = content_type;
                }
                data
            }
            Rendered::Json(body) => self.frame_json(&body, first),
        })
    }

    /// The last chunk, once the backend's final status is known. An error after messages were
    /// sent becomes a final `{"error": {...}}` element, as the HTTP status is long gone; the
    /// gateway also sends [`Status::to_trailers`] as HTTP trailers when the client accepts them.
    pub fn finish(&mut self, status: &Status) -> Bytes {
        let array = self.call.settings.stream_as_array;
        let mut out = BytesMut::new();
        if !status.is_ok() && !self.raw {
            let error = json!({ "error": status.to_json(Some(&self.call.settings.pool)) });
            let body = error.to_string().into_bytes();
            let first = self.sent == 0;
            self.sent += 1;
            out.extend_from_slice(&self.frame_json(&body, first));
        }
        if array && !self.raw {
            if self.sent == 0 {
                out.extend_from_slice(b"[");
            }
            out.extend_from_slice(b"]");
        }
        out.freeze()
    }

    fn frame_json(&self, body: &[u8], first: bool) -> Bytes {
        let mut out = BytesMut::with_capacity(body.len() + 2);
        if self.call.settings.stream_as_array {
            out.extend_from_slice(if first { b"[" } else { b"," });
            out.extend_from_slice(body);
        } else {
            out.extend_from_slice(body);
            out.extend_from_slice(b"\n");
        }
        out.freeze()
    }
}
