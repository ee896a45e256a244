//! XML bodies, read far enough for `XML:/*` (the document's text) and `XML://@*`
//! (every attribute value). Entities other than the predefined and numeric ones are
//! left as written: nothing external is ever loaded. Nesting and the attribute values a
//! document yields are bounded ([`Budget`]); element names are kept as slices of the
//! document, so nesting costs no copies.

use super::{BodyError, Budget, Limit};

/// The parts of an XML document rules inspect.
#[derive(Debug, Clone, Default)]
pub(crate) struct Document {
    /// All text and CDATA content, concatenated in document order.
    pub text: Vec<u8>,
    pub attributes: Vec<Vec<u8>>,
}

/// Parses `data` within `budget` into `doc`: each attribute value is one value, the text
/// is counted in bytes. An error means the document is not well formed or breaks a limit;
/// `doc` then holds what was read before it.
pub(crate) fn parse(data: &[u8], budget: &mut Budget, doc: &mut Document) -> Result<(), BodyError> {
    let mut stack: Vec<&[u8]> = Vec::new();
    let mut seen_root = false;
    let mut i = 0;
    while i < data.len() {
        if data[i] != b'<' {
            let end = data[i..]
                .iter()
                .position(|&b| b == b'<')
                .map_or(data.len(), |p| i + p);
            let text = &data[i..end];
            if stack.is_empty() {
                if !text.iter().all(u8::is_ascii_whitespace) {
                    return Err(malformed("text outside the root element"));
                }
            } else {
                // Decoding never lengthens text.
                budget.take_bytes(text.len())?;
                decode_into(text, &mut doc.text);
            }
            i = end;
            continue;
        }
        let rest = &data[i..];
        if rest.starts_with(b"<!--") {
            i += find(rest, b"-->").ok_or_else(|| malformed("unclosed comment"))? + 3;
        } else if rest.starts_with(b"<![CDATA[") {
            let end = find(rest, b"]]>").ok_or_else(|| malformed("unclosed CDATA"))?;
            budget.take_bytes(end - 9)?;
            doc.text.extend_from_slice(&rest[9..end]);
            i += end + 3;
        } else if rest.starts_with(b"<?") {
            i += find(rest, b"?>").ok_or_else(|| malformed("unclosed processing instruction"))? + 2;
        } else if rest.starts_with(b"<!") {
            i += declaration_end(rest).ok_or_else(|| malformed("unclosed declaration"))?;
        } else if rest.starts_with(b"</") {
            let end = find(rest, b">").ok_or_else(|| malformed("unclosed end tag"))?;
            let name = rest[2..end].trim_ascii();
            match stack.pop() {
                Some(open) if open == name => {}
                _ => return Err(malformed("mismatched end tag")),
            }
            i += end + 1;
        } else {
            let (len, name, self_closing) = start_tag(rest, &mut doc.attributes, budget)?;
            if stack.is_empty() {
                if seen_root {
                    return Err(malformed("extra content after the root element"));
                }
                seen_root = true;
            }
            // An empty element is nested as deep as one with content.
            if stack.len() >= budget.depth {
                return Err(Limit::XmlDepth.into());
            }
            if !self_closing {
                stack.push(name);
            }
            i += len;
        }
    }
    if !stack.is_empty() || !seen_root {
        return Err(malformed("premature end of document"));
    }
    Ok(())
}

