//! Arguments for the rules from a protobuf message read without its schema: every
//! length-delimited field that is text becomes an argument named by its field path (`1.2`),
//! nested messages are read the same way, and varints become numbers.

/// Nesting deeper than this is inspected as raw bytes only.
const MAX_DEPTH: usize = 16;

/// The arguments of one message.
pub fn args(message: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if let Some(fields) = parse(message) {
        collect(&fields, "", 0, &mut out);
    }
    out
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// The fields of `bytes`, or `None` when they are not a well-formed message.
fn parse(mut bytes: &[u8]) -> Option<Vec<(u64, Value<'_>)>> {
    let mut fields = Vec::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes)?;
        let number = key >> 3;
        if number == 0 {
            return None;
        }
        let value = match key & 7 {
            0 => Value::Varint(varint(&mut bytes)?),
            1 => {
                bytes = bytes.get(8..)?;
                continue;
            }
            2 => {
                let len = usize::try_from(varint(&mut bytes)?).ok()?;
                let (field, rest) = (bytes.get(..len)?, bytes.get(len..)?);
                bytes = rest;
                Value::Bytes(field)
            }
            5 => {
                bytes = bytes.get(4..)?;
                continue;
            }
            _ => return None,
        };
        fields.push((number, value));
    }
    Some(fields)
}

fn collect(
    fields: &[(u64, Value<'_>)],
    prefix: &str,
    depth: usize,
    out: &mut Vec<(String, Vec<u8>)>,
) {
    for (number, value) in fields {
        let name = if prefix.is_empty() {
            number.to_string()
        } else {
            format!("{prefix}.{number}")
        };
        match value {
            Value::Varint(n) => out.push((name, n.to_string().into_bytes())),
            Value::Bytes(bytes) => {
                let nested = (depth < MAX_DEPTH && !bytes.is_empty())
                    .then(|| parse(bytes))
                    .flatten();
                let text = std::str::from_utf8(bytes).ok();
                // Text that also reads as a message is both, unless it holds control
                // characters (field keys), which text rarely does.
                let plain = text.is_some_and(|t| {
                    !t.chars()
                        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
                });
                if text.is_some() && (nested.is_none() || plain) {
                    out.push((name.clone(), bytes.to_vec()));
                }
                if let Some(fields) = nested
                    && !(plain && text.is_some())
                {
                    collect(&fields, &name, depth + 1, out);
                }
            }
        }
    }
}

fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(number: u8, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![number << 3 | 2, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn text_fields_are_named_by_their_path() {
        let inner = field(2, b"1' OR '1'='1");
        let mut message = field(1, b"hello");
        message.extend(field(3, &inner));
        message.extend([4 << 3, 42]);
        let args = args(&message);
        let names: Vec<&str> = args.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["1", "3.2", "4"]);
        assert_eq!(args[1].1, b"1' OR '1'='1");
        assert_eq!(args[2].1, b"42");
    }

    #[test]
    fn bytes_that_are_not_a_message_yield_nothing() {
        assert!(args(&[0xff, 0xff]).is_empty());
        assert!(args(&field(1, &[0xff, 0xfe])).is_empty());
    }
}
