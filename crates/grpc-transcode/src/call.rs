//! A matched request: which gRPC method to call and the fields the URL already set.

use std::sync::Arc;

use bytes::Bytes;
use percent_encoding::percent_decode_str;
use prost::Message as _;
use prost_reflect::{DynamicMessage, MessageDescriptor};

use crate::Settings;
use crate::query;
use crate::rules::Binding;
use crate::status::Status;
use crate::template::PathMatch;
use crate::values::{parse, set_path};

/// One REST request mapped to one gRPC method. Cheap to clone; owns what it needs, so the
/// gateway can keep it across awaits while the body streams.
#[derive(Debug, Clone)]
pub struct Call {
    pub(crate) binding: Arc<Binding>,
    pub(crate) settings: Arc<Settings>,
    /// The fields set by the path and the query, encoded; appended to every request message so
    /// that they win over the body (protobuf merge semantics).
    pub(crate) bound: Bytes,
    pub(crate) query_set_mask: bool,
    variables: Vec<(String, String)>,
}

impl Call {
    pub(crate) fn bind(
        binding: Arc<Binding>,
        settings: Arc<Settings>,
        matched: &PathMatch<'_>,
        query: Option<&str>,
    ) -> Result<Call, Status> {
        let mut message = DynamicMessage::new(binding.method.input());
        let mut variables = Vec::with_capacity(binding.variables.len());
        for variable in &binding.variables {
            let end = variable.end.unwrap_or(matched.segments.len());
            let raw = matched.segments[variable.start..end].join("/");
            let name = variable
                .fields
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(".");
            let text = decode_path(&raw, variable.single_segment).ok_or_else(|| {
                Status::invalid_argument(format!(
                    "path variable `{name}`: `{raw}` is not valid percent-encoded UTF-8"
                ))
            })?;
            let Some(leaf) = variable.fields.last() else {
                continue;
            };
            let value = parse(&leaf.kind(), &text).map_err(|problem| {
                Status::invalid_argument(format!("path variable `{name}`: {problem}"))
            })?;
            set_path(&mut message, &variable.fields, value);
            variables.push((name, text));
        }
        if let Some(query) = query {
            query::apply(&mut message, &binding, query, settings.ignore_unknown_query)?;
        }
        let query_set_mask = message.has_field_by_name("update_mask");
        Ok(Call {
            bound: Bytes::from(message.encode_to_vec()),
            binding,
            settings,
            query_set_mask,
            variables,
        })
    }

    /// The HTTP/2 `:path` of the gRPC call, `/package.Service/Method`.
    pub fn grpc_path(&self) -> &str {
        &self.binding.grpc_path
    }

    /// True when the client sends a stream of messages (NDJSON or a JSON array body).
    pub fn client_streaming(&self) -> bool {
        self.binding.method.is_client_streaming()
    }

    /// True when the backend answers with a stream (sent on as NDJSON or a JSON array).
    pub fn server_streaming(&self) -> bool {
        self.binding.method.is_server_streaming()
    }

    /// The path variables as decoded, by field path, for logs and access control.
    pub fn path_variables(&self) -> &[(String, String)] {
        &self.variables
    }

    /// The rule that matched, such as `GET /v1/{name=shelves/*}`, for logs and metrics.
    pub fn rule(&self) -> String {
        self.binding.describe()
    }

    /// The request message type.
    pub fn input(&self) -> MessageDescriptor {
        self.binding.method.input()
    }

    /// The response message type.
    pub fn output(&self) -> MessageDescriptor {
        self.binding.method.output()
    }
}

/// Decodes a path variable: a single segment decodes everything, a multi-segment one keeps
/// `%2F` so that an encoded slash stays distinguishable from a separator.
fn decode_path(raw: &str, single_segment: bool) -> Option<String> {
    if single_segment || !raw.contains('%') {
        return percent_decode_str(raw)
            .decode_utf8()
            .ok()
            .map(|s| s.into_owned());
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = (bytes[i] == b'%')
            .then(|| raw.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escape {
            Some(b'/') => {
                out.extend_from_slice(&bytes[i..i + 3]);
                i += 3;
            }
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::decode_path;

    #[test]
    fn only_multi_segment_variables_keep_encoded_slashes() {
        assert_eq!(decode_path("a%2Fb%20c", true).unwrap(), "a/b c");
        assert_eq!(
            decode_path("a%2Fb/c%20d%2f", false).unwrap(),
            "a%2Fb/c d%2f"
        );
        assert!(decode_path("%FF", true).is_none());
    }
}
