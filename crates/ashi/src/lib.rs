//! ashi: the foot-measurement platform. A phone app uploads a foot scan and registers the
//! measurements taken from it; partner shops ask which size of a shoe fits that customer.
//!
//! The crate is a library so that it can run in-process next to the gateway (see [`serve`]);
//! the `ashi` binary is a thin command line over it.
#![forbid(unsafe_code)]

pub mod catalog;
pub mod catalog_csv;
pub mod config;
pub mod foot;
pub mod objects;
mod server;
pub mod service;
pub mod sizing;
pub mod store;
pub mod trace;
pub mod validate;

pub use config::Config;
pub use server::{Error, serve};
pub use trace::TraceConfig;

/// Generated protobuf types and tonic services of `ashi.v1`.
pub mod pb {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("ashi.v1");
}

/// The encoded `FileDescriptorSet` of `ashi.v1` and everything it imports, with the
/// `google.api.http` options intact: for server reflection and for REST transcoding.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/ashi_descriptor.bin"));
