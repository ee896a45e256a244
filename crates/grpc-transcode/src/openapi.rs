//! An OpenAPI 3.1 document for the REST surface, generated from the same descriptors and
//! rules the transcoder serves, so partners can generate clients that match it exactly.

use std::collections::{BTreeMap, BTreeSet};

use prost_reflect::{EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value, json};

use crate::rules::{Binding, BodyRule};
use crate::template::Segment;
use crate::values::is_wrapper;
use crate::{PrintOptions, Transcoder};

const HTTP_BODY: &str = "google.api.HttpBody";
const STATUS_SCHEMA: &str = "google.rpc.Status";
/// The media type of a server stream: one JSON object per line.
const NDJSON: &str = "application/x-ndjson";
/// The methods an OpenAPI 3.1 path item has a field for; validators refuse any other key
/// that is not an extension.
const OPERATION_FIELDS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];
/// Where operations of other methods (a `custom` rule such as `QUERY`) go: an extension named
/// after OpenAPI 3.2's `additionalOperations`, keyed by the method as sent, so a 3.2 document
/// later needs only the rename.
const CUSTOM_OPERATIONS: &str = "x-additionalOperations";

impl Transcoder {
    /// The OpenAPI 3.1 document (as JSON) describing every exposed binding.
    pub fn openapi(&self, title: &str, version: &str) -> Value {
        let mut document = Document {
            print: self.print_options,
            schemas: BTreeMap::new(),
            pending: Vec::new(),
            enums: BTreeSet::new(),
        };
        let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for binding in &self.rules.bindings {
            let base = format!(
                "{}_{}",
                binding.method.parent_service().name(),
                binding.method.name()
            );
            let count = seen.entry(base.clone()).or_default();
            let operation_id = if *count == 0 {
                base
            } else {
                format!("{base}_{count}")
            };
            *count += 1;
            let operation = document.operation(binding, operation_id);
            let item = paths.entry(openapi_path(binding)).or_default();
            let method = binding.http_method.as_str();
            let lower = method.to_ascii_lowercase();
            if OPERATION_FIELDS.contains(&lower.as_str()) {
                item.insert(lower, operation);
            } else if let Value::Object(custom) = item
                .entry(CUSTOM_OPERATIONS)
                .or_insert_with(|| Value::Object(Map::new()))
            {
                custom.insert(method.to_owned(), operation);
            }
        }
        document.drain();
        let mut schemas: Map<String, Value> = document.schemas.into_iter().collect();
        schemas.insert(STATUS_SCHEMA.into(), status_schema());
        json!({
            "openapi": "3.1.0",
            "info": { "title": title, "version": version },
            "paths": paths,
            "components": { "schemas": schemas },
        })
    }
}

/// `/v1/{name}` for `/v1/{name=shelves/*}`: OpenAPI has no multi-segment parameters, so the
/// pattern goes into the parameter's description.
fn openapi_path(binding: &Binding) -> String {
    let template = &binding.template;
    let mut out = String::new();
    let mut index = 0;
    while index < template.segments.len() {
        out.push('/');
        if let Some(variable) = binding.variables.iter().find(|v| v.start == index) {
            out.push('{');
            out.push_str(&dotted(&variable.fields));
            out.push('}');
            index = variable.end.unwrap_or(template.segments.len());
            continue;
        }
        match &template.segments[index] {
            Segment::Literal(text) => out.push_str(text),
            Segment::Single => out.push_str(&format!("{{segment{index}}}")),
            Segment::Multi => out.push_str(&format!("{{segment{index}}}")),
        }
        index += 1;
    }
    if out.is_empty() {
        out.push('/');
    }
    if let Some(verb) = &template.verb {
        out.push(':');
        out.push_str(verb);
    }
    out
}

fn dotted(fields: &[FieldDescriptor]) -> String {
    fields
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(".")
}

struct Document {
    print: PrintOptions,
    schemas: BTreeMap<String, Value>,
    pending: Vec<MessageDescriptor>,
    enums: BTreeSet<String>,
}

