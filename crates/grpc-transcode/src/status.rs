//! The error every REST caller sees: a `google.rpc.Status` rendered as JSON with the HTTP status
//! that matches its gRPC code, whether the backend or the gateway produced it.

use std::fmt;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage};
use serde_json::{Map, Value, json};

/// What gRPC escapes in `grpc-message`: everything outside printable ASCII, and `%` itself.
const MESSAGE_ESCAPES: &AsciiSet = &CONTROLS.add(b'%');

/// The gRPC status codes, numbered as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// Success.
    Ok = 0,
    /// The caller cancelled.
    Cancelled = 1,
    /// An error with no better code, or a broken response.
    Unknown = 2,
    /// The request is wrong whatever the system state.
    InvalidArgument = 3,
    /// The deadline passed before the call finished.
    DeadlineExceeded = 4,
    /// The entity does not exist.
    NotFound = 5,
    /// The entity to create exists.
    AlreadyExists = 6,
    /// The caller is known but not allowed.
    PermissionDenied = 7,
    /// A quota or limit ran out.
    ResourceExhausted = 8,
    /// The system is not in a state where the call can run.
    FailedPrecondition = 9,
    /// A conflict, such as a concurrent change.
    Aborted = 10,
    /// A value past the valid range.
    OutOfRange = 11,
    /// The method is not implemented.
    Unimplemented = 12,
    /// An invariant broke.
    Internal = 13,
    /// Try again later.
    Unavailable = 14,
    /// Unrecoverable loss or corruption.
    DataLoss = 15,
    /// The caller has no valid credentials.
    Unauthenticated = 16,
}

impl Code {
    /// Maps a wire number to a code; numbers outside the table are `Unknown`, as gRPC requires.
    pub fn from_i32(n: i32) -> Code {
        match n {
            0 => Code::Ok,
            1 => Code::Cancelled,
            3 => Code::InvalidArgument,
            4 => Code::DeadlineExceeded,
            5 => Code::NotFound,
            6 => Code::AlreadyExists,
            7 => Code::PermissionDenied,
            8 => Code::ResourceExhausted,
            9 => Code::FailedPrecondition,
            10 => Code::Aborted,
            11 => Code::OutOfRange,
            12 => Code::Unimplemented,
            13 => Code::Internal,
            14 => Code::Unavailable,
            15 => Code::DataLoss,
            16 => Code::Unauthenticated,
            _ => Code::Unknown,
        }
    }

    /// The HTTP status a REST caller gets for this code (the mapping of google/rpc/code.proto).
    pub fn http_status(self) -> StatusCode {
        let n = match self {
            Code::Ok => 200,
            Code::Cancelled => 499,
            Code::Unknown | Code::Internal | Code::DataLoss => 500,
            Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 400,
            Code::DeadlineExceeded => 504,
            Code::NotFound => 404,
            Code::AlreadyExists | Code::Aborted => 409,
            Code::PermissionDenied => 403,
            Code::ResourceExhausted => 429,
            Code::Unimplemented => 501,
            Code::Unavailable => 503,
            Code::Unauthenticated => 401,
        };
        StatusCode::from_u16(n).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// One entry of `google.rpc.Status.details`, kept encoded until it is rendered, because only the
/// descriptor pool knows how to show it as JSON.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Detail {
    /// `type.googleapis.com/<full message name>`.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// The encoded message.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct WireStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<Detail>,
}

/// A gRPC status: what a call ended with, or why the gateway refused to make it.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// The gRPC code.
    pub code: Code,
    /// A message for the developer calling the API.
    pub message: String,
    /// Typed details (`google.rpc.Status.details`).
    pub details: Vec<Detail>,
}

impl Status {
    /// A status without details.
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        Status {
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// Shorthand for the most common gateway-made error: the request could not be transcoded.
    pub fn invalid_argument(message: impl Into<String>) -> Status {
        Status::new(Code::InvalidArgument, message)
    }

    /// The answer to a request that no `google.api.http` rule matches ([`Transcoder::resolve`]
    /// gave `Ok(None)`) when nothing else will take it: `NOT_FOUND`, so the body's `code` and
    /// the HTTP 404 it maps to agree. (`UNIMPLEMENTED` would map to 501; grpc-gateway answers
    /// an unknown path the same way.)
    ///
    /// [`Transcoder::resolve`]: crate::Transcoder::resolve
    pub fn no_rule() -> Status {
        Status::new(
            Code::NotFound,
            "no REST method matches this HTTP method and path",
        )
    }

    /// Reads the status a backend sent in its trailers (or trailers-only headers).
    ///
    /// A response without `grpc-status` is not a success: the backend or a proxy in between broke
    /// the protocol, so the caller gets `UNKNOWN` instead of a 200 with a partial body.
    /// `grpc-message` is percent-decoded; `grpc-status-details-bin` is base64 of an encoded
    /// `google.rpc.Status` and supplies the details (its code wins only when it agrees).
    pub fn from_trailers(
        grpc_status: Option<&[u8]>,
        grpc_message: Option<&[u8]>,
        grpc_status_details_bin: Option<&[u8]>,
    ) -> Status {
        let Some(raw) = grpc_status else {
            return Status::new(
                Code::Unknown,
                "the backend ended the call without a grpc-status",
            );
        };
        let code = match std::str::from_utf8(raw)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            Some(n) => Code::from_i32(n),
            None => {
                return Status::new(
                    Code::Unknown,
                    format!(
                        "the backend sent an unreadable grpc-status {:?}",
                        String::from_utf8_lossy(raw)
                    ),
                );
            }
        };
        let message = grpc_message
            .map(|m| {
                let text = String::from_utf8_lossy(m);
                percent_decode_str(&text).decode_utf8_lossy().into_owned()
            })
            .unwrap_or_default();
        let details = grpc_status_details_bin
            .and_then(decode_details_bin)
            .filter(|wire| wire.code == code as i32)
            .map(|wire| wire.details)
            .unwrap_or_default();
        Status {
            code,
            message,
            details,
        }
    }

