//! Descriptor sets for the tests, compiled from the repository's `.proto` files with protox, the
//! same way the gateway compiles them at start-up.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use protox::file::{
    ChainFileResolver, File, FileResolver, GoogleFileResolver, IncludeFileResolver,
};

pub fn proto_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto"))
}

/// Compiles files under `proto/` with their imports.
pub fn compile(files: &[&str]) -> Vec<u8> {
    let mut compiler = protox::Compiler::new([proto_root()]).unwrap();
    compiler.include_imports(true);
    compiler.open_files(files).unwrap();
    compiler.encode_file_descriptor_set()
}

pub fn bookstore() -> &'static [u8] {
    static SET: OnceLock<Vec<u8>> = OnceLock::new();
    SET.get_or_init(|| compile(&["testing/bookstore.proto"]))
}

pub fn messaging() -> &'static [u8] {
    static SET: OnceLock<Vec<u8>> = OnceLock::new();
    SET.get_or_init(|| compile(&["testing/messaging.proto"]))
}

/// Compiles one in-memory file (`test.proto`) that may import the repository's protos.
pub fn compile_source(source: &str) -> Result<Vec<u8>, String> {
    struct Memory(String);
    impl FileResolver for Memory {
        fn open_file(&self, name: &str) -> Result<File, protox::Error> {
            if name == "test.proto" {
                File::from_source(name, &self.0)
            } else {
                Err(protox::Error::file_not_found(name))
            }
        }
    }
    let mut resolver = ChainFileResolver::new();
    resolver.add(Memory(source.to_owned()));
    resolver.add(IncludeFileResolver::new(proto_root()));
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true);
    compiler
        .open_file("test.proto")
        .map_err(|e| e.to_string())?;
    Ok(compiler.encode_file_descriptor_set())
}
