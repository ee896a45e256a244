//! What the gateway tells operators: a JSON line per request and Prometheus metrics.

pub mod access_log;
pub mod metrics;
pub mod trace;
