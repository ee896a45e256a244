//! Policies are small stages with one job each, run in a fixed order: IP allow list, WAF, JWT, rate limit.
pub mod jwt;