    /// True for `Code::Ok`.
    pub fn is_ok(&self) -> bool {
        self.code == Code::Ok
    }

    /// The HTTP status for this error.
    pub fn http_status(&self) -> StatusCode {
        self.code.http_status()
    }

    /// The `google.rpc.Status` JSON object. Details whose type the pool knows are rendered in the
    /// proto3 JSON mapping with an `@type`; others keep their bytes as base64 in `value`, so no
    /// information is lost.
    pub fn to_json(&self, pool: Option<&DescriptorPool>) -> Value {
        let details: Vec<Value> = self.details.iter().map(|d| detail_json(d, pool)).collect();
        json!({
            "code": self.code as i32,
            "message": self.message,
            "details": details,
        })
    }

    /// The status as gRPC trailers (`grpc-status`, percent-encoded `grpc-message`, and
    /// `grpc-status-details-bin` when there are details), for ending a streamed response to a
    /// client that reads trailers.
    pub fn to_trailers(&self) -> HeaderMap {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from(self.code as i32));
        let message = utf8_percent_encode(&self.message, MESSAGE_ESCAPES).to_string();
        if let Ok(value) = HeaderValue::from_str(&message) {
            trailers.insert("grpc-message", value);
        }
        if !self.details.is_empty() {
            let wire = WireStatus {
                code: self.code as i32,
                message: self.message.clone(),
                details: self.details.clone(),
            };
            let b64 = base64::engine::general_purpose::STANDARD_NO_PAD.encode(wire.encode_to_vec());
            if let Ok(value) = HeaderValue::from_str(&b64) {
                trailers.insert("grpc-status-details-bin", value);
            }
        }
        trailers
    }

    /// [`Status::to_json`] as bytes, ready to be an HTTP body.
    pub fn to_json_bytes(&self, pool: Option<&DescriptorPool>) -> Bytes {
        Bytes::from(self.to_json(pool).to_string())
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

impl std::error::Error for Status {}

fn decode_details_bin(raw: &[u8]) -> Option<WireStatus> {
    let text = std::str::from_utf8(raw).ok()?.trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
        .ok()?;
    WireStatus::decode(bytes.as_slice()).ok()
}

fn detail_json(detail: &Detail, pool: Option<&DescriptorPool>) -> Value {
    let name = detail.type_url.rsplit('/').next().unwrap_or_default();
    let known = pool
        .and_then(|p| p.get_message_by_name(name))
        .and_then(|desc| DynamicMessage::decode(desc, detail.value.as_slice()).ok())
        .and_then(|msg| serde_json::to_value(&msg).ok());
    let mut object = Map::new();
    object.insert("@type".into(), Value::String(detail.type_url.clone()));
    match known {
        Some(Value::Object(fields)) => object.extend(fields),
        Some(other) => {
            object.insert("value".into(), other);
        }
        None => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(&detail.value);
            object.insert("value".into(), Value::String(b64));
        }
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_grpc_status_is_an_error() {
        let status = Status::from_trailers(None, None, None);
        assert_eq!(status.code, Code::Unknown);
        assert_eq!(status.http_status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn a_path_without_a_rule_is_not_found_in_code_and_http_status() {
        let status = Status::no_rule();
        assert_eq!(status.code, Code::NotFound);
        assert_eq!(status.http_status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn message_is_percent_decoded() {
        let status = Status::from_trailers(Some(b"5"), Some(b"no shelf %E6%9C%AC 7%25"), None);
        assert_eq!(status.code, Code::NotFound);
        assert_eq!(status.message, "no shelf \u{672c} 7%");
    }

    #[test]
    fn trailers_round_trip() {
        let status = Status {
            code: Code::FailedPrecondition,
            message: "shelf \u{672c} is 100% full\n".into(),
            details: vec![Detail {
                type_url: "type.googleapis.com/x.Y".into(),
                value: vec![8, 1],
            }],
        };
        let trailers = status.to_trailers();
        assert_eq!(trailers["grpc-status"], "9");
        assert_eq!(
            trailers["grpc-message"],
            "shelf %E6%9C%AC is 100%25 full%0A"
        );
        let back = Status::from_trailers(
            trailers.get("grpc-status").map(|v| v.as_bytes()),
            trailers.get("grpc-message").map(|v| v.as_bytes()),
            trailers
                .get("grpc-status-details-bin")
                .map(|v| v.as_bytes()),
        );
        assert_eq!(back, status);
    }

    #[test]
    fn details_from_status_details_bin_survive() {
        let wire = WireStatus {
            code: 3,
            message: "bad".into(),
            details: vec![Detail {
                type_url: "type.googleapis.com/x.Unknown".into(),
                value: vec![1, 2, 3],
            }],
        };
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD.encode(wire.encode_to_vec());
        let status = Status::from_trailers(Some(b"3"), Some(b"bad"), Some(b64.as_bytes()));
        assert_eq!(
            status.to_json(None)["details"][0],
            json!({"@type": "type.googleapis.com/x.Unknown", "value": "AQID"})
        );
    }
}
