//! Query parameters: each names a field path (`a.b.c`) outside the path and body bindings and
//! gives it a value; repeating a key appends to a repeated field.

use percent_encoding::percent_decode;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind};

use crate::rules::{Binding, BodyRule};
use crate::status::Status;
use crate::values::{field_named, parse, set_path};

/// Sets the fields named by `query` on `message`.
pub(crate) fn apply(
    message: &mut DynamicMessage,
    binding: &Binding,
    query: &str,
    ignore_unknown: bool,
) -> Result<(), Status> {
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode_form(raw_key)?;
        let value = decode_form(raw_value)?;
        let fields = match target(binding, &key) {
            Ok(fields) => fields,
            Err(_) if ignore_unknown => continue,
            Err(problem) => {
                return Err(Status::invalid_argument(format!(
                    "query parameter `{key}`: {problem}"
                )));
            }
        };
        let Some(leaf) = fields.last() else { continue };
        let parsed = parse(&leaf.kind(), &value).map_err(|problem| {
            Status::invalid_argument(format!("query parameter `{key}`: {problem}"))
        })?;
        set_path(message, &fields, parsed);
    }
    Ok(())
}

/// Resolves a parameter name to the fields it sets, or says why it cannot be used.
fn target(binding: &Binding, key: &str) -> Result<Vec<FieldDescriptor>, String> {
    if matches!(binding.body, BodyRule::Whole) {
        return Err(
            "this method takes every field not in the path from the body, so it has no query parameters"
                .into(),
        );
    }
    let mut message = binding.method.input();
    let mut fields: Vec<FieldDescriptor> = Vec::new();
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let field = field_named(&message, part).ok_or_else(|| {
            format!(
                "unknown field: `{}` has no field `{part}`",
                message.full_name()
            )
        })?;
        let last = i + 1 == parts.len();
        if field.is_map() {
            return Err("map fields cannot be set from the query".into());
        }
        match field.kind() {
            Kind::Message(next) if !last => {
                if field.is_list() {
                    return Err("repeated messages cannot be set from the query".into());
                }
                message = next;
            }
            _ if !last => return Err(format!("`{part}` is not a message")),
            Kind::Message(_) if field.is_list() => {
                return Err("repeated messages cannot be set from the query".into());
            }
            _ => {}
        }
        fields.push(field);
    }
    if let BodyRule::Field(body) = &binding.body
        && fields.first() == Some(body)
    {
        return Err(format!(
            "the field `{}` comes from the request body",
            body.name()
        ));
    }
    for variable in &binding.variables {
        let overlap = variable.fields.len().min(fields.len());
        if variable.fields[..overlap] == fields[..overlap] {
            return Err("the field is bound by the URL path".into());
        }
    }
    Ok(fields)
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, then percent-decoding.
fn decode_form(raw: &str) -> Result<String, Status> {
    let spaced = raw.replace('+', " ");
    percent_decode(spaced.as_bytes())
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| {
            Status::invalid_argument(format!("query parameter `{raw}` is not valid UTF-8"))
        })
}
