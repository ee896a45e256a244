//! Adapters between what a client speaks and the gRPC its route's cluster speaks, one
//! module per client protocol.

pub mod grpc_web;
pub mod transcode;