fn malformed(what: &str) -> BodyError {
    BodyError::Malformed(format!("XML parsing error: {what}"))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

/// `<!DOCTYPE ... [ ... ]>` may nest brackets and hold `>` inside them.
fn declaration_end(rest: &[u8]) -> Option<usize> {
    let mut depth = 0i32;
    let mut quote = None;
    for (i, &b) in rest.iter().enumerate().skip(2) {
        match (quote, b) {
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'[') => depth += 1,
            (None, b']') => depth -= 1,
            (None, b'>') if depth <= 0 => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// Reads a start tag, collecting attribute values; returns its length and name.
fn start_tag<'d>(
    rest: &'d [u8],
    attributes: &mut Vec<Vec<u8>>,
    budget: &mut Budget,
) -> Result<(usize, &'d [u8], bool), BodyError> {
    let bad = || malformed("malformed start tag");
    let mut i = 1;
    let name_end = rest[i..]
        .iter()
        .position(|&b| b.is_ascii_whitespace() || b == b'>' || b == b'/')
        .map_or(rest.len(), |p| i + p);
    let name = &rest[i..name_end];
    if name.is_empty() {
        return Err(bad());
    }
    i = name_end;
    loop {
        while i < rest.len() && rest[i].is_ascii_whitespace() {
            i += 1;
        }
        match rest.get(i) {
            None => return Err(bad()),
            Some(b'>') => return Ok((i + 1, name, false)),
            Some(b'/') if rest.get(i + 1) == Some(&b'>') => return Ok((i + 2, name, true)),
            Some(_) => {
                let eq = rest[i..].iter().position(|&b| b == b'=').ok_or_else(bad)? + i;
                let mut j = eq + 1;
                while j < rest.len() && rest[j].is_ascii_whitespace() {
                    j += 1;
                }
                let quote = *rest.get(j).ok_or_else(bad)?;
                if quote != b'"' && quote != b'\'' {
                    return Err(bad());
                }
                let close = rest[j + 1..]
                    .iter()
                    .position(|&b| b == quote)
                    .ok_or_else(bad)?
                    + j
                    + 1;
                budget.take(close - j - 1)?;
                let mut value = Vec::new();
                decode_into(&rest[j + 1..close], &mut value);
                attributes.push(value);
                i = close + 1;
            }
        }
    }
}

/// Appends text with the predefined and numeric character references decoded.
fn decode_into(text: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'&'
            && let Some(len) = text[i..].iter().take(12).position(|&b| b == b';')
        {
            let entity = &text[i + 1..i + len];
            let decoded = match entity {
                b"lt" => Some('<'),
                b"gt" => Some('>'),
                b"amp" => Some('&'),
                b"quot" => Some('"'),
                b"apos" => Some('\''),
                [b'#', b'x' | b'X', hex @ ..] => std::str::from_utf8(hex)
                    .ok()
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .and_then(char::from_u32),
                [b'#', dec @ ..] => std::str::from_utf8(dec)
                    .ok()
                    .and_then(|d| d.parse().ok())
                    .and_then(char::from_u32),
                _ => None,
            };
            if let Some(c) = decoded {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                i += len + 1;
                continue;
            }
        }
        out.push(text[i]);
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roomy() -> Budget {
        Budget::new(1000, 1 << 20, 256)
    }

    fn parse(data: &[u8], budget: &mut Budget) -> Result<Document, BodyError> {
        let mut doc = Document::default();
        super::parse(data, budget, &mut doc).map(|()| doc)
    }

    #[test]
    fn text_and_attributes() {
        let d = parse(b"<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><r a='1 &lt; 2'><b c=\"z\">hi</b><![CDATA[<x>]]> there</r>", &mut roomy()).unwrap();
        assert_eq!(d.text, b"hi<x> there");
        assert_eq!(d.attributes, vec![b"1 < 2".to_vec(), b"z".to_vec()]);
    }

    #[test]
    fn malformed_documents_are_errors() {
        for bad in [&b"<a><b></a>"[..], b"not xml", b"<a>"] {
            assert!(matches!(
                parse(bad, &mut roomy()),
                Err(BodyError::Malformed(_))
            ));
        }
    }

    #[test]
    fn nesting_and_attributes_are_bounded() {
        let mut budget = Budget::new(1000, 1 << 20, 2);
        assert!(parse(b"<a><b/><b></b></a>", &mut budget).is_ok());
        for deep in [&b"<a><b><c/></b></a>"[..], b"<a><b><c></c></b></a>"] {
            let mut budget = Budget::new(1000, 1 << 20, 2);
            assert_eq!(
                parse(deep, &mut budget).err(),
                Some(BodyError::Limit(Limit::XmlDepth))
            );
        }
        let many = format!("<a{}/>", " x='1'".repeat(11));
        let mut budget = Budget::new(10, 1 << 20, 8);
        assert_eq!(
            parse(many.as_bytes(), &mut budget).err(),
            Some(BodyError::Limit(Limit::Arguments))
        );
        let mut budget = Budget::new(10, 8, 8);
        assert_eq!(
            parse(b"<a>0123456789</a>", &mut budget).err(),
            Some(BodyError::Limit(Limit::ArgumentBytes))
        );
    }
}
