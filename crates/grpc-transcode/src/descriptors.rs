//! Decoding the descriptor set the gateway was given, and reading `google.api.http` rules out of
//! method options. The pool is built from the bytes as encoded, so the extension survives.

use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor, Value};

use crate::LoadError;

/// The name of the method option that carries HTTP rules.
const HTTP_EXTENSION: &str = "google.api.http";

/// Builds the pool from an encoded `FileDescriptorSet` (`protoc --include_imports -o`, or
/// `protox::Compiler::encode_file_descriptor_set`).
pub(crate) fn decode_pool(bytes: &[u8]) -> Result<DescriptorPool, LoadError> {
    DescriptorPool::decode(bytes).map_err(|e| LoadError::new(format!(
        "the descriptor set does not decode ({e}); build it with `protoc --include_imports -o` or protox"
    )))
}

/// The `google.api.http` option of a method, if it has one.
pub(crate) fn http_rule(
    pool: &DescriptorPool,
    method: &MethodDescriptor,
) -> Option<DynamicMessage> {
    let extension = pool.get_extension_by_name(HTTP_EXTENSION)?;
    let options = method.options();
    if !options.has_extension(&extension) {
        return None;
    }
    match options.get_extension(&extension).into_owned() {
        Value::Message(rule) => Some(rule),
        _ => None,
    }
}
