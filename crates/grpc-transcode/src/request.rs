//! The request side: an HTTP body (JSON, or raw bytes for `google.api.HttpBody`) becomes the
//! encoded request message, with the URL's fields merged over it.

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message as _;
use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value,
};
use serde_json::{Map, Value as Json};

use crate::call::Call;
use crate::json_stream::JsonSplitter;
use crate::rules::{BodyRule, RawBody};
use crate::status::Status;
use crate::values::{clear_path, field_named, is_wrapper};

const FIELD_MASK: &str = "google.protobuf.FieldMask";
const BODY: &str = "the request body";

impl Call {
    /// The encoded (unframed) request message for a unary or server-streaming call, from the
    /// whole HTTP body. An empty body is an empty message.
    pub fn request(&self, content_type: Option<&str>, body: &[u8]) -> Result<Bytes, Status> {
        if let Some(target) = &self.binding.raw_body {
            return Ok(self.raw_message(target, content_type, body));
        }
        if matches!(self.binding.body, BodyRule::None) || body.iter().all(u8::is_ascii_whitespace) {
            return self.json_message(None, BODY);
        }
        if let Some((target, field)) = self.direct_target() {
            return self.direct_message(target, field, body);
        }
        let json = serde_json::from_slice::<Json>(body).map_err(|e| {
            Status::invalid_argument(format!("the request body is not valid JSON: {e}"))
        })?;
        self.json_message(Some(json), BODY)
    }

    /// A decoder for a client-streaming body: NDJSON or one JSON array of messages, or, for an
    /// `HttpBody` request, one message per chunk of raw bytes.
    pub fn request_stream(&self, content_type: Option<&str>) -> RequestStream {
        RequestStream {
            call: self.clone(),
            content_type: content_type.map(str::to_owned),
            splitter: JsonSplitter::new(self.settings.max_stream_message_bytes),
            count: 0,
        }
    }

    /// The request message for a raw (`HttpBody`) body: the bytes and their content type.
    fn raw_message(&self, target: &RawBody, content_type: Option<&str>, body: &[u8]) -> Bytes {
        let http_body_type = match target {
            RawBody::Request => self.input(),
            RawBody::Field(_, desc) => desc.clone(),
        };
        let mut http_body = DynamicMessage::new(http_body_type);
        http_body.set_field_by_name(
            "content_type",
            Value::String(content_type.unwrap_or_default().to_owned()),
        );
        http_body.set_field_by_name("data", Value::Bytes(Bytes::copy_from_slice(body)));
        let message = match target {
            RawBody::Request => http_body,
            RawBody::Field(field, _) => {
                let mut message = DynamicMessage::new(self.input());
                message.set_field(field, Value::Message(http_body));
                message
            }
        };
        self.finish_message(message)
    }

    /// A body that can be decoded straight from its bytes, without building a JSON tree first:
    /// one whose target is a message, on a call with no `update_mask` to infer.
    fn direct_target(&self) -> Option<(MessageDescriptor, Option<FieldDescriptor>)> {
        if self.update_mask_field().is_some() {
            return None;
        }
        match &self.binding.body {
            BodyRule::Whole => Some((self.input(), None)),
            BodyRule::Field(field) if !field.is_list() && !field.is_map() => match field.kind() {
                Kind::Message(desc) => Some((desc, Some(field.clone()))),
                _ => None,
            },
            _ => None,
        }
    }

    fn direct_message(
        &self,
        target: MessageDescriptor,
        field: Option<FieldDescriptor>,
        body: &[u8],
    ) -> Result<Bytes, Status> {
        let mut json = serde_json::Deserializer::from_slice(body);
        let mut track = serde_path_to_error::Track::new();
        let tracked = serde_path_to_error::Deserializer::new(&mut json, &mut track);
        let decoded =
            DynamicMessage::deserialize_with_options(target, tracked, &DeserializeOptions::new())
                .and_then(|message| json.end().map(|()| message));
        let prefix = field.as_ref().map(|f| f.name());
        let inner = decoded.map_err(|e| {
            if e.is_data() {
                body_error(BODY, prefix, &track.path().to_string(), &e)
            } else {
                Status::invalid_argument(format!("the request body is not valid JSON: {e}"))
            }
        })?;
        let mut message = match field {
            None => inner,
            Some(field) => {
                let mut outer = DynamicMessage::new(self.input());
                outer.set_field(&field, Value::Message(inner));
                outer
            }
        };
        for variable in &self.binding.variables {
            clear_path(&mut message, &variable.fields);
        }
        Ok(self.finish_message(message))
    }

    fn json_message(&self, json: Option<Json>, origin: &str) -> Result<Bytes, Status> {
        let implied_mask = self.implied_update_mask(json.as_ref());
        let input = self.input();
        let mut message = match (&self.binding.body, json) {
            (BodyRule::None, _) | (_, None) => DynamicMessage::new(input),
            (BodyRule::Whole, Some(json)) => from_json(input, json, origin)?,
            (BodyRule::Field(field), Some(json)) => {
                let mut wrapper = Map::new();
                wrapper.insert(field.name().to_owned(), json);
                from_json(input, Json::Object(wrapper), origin)?
            }
        };
        for variable in &self.binding.variables {
            clear_path(&mut message, &variable.fields);
        }
        if let Some((field, mask)) = implied_mask
            && !message.has_field(&field)
        {
            message.set_field(&field, Value::Message(mask));
        }
        Ok(self.finish_message(message))
    }

