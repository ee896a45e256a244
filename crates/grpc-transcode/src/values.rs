//! Text from a URL (a path variable or a query value) turned into a typed field value, and
//! values set at nested field paths, creating the messages on the way.

use base64::Engine as _;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value};

/// Parses `text` as a value of `kind`; the error says what was expected.
pub(crate) fn parse(kind: &Kind, text: &str) -> Result<Value, String> {
    fn number<T: std::str::FromStr>(text: &str, name: &str) -> Result<T, String> {
        text.parse()
            .map_err(|_| format!("`{text}` is not a valid {name}"))
    }
    Ok(match kind {
        Kind::Double => Value::F64(float(text)?),
        Kind::Float => Value::F32(float(text)? as f32),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(number(text, "int32")?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(number(text, "int64")?),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(number(text, "uint32")?),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(number(text, "uint64")?),
        Kind::Bool => Value::Bool(match text {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(format!("`{text}` is not a valid bool (true or false)")),
        }),
        Kind::String => Value::String(text.to_owned()),
        Kind::Bytes => Value::Bytes(bytes(text)?.into()),
        Kind::Enum(desc) => {
            if let Some(value) = desc.get_value_by_name(text) {
                Value::EnumNumber(value.number())
            } else if let Ok(n) = text.parse::<i32>() {
                Value::EnumNumber(n)
            } else {
                return Err(format!("`{text}` is not a value of `{}`", desc.full_name()));
            }
        }
        Kind::Message(desc) => Value::Message(well_known(desc, text)?),
    })
}

fn float(text: &str) -> Result<f64, String> {
    match text {
        "NaN" => Ok(f64::NAN),
        "Infinity" => Ok(f64::INFINITY),
        "-Infinity" => Ok(f64::NEG_INFINITY),
        _ => text
            .parse()
            .map_err(|_| format!("`{text}` is not a valid number")),
    }
}

fn bytes(text: &str) -> Result<Vec<u8>, String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
        .ok_or_else(|| format!("`{text}` is not valid base64"))
}

/// Well-known types that have a one-string form: wrappers, Timestamp, Duration, FieldMask.
fn well_known(desc: &MessageDescriptor, text: &str) -> Result<DynamicMessage, String> {
    let name = desc.full_name();
    if is_wrapper(name) {
        let field = desc
            .get_field_by_name("value")
            .ok_or_else(|| format!("`{name}` has no `value` field"))?;
        let mut message = DynamicMessage::new(desc.clone());
        message.set_field(&field, parse(&field.kind(), text)?);
        return Ok(message);
    }
    match name {
        "google.protobuf.FieldMask" => field_mask(desc, text),
        "google.protobuf.Timestamp" | "google.protobuf.Duration" => {
            let json = serde_json::Value::String(text.to_owned());
            DynamicMessage::deserialize(desc.clone(), json)
                .map_err(|e| format!("`{text}` is not a valid {name}: {e}"))
        }
        _ => Err(format!(
            "`{name}` is a message; set its fields one by one (`field.subfield=value`)"
        )),
    }
}

/// A comma-separated list of field paths, in lowerCamel (the JSON form) or `.proto` names, as
/// clients write both in URLs.
fn field_mask(desc: &MessageDescriptor, text: &str) -> Result<DynamicMessage, String> {
    let mut paths = Vec::new();
    for path in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if !path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            return Err(format!("`{path}` is not a field path"));
        }
        let mut snake = String::with_capacity(path.len() + 4);
        for c in path.chars() {
            if c.is_ascii_uppercase() {
                snake.push('_');
                snake.push(c.to_ascii_lowercase());
            } else {
                snake.push(c);
            }
        }
        paths.push(Value::String(snake));
    }
    let mut mask = DynamicMessage::new(desc.clone());
    mask.set_field_by_name("paths", Value::List(paths));
    Ok(mask)
}

/// `google.protobuf.*Value`: a scalar that can be absent.
pub(crate) fn is_wrapper(full_name: &str) -> bool {
    matches!(
        full_name,
        "google.protobuf.DoubleValue"
            | "google.protobuf.FloatValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.Int32Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.BoolValue"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
    )
}

/// Sets (or, for a repeated leaf, appends) `value` at `fields` below `message`.
pub(crate) fn set_path(message: &mut DynamicMessage, fields: &[FieldDescriptor], value: Value) {
    let Some((leaf, parents)) = fields.split_last() else {
        return;
    };
    let mut target = message;
    for field in parents {
        match target.get_field_mut(field) {
            Value::Message(next) => target = next,
            _ => return,
        }
    }
    if leaf.is_list() {
        if let Value::List(items) = target.get_field_mut(leaf) {
            items.push(value);
        }
    } else {
        target.set_field(leaf, value);
    }
}

/// Clears the field at `fields` if the messages on the way exist.
pub(crate) fn clear_path(message: &mut DynamicMessage, fields: &[FieldDescriptor]) {
    let Some((leaf, parents)) = fields.split_last() else {
        return;
    };
    let mut target = message;
    for field in parents {
        if !target.has_field(field) {
            return;
        }
        match target.get_field_mut(field) {
            Value::Message(next) => target = next,
            _ => return,
        }
    }
    target.clear_field(leaf);
}

/// Finds a field by its proto name or its JSON name, as clients use either.
pub(crate) fn field_named(message: &MessageDescriptor, name: &str) -> Option<FieldDescriptor> {
    message
        .get_field_by_name(name)
        .or_else(|| message.get_field_by_json_name(name))
}
