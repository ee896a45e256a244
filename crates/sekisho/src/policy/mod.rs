//! Policies a route or listener applies to a request, each a small stage with one job, run in
//! a fixed order: client IP, IP allow list, WAF, JWT, rate limit.

pub mod cidr;
pub mod client_ip;
pub mod ip_acl;
pub mod jwt;
pub mod rate_limit;
pub mod waf;