    /// A PATCH whose request has an `update_mask` the client left out gets one listing the
    /// fields present in the body, so that partial updates touch only what was sent.
    fn implied_update_mask(
        &self,
        json: Option<&Json>,
    ) -> Option<(FieldDescriptor, DynamicMessage)> {
        let (mask_field, mask_type) = self.update_mask_field()?;
        let Some(Json::Object(object)) = json else {
            return None;
        };
        let described = match &self.binding.body {
            BodyRule::Whole => self.input(),
            BodyRule::Field(field) => match field.kind() {
                Kind::Message(desc) => desc,
                _ => return None,
            },
            BodyRule::None => return None,
        };
        let mut paths = Vec::new();
        mask_paths(&described, object, "", &mut paths);
        paths.retain(|p| p != "update_mask");
        if paths.is_empty() {
            return None;
        }
        let mut mask = DynamicMessage::new(mask_type);
        mask.set_field_by_name(
            "paths",
            Value::List(paths.into_iter().map(Value::String).collect()),
        );
        Some((mask_field, mask))
    }

    /// The `update_mask` field to fill on this call, if the call is a PATCH that has one and
    /// the query did not already set it.
    fn update_mask_field(&self) -> Option<(FieldDescriptor, MessageDescriptor)> {
        if self.binding.http_method != http::Method::PATCH || self.query_set_mask {
            return None;
        }
        let field = self.input().get_field_by_name("update_mask")?;
        match field.kind() {
            Kind::Message(mask) if mask.full_name() == FIELD_MASK && !field.is_list() => {
                Some((field, mask))
            }
            _ => None,
        }
    }

    fn finish_message(&self, message: DynamicMessage) -> Bytes {
        let mut out = BytesMut::with_capacity(message.encoded_len() + self.bound.len());
        // Encoding into a BytesMut grows it as needed, so this cannot fail.
        let _ = message.encode(&mut out);
        out.put_slice(&self.bound);
        out.freeze()
    }
}

fn from_json(desc: MessageDescriptor, json: Json, origin: &str) -> Result<DynamicMessage, Status> {
    let mut track = serde_path_to_error::Track::new();
    let deserializer = serde_path_to_error::Deserializer::new(json, &mut track);
    DynamicMessage::deserialize_with_options(desc, deserializer, &DeserializeOptions::new())
        .map_err(|e| body_error(origin, None, &track.path().to_string(), &e))
}

/// A 400 naming where in the body the problem is (`.` is the top level).
fn body_error(
    origin: &str,
    prefix: Option<&str>,
    path: &str,
    error: &dyn std::fmt::Display,
) -> Status {
    let path = match (prefix, path) {
        (None, ".") => String::new(),
        (Some(prefix), ".") => prefix.to_owned(),
        (None, path) => path.to_owned(),
        (Some(prefix), path) => format!("{prefix}.{path}"),
    };
    let at = if path.is_empty() {
        String::new()
    } else {
        format!(" at `{path}`")
    };
    Status::invalid_argument(format!("{origin}{at}: {error}"))
}

fn mask_paths(
    desc: &MessageDescriptor,
    object: &Map<String, Json>,
    prefix: &str,
    out: &mut Vec<String>,
) {
    for (key, value) in object {
        let Some(field) = field_named(desc, key) else {
            continue;
        };
        let path = format!("{prefix}{}", field.name());
        match (field.kind(), value) {
            (Kind::Message(nested), Json::Object(inner))
                if !field.is_list()
                    && !field.is_map()
                    && !nested.full_name().starts_with("google.protobuf.")
                    && !is_wrapper(nested.full_name())
                    && !inner.is_empty() =>
            {
                mask_paths(&nested, inner, &format!("{path}."), out);
            }
            _ => out.push(path),
        }
    }
}

/// The body of a client-streaming call, turned into request messages as bytes arrive.
#[derive(Debug)]
pub struct RequestStream {
    call: Call,
    content_type: Option<String>,
    splitter: JsonSplitter,
    count: usize,
}

impl RequestStream {
    /// Feeds a chunk of the HTTP body; returns the encoded messages it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Bytes>, Status> {
        if let Some(target) = &self.call.binding.raw_body {
            if chunk.is_empty() {
                return Ok(Vec::new());
            }
            let content_type = self.content_type.as_deref();
            return Ok(vec![self.call.raw_message(target, content_type, chunk)]);
        }
        let values = self.splitter.push(chunk)?;
        self.encode(values)
    }

    /// Call at the end of the body: fails if it stopped inside a message or an open array.
    pub fn finish(&mut self) -> Result<Vec<Bytes>, Status> {
        if self.call.binding.raw_body.is_some() {
            return Ok(Vec::new());
        }
        let values = self.splitter.finish()?;
        self.encode(values)
    }

    fn encode(&mut self, values: Vec<Json>) -> Result<Vec<Bytes>, Status> {
        values
            .into_iter()
            .map(|value| {
                self.count += 1;
                let origin = format!("message {} of the request stream", self.count);
                self.call.json_message(Some(value), &origin)
            })
            .collect()
    }
}
