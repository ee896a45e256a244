//! Translation between what a client speaks and the gRPC its upstream speaks. Each protocol
//! has its adapter in a module beside this one.

pub mod grpc_web;
