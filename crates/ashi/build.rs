//! Compiles `proto/ashi/v1/*.proto` with protox (no `protoc` needed) and keeps the encoded
//! descriptor set, whose `google.api.http` options prost's own types would drop.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let proto_root = manifest.join("../../proto");
    let files = ["measurement.proto", "sizing.proto", "catalog.proto"]
        .map(|name| proto_root.join("ashi/v1").join(name));
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        proto_root.join("google").display()
    );

    let mut compiler = protox::Compiler::new([&proto_root])?;
    compiler.include_imports(true).include_source_info(false);
    compiler.open_files(&files)?;
    std::fs::write(
        out.join("ashi_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
