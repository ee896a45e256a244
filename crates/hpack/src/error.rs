//! Decoding faults.

use core::fmt;

/// Why a header block was rejected.
///
/// Every variant is a connection error of type `COMPRESSION_ERROR` in HTTP/2: once a
/// block fails part-way, the decoder's dynamic table may no longer match the peer's,
/// so the decoder must not be used again on that connection. The variants exist to
/// make logs and tests precise, not to drive different recovery paths.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The block ended in the middle of an integer or representation.
    Truncated,
    /// An integer does not fit in 32 bits or uses too many continuation bytes.
    IntegerOverflow,
    /// A string literal claims more bytes than remain in the block.
    StringPastEnd {
        /// Declared length of the string.
        len: usize,
        /// Bytes left in the block after the length prefix.
        available: usize,
    },
    /// A Huffman-encoded string contains the EOS symbol (RFC 7541 section 5.2).
    HuffmanEos,
    /// A Huffman-encoded string ends with more than 7 bits of padding.
    HuffmanPaddingTooLong,
    /// A Huffman-encoded string's padding is not the most significant bits of EOS.
    HuffmanPaddingNotOnes,
    /// Index 0 was used; it is reserved (RFC 7541 section 6.1).
    ZeroIndex,
    /// An index points past the end of the static and dynamic tables.
    IndexOutOfRange(usize),
    /// A dynamic table size update exceeds the limit our SETTINGS allow.
    SizeUpdateTooLarge {
        /// The size the peer asked for.
        requested: usize,
        /// Our SETTINGS_HEADER_TABLE_SIZE.
        limit: usize,
    },
    /// A dynamic table size update followed a field representation.
    SizeUpdateNotAtStart,
    /// Our SETTINGS shrank the table below its current size and the block did not
    /// start with the size update that RFC 7541 section 4.2 requires.
    MissingSizeUpdate,
    /// The decoded header list exceeds the caller's bound (name + value + 32 per
    /// field, as SETTINGS_MAX_HEADER_LIST_SIZE counts it); from
    /// [`crate::huffman::decode`] alone, the string exceeds the limit it was given.
    HeaderListTooLarge {
        /// The caller's bound, in bytes.
        limit: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("hpack: header block truncated mid-representation"),
            Self::IntegerOverflow => {
                f.write_str("hpack: integer overflows 32 bits or has too many continuation bytes")
            }
            Self::StringPastEnd { len, available } => write!(
                f,
                "hpack: string length {len} exceeds the {available} bytes left in the block"
            ),
            Self::HuffmanEos => f.write_str("hpack: huffman string contains EOS"),
            Self::HuffmanPaddingTooLong => f.write_str("hpack: huffman padding longer than 7 bits"),
            Self::HuffmanPaddingNotOnes => f.write_str("hpack: huffman padding is not all ones"),
            Self::ZeroIndex => f.write_str("hpack: index 0 is not a valid table index"),
            Self::IndexOutOfRange(index) => write!(f, "hpack: index {index} is out of range"),
            Self::SizeUpdateTooLarge { requested, limit } => write!(
                f,
                "hpack: table size update to {requested} exceeds the limit of {limit}"
            ),
            Self::SizeUpdateNotAtStart => {
                f.write_str("hpack: table size update after the start of the header block")
            }
            Self::MissingSizeUpdate => {
                f.write_str("hpack: table size update required at the start of the header block")
            }
            Self::HeaderListTooLarge { limit } => {
                write!(f, "hpack: header list exceeds the {limit}-byte limit")
            }
        }
    }
}

impl std::error::Error for DecodeError {}
