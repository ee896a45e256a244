//! HPACK (RFC 7541) header compression for the gateway's own HTTP/2 framing layer.
//!
//! The decoder is the part that faces untrusted peers, so it is built around one
//! promise: a header block can never make it hold more memory than the caller's
//! header-list bound plus its dynamic-table limit. Every fault is reported as a
//! [`DecodeError`], each of which the HTTP/2 layer maps to `COMPRESSION_ERROR`.
//!
//! The encoder favours predictability over ratio: its indexing policy is a short,
//! documented list of rules (see [`Encoder`]) rather than a heuristic.
//!
//! Names are treated as opaque (lowercase) bytes; HTTP semantics are checked by the
//! layer above.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod decoder;
mod encoder;
mod error;
mod field;
pub mod huffman;
pub mod integer;
mod representation;
mod static_table;
mod string;
mod table;

pub use decoder::Decoder;
pub use encoder::Encoder;
pub use error::DecodeError;
pub use field::{Field, Header};
pub use table::DynamicTable;

/// The table size both ends assume before any SETTINGS frame is acknowledged
/// (RFC 7540 section 6.5.2), so it is the natural starting point for callers.
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// Per-entry overhead that RFC 7541 section 4.1 adds to a field's size; the same
/// rule defines the HTTP/2 header-list size (RFC 7540 section 6.5.2).
pub const ENTRY_OVERHEAD: usize = 32;

// Decoded integers go up to `u32::MAX` and are returned as `usize`.
const _: () = assert!(usize::BITS >= 32);
