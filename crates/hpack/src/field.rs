//! The header field types shared by the encoder and decoder.

use crate::ENTRY_OVERHEAD;

/// A header field borrowed from the caller or from the decoder's buffers, so that
/// neither direction has to allocate per field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    /// Lowercase field name, e.g. `b":path"` or `b"content-type"`.
    pub name: &'a [u8],
    /// Field value, as raw bytes.
    pub value: &'a [u8],
    /// Whether the field must never enter a compression table, on this hop or any
    /// later one (RFC 7541 section 7.1.3): set it for credentials and cookies.
    pub sensitive: bool,
}

impl<'a> Field<'a> {
    /// A field that intermediaries may index; the common case.
    pub fn new(name: &'a [u8], value: &'a [u8]) -> Self {
        Self {
            name,
            value,
            sensitive: false,
        }
    }

    /// A field that must be sent as never-indexed, so it cannot be probed through
    /// the compression context (CRIME-style attacks).
    pub fn sensitive(name: &'a [u8], value: &'a [u8]) -> Self {
        Self {
            name,
            value,
            sensitive: true,
        }
    }

    /// The size the field counts for in a dynamic table and in a header list, which
    /// is what every limit in this crate is measured in.
    pub fn size(&self) -> usize {
        self.name.len() + self.value.len() + ENTRY_OVERHEAD
    }

    /// Copies the field out of the decoder's buffers, for callers that keep it.
    pub fn to_header(&self) -> Header {
        Header {
            name: self.name.to_vec(),
            value: self.value.to_vec(),
            sensitive: self.sensitive,
        }
    }
}

/// An owned header field, for callers that keep fields past the decode call.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// Lowercase field name.
    pub name: Vec<u8>,
    /// Field value, as raw bytes.
    pub value: Vec<u8>,
    /// Whether the field was (or must be) represented as never-indexed.
    pub sensitive: bool,
}

impl Header {
    /// Builds an indexable header; a convenience for tests and static header sets.
    pub fn new(name: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
            sensitive: false,
        }
    }

    /// Borrows the header so it can be handed to [`crate::Encoder::encode`].
    pub fn as_field(&self) -> Field<'_> {
        Field {
            name: &self.name,
            value: &self.value,
            sensitive: self.sensitive,
        }
    }
}