impl Document {
    fn operation(&mut self, binding: &Binding, operation_id: String) -> Value {
        let method = &binding.method;
        let mut parameters = Vec::new();
        for variable in &binding.variables {
            let Some(leaf) = variable.fields.last() else {
                continue;
            };
            let pattern: Vec<String> = binding.template.segments
                [variable.start..variable.end.unwrap_or(binding.template.segments.len())]
                .iter()
                .map(|s| match s {
                    Segment::Literal(t) => t.clone(),
                    Segment::Single => "*".into(),
                    Segment::Multi => "**".into(),
                })
                .collect();
            parameters.push(json!({
                "name": dotted(&variable.fields),
                "in": "path",
                "required": true,
                "schema": self.scalar_schema(leaf),
                "description": format!("Matches `{}`.", pattern.join("/")),
            }));
        }
        for (index, segment) in binding.template.segments.iter().enumerate() {
            let bound = binding
                .variables
                .iter()
                .any(|v| v.start <= index && v.end.is_none_or(|end| index < end));
            if !bound && matches!(segment, Segment::Single | Segment::Multi) {
                parameters.push(json!({
                    "name": format!("segment{index}"),
                    "in": "path",
                    "required": true,
                    "schema": { "type": "string" },
                }));
            }
        }
        if !matches!(binding.body, BodyRule::Whole) {
            let mut query = Vec::new();
            let bound: Vec<Vec<FieldDescriptor>> =
                binding.variables.iter().map(|v| v.fields.clone()).collect();
            let skip = match &binding.body {
                BodyRule::Field(field) => Some(field.clone()),
                _ => None,
            };
            self.query_parameters(
                &method.input(),
                &mut Vec::new(),
                &bound,
                skip.as_ref(),
                &mut query,
            );
            parameters.extend(query);
        }
        let mut operation = json!({
            "operationId": operation_id,
            "tags": [method.parent_service().full_name()],
            "summary": format!("{} ({})", method.name(), binding.grpc_path),
            "parameters": parameters,
            "responses": {
                "200": self.success_response(binding),
                "default": {
                    "description": "An error as google.rpc.Status, with the HTTP status of its code.",
                    "content": { "application/json": { "schema": reference(STATUS_SCHEMA) } },
                },
            },
        });
        if let Some(body) = self.request_body(binding) {
            operation["requestBody"] = body;
        }
        operation
    }

    fn request_body(&mut self, binding: &Binding) -> Option<Value> {
        if binding.raw_body.is_some() {
            return Some(raw_content());
        }
        let schema = match &binding.body {
            BodyRule::None => return None,
            BodyRule::Whole => self.message_schema(&binding.method.input()),
            BodyRule::Field(field) => self.field_schema(field),
        };
        let content = if binding.method.is_client_streaming() {
            json!({
                "application/x-ndjson": { "schema": schema },
                "application/json": { "schema": { "type": "array", "items": schema } },
            })
        } else {
            json!({ "application/json": { "schema": schema } })
        };
        Some(json!({ "required": false, "content": content }))
    }

    /// The 200 response object. What a streamed answer looks like is said in its
    /// `description`: OpenAPI 3.1's media type object has no such field.
    fn success_response(&mut self, binding: &Binding) -> Value {
        let content = self.response_content(binding);
        let description = if content.get(NDJSON).is_some() {
            "OK. One JSON object per line; a failure after the first ends the stream with \
             {\"error\": google.rpc.Status}."
        } else {
            "OK"
        };
        json!({ "description": description, "content": content })
    }

    fn response_content(&mut self, binding: &Binding) -> Value {
        let output = binding.method.output();
        let schema = match &binding.response_body {
            Some(field) => match field.kind() {
                Kind::Message(m) if m.full_name() == HTTP_BODY => {
                    return json!({ "*/*": { "schema": { "type": "string", "format": "binary" } } });
                }
                _ => self.field_schema(field),
            },
            None if output.full_name() == HTTP_BODY => {
                return json!({ "*/*": { "schema": { "type": "string", "format": "binary" } } });
            }
            None => self.message_schema(&output),
        };
        if binding.method.is_server_streaming() {
            json!({ NDJSON: { "schema": schema } })
        } else {
            json!({ "application/json": { "schema": schema } })
        }
    }

    /// Leaf fields reachable from the request, outside the path and body, as `a.b.c` names.
    fn query_parameters(
        &mut self,
        message: &MessageDescriptor,
        prefix: &mut Vec<FieldDescriptor>,
        bound: &[Vec<FieldDescriptor>],
        body: Option<&FieldDescriptor>,
        out: &mut Vec<Value>,
    ) {
        for field in message.fields() {
            if prefix.is_empty() && body == Some(&field) {
                continue;
            }
            prefix.push(field.clone());
            let is_bound = bound.iter().any(|b| {
                let n = b.len().min(prefix.len());
                b[..n] == prefix[..n]
            });
            let nested = match field.kind() {
                Kind::Message(m)
                    if !field.is_list() && !field.is_map() && !is_single_string(&m) =>
                {
                    Some(m)
                }
                _ => None,
            };
            if is_bound
                || field.is_map()
                || (field.is_list() && nested.is_none() && matches!(field.kind(), Kind::Message(_)))
            {
                // Not settable from the query.
            } else if let Some(nested) = nested {
                // Stop at recursion: a message already on the path would repeat forever.
                if prefix.len() < 6
                    && !prefix[..prefix.len() - 1]
                        .iter()
                        .any(|f| f.kind() == field.kind())
                {
                    self.query_parameters(&nested, prefix, bound, body, out);
                }
            } else {
                let name = prefix
                    .iter()
                    .map(|f| f.json_name())
                    .collect::<Vec<_>>()
                    .join(".");
                out.push(json!({
                    "name": name,
                    "in": "query",
                    "required": false,
                    "schema": self.field_schema(&field),
                    "explode": true,
                }));
            }
            prefix.pop();
        }
    }

