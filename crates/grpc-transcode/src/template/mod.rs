//! Path templates of `google.api.http` rules: parsed once at load time into segments, then
//! matched against every request path by a trie.

mod matcher;
mod parse;

pub(crate) use matcher::{PathMatch, Router};
pub(crate) use parse::{Segment, Template};
