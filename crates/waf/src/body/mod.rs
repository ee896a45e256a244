//! Request body processors: each turns raw bytes into the variables rules inspect.
//!
//! What a body yields is bounded by a [`Budget`]: the number of values (SecArgumentsLimit)
//! and their bytes in total. Without it a small body could make the engine hold and
//! inspect far more than it: JSON names every value by its whole key path, so a 60 KB
//! body of one long key over many array items asks for gigabytes of names.

use std::fmt;

pub(crate) mod json;
pub(crate) mod multipart;
#[cfg(test)]
mod props;
pub(crate) mod urlencoded;
pub(crate) mod xml;

/// A named value, such as an argument or a header; names keep their original case.
pub(crate) type Pair = (String, Vec<u8>);

/// Bytes of names and values every body may yield, however short it is: room for the
/// deep key paths of ordinary JSON documents.
pub(crate) const ARGUMENT_BYTES_FLOOR: usize = 1 << 20;

/// Bytes of names and values a body may yield per byte of its own, on top of the floor.
/// Values are never longer than their text in the body; only names built from key paths
/// (JSON) grow past it, and ordinary documents stay well under this.
pub(crate) const ARGUMENT_BYTES_PER_BODY_BYTE: usize = 4;

/// The bytes of names and values a body of `len` bytes may yield.
pub(crate) fn argument_bytes_limit(len: usize) -> usize {
    len.saturating_mul(ARGUMENT_BYTES_PER_BODY_BYTE)
        .saturating_add(ARGUMENT_BYTES_FLOOR)
}

/// A limit a request ran into: the engine inspected only part of what the request holds.
/// Under `SecRequestBodyLimitAction Reject` (with the engine On) the request is refused;
/// otherwise REQBODY_ERROR is set (for a body) and what fitted is inspected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// The body is longer than `SecRequestBodyLimit` (or `SecRequestBodyNoFilesLimit`).
    RequestBody,
    /// More arguments than `SecArgumentsLimit` (query and body together); the same bound
    /// holds uploaded files and XML attribute values.
    Arguments,
    /// The names and values a body yields add up to more bytes than the engine holds for
    /// a body of its length.
    ArgumentBytes,
    /// JSON nested deeper than `SecRequestBodyJsonDepthLimit`.
    JsonDepth,
    /// XML elements nested deeper than `SecRequestBodyXmlDepthLimit`.
    XmlDepth,
    /// The response body is longer than `SecResponseBodyLimit`.
    ResponseBody,
}

impl Limit {
    /// A short name for logs and metrics, such as `arguments`.
    pub fn name(self) -> &'static str {
        match self {
            Limit::RequestBody => "request_body",
            Limit::Arguments => "arguments",
            Limit::ArgumentBytes => "argument_bytes",
            Limit::JsonDepth => "json_depth",
            Limit::XmlDepth => "xml_depth",
            Limit::ResponseBody => "response_body",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::RequestBody => "request body longer than inspected",
            Limit::Arguments => "more arguments than inspected",
            Limit::ArgumentBytes => "arguments longer in total than inspected",
            Limit::JsonDepth => "JSON nested deeper than inspected",
            Limit::XmlDepth => "XML nested deeper than inspected",
            Limit::ResponseBody => "response body longer than inspected",
        })
    }
}

/// Why a body processor stopped: the body is malformed (the message is what
/// REQBODY_ERROR_MSG shows), or it yields more than a limit allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyError {
    Malformed(String),
    Limit(Limit),
}

impl From<Limit> for BodyError {
    fn from(limit: Limit) -> Self {
        BodyError::Limit(limit)
    }
}

/// What one body may still yield: values (arguments and the like) and bytes of their
/// names and values together. Parsers ask before they store a value, so they stop at the
/// limit instead of building everything and counting afterwards.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    values: usize,
    bytes: usize,
    /// Nesting allowed (JSON containers, XML elements).
    pub(crate) depth: usize,
}

impl Budget {
    /// A budget of `values` values and `bytes` bytes, nesting at most `depth` deep.
    pub(crate) fn new(values: usize, bytes: usize, depth: usize) -> Self {
        Budget {
            values,
            bytes,
            depth,
        }
    }

    /// Takes one value of `bytes` bytes (name and value), or says which limit it breaks.
    pub(crate) fn take(&mut self, bytes: usize) -> Result<(), Limit> {
        if self.values == 0 {
            return Err(Limit::Arguments);
        }
        if bytes > self.bytes {
            return Err(Limit::ArgumentBytes);
        }
        self.values -= 1;
        self.bytes -= bytes;
        Ok(())
    }

    /// Takes bytes that do not make a value of their own (such as XML text), or says
    /// that they do not fit.
    pub(crate) fn take_bytes(&mut self, bytes: usize) -> Result<(), Limit> {
        if bytes > self.bytes {
            return Err(Limit::ArgumentBytes);
        }
        self.bytes -= bytes;
        Ok(())
    }

    /// Values still allowed.
    pub(crate) fn values_left(&self) -> usize {
        self.values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_counts_values_and_bytes() {
        let mut b = Budget::new(2, 10, 1);
        assert_eq!(b.take(4), Ok(()));
        assert_eq!(b.take(7), Err(Limit::ArgumentBytes));
        assert_eq!(b.take(6), Ok(()));
        assert_eq!(b.take(0), Err(Limit::Arguments));
        assert_eq!(b.values_left(), 0);
    }
}
