//! XML bodies, read far enough for `XML:/*` (the document's text) and `XML://@*`
//! (every attribute value). Entities other than the predefined and numeric ones are
//! left as written: nothing external is ever loaded.

/// The parts of an XML document rules inspect.
#[derive(Debug, Clone, Default)]
pub(crate) struct Document {
    /// All text and CDATA content, concatenated in document order.
    pub text: Vec<u8>,
    pub attributes: Vec<Vec<u8>>,
}

/// Parses `data`; an error means the document is not well formed.
pub(crate) fn parse(data: &[u8]) -> Result<Document, String> {
    let mut doc = Document::default();
    let mut stack: Vec<Vec<u8>> = Vec::new();
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
                    return Err("XML parsing error: text outside the root element".into());
                }
            } else {
                decode_into(text, &mut doc.text);
            }
            i = end;
            continue;
        }
        let rest = &data[i..];
        if rest.starts_with(b"<!--") {
            i += find(rest, b"-->").ok_or("XML parsing error: unclosed comment")? + 3;
        } else if rest.starts_with(b"<![CDATA[") {
            let end = find(rest, b"]]>").ok_or("XML parsing error: unclosed CDATA")?;
            doc.text.extend_from_slice(&rest[9..end]);
            i += end + 3;
        } else if rest.starts_with(b"<?") {
            i += find(rest, b"?>").ok_or("XML parsing error: unclosed processing instruction")? + 2;
        } else if rest.starts_with(b"<!") {
            i += declaration_end(rest).ok_or("XML parsing error: unclosed declaration")?;
        } else if rest.starts_with(b"</") {
            let end = find(rest, b">").ok_or("XML parsing error: unclosed end tag")?;
            let name = rest[2..end].trim_ascii();
            match stack.pop() {
                Some(open) if open == name => {}
                _ => return Err("XML parsing error: mismatched end tag".into()),
            }
            i += end + 1;
        } else {
            let (len, name, self_closing) = start_tag(rest, &mut doc.attributes)?;
            if stack.is_empty() {
                if seen_root {
                    return Err("XML parsing error: extra content after the root element".into());
                }
                seen_root = true;
            }
            if !self_closing {
                stack.push(name);
            }
            i += len;
        }
    }
    if !stack.is_empty() || !seen_root {
        return Err("XML parsing error: premature end of document".into());
    }
    Ok(doc)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
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
fn start_tag(rest: &[u8], attributes: &mut Vec<Vec<u8>>) -> Result<(usize, Vec<u8>, bool), String> {
    let bad = || "XML parsing error: malformed start tag".to_string();
    let mut i = 1;
    let name_end = rest[i..]
        .iter()
        .position(|&b| b.is_ascii_whitespace() || b == b'>' || b == b'/')
        .map_or(rest.len(), |p| i + p);
    let name = rest[i..name_end].to_vec();
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

    #[test]
    fn text_and_attributes() {
        let d = parse(b"<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><r a='1 &lt; 2'><b c=\"z\">hi</b><![CDATA[<x>]]> there</r>").unwrap();
        assert_eq!(d.text, b"hi<x> there");
        assert_eq!(d.attributes, vec![b"1 < 2".to_vec(), b"z".to_vec()]);
    }

    #[test]
    fn malformed_documents_are_errors() {
        assert!(parse(b"<a><b></a>").is_err());
        assert!(parse(b"not xml").is_err());
        assert!(parse(b"<a>").is_err());
    }
}
