//! Adapters between what a client speaks and the gRPC its route's cluster speaks, one
//! module per client protocol.

pub mod transcode;
