//! Policies a route or listener applies to a request, each a small stage with one job, run in
//! a fixed order: client IP, IP allow list, WAF, JWT, rate limit.
//! `identity` keeps the headers they vouch for out of clients' hands.

pub mod cidr;
pub mod client_ip;
pub mod identity;
pub mod ip_acl;
pub mod jwt;
pub mod rate_limit;
pub mod waf;
