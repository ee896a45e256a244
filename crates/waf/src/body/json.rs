//! JSON bodies: every scalar becomes an argument named by its path, as ModSecurity
//! names them (`json.user.name`, array items `json.list.array_0`).
//!
//! The document is read in one pass without building a tree and without recursion: the
//! path of the current value lives in one buffer that grows by a segment when a container
//! opens and shrinks back when it closes, so only the stored arguments copy it. Nesting and
//! what the values may add up to are checked as the reader goes ([`Budget`]), so a hostile
//! document stops at the limit instead of being expanded first. Numbers are kept as
//! written, as ModSecurity's parser hands them to rules; keys repeated in an object each
//! yield their argument, so none escapes inspection.

use std::fmt::Write as _;

use super::{BodyError, Budget, Limit, Pair};

/// What a container being read needs to name its next value.
enum Open {
    /// Its path's length in the path buffer.
    Object { path: usize },
    /// Its path's length, and the index of its next item.
    Array { path: usize, next: usize },
}

/// Where a string's text is: in the document as written, or decoded into the scratch
/// buffer (it held escapes).
enum Text {
    Raw(usize, usize),
    Decoded,
}

struct Reader<'d> {
    data: &'d [u8],
    at: usize,
}

/// Parses `data`, adding its values to `out` within `budget`.
pub(crate) fn parse(
    data: &[u8],
    budget: &mut Budget,
    out: &mut Vec<Pair>,
) -> Result<(), BodyError> {
    let mut r = Reader { data, at: 0 };
    let mut path = String::from("json");
    let mut open: Vec<Open> = Vec::new();
    let mut scratch = Vec::new();
    loop {
        // A value, named by `path`.
        r.skip_space();
        match r.peek() {
            Some(b'{') => {
                r.at += 1;
                if open.len() >= budget.depth {
                    return Err(Limit::JsonDepth.into());
                }
                open.push(Open::Object { path: path.len() });
                r.skip_space();
                if r.peek() == Some(b'}') {
                    r.at += 1;
                    open.pop();
                } else {
                    r.key(&mut path, &mut scratch)?;
                    continue;
                }
            }
            Some(b'[') => {
                r.at += 1;
                if open.len() >= budget.depth {
                    return Err(Limit::JsonDepth.into());
                }
                open.push(Open::Array {
                    path: path.len(),
                    next: 1,
                });
                r.skip_space();
                if r.peek() == Some(b']') {
                    r.at += 1;
                    open.pop();
                } else {
                    path.push_str(".array_0");
                    continue;
                }
            }
            Some(b'"') => {
                let value = match r.string(&mut scratch)? {
                    Text::Raw(start, end) => &data[start..end],
                    Text::Decoded => &scratch[..],
                };
                add(&path, value, budget, out)?;
            }
            Some(b't') => add(&path, r.literal(b"true")?, budget, out)?,
            Some(b'f') => add(&path, r.literal(b"false")?, budget, out)?,
            Some(b'n') => {
                r.literal(b"null")?;
                add(&path, b"", budget, out)?;
            }
            Some(b'-' | b'0'..=b'9') => {
                let number = r.number()?;
                add(&path, number, budget, out)?;
            }
            Some(_) => return Err(r.error("expected value")),
            None => return Err(r.error("EOF while parsing a value")),
        }
        // After a value: the next one of its container, or the container's end.
        loop {
            r.skip_space();
            match open.last_mut() {
                None => {
                    if r.at < data.len() {
                        return Err(r.error("trailing characters"));
                    }
                    return Ok(());
                }
                Some(Open::Object { path: len }) => {
                    path.truncate(*len);
                    match r.next() {
                        Some(b',') => {
                            r.skip_space();
                            r.key(&mut path, &mut scratch)?;
                            break;
                        }
                        Some(b'}') => {
                            open.pop();
                        }
                        Some(_) => return Err(r.error("expected `,` or `}`")),
                        None => return Err(r.error("EOF while parsing an object")),
                    }
                }
                Some(Open::Array { path: len, next }) => {
                    path.truncate(*len);
                    match r.next() {
                        Some(b',') => {
                            // Writing to a String cannot fail.
                            let _ = write!(path, ".array_{next}");
                            *next += 1;
                            break;
                        }
                        Some(b']') => {
                            open.pop();
                        }
                        Some(_) => return Err(r.error("expected `,` or `]`")),
                        None => return Err(r.error("EOF while parsing a list")),
                    }
                }
            }
        }
    }
}

