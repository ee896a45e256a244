//! Request body processors: each turns raw bytes into the variables rules inspect.

pub(crate) mod json;
pub(crate) mod multipart;
pub(crate) mod urlencoded;
pub(crate) mod xml;

/// A named value, such as an argument or a header; names keep their original case.
pub(crate) type Pair = (String, Vec<u8>);