    fn scalar_schema(&mut self, field: &FieldDescriptor) -> Value {
        self.kind_schema(&field.kind())
    }

    fn field_schema(&mut self, field: &FieldDescriptor) -> Value {
        if field.is_map() {
            let value = match field.kind() {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                other => other,
            };
            return json!({ "type": "object", "additionalProperties": self.kind_schema(&value) });
        }
        let single = self.kind_schema(&field.kind());
        if field.is_list() {
            json!({ "type": "array", "items": single })
        } else {
            single
        }
    }

    fn kind_schema(&mut self, kind: &Kind) -> Value {
        match kind {
            Kind::Double | Kind::Float => json!({ "type": "number" }),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                json!({ "type": "integer", "format": "int32" })
            }
            Kind::Uint32 | Kind::Fixed32 => {
                json!({ "type": "integer", "format": "int64", "minimum": 0 })
            }
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                json!({ "type": "string", "format": "int64" })
            }
            Kind::Uint64 | Kind::Fixed64 => json!({ "type": "string", "format": "uint64" }),
            Kind::Bool => json!({ "type": "boolean" }),
            Kind::String => json!({ "type": "string" }),
            Kind::Bytes => json!({ "type": "string", "contentEncoding": "base64" }),
            Kind::Enum(e) => self.enum_schema(e),
            Kind::Message(m) => self.message_schema(m),
        }
    }

    fn enum_schema(&mut self, desc: &EnumDescriptor) -> Value {
        let name = desc.full_name().to_owned();
        if self.enums.insert(name.clone()) {
            let schema = if self.print.enums_as_ints {
                let numbers: BTreeSet<i32> = desc.values().map(|v| v.number()).collect();
                json!({ "type": "integer", "enum": numbers.into_iter().collect::<Vec<_>>() })
            } else {
                // Declaration order, aliases included: clients may send any of them.
                let names: Vec<String> = desc
                    .enum_descriptor_proto()
                    .value
                    .iter()
                    .map(|v| v.name().to_owned())
                    .collect();
                json!({ "type": "string", "enum": names })
            };
            self.schemas.insert(name.clone(), schema);
        }
        reference(&name)
    }

    fn message_schema(&mut self, desc: &MessageDescriptor) -> Value {
        let name = desc.full_name();
        if let Some(schema) = well_known_schema(desc) {
            return schema;
        }
        if is_wrapper(name) {
            let inner = desc
                .get_field_by_name("value")
                .map(|f| self.kind_schema(&f.kind()))
                .unwrap_or_else(|| json!({}));
            return json!({ "oneOf": [inner, { "type": "null" }] });
        }
        if !self.schemas.contains_key(name) {
            self.schemas.insert(name.to_owned(), json!({}));
            self.pending.push(desc.clone());
        }
        reference(name)
    }

    /// Fills in the message schemas referenced so far, and those they reference in turn.
    fn drain(&mut self) {
        while let Some(desc) = self.pending.pop() {
            let mut properties = Map::new();
            for field in desc.fields() {
                let key = if self.print.original_names {
                    field.name().to_owned()
                } else {
                    field.json_name().to_owned()
                };
                let schema = self.field_schema(&field);
                properties.insert(key, schema);
            }
            self.schemas.insert(
                desc.full_name().to_owned(),
                json!({ "type": "object", "properties": properties }),
            );
        }
    }
}

/// Message types whose JSON form is a single string.
fn is_single_string(desc: &MessageDescriptor) -> bool {
    matches!(
        desc.full_name(),
        "google.protobuf.Timestamp" | "google.protobuf.Duration" | "google.protobuf.FieldMask"
    ) || is_wrapper(desc.full_name())
}

fn well_known_schema(desc: &MessageDescriptor) -> Option<Value> {
    Some(match desc.full_name() {
        "google.protobuf.Timestamp" => json!({ "type": "string", "format": "date-time" }),
        "google.protobuf.Duration" => {
            json!({ "type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$" })
        }
        "google.protobuf.FieldMask" => {
            json!({ "type": "string", "description": "Comma-separated lowerCamel field paths." })
        }
        "google.protobuf.Struct" => json!({ "type": "object" }),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.ListValue" => json!({ "type": "array" }),
        "google.protobuf.Empty" => json!({ "type": "object" }),
        "google.protobuf.Any" => json!({
            "type": "object",
            "properties": { "@type": { "type": "string" } },
            "additionalProperties": true,
        }),
        _ => return None,
    })
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn raw_content() -> Value {
    json!({ "required": true, "content": { "*/*": { "schema": { "type": "string", "format": "binary" } } } })
}

fn status_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "code": { "type": "integer", "format": "int32", "description": "The gRPC status code." },
            "message": { "type": "string" },
            "details": { "type": "array", "items": {
                "type": "object",
                "properties": { "@type": { "type": "string" } },
                "additionalProperties": true,
            } },
        },
    })
}
