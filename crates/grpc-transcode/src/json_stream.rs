//! Splits a client-streaming body into JSON objects without waiting for its end: either
//! newline-delimited (or simply concatenated) objects, or one JSON array of objects.

use serde_json::Value;

use crate::status::Status;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Mode {
    #[default]
    Unknown,
    Sequence,
    ArrayValue {
        first: bool,
    },
    ArrayComma,
    ArrayClosed,
}

/// Incremental scanner: tracks strings and nesting depth to find where each object ends.
#[derive(Debug)]
pub(crate) struct JsonSplitter {
    max_message: usize,
    buffer: Vec<u8>,
    scanned: usize,
    start: Option<usize>,
    depth: u32,
    in_string: bool,
    escaped: bool,
    mode: Mode,
    consumed: usize,
}

impl JsonSplitter {
    pub fn new(max_message: usize) -> JsonSplitter {
        JsonSplitter {
            max_message,
            buffer: Vec::new(),
            scanned: 0,
            start: None,
            depth: 0,
            in_string: false,
            escaped: false,
            mode: Mode::Unknown,
            consumed: 0,
        }
    }

    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Value>, Status> {
        self.buffer.extend_from_slice(chunk);
        let mut out = Vec::new();
        let mut i = self.scanned;
        while i < self.buffer.len() {
            let byte = self.buffer[i];
            if let Some(start) = self.start {
                self.scan_inside(byte);
                if self.depth == 0 {
                    let value = serde_json::from_slice(&self.buffer[start..=i]).map_err(|e| {
                        Status::invalid_argument(format!(
                            "the request stream is not valid JSON: {e}"
                        ))
                    })?;
                    out.push(value);
                    self.start = None;
                    if matches!(self.mode, Mode::ArrayValue { .. }) {
                        self.mode = Mode::ArrayComma;
                    }
                }
            } else if !byte.is_ascii_whitespace() {
                self.between(byte, i)?;
            }
            i += 1;
        }
        // Drop what is fully handled so the buffer holds at most one partial message.
        let keep_from = self.start.unwrap_or(i);
        self.buffer.drain(..keep_from);
        self.consumed += keep_from;
        self.start = self.start.map(|_| 0);
        self.scanned = i - keep_from;
        if self.start.is_some() && self.buffer.len() > self.max_message {
            return Err(Status::invalid_argument(format!(
                "a message of the request stream exceeds the limit of {} bytes",
                self.max_message
            )));
        }
        Ok(out)
    }

    pub fn finish(&mut self) -> Result<Vec<Value>, Status> {
        if self.start.is_some() {
            return Err(Status::invalid_argument(
                "the request stream ended in the middle of a message",
            ));
        }
        if matches!(self.mode, Mode::ArrayValue { .. } | Mode::ArrayComma) {
            return Err(Status::invalid_argument(
                "the request stream ended before the closing `]` of its array",
            ));
        }
        Ok(Vec::new())
    }

    fn between(&mut self, byte: u8, i: usize) -> Result<(), Status> {
        let offset = self.consumed + i;
        let unexpected = |what: &str| {
            Status::invalid_argument(format!(
                "the request stream has `{}` at byte {offset} where {what} was expected",
                byte as char
            ))
        };
        match (self.mode, byte) {
            (Mode::Unknown, b'[') => self.mode = Mode::ArrayValue { first: true },
            (Mode::Unknown | Mode::Sequence, b'{') => {
                self.mode = Mode::Sequence;
                self.open(i);
            }
            (Mode::Unknown | Mode::Sequence, _) => return Err(unexpected("a JSON object")),
            (Mode::ArrayValue { .. }, b'{') => self.open(i),
            (Mode::ArrayValue { first: true }, b']') => self.mode = Mode::ArrayClosed,
            (Mode::ArrayValue { .. }, _) => return Err(unexpected("a JSON object")),
            (Mode::ArrayComma, b',') => self.mode = Mode::ArrayValue { first: false },
            (Mode::ArrayComma, b']') => self.mode = Mode::ArrayClosed,
            (Mode::ArrayComma, _) => return Err(unexpected("`,` or `]`")),
            (Mode::ArrayClosed, _) => return Err(unexpected("the end of the body")),
        }
        Ok(())
    }

    fn open(&mut self, i: usize) {
        self.start = Some(i);
        self.depth = 1;
        self.in_string = false;
        self.escaped = false;
    }

    fn scan_inside(&mut self, byte: u8) {
        if self.in_string {
            match byte {
                _ if self.escaped => self.escaped = false,
                b'\\' => self.escaped = true,
                b'"' => self.in_string = false,
                _ => {}
            }
            return;
        }
        match byte {
            b'"' => self.in_string = true,
            b'{' | b'[' => self.depth += 1,
            b'}' | b']' => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_bytewise(body: &str) -> Result<Vec<Value>, Status> {
        let mut splitter = JsonSplitter::new(1024);
        let mut out = Vec::new();
        for byte in body.as_bytes() {
            out.extend(splitter.push(&[*byte])?);
        }
        out.extend(splitter.finish()?);
        Ok(out)
    }

    #[test]
    fn ndjson_and_arrays_split_into_objects_at_any_chunking() {
        let expected = vec![
            serde_json::json!({"a": "}{\"", "b": [1, {"c": 2}]}),
            serde_json::json!({}),
        ];
        let ndjson = "{\"a\":\"}{\\\"\",\"b\":[1,{\"c\":2}]}\n{}\n";
        assert_eq!(split_bytewise(ndjson).unwrap(), expected);
        let array = " [ {\"a\":\"}{\\\"\",\"b\":[1,{\"c\":2}]} , {} ] ";
        assert_eq!(split_bytewise(array).unwrap(), expected);
        assert!(split_bytewise("[]").unwrap().is_empty());
    }

    #[test]
    fn truncated_or_stray_input_is_refused() {
        assert!(split_bytewise("{\"a\":1").is_err());
        assert!(split_bytewise("[{}").is_err());
        assert!(split_bytewise("[{} {}]").is_err());
        assert!(split_bytewise("{} 5").is_err());
        assert!(split_bytewise("[] {}").is_err());
    }

    #[test]
    fn a_message_over_the_limit_is_refused_before_it_ends() {
        let mut splitter = JsonSplitter::new(16);
        assert_eq!(splitter.push(b"{\"a\": 1}\n").unwrap().len(), 1);
        let error = splitter
            .push(b"{\"text\": \"far too long for it\"")
            .unwrap_err();
        assert_eq!(
            error.message,
            "a message of the request stream exceeds the limit of 16 bytes"
        );
    }
}
