//! A route's retry policy: which failed attempts are tried again, how often, and how long
//! to wait in between.

use std::time::Duration;

use rand::Rng;

use super::GRPC_UNAVAILABLE;
use crate::config::model::{self, RetryOn};

const DEFAULT_BACKOFF: Duration = Duration::from_millis(25);
const DEFAULT_MAX_BACKOFF: Duration = Duration::from_millis(250);

/// How an attempt failed, as far as retrying is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failed {
    /// No connection could be opened: the request never left.
    Connect,
    /// The connection broke before a response, or the attempt's timeout passed.
    Reset,
    /// The upstream answered with this HTTP status and, in a trailers-only response,
    /// this gRPC status.
    Status(u16, Option<u16>),
}

/// A route's retry policy, compiled.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    on: Vec<RetryOn>,
    codes: Vec<u16>,
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Bound on one attempt.
    pub per_try_timeout: Option<Duration>,
    backoff: Duration,
    max_backoff: Duration,
    /// Request body bytes kept so the request can be sent again.
    pub buffer_bytes: usize,
}

impl RetryPolicy {
    /// From a route's config (validated).
    pub fn from_config(spec: &model::Retry) -> Self {
        let backoff = spec.backoff.as_ref().map_or(DEFAULT_BACKOFF, |d| d.get().0);
        RetryPolicy {
            on: spec.on.clone(),
            codes: spec.retriable_status_codes.clone(),
            attempts: spec.attempts,
            per_try_timeout: spec
                .per_try_timeout
                .as_ref()
                .map(|d| d.get().0)
                .filter(|d| !d.is_zero()),
            backoff,
            max_backoff: spec
                .max_backoff
                .as_ref()
                .map_or(DEFAULT_MAX_BACKOFF.max(backoff), |d| d.get().0),
            buffer_bytes: spec.buffer_bytes,
        }
    }

    /// Whether an attempt that failed this way may be retried.
    pub fn retries(&self, failed: Failed) -> bool {
        self.on.iter().any(|on| match (on, failed) {
            (RetryOn::ConnectFailure, Failed::Connect) => true,
            (RetryOn::Reset, Failed::Reset) => true,
            (RetryOn::ServerError | RetryOn::GatewayError, Failed::Connect | Failed::Reset) => true,
            (RetryOn::ServerError, Failed::Status(status, _)) => status >= 500,
            (RetryOn::GatewayError, Failed::Status(status, _)) => {
                matches!(status, 502..=504)
            }
            (RetryOn::Unavailable, Failed::Status(_, grpc)) => grpc == Some(GRPC_UNAVAILABLE),
            (RetryOn::RetriableStatusCodes, Failed::Status(status, _)) => {
                self.codes.contains(&status)
            }
            _ => false,
        })
    }

    /// Whether a response should be retried (when attempts are left).
    pub fn retries_response(&self, status: u16, grpc_status: Option<u16>) -> bool {
        (status >= 500 || grpc_status.is_some() || !self.codes.is_empty())
            && self.retries(Failed::Status(status, grpc_status))
    }

    /// The wait before retry `n` (1 for the first retry): exponential with full jitter,
    /// so clients that failed together do not come back together.
    pub fn backoff(&self, n: u32) -> Duration {
        let ceiling = self
            .backoff
            .saturating_mul(1u32 << n.saturating_sub(1).min(16))
            .min(self.max_backoff);
        let millis = ceiling.as_millis() as u64;
        if millis == 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(rand::rng().random_range(0..=millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(on: Vec<RetryOn>, codes: Vec<u16>) -> RetryPolicy {
        RetryPolicy {
            on,
            codes,
            attempts: 3,
            per_try_timeout: None,
            backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(35),
            buffer_bytes: 1024,
        }
    }

    #[test]
    fn conditions_select_failures() {
        let connect = policy(vec![RetryOn::ConnectFailure], vec![]);
        assert!(connect.retries(Failed::Connect));
        assert!(!connect.retries(Failed::Reset));
        assert!(!connect.retries_response(503, None));

        let unavailable = policy(vec![RetryOn::Unavailable], vec![]);
        assert!(unavailable.retries_response(200, Some(14)));
        assert!(!unavailable.retries_response(200, Some(13)));
        assert!(!unavailable.retries(Failed::Connect));

        let gateway = policy(vec![RetryOn::GatewayError], vec![]);
        assert!(gateway.retries_response(503, None));
        assert!(!gateway.retries_response(500, None));
        assert!(gateway.retries(Failed::Reset));

        let server = policy(vec![RetryOn::ServerError], vec![]);
        assert!(server.retries_response(500, None));
        assert!(!server.retries_response(404, None));

        let codes = policy(vec![RetryOn::RetriableStatusCodes], vec![409]);
        assert!(codes.retries_response(409, None));
        assert!(!codes.retries_response(503, None));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = policy(vec![RetryOn::Reset], vec![]);
        for _ in 0..200 {
            assert!(p.backoff(1) <= Duration::from_millis(10));
            assert!(p.backoff(2) <= Duration::from_millis(20));
            assert!(p.backoff(6) <= Duration::from_millis(35));
        }
        let late: Vec<_> = (0..200).map(|_| p.backoff(6)).collect();
        assert!(
            late.iter().any(|d| *d > Duration::from_millis(20)),
            "jitter spans the window"
        );
    }
}
