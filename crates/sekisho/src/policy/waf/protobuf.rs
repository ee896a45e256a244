//! Arguments for the rules from a protobuf message read without its schema: every
//! length-delimited field that is text becomes an argument named by its field path (`1.2`),
//! nested messages are read the same way, and varints become numbers.

use std::fmt::Write as _;

/// Nesting deeper than this is inspected as raw bytes only.
const MAX_DEPTH: usize = 16;

/// The arguments of one message: at most `limit` and one more, so the engine sees a
/// message with more fields than it inspects (and refuses it) without this reading them
/// all. Field paths are built in one buffer, a segment pushed and popped per level.
pub fn args(message: &[u8], limit: usize) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if is_message(message) {
        collect(message, &mut String::new(), 0, limit, &mut out);
    }
    out
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// The fields of a message as they are read; an `Err` ends a malformed one.
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Value<'a>), ()>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.0.is_empty() {
                return None;
            }
            match self.field() {
                Some(Some(field)) => return Some(Ok(field)),
                // A fixed-width field: not inspected.
                Some(None) => continue,
                None => {
                    self.0 = &[];
                    return Some(Err(()));
                }
            }
        }
    }
}

impl<'a> Fields<'a> {
    /// The next field (`Some(None)` for one skipped), or `None` when malformed.
    fn field(&mut self) -> Option<Option<(u64, Value<'a>)>> {
        let bytes = &mut self.0;
        let key = varint(bytes)?;
        let number = key >> 3;
        if number == 0 {
            return None;
        }
        Some(match key & 7 {
            0 => Some((number, Value::Varint(varint(bytes)?))),
            1 => {
                *bytes = bytes.get(8..)?;
                None
            }
            2 => {
                let len = usize::try_from(varint(bytes)?).ok()?;
                let (field, rest) = (bytes.get(..len)?, bytes.get(len..)?);
                *bytes = rest;
                Some((number, Value::Bytes(field)))
            }
            5 => {
                *bytes = bytes.get(4..)?;
                None
            }
            _ => return None,
        })
    }
}

/// Whether `bytes` read as a well-formed message (checked without collecting its fields).
fn is_message(bytes: &[u8]) -> bool {
    Fields(bytes).all(|f| f.is_ok())
}

/// Adds the fields of a well-formed message, named under `path`.
fn collect(
    message: &[u8],
    path: &mut String,
    depth: usize,
    limit: usize,
    out: &mut Vec<(String, Vec<u8>)>,
) {
    for (number, value) in Fields(message).flatten() {
        if out.len() > limit {
            return;
        }
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        // Writing to a String cannot fail.
        let _ = write!(path, "{number}");
        match value {
            Value::Varint(n) => out.push((path.clone(), n.to_string().into_bytes())),
            Value::Bytes(bytes) => {
                let nested = depth < MAX_DEPTH && !bytes.is_empty() && is_message(bytes);
                let text = std::str::from_utf8(bytes).ok();
                // Text that also reads as a message is both, unless it holds control
                // characters (field keys), which text rarely does.
                let plain = text.is_some_and(|t| {
                    !t.chars()
                        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
                });
                if text.is_some() && (!nested || plain) {
                    out.push((path.clone(), bytes.to_vec()));
                }
                if nested && !(plain && text.is_some()) {
                    collect(bytes, path, depth + 1, limit, out);
                }
            }
        }
        path.truncate(len);
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
        let args = args(&message, 100);
        let names: Vec<&str> = args.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["1", "3.2", "4"]);
        assert_eq!(args[1].1, b"1' OR '1'='1");
        assert_eq!(args[2].1, b"42");
    }

    #[test]
    fn bytes_that_are_not_a_message_yield_nothing() {
        assert!(args(&[0xff, 0xff], 100).is_empty());
        assert!(args(&field(1, &[0xff, 0xfe]), 100).is_empty());
    }

    #[test]
    fn reading_stops_one_past_the_limit() {
        let message: Vec<u8> = (0..50).flat_map(|_| field(1, b"x")).collect();
        assert_eq!(args(&message, 10).len(), 11);
        assert_eq!(args(&message, 100).len(), 50);
    }
}