/// Stores one argument, if the budget has room for it.
fn add(path: &str, value: &[u8], budget: &mut Budget, out: &mut Vec<Pair>) -> Result<(), Limit> {
    budget.take(path.len() + value.len())?;
    out.push((path.to_owned(), value.to_vec()));
    Ok(())
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.data.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn error(&self, what: &str) -> BodyError {
        BodyError::Malformed(format!("JSON parsing error: {what} at offset {}", self.at))
    }

    /// Reads `"key":` and appends `.key` to the path.
    fn key(&mut self, path: &mut String, scratch: &mut Vec<u8>) -> Result<(), BodyError> {
        if self.peek() != Some(b'"') {
            return Err(self.error("key must be a string"));
        }
        let key = match self.string(scratch)? {
            Text::Raw(start, end) => &self.data[start..end],
            Text::Decoded => &scratch[..],
        };
        // Strings are checked to be UTF-8 as they are read.
        let key = std::str::from_utf8(key).map_err(|_| self.error("invalid unicode"))?;
        path.push('.');
        path.push_str(key);
        self.skip_space();
        if self.next() != Some(b':') {
            return Err(self.error("expected `:`"));
        }
        Ok(())
    }

    /// Reads a string (the reader is at its opening quote). Text without escapes is
    /// left where it is; text with escapes is decoded into `scratch`.
    fn string(&mut self, scratch: &mut Vec<u8>) -> Result<Text, BodyError> {
        self.at += 1;
        let start = self.at;
        let mut decoded = false;
        loop {
            let Some(off) = memchr::memchr2(b'"', b'\\', &self.data[self.at..]) else {
                self.at = self.data.len();
                return Err(self.error("EOF while parsing a string"));
            };
            let run = &self.data[self.at..self.at + off];
            if let Some(bad) = run.iter().position(|&b| b < 0x20) {
                self.at += bad;
                return Err(self.error("control character in string"));
            }
            if std::str::from_utf8(run).is_err() {
                return Err(self.error("invalid UTF-8 in string"));
            }
            if decoded {
                scratch.extend_from_slice(run);
            }
            self.at += off;
            if self.data[self.at] == b'"' {
                let end = self.at;
                self.at += 1;
                return Ok(if decoded {
                    Text::Decoded
                } else {
                    Text::Raw(start, end)
                });
            }
            if !decoded {
                decoded = true;
                scratch.clear();
                scratch.extend_from_slice(&self.data[start..self.at]);
            }
            self.escape(scratch)?;
        }
    }

    /// Decodes one escape (the reader is at its backslash) into `out`.
    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        self.at += 1;
        let c = match self.next() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let first = self.hex4()?;
                let code = match first {
                    0xD800..=0xDBFF => {
                        if self.data.get(self.at..self.at + 2) != Some(b"\\u") {
                            return Err(self.error("lone leading surrogate in hex escape"));
                        }
                        self.at += 2;
                        let second = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&second) {
                            return Err(self.error("lone leading surrogate in hex escape"));
                        }
                        0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                    }
                    0xDC00..=0xDFFF => {
                        return Err(self.error("lone trailing surrogate in hex escape"));
                    }
                    other => other,
                };
                char::from_u32(code).ok_or_else(|| self.error("invalid unicode escape"))?
            }
            Some(_) => return Err(self.error("invalid escape")),
            None => return Err(self.error("EOF while parsing a string")),
        };
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, BodyError> {
        let digits = self
            .data
            .get(self.at..self.at + 4)
            .ok_or_else(|| self.error("EOF while parsing a string"))?;
        let mut n = 0;
        for &d in digits {
            let v = (d as char)
                .to_digit(16)
                .ok_or_else(|| self.error("invalid escape"))?;
            n = n * 16 + v;
        }
        self.at += 4;
        Ok(n)
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<&'static [u8], BodyError> {
        if self.data.get(self.at..self.at + word.len()) != Some(word) {
            return Err(self.error("expected ident"));
        }
        self.at += word.len();
        Ok(word)
    }

    /// Reads a number as written: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Result<&[u8], BodyError> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.next() {
            Some(b'0') => {
                if self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    return Err(self.error("invalid number"));
                }
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err(self.error("invalid number"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err(self.error("invalid number"));
            }
            self.digits();
        }
        Ok(&self.data[start..self.at])
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roomy() -> Budget {
        Budget::new(1000, 1 << 20, 128)
    }

    fn args(data: &[u8]) -> Result<Vec<Pair>, BodyError> {
        let mut out = Vec::new();
        parse(data, &mut roomy(), &mut out).map(|()| out)
    }

    #[test]
    fn names_nested_values_by_path() {
        let out = args(br#"{"a":{"b":"x"},"l":[1,true,null]}"#).unwrap();
        let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "json.a.b",
                "json.l.array_0",
                "json.l.array_1",
                "json.l.array_2"
            ]
        );
        assert_eq!(out[0].1, b"x");
        assert_eq!(out[1].1, b"1");
        assert_eq!(out[2].1, b"true");
        assert_eq!(out[3].1, b"");
        assert!(args(b"{bad").is_err());
    }

    #[test]
    fn reads_what_rfc_8259_allows_and_nothing_else() {
        let out = args(
            br#" [ "a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00" , -0.5e+3 , {} , [] , {"k" : [ [ 7 ] ] } ] "#,
        )
        .unwrap();
        assert_eq!(out[0].1, "a\"\\/\u{8}\u{c}\n\r\t\u{e9}\u{1F600}".as_bytes());
        assert_eq!(out[1], ("json.array_1".into(), b"-0.5e+3".to_vec()));
        assert_eq!(
            out[2],
            ("json.array_4.k.array_0.array_0".into(), b"7".to_vec())
        );
        assert_eq!(
            args(b"\"top\"").unwrap(),
            [("json".into(), b"top".to_vec())]
        );
        for bad in [
            &b""[..],
            b"   ",
            b"{\"a\":1,}",
            b"[1,]",
            b"[01]",
            b"[1.]",
            b"[.5]",
            b"[1e]",
            b"[-]",
            b"{'a':1}",
            b"{\"a\" 1}",
            b"{1:1}",
            b"[tru]",
            b"[nul]",
            b"[\"\\x\"]",
            b"[\"\\ud800\"]",
            b"[\"\\udc00\"]",
            b"[\"\x01\"]",
            b"[\"\xff\"]",
            b"[1] [2]",
            b"{\"a\":1",
            b"[1",
            b"[\"abc",
            b"\xef\xbb\xbf[]",
        ] {
            assert!(
                matches!(args(bad), Err(BodyError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn repeated_keys_each_yield_an_argument_in_document_order() {
        let out = args(br#"{"q":"1' OR 1=1","b":2,"q":"x"}"#).unwrap();
        let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["json.q", "json.b", "json.q"]);
        assert_eq!(out[0].1, b"1' OR 1=1");
    }

    #[test]
    fn nesting_past_the_depth_limit_stops_the_reader() {
        let mut out = Vec::new();
        let mut budget = Budget::new(1000, 1 << 20, 3);
        assert_eq!(parse(b"[[[1]]]", &mut budget, &mut out), Ok(()));
        let mut budget = Budget::new(1000, 1 << 20, 3);
        assert_eq!(
            parse(b"[[[{\"a\":1}]]]", &mut budget, &mut out),
            Err(BodyError::Limit(Limit::JsonDepth))
        );
        // Deep nesting needs no stack: a million brackets are refused, not a crash.
        let deep = "[".repeat(1_000_000);
        let mut budget = Budget::new(1000, 1 << 20, usize::MAX);
        assert!(matches!(
            parse(deep.as_bytes(), &mut budget, &mut out),
            Err(BodyError::Malformed(_))
        ));
    }

    #[test]
    fn values_past_the_budget_stop_the_reader() {
        let mut out = Vec::new();
        let mut budget = Budget::new(2, 1 << 20, 8);
        assert_eq!(
            parse(b"[1,2,3]", &mut budget, &mut out),
            Err(BodyError::Limit(Limit::Arguments))
        );
        assert_eq!(out.len(), 2);
        // One long key over many items: each name repeats the key, so the bytes run out
        // long before the values do.
        let key = "A".repeat(20_000);
        let items = vec!["0"; 20_000].join(",");
        let bomb = format!("{{\"{key}\":[{items}]}}");
        let mut out = Vec::new();
        let mut budget = Budget::new(usize::MAX, 200_000, 8);
        assert_eq!(
            parse(bomb.as_bytes(), &mut budget, &mut out),
            Err(BodyError::Limit(Limit::ArgumentBytes))
        );
        assert_eq!(out.len(), 9);
    }
}
